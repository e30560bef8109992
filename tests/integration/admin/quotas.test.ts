// Quotas of a tenant's plan (issue 11) through the real API: every quota refuses what would pass its limit with a
// 403 OperationOutcome naming the quota, its limit and the usage; parallel creates never both take the last slot;
// a transaction that would pass a quota stores nothing; a quota lowered below the usage keeps the data and refuses
// what would add to it; other tenants are never counted or refused.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createUser, registerClient } from '../../../src/auth/admin.js';
import { FhirError } from '../../../src/core/errors.js';
import { quotaUsage } from '../../../src/store/quotas.js';
import { Browser, formAction, newApp, newUser, PASSWORD, REDIRECT, authorizeUrl, runAuthorization } from '../../helpers/oauth.js';
import { FHIR_JSON, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { criteriaSubscription } from '../../helpers/subscriptions.js';
import { countOf, expectQuotaExceeded, post, putOnPlan, testPlan } from './quotas-helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => server.close());

const patient = (family: string) => ({ resourceType: 'Patient', name: [{ family }] });

/** The FhirError a service function threw (createUser, registerClient). */
async function refusal(p: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof FhirError)) throw new Error(`expected a FhirError, got ${String(err)}`);
  return { status: err.status, body: err.toOutcome() };
}

describe('locations on the trial plan', () => {
  it('takes one Location; the second, or a branch Organization, is refused naming the quota, its limit and usage', async () => {
    const t = await newTenant(server, 'q-trial');
    await putOnPlan(server, t.slug, 'trial');
    expect((await post(t, { resourceType: 'Location', name: 'Main site' })).status).toBe(201);
    expectQuotaExceeded(await post(t, { resourceType: 'Location', name: 'Second site' }), 'trial', 'locations', 1, 1);
    expectQuotaExceeded(await post(t, { resourceType: 'Organization', name: 'Branch', partOf: { reference: `Organization/${t.slug}` } }), 'trial', 'locations', 1, 1);
    // an Organization that is no branch (a partner lab) counts against nothing
    expect((await post(t, { resourceType: 'Organization', name: 'Partner lab' })).status).toBe(201);
    expect(await countOf(t, 'Location')).toBe(1);
  });
});

