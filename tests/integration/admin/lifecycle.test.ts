// The tenant lifecycle (issue 11) through the admin API and the FHIR API, with tokens issued before each change:
// trial -> active (a paid plan), active -> suspended -> active, trial|active|suspended -> archived, any -> terminated,
// everything else 409 naming both states; what each state lets through (suspended: a tenant admin's reads only;
// archived and an ended trial: reads only; terminated: unknown), a suspension landing during a transaction
// (all or nothing), and another tenant untouched throughout.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FHIR_JSON, newTenant, randomSlug, startServer, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { adminAudit, JSON_TYPE, operatorApi, platformAdmin, tenantRow, userToken } from './api-helpers.js';

let server: TestServer;
let home: TestTenant;
let bystander: TestTenant;
let pa: Api;

beforeAll(async () => {
  server = await startServer();
  home = await newTenant(server, 'lc');
  bystander = await newTenant(server, 'lc-by');
  pa = (await platformAdmin(server, home)).api;
}, 60_000);
afterAll(async () => server?.close());

const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;
const patient = (family = 'Lifecycle') => JSON.stringify({ resourceType: 'Patient', name: [{ family }] });

async function act(slug: string, action: string, reason?: string) {
  return pa.post(`/admin/api/tenants/${slug}/${action}`).set('Content-Type', JSON_TYPE).send(reason ? { reason } : {});
}

async function planTenant(plan: string): Promise<string> {
  const slug = randomSlug('lc-plan');
  const res = await pa.post('/admin/api/tenants').set('Content-Type', JSON_TYPE).send({ slug, name: 'Plan clinic', type: 'solo-practice', plan, admin: { username: 'boss' } });
  expect(res.status).toBe(201);
  return slug;
}

/** The bystander tenant still reads and writes. */
async function bystanderUntouched(): Promise<void> {
  expect((await bystander.api.post(`${bystander.path}/Patient`).set('Content-Type', FHIR_JSON).send(patient('Bystander'))).status).toBe(201);
  expect((await bystander.api.get(`${bystander.path}/Patient?family=Bystander`)).status).toBe(200);
  expect((await tenantRow(server, bystander.slug))?.status).toBe('active');
}

