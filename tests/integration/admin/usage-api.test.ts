// Usage through the admin API (GET /admin/api/tenants/:slug/usage, issue 11): a tenant on a plan sees its quotas with
// limit and usage beside its resources, requests and stored bytes; a tenant admin reads their own tenant's usage only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FHIR_JSON, newTenant, randomSlug, startServer, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { JSON_TYPE, operatorApi, platformAdmin, userToken } from './api-helpers.js';

let server: TestServer;
let home: TestTenant;
let pa: Api;

beforeAll(async () => {
  server = await startServer();
  home = await newTenant(server, 'usage-home');
  pa = (await platformAdmin(server, home)).api;
}, 60_000);
afterAll(async () => server?.close());

const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

/** A tenant made through the admin API on `plan`, and its operator client's FHIR API. */
async function tenantOn(plan: string): Promise<{ slug: string; fhir: Api }> {
  const slug = randomSlug('usage-plan');
  const res = await pa
    .post('/admin/api/tenants')
    .set('Content-Type', JSON_TYPE)
    .send(JSON.stringify({ slug, name: 'Usage Clinic', type: 'solo-practice', plan, admin: { username: 'first-admin' } }));
  expect(res.status).toBe(201);
  return { slug, fhir: await operatorApi(server, slug) };
}

describe('GET /admin/api/tenants/:slug/usage', () => {
  it("shows a tenant on a plan its quotas, each with the plan's limit and the tenant's usage", async () => {
    const { slug, fhir } = await tenantOn('solo-practice');
    for (let i = 0; i < 2; i++) {
      expect((await fhir.post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient' }))).status).toBe(201);
    }
    expect((await fhir.get(`/fhir/${slug}/Patient`)).status).toBe(200);
    const res = await pa.get(`/admin/api/tenants/${slug}/usage`);
    expect(res.status).toBe(200);
    const plan = (await server.deps.plans.get('solo-practice'))!;
    expect(res.body).toMatchObject({
      resources: { Organization: 1, Patient: 2 },
      requestsToday: 3,
      requests30d: 3,
      activeSessions: 0,
      lastActivity: expect.any(String),
    });
    expect(res.body.quotas.patients).toEqual({ limit: plan.quotas.patients, usage: 2 });
    // the operator client made with the tenant
    expect(res.body.quotas.clients).toEqual({ limit: plan.quotas.clients, usage: 1 });
    expect(res.body.quotas.storageBytes).toEqual({ limit: plan.quotas.storageBytes, usage: res.body.storageBytes });
    expect(res.body.storageBytes).toBeGreaterThan(0);
    expect(Object.keys(res.body.quotas).sort()).toEqual(['clients', 'locations', 'patients', 'requestsPerMinute', 'sessions', 'staffUsers', 'storageBytes', 'subscriptions']);
  });

  it('lets a tenant admin read their own usage, and not another tenant\'s', async () => {
    const other = await newTenant(server, 'usage-other');
    const admin = await userToken(server, home, 'tenant-admin');
    const own = await admin.api.get(`/admin/api/tenants/${home.slug}/usage`);
    expect(own.status).toBe(200);
    expect(own.body.resources).toEqual({ Organization: 1 });
    // a tenant made without a plan has no quotas
    expect(own.body.quotas).toBeUndefined();
    const theirs = await admin.api.get(`/admin/api/tenants/${other.slug}/usage`);
    expect(theirs.status).toBe(404);
    expect(code(theirs.body)).toBe('TENANT_UNKNOWN');
    expect(JSON.stringify(theirs.body)).not.toContain('resources');
  });
});