describe('patients', () => {
  let t: TestTenant;
  let planId: string;

  beforeAll(async () => {
    t = await newTenant(server, 'q-pat');
    planId = (await testPlan(server, { patients: 3 })).id;
    await putOnPlan(server, t.slug, planId);
  });

  it('counts creates and PUT-as-create; the fourth create, PUT-as-create and conditional create are refused', async () => {
    expect((await post(t, patient('One'))).status).toBe(201);
    expect((await post(t, { ...patient('Two'), identifier: [{ system: 'urn:mrn', value: '2' }] })).status).toBe(201);
    expect((await t.api.put(`${t.path}/Patient/q-three`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient('Three'), id: 'q-three' }))).status).toBe(201);
    expectQuotaExceeded(await post(t, patient('Four')), planId, 'patients', 3, 3);
    expectQuotaExceeded(await t.api.put(`${t.path}/Patient/q-four`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient('Four'), id: 'q-four' })), planId, 'patients', 3, 3);
    expectQuotaExceeded(await post(t, patient('Four'), { 'If-None-Exist': 'identifier=urn:mrn|4' }), planId, 'patients', 3, 3);
    // a conditional create that finds its patient adds nothing
    expect((await post(t, patient('Two'), { 'If-None-Exist': 'identifier=urn:mrn|2' })).status).toBe(200);
    // what already counts stays writable; other types are not counted
    expect((await t.api.put(`${t.path}/Patient/q-three`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient('Three-renamed'), id: 'q-three' }))).status).toBe(200);
    expect((await post(t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/q-three' } })).status).toBe(201);
    expect(await countOf(t, 'Patient')).toBe(3);
  });

  it('a deletion frees a slot (and is never refused)', async () => {
    expect((await t.api.delete(`${t.path}/Patient/q-three`)).status).toBe(204);
    expect((await post(t, patient('Five'))).status).toBe(201);
    // re-creating the deleted one by PUT would count again: refused
    expectQuotaExceeded(await t.api.put(`${t.path}/Patient/q-three`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient('Three'), id: 'q-three' })), planId, 'patients', 3, 3);
  });

  it('a transaction Bundle that would pass the quota is refused whole; a batch refuses only the entries past it', async () => {
    const t2 = await newTenant(server, 'q-tx');
    const plan = await testPlan(server, { patients: 2 });
    await putOnPlan(server, t2.slug, plan.id);
    expect((await post(t2, patient('Existing'))).status).toBe(201);
    const tx = await t2.api.post(t2.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000001', resource: patient('A'), request: { method: 'POST', url: 'Patient' } },
        { fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000002', resource: patient('B'), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:00000000-0000-4000-8000-000000000001' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    }));
    expectQuotaExceeded(tx, plan.id, 'patients', 2, 1);
    expect(await countOf(t2, 'Patient')).toBe(1);
    expect(await countOf(t2, 'Observation')).toBe(0);
    const batch = await t2.api.post(t2.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient('C'), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('D'), request: { method: 'POST', url: 'Patient' } },
      ],
    }));
    expect(batch.status).toBe(200);
    expect(batch.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201 Created', '403 Forbidden']);
    expect(batch.body.entry[1].response.outcome.issue[0]).toMatchObject({
      code: 'forbidden',
      diagnostics: `Bundle.entry[1] (POST Patient): Quota 'patients' of plan '${plan.id}' exceeded: limit 2, usage 2`,
      details: { coding: [{ code: 'QUOTA_EXCEEDED' }] },
    });
    expect(await countOf(t2, 'Patient')).toBe(2);
  });

  it('a quota lowered below the usage keeps every resource readable and writable, and refuses new ones showing usage > limit', async () => {
    const t3 = await newTenant(server, 'q-low');
    const plan = await testPlan(server, { patients: 5 });
    await putOnPlan(server, t3.slug, plan.id);
    const ids: string[] = [];
    for (const name of ['A', 'B', 'C', 'D']) ids.push((await post(t3, patient(name))).body.id);
    await testPlan(server, { patients: 2 }, plan.id);
    expect(await countOf(t3, 'Patient')).toBe(4);
    expect((await t3.api.get(`${t3.path}/Patient/${ids[3]}`)).status).toBe(200);
    expect((await t3.api.put(`${t3.path}/Patient/${ids[3]}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient('D2'), id: ids[3] }))).status).toBe(200);
    expectQuotaExceeded(await post(t3, patient('E')), plan.id, 'patients', 2, 4);
  });

  it('parallel creates against one free slot: exactly one succeeds', async () => {
    const t4 = await newTenant(server, 'q-par');
    const plan = await testPlan(server, { patients: 3 });
    await putOnPlan(server, t4.slug, plan.id);
    for (const name of ['A', 'B']) expect((await post(t4, patient(name))).status).toBe(201);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(t4, patient(`Racer${i}`))));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(403)]);
    for (const r of answers.filter((a) => a.status === 403)) expectQuotaExceeded(r, plan.id, 'patients', 3, 3);
    expect(await countOf(t4, 'Patient')).toBe(3);
  });

  it('another tenant (no plan, or another plan) is neither refused nor counted', async () => {
    const free = await newTenant(server, 'q-free');
    for (const name of ['A', 'B', 'C', 'D', 'E']) expect((await post(free, patient(name))).status).toBe(201);
    const group = await newTenant(server, 'q-group');
    await putOnPlan(server, group.slug, 'hospital-group');
    for (const name of ['A', 'B', 'C', 'D', 'E']) expect((await post(group, patient(name))).status).toBe(201);
    expect((await quotaUsage(server.deps, t.slug)).patients).toBe(3);
    // the full tenant's token cannot create in the others' bases either
    expect((await t.api.post(`${free.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient('X')))).status).toBe(401);
  });
});

describe('subscriptions', () => {
  it('counts Subscription resources', async () => {
    const t = await newTenant(server, 'q-sub');
    const plan = await testPlan(server, { subscriptions: 1 });
    await putOnPlan(server, t.slug, plan.id);
    const sub = criteriaSubscription('Observation?status=final', 'http://127.0.0.1:9/hook');
    expect((await post(t, sub)).status).toBe(201);
    expectQuotaExceeded(await post(t, sub), plan.id, 'subscriptions', 1, 1);
  });
});

describe('storage', () => {
  it('refuses writes once the stored size reaches the quota (deletions still pass), and takes them again when it is raised', async () => {
    const t = await newTenant(server, 'q-store');
    const id = (await post(t, patient('Before'))).body.id as string;
    const plan = await testPlan(server, { storageBytes: 100 });
    await putOnPlan(server, t.slug, plan.id);
    const { storageBytes } = await quotaUsage(server.deps, t.slug);
    expect(storageBytes).toBeGreaterThan(100);
    expectQuotaExceeded(await post(t, { resourceType: 'Practitioner', name: [{ family: 'X' }] }), plan.id, 'storageBytes', 100, storageBytes);
    expect((await t.api.delete(`${t.path}/Patient/${id}`)).status).toBe(204);
    await testPlan(server, { storageBytes: 1_000_000_000 }, plan.id);
    expect((await post(t, { resourceType: 'Practitioner', name: [{ family: 'X' }] })).status).toBe(201);
  });
});