describe('transitions through the admin API', () => {
  it('trial -> active when a paid plan is chosen', async () => {
    const slug = await planTenant('trial');
    expect((await tenantRow(server, slug))?.status).toBe('trial');
    const res = await pa.post(`/admin/api/tenants/${slug}/plan`).set('Content-Type', JSON_TYPE).send({ plan: 'solo-practice' });
    expect(res.status).toBe(200);
    expect(res.body.tenant).toMatchObject({ status: 'active', plan: 'solo-practice', trialEndsAt: null });
    expect((await adminAudit(server, slug))[0].detail).toMatchObject({ from: 'trial', to: 'solo-practice', status: 'trial -> active' });
  });

  it('active -> suspended -> active, each with its reason in the audit trail', async () => {
    const t = await newTenant(server, 'lc-s');
    const s = await act(t.slug, 'suspend', 'unpaid invoice');
    expect(s.status).toBe(200);
    expect(s.body.status).toBe('suspended');
    const r = await act(t.slug, 'reactivate', 'paid');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('active');
    const trail = await adminAudit(server, t.slug);
    expect(trail.slice(0, 2).map((x) => [x.subtype, x.detail.from, x.detail.to, x.detail.reason])).toEqual([
      ['tenant-reactivate', 'suspended', 'active', 'paid'],
      ['tenant-suspend', 'active', 'suspended', 'unpaid invoice'],
    ]);
    await bystanderUntouched();
  });

  it('trial, active and suspended -> archived; archived and trial -> terminated', async () => {
    const trial = await planTenant('trial');
    const active = await newTenant(server, 'lc-a');
    const suspended = await newTenant(server, 'lc-sa');
    expect((await act(suspended.slug, 'suspend')).status).toBe(200);
    for (const slug of [trial, active.slug, suspended.slug]) {
      const res = await act(slug, 'archive');
      expect([slug, res.status, res.body.status]).toEqual([slug, 200, 'archived']);
    }
    const trial2 = await planTenant('trial');
    for (const slug of [active.slug, trial2]) {
      const res = await act(slug, 'terminate', 'contract ended');
      expect([res.status, res.body.status]).toEqual([200, 'terminated']);
      const days = (Date.parse(res.body.terminateAfter) - Date.now()) / 86_400_000;
      expect(Math.round(days)).toBe(server.deps.config.tenantErasureGraceDays);
    }
  });

  it('refuses every other step (409 TENANT_TRANSITION_INVALID naming from and to) and changes nothing', async () => {
    const trial = await planTenant('trial');
    const active = await newTenant(server, 'lc-x');
    const archived = await newTenant(server, 'lc-ar');
    const terminated = await newTenant(server, 'lc-te');
    expect((await act(archived.slug, 'archive')).status).toBe(200);
    expect((await act(terminated.slug, 'terminate')).status).toBe(200);
    const cases: [string, string, string, string][] = [
      [trial, 'suspend', 'trial', 'suspended'],
      [trial, 'reactivate', 'trial', 'active'],
      [active.slug, 'reactivate', 'active', 'active'],
      [archived.slug, 'reactivate', 'archived', 'active'],
      [archived.slug, 'suspend', 'archived', 'suspended'],
      [archived.slug, 'archive', 'archived', 'archived'],
      [terminated.slug, 'reactivate', 'terminated', 'active'],
      [terminated.slug, 'archive', 'terminated', 'archived'],
      [terminated.slug, 'terminate', 'terminated', 'terminated'],
    ];
    for (const [slug, action, from, to] of cases) {
      const before = await tenantRow(server, slug);
      const res = await act(slug, action);
      expect([action, from, res.status, code(res.body)]).toEqual([action, from, 409, 'TENANT_TRANSITION_INVALID']);
      expect(res.body.issue[0].diagnostics).toBe(`Tenant '${slug}' cannot go from ${from} to ${to}`);
      expect(await tenantRow(server, slug)).toEqual(before);
    }
    const unknown = await act(active.slug, 'resurrect');
    expect([unknown.status, code(unknown.body)]).toEqual([404, 'PATH_UNKNOWN']);
  });

  it('lets only one of two simultaneous suspensions through: the other sees the state the first left', async () => {
    const t = await newTenant(server, 'lc-race');
    const answers = await Promise.all([act(t.slug, 'suspend'), act(t.slug, 'suspend')]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(code(answers.find((a) => a.status === 409)!.body)).toBe('TENANT_TRANSITION_INVALID');
  });
});

describe('a suspended tenant', () => {
  let t: TestTenant;
  let admin: Api;
  let doctor: Api;
  let patientId: string;
  beforeAll(async () => {
    t = await newTenant(server, 'lc-susp');
    // every token is issued before the suspension
    admin = (await userToken(server, t, 'tenant-admin')).api;
    doctor = (await userToken(server, t, 'practitioner')).api;
    patientId = (await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(patient())).body.id;
    expect((await t.api.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await act(t.slug, 'suspend', 'unpaid')).status).toBe(200);
  });

  it('answers every FHIR call 403 TENANT_SUSPENDED at once, tokens issued before included', async () => {
    const calls: [string, Api, string, string | undefined][] = [
      ['get', t.api, `${t.path}/Patient/${patientId}`, undefined],
      ['post', t.api, `${t.path}/Patient`, patient()],
      ['get', doctor, `${t.path}/Patient?family=Lifecycle`, undefined],
      ['get', t.api, `${t.path}/metadata`, undefined],
      ['post', admin, `${t.path}/Patient`, patient()],
      ['delete', admin, `${t.path}/Patient/${patientId}`, undefined],
    ];
    for (const [method, api, url, body] of calls) {
      const req = (api as any)[method](url);
      const res = body ? await req.set('Content-Type', FHIR_JSON).send(body) : await req;
      expect({ method, url, status: res.status, code: code(res.body) }).toEqual({ method, url, status: 403, code: 'TENANT_SUSPENDED' });
      expect(res.body.issue[0].diagnostics).toMatch(/suspended/);
    }
    await bystanderUntouched();
  });

  it("still lets its tenant admins read (to take the data out), but not change the tenant", async () => {
    expect((await admin.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await admin.get(`${t.path}/Patient?family=Lifecycle`)).body.total).toBe(1);
    const form = await admin.post(`${t.path}/Patient/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send('family=Lifecycle');
    expect(form.status).toBe(200);
    expect((await admin.get(`/admin/api/tenants/${t.slug}`)).body.status).toBe('suspended');
    const patch = await admin.patch(`/admin/api/tenants/${t.slug}`).set('Content-Type', JSON_TYPE).send({ settings: { mfaRequired: true } });
    expect([patch.status, code(patch.body)]).toEqual([403, 'TENANT_SUSPENDED']);
  });

  it('serves again once reactivated', async () => {
    expect((await act(t.slug, 'reactivate')).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await doctor.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(patient())).status).toBe(201);
  });
});

describe('read-only tenants', () => {
  it('archived: reads, searches and read operations work; every write is 403 TENANT_READ_ONLY', async () => {
    const t = await newTenant(server, 'lc-arch');
    const p = (await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(patient())).body;
    expect((await act(t.slug, 'archive', 'left the platform')).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(200);
    expect((await t.api.post(`${t.path}/Patient/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send('family=Lifecycle')).body.total).toBe(1);
    expect((await t.api.post(`${t.path}/Patient/$validate`).set('Content-Type', FHIR_JSON).send(patient())).status).toBe(200);
    const writes: [string, string, string | undefined][] = [
      ['post', `${t.path}/Patient`, patient()],
      ['put', `${t.path}/Patient/${p.id}`, JSON.stringify({ ...p, gender: 'other' })],
      ['delete', `${t.path}/Patient/${p.id}`, undefined],
      ['post', t.path, JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: JSON.parse(patient()), request: { method: 'POST', url: 'Patient' } }] })],
    ];
    for (const [method, url, body] of writes) {
      const req = (t.api as any)[method](url);
      const res = body ? await req.set('Content-Type', FHIR_JSON).send(body) : await req;
      expect({ method, status: res.status, code: code(res.body) }).toEqual({ method, status: 403, code: 'TENANT_READ_ONLY' });
    }
    expect((await t.api.get(`${t.path}/Patient?family=Lifecycle`)).body.total).toBe(1);
    await bystanderUntouched();
  });

  it('a trial past its end: writes 403 TENANT_TRIAL_EXPIRED naming the day; reads work; a paid plan restores writes', async () => {
    const slug = await planTenant('trial');
    const op = await operatorApi(server, slug);
    expect((await op.post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(patient())).status).toBe(201);
    const ended = new Date(Date.now() - 86_400_000);
    await server.deps.db.admin().query('UPDATE tenant SET trial_ends_at = $2 WHERE id = $1', [slug, ended]);
    server.app.tenants.invalidate(slug);
    const res = await op.post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(patient());
    expect([res.status, code(res.body)]).toEqual([403, 'TENANT_TRIAL_EXPIRED']);
    expect(res.body.issue[0].diagnostics).toContain(`ended on ${ended.toISOString().slice(0, 10)}`);
    expect((await op.get(`/fhir/${slug}/Patient?family=Lifecycle`)).body.total).toBe(1);
    expect((await pa.post(`/admin/api/tenants/${slug}/plan`).set('Content-Type', JSON_TYPE).send({ plan: 'solo-practice' })).body.tenant.status).toBe('active');
    expect((await op.post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(patient())).status).toBe(201);
  });
});

