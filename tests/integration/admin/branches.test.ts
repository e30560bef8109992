// Branches (issue 11): Organizations partOf the tenant's root Organization (id = the slug) and their Locations,
// created by the tenant's admin, capped by the plan's locations quota; searches by branch find the branch's data.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, FHIR_JSON, newTenant, startServer, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectQuotaExceeded, putOnPlan, testPlan } from './quotas-helpers.js';

const ADMIN_SCOPE = 'user/Organization.cruds user/Location.cruds user/Encounter.rs';

let server: TestServer;
let t: TestTenant;
let admin: Api;
let planId: string;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'br');
  const app = await newApp(server, t.slug, { scope: ADMIN_SCOPE });
  await newUser(server, t.slug, 'br-admin', 'tenant-admin');
  admin = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'br-admin', scope: ADMIN_SCOPE }));
  planId = (await testPlan(server, { locations: 3 })).id;
  await putOnPlan(server, t.slug, planId);
});
afterAll(async () => server.close());

function send(api: Api, t: Pick<TestTenant, 'path'>, resource: Record<string, unknown>) {
  return api.post(`${t.path}/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
}

const branch = (name: string, root: string) => ({ resourceType: 'Organization', name, active: true, partOf: { reference: `Organization/${root}` } });

describe('branches', () => {
  let north: string;
  let south: string;
  let northSite: string;

  it('a tenant admin creates branch Organizations under the root and their Locations, up to the plan\'s locations quota', async () => {
    const n = await send(admin, t, branch('North clinic', t.slug));
    expect(n.status).toBe(201);
    north = n.body.id;
    const site = await send(admin, t, { resourceType: 'Location', name: 'North clinic, floor 1', managingOrganization: { reference: `Organization/${north}` } });
    expect(site.status).toBe(201);
    northSite = site.body.id;
    const s = await send(admin, t, branch('South clinic', t.slug));
    expect(s.status).toBe(201);
    south = s.body.id;
    // 2 branches + 1 location = the plan's 3
    expectQuotaExceeded(await send(admin, t, branch('East clinic', t.slug)), planId, 'locations', 3, 3);
    expectQuotaExceeded(await send(admin, t, { resourceType: 'Location', name: 'South annex', managingOrganization: { reference: `Organization/${south}` } }), planId, 'locations', 3, 3);
    // renaming a branch adds nothing; an Organization that is no branch counts against nothing
    expect((await admin.put(`${t.path}/Organization/${north}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...branch('North clinic (main)', t.slug), id: north }))).status).toBe(200);
    expect((await send(admin, t, { resourceType: 'Organization', name: 'Partner insurer' })).status).toBe(201);
    // making that Organization a branch would add one: refused
    const partner = (await admin.get(`${t.path}/Organization?name=Partner`)).body.entry[0].resource;
    expectQuotaExceeded(await admin.put(`${t.path}/Organization/${partner.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...partner, partOf: { reference: `Organization/${t.slug}` } })), planId, 'locations', 3, 3);
  });

  it('Encounter?service-provider= and Location?organization= find each branch\'s own data', async () => {
    const patient = (await send(t.api, t, { resourceType: 'Patient', name: [{ family: 'Branchwalker' }] })).body.id;
    const visit = (org: string) => ({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patient}` }, serviceProvider: { reference: `Organization/${org}` } });
    const atNorth = (await send(t.api, t, visit(north))).body.id;
    const atSouth = (await send(t.api, t, visit(south))).body.id;
    const ids = (res: { body: { entry?: { resource: { id: string } }[] } }) => (res.body.entry ?? []).map((e) => e.resource.id).sort();
    expect(ids(await admin.get(`${t.path}/Encounter?service-provider=Organization/${north}`))).toEqual([atNorth]);
    expect(ids(await admin.get(`${t.path}/Encounter?service-provider=${south}`))).toEqual([atSouth]);
    expect(ids(await admin.get(`${t.path}/Location?organization=${north}`))).toEqual([northSite]);
    expect(ids(await admin.get(`${t.path}/Location?organization=Organization/${south}`))).toEqual([]);
    expect(ids(await admin.get(`${t.path}/Organization?partof=Organization/${t.slug}`))).toEqual([north, south].sort());
  });

  it('another tenant sees none of the branches, and cannot hang a branch under this tenant\'s root', async () => {
    const other = await newTenant(server, 'br-other');
    expect((await other.api.get(`${other.path}/Encounter?service-provider=Organization/${north}`)).body.total ?? 0).toBe(0);
    expect((await other.api.get(`${other.path}/Location?organization=${north}`)).body.entry ?? []).toEqual([]);
    expect((await other.api.get(`${other.path}/Organization/${north}`)).status).toBe(404);
    expect((await other.api.get(`${t.path}/Organization/${north}`)).status).toBe(401);
    const foreign = await send(other.api, other, branch('Intruder', t.slug));
    expect(foreign.status).toBe(400);
    expect(foreign.body.issue[0].details.coding[0].code).toBe('REFERENCE_NOT_FOUND');
  });
});