describe('staff users, clients and sign-in sessions', () => {
  it('staff users: every user but patients counts; the one past the limit is refused', async () => {
    const t = await newTenant(server, 'q-staff');
    const plan = await testPlan(server, { staffUsers: 2 });
    await putOnPlan(server, t.slug, plan.id);
    await newUser(server, t.slug, 'admin1', 'tenant-admin');
    await newUser(server, t.slug, 'doc1', 'practitioner');
    expectQuotaExceeded(await refusal(createUser(server.deps, { tenant: t.slug, username: 'doc2', password: PASSWORD, role: 'practitioner' })), plan.id, 'staffUsers', 2, 2);
    // a patient's own account is no staff
    const p = (await post(t, patient('Self'))).body.id as string;
    await newUser(server, t.slug, 'pat1', 'patient', `Patient/${p}`);
    expect((await quotaUsage(server.deps, t.slug)).staffUsers).toBe(2);
  });

  it('clients: registered and dynamically registered clients count; past the limit both are refused', async () => {
    const t = await newTenant(server, 'q-cli'); // holds its backend client
    const app = await newApp(server, t.slug);
    await newUser(server, t.slug, 'cli-admin', 'tenant-admin');
    const plan = await testPlan(server, { clients: 3 });
    await putOnPlan(server, t.slug, plan.id);
    await newApp(server, t.slug);
    const provider = server.app.auth.provider();
    expectQuotaExceeded(await refusal(registerClient(server.deps, provider, { tenant: t.slug, kind: 'public', name: 'One too many', redirectUris: [REDIRECT] })), plan.id, 'clients', 3, 3);
    const adminToken = await tokenFor(server, t, { clientId: app.clientId, username: 'cli-admin', scope: 'user/*.rs' });
    const iat = await fetch(`${server.origin}/auth/register/initial-access-token`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: '{}' });
    expect(iat.status).toBe(201);
    const token = ((await iat.json()) as { initial_access_token: string }).initial_access_token;
    const reg = await fetch(`${server.origin}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ client_name: 'Dyn', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    expectQuotaExceeded({ status: reg.status, body: await reg.json() }, plan.id, 'clients', 3, 3);
    expect((await quotaUsage(server.deps, t.slug)).clients).toBe(3);
  });

  it('sessions: a sign-in past the live sessions quota is refused on the sign-in page; the same browser signing in again is not', async () => {
    const t = await newTenant(server, 'q-sess');
    const app = await newApp(server, t.slug, { scope: 'openid fhirUser user/Patient.rs' });
    await newUser(server, t.slug, 'sess-doc', 'practitioner');
    const plan = await testPlan(server, { sessions: 1 });
    await putOnPlan(server, t.slug, plan.id);
    const o = { clientId: app.clientId, aud: t.base, scope: 'openid user/Patient.rs', username: 'sess-doc' };
    const first = new Browser(server.origin);
    await runAuthorization(first, server.origin, o);
    expect((await quotaUsage(server.deps, t.slug)).sessions).toBe(1);
    // signing in again in the same browser replaces its session: not refused
    await runAuthorization(first, server.origin, { ...o, extra: { prompt: 'login' } });
    expect(first.visited.filter((u) => u.endsWith('/login'))).toHaveLength(2);
    const second = new Browser(server.origin);
    const login = await second.follow(authorizeUrl(server.origin, o));
    const refused = await second.follow(formAction(login.html!, '/login'), { form: { username: 'sess-doc', password: PASSWORD } });
    expect(refused.res.status).toBe(403);
    expect(refused.html).toContain(`Quota &#39;sessions&#39; of plan &#39;${plan.id}&#39; exceeded: limit 1, usage 1`);
    expect((await quotaUsage(server.deps, t.slug)).sessions).toBe(1);
  });
});

describe('quotaUsage', () => {
  it('reports every quota of one tenant only', async () => {
    const t = await newTenant(server, 'q-use');
    const other = await newTenant(server, 'q-use-other');
    await post(t, patient('A'));
    await post(t, { resourceType: 'Location', name: 'Site' });
    await post(t, { resourceType: 'Organization', name: 'Branch', partOf: { reference: `Organization/${t.slug}` } });
    await post(other, patient('B'));
    await newUser(server, t.slug, 'use-doc', 'practitioner');
    const usage = await quotaUsage(server.deps, t.slug);
    expect(usage).toEqual({ patients: 1, locations: 2, subscriptions: 0, staffUsers: 1, clients: 1, sessions: 0, storageBytes: expect.any(Number), requestsPerMinute: 0 });
    expect(usage.storageBytes).toBeGreaterThan(0);
  });
});