describe('a terminated tenant', () => {
  it('is unknown to its own tokens at once (404 TENANT_UNKNOWN) and to its admins; platform admins see it with its erasure date', async () => {
    const t = await newTenant(server, 'lc-term');
    const admin = (await userToken(server, t, 'tenant-admin')).api;
    expect((await act(t.slug, 'terminate', 'asked to leave')).status).toBe(200);
    const res = await t.api.get(`${t.path}/Patient`);
    expect([res.status, code(res.body)]).toEqual([404, 'TENANT_UNKNOWN']);
    const own = await admin.get(`/admin/api/tenants/${t.slug}`);
    expect([own.status, code(own.body)]).toEqual([404, 'TENANT_UNKNOWN']);
    const seen = await pa.get(`/admin/api/tenants/${t.slug}`);
    expect(seen.body).toMatchObject({ status: 'terminated', terminateAfter: expect.any(String) });
    await bystanderUntouched();
  });
});

describe('a suspension landing during a transaction', () => {
  it('leaves the transaction whole (all entries or none) and refuses what comes after', async () => {
    const t = await newTenant(server, 'lc-tx');
    const family = `Tx${randomSlug('f').slice(2)}`;
    const n = 500;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: n }, (_, i) => ({ fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, resource: { resourceType: 'Patient', name: [{ family, given: [`P${i}`] }] }, request: { method: 'POST', url: 'Patient' } })),
    };
    const inflight = t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle)).then((r) => r);
    await new Promise((r) => setTimeout(r, 150));
    const suspended = await act(t.slug, 'suspend', 'during a transaction');
    expect(suspended.status).toBe(200);
    const res = await inflight;
    const stored = Number((await server.deps.db.admin().query("SELECT count(*) AS n FROM resource WHERE tenant_id = $1 AND resource_type = 'Patient' AND content->'name'->0->>'family' = $2", [t.slug, family])).rows[0].n);
    if (res.status === 200) expect(stored).toBe(n);
    else {
      expect(code(res.body)).toBe('TENANT_SUSPENDED');
      expect(stored).toBe(0);
    }
    const after = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(patient(family));
    expect([after.status, code(after.body)]).toEqual([403, 'TENANT_SUSPENDED']);
    await bystanderUntouched();
  }, 60_000);
});
