// The admin JSON API (issue 11) through real HTTP with real tokens: creating a tenant in one call (type, plan,
// branding, root Organization, operator client, the first admin's invitation), every malformed creation refused with
// nothing written, list / read / update / plan change (quotas below usage reported, nothing deleted), plans, and who
// may do what: platform admins everything, a tenant admin their own tenant's safe fields, anyone else nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { FHIR_JSON, newTenant, randomSlug, startServer, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { adminAudit, JSON_TYPE, operatorApi, platformAdmin, tenantRow, userToken } from './api-helpers.js';

let server: TestServer;
let home: TestTenant;
let other: TestTenant;
let pa: Api;
let paUser: string;

beforeAll(async () => {
  server = await startServer();
  home = await newTenant(server, 'adm');
  other = await newTenant(server, 'adm-other');
  const admin = await platformAdmin(server, home);
  pa = admin.api;
  paUser = admin.username;
}, 60_000);
afterAll(async () => server?.close());

const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

function newTenantBody(o: Record<string, unknown> = {}) {
  return { slug: randomSlug('api'), name: 'Lakeside Clinic', type: 'solo-practice', plan: 'solo-practice', branding: { primaryColor: '#0a5f8c' }, admin: { username: 'first-admin', email: 'admin@lakeside.example.org' }, ...o };
}

async function createVia(api: Api, body: Record<string, unknown>) {
  return api.post('/admin/api/tenants').set('Content-Type', JSON_TYPE).send(JSON.stringify(body));
}

describe('POST /admin/api/tenants', () => {
  it('creates the tenant, its root Organization, its operator client and a single-use invitation for its first admin', async () => {
    const body = newTenantBody();
    const res = await createVia(pa, body);
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.location).toBe(`${server.origin}/admin/api/tenants/${body.slug}`);
    expect(res.body.tenant).toMatchObject({ slug: body.slug, name: 'Lakeside Clinic', status: 'active', type: 'solo-practice', plan: 'solo-practice', branding: { primaryColor: '#0a5f8c' }, trialEndsAt: null });
    expect(res.body.invitation.url).toMatch(new RegExp(`^${server.origin}/admin/invite/${body.slug}/[A-Za-z0-9_-]{20,}$`));
    expect(Date.parse(res.body.invitation.expiresAt)).toBeGreaterThan(Date.now());
    // the root Organization, read with the operator client's token
    const org = await (await operatorApi(server, body.slug)).get(`/fhir/${body.slug}/Organization/${body.slug}`);
    expect(org.status).toBe(200);
    expect(org.body.name).toBe('Lakeside Clinic');
    // the tenant's trail names the platform admin who created it
    await server.deps.audit.settle();
    const rec = (await server.deps.db.admin().query("SELECT user_sub, role FROM audit_event WHERE tenant_id = $1 AND subtype = 'tenant-create'", [body.slug])).rows[0];
    expect(rec).toEqual({ user_sub: expect.stringMatching(/^platform\|/), role: 'platform-admin' });
  });

  it('starts a tenant on a trial plan in trial, ending after the plan\'s days', async () => {
    const body = newTenantBody({ plan: 'trial' });
    const res = await createVia(pa, body);
    expect(res.status).toBe(201);
    expect(res.body.tenant.status).toBe('trial');
    const days = (Date.parse(res.body.tenant.trialEndsAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it.each([
    ['uppercase', 'Lakeside'],
    ['a reserved word', 'admin'],
    ['the platform', 'platform'],
    ['a path character', 'lake/side'],
    ['a parent path', '..'],
    ['a dot', 'lake.side'],
    ['an empty slug', ''],
    ['too long', 'a'.repeat(64)],
    ['a leading dash', '-lake'],
  ])('refuses a slug with %s (400 TENANT_SLUG_INVALID) and creates nothing', async (_what, slug) => {
    const res = await createVia(pa, newTenantBody({ slug }));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(code(res.body)).toBe('TENANT_SLUG_INVALID');
    if (slug && slug !== 'platform') expect(await tenantRow(server, slug)).toBeUndefined();
  });

  it('refuses a slug that exists (409 TENANT_EXISTS) and leaves that tenant as it was', async () => {
    const res = await createVia(pa, newTenantBody({ slug: other.slug, name: 'Usurper' }));
    expect(res.status).toBe(409);
    expect(code(res.body)).toBe('TENANT_EXISTS');
    expect((await tenantRow(server, other.slug))?.name).toBe(`Test ${other.slug}`);
  });

  it('refuses an unknown plan, an unknown type, a plan not sold to the type and a bad admin name, creating nothing', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ plan: 'platinum' }, 400, 'PLAN_UNKNOWN'],
      [{ plan: undefined }, 400, 'PLAN_UNKNOWN'],
      [{ type: 'spaceport' }, 400, 'TENANT_TYPE_UNKNOWN'],
      [{ type: 'hospital-group', plan: 'solo-practice' }, 400, 'PLAN_TYPE_MISMATCH'],
      [{ admin: { username: 'a b' } }, 400, 'USER_NAME_INVALID'],
      [{ admin: undefined }, 400, 'USER_NAME_INVALID'],
      [{ branding: { logo: 42 } }, 400, 'TENANT_BRANDING_INVALID'],
      [{ name: ' ' }, 400, 'TENANT_NAME_MISSING'],
    ];
    for (const [o, status, c] of cases) {
      const body = newTenantBody(o);
      const res = await createVia(pa, body);
      expect({ o, status: res.status, code: code(res.body) }).toEqual({ o, status, code: c });
      expect(await tenantRow(server, body.slug as string)).toBeUndefined();
    }
  });

  it('answers a body that is not JSON 415, malformed JSON 400 and a huge body 413', async () => {
    const form = await pa.post('/admin/api/tenants').set('Content-Type', 'application/x-www-form-urlencoded').send('slug=x');
    expect([form.status, code(form.body)]).toEqual([415, 'ADMIN_MEDIA_TYPE']);
    const broken = await pa.post('/admin/api/tenants').set('Content-Type', JSON_TYPE).send('{"slug":');
    expect([broken.status, code(broken.body)]).toEqual([400, 'ADMIN_BODY_INVALID']);
    const huge = await createVia(pa, newTenantBody({ name: 'x'.repeat(100_000) }));
    expect([huge.status, code(huge.body)]).toEqual([413, 'ADMIN_BODY_TOO_LARGE']);
  });
});

describe('GET and PATCH /admin/api/tenants/:slug', () => {
  let slug: string;
  beforeAll(async () => {
    const body = newTenantBody({ type: 'lab' });
    slug = body.slug as string;
    expect((await createVia(pa, body)).status).toBe(201);
    const made = await (await operatorApi(server, slug)).post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Counted' }] }));
    expect(made.status).toBe(201);
  });

  it('lists every tenant with status, plan and usage, and reads one (not the platform catalog)', async () => {
    const list = await pa.get('/admin/api/tenants');
    expect(list.status).toBe(200);
    const mine = list.body.tenants.find((t: any) => t.slug === slug);
    expect(mine).toMatchObject({ status: 'active', plan: 'solo-practice', type: 'lab' });
    expect(mine.usage.resources).toMatchObject({ Patient: 1, Organization: 1 });
    expect(list.body.tenants.some((t: any) => t.slug === 'platform')).toBe(false);
    const one = await pa.get(`/admin/api/tenants/${slug}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ slug, name: 'Lakeside Clinic', settings: {}, usage: { resources: { Patient: 1 } } });
    const usage = await pa.get(`/admin/api/tenants/${slug}/usage`);
    expect(usage.body.resources.Patient).toBe(1);
    for (const missing of ['platform', 'no-such-tenant']) {
      const res = await pa.get(`/admin/api/tenants/${missing}`);
      expect([res.status, code(res.body)]).toEqual([404, 'TENANT_UNKNOWN']);
    }
  });

  it('changes name, branding, host and settings; a bad value changes nothing', async () => {
    const res = await pa.patch(`/admin/api/tenants/${slug}`).set('Content-Type', JSON_TYPE).send({ name: 'Lakeside Lab', branding: { primaryColor: '#000000' }, host: 'Lakeside.Example.org', settings: { mfaRequired: true, ipAllowList: ['10.0.0.0/8', '2001:db8::/32'] } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'Lakeside Lab', branding: { primaryColor: '#000000' }, host: 'lakeside.example.org', settings: { mfaRequired: true, ipAllowList: ['10.0.0.0/8', '2001:db8::/32'] } });
    const bad = await pa.patch(`/admin/api/tenants/${slug}`).set('Content-Type', JSON_TYPE).send({ name: 'Renamed', settings: { ipAllowList: ['10.0.0.0/33'], colour: 'red' } });
    expect([bad.status, code(bad.body)]).toEqual([400, 'TENANT_SETTINGS_INVALID']);
    const said = bad.body.issue.map((i: any) => i.diagnostics).join(' ');
    expect(said).toContain('colour');
    expect(said).toContain('10.0.0.0/33');
    const taken = await pa.patch(`/admin/api/tenants/${other.slug}`).set('Content-Type', JSON_TYPE).send({ host: 'lakeside.example.org' });
    expect([taken.status, code(taken.body)]).toEqual([409, 'TENANT_HOST_TAKEN']);
    const badHost = await pa.patch(`/admin/api/tenants/${slug}`).set('Content-Type', JSON_TYPE).send({ host: 'not a host' });
    expect([badHost.status, code(badHost.body)]).toEqual([400, 'TENANT_HOST_INVALID']);
    const unknown = await pa.patch(`/admin/api/tenants/${slug}`).set('Content-Type', JSON_TYPE).send({ status: 'active' });
    expect([unknown.status, code(unknown.body)]).toEqual([400, 'ADMIN_REQUEST_INVALID']);
    const row = await tenantRow(server, slug);
    expect(row).toMatchObject({ name: 'Lakeside Lab', host: 'lakeside.example.org' });
    expect((await tenantRow(server, other.slug))?.host).toBeNull();
    // null clears a setting
    const cleared = await pa.patch(`/admin/api/tenants/${slug}`).set('Content-Type', JSON_TYPE).send({ host: null, settings: { ipAllowList: null } });
    expect(cleared.body.host).toBeNull();
    expect(cleared.body.settings).toEqual({ mfaRequired: true });
  });
});

describe('POST /admin/api/tenants/:slug/plan', () => {
  it('moves to a smaller plan and reports each quota now below usage, deleting nothing; new ones are refused', async () => {
    const body = newTenantBody({ type: 'lab', plan: 'multi-branch' });
    const slug = body.slug as string;
    expect((await createVia(pa, body)).status).toBe(201);
    const op = await operatorApi(server, slug);
    const locations: string[] = [];
    for (const name of ['North', 'South']) {
      const res = await op.post(`/fhir/${slug}/Location`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Location', name }));
      expect(res.status).toBe(201);
      locations.push(res.body.id);
    }
    const res = await pa.post(`/admin/api/tenants/${slug}/plan`).set('Content-Type', JSON_TYPE).send({ plan: 'solo-practice' });
    expect(res.status).toBe(200);
    expect(res.body.tenant.plan).toBe('solo-practice');
    expect(res.body.overQuota).toEqual([{ quota: 'locations', limit: 1, usage: 2 }]);
    for (const id of locations) expect((await op.get(`/fhir/${slug}/Location/${id}`)).status).toBe(200);
    const third = await op.post(`/fhir/${slug}/Location`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Location', name: 'East' }));
    expect([third.status, code(third.body)]).toEqual([403, 'QUOTA_EXCEEDED']);
    expect((await adminAudit(server, slug))[0]).toMatchObject({ subtype: 'tenant-plan', outcome: 0, detail: { from: 'multi-branch', to: 'solo-practice', overQuota: ['locations'] } });
  });

  it('refuses an unknown plan (400 PLAN_UNKNOWN) and a plan not sold to the tenant type, keeping the plan', async () => {
    const body = newTenantBody();
    expect((await createVia(pa, body)).status).toBe(201);
    const unknown = await pa.post(`/admin/api/tenants/${body.slug}/plan`).set('Content-Type', JSON_TYPE).send({ plan: 'platinum' });
    expect([unknown.status, code(unknown.body)]).toEqual([400, 'PLAN_UNKNOWN']);
    const mismatch = await pa.post(`/admin/api/tenants/${body.slug}/plan`).set('Content-Type', JSON_TYPE).send({ plan: 'hospital-group' });
    expect([mismatch.status, code(mismatch.body)]).toEqual([400, 'PLAN_TYPE_MISMATCH']);
    expect((await tenantRow(server, body.slug as string))?.plan).toBe('solo-practice');
  });
});

describe('plans', () => {
  it('lists the plans to any admin; only platform admins change them', async () => {
    const list = await pa.get('/admin/api/plans');
    expect(list.status).toBe(200);
    expect(list.body.plans.map((p: any) => p.id)).toEqual(expect.arrayContaining(['trial', 'solo-practice', 'multi-branch', 'hospital-group']));
    const id = randomSlug('plan');
    const quotas = { staffUsers: 3, patients: 100, locations: 1, storageBytes: null, requestsPerMinute: null, sessions: 5, subscriptions: 1, clients: 2 };
    const put = await pa.put(`/admin/api/plans/${id}`).set('Content-Type', JSON_TYPE).send({ name: 'Tiny', quotas });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id, name: 'Tiny', quotas });
    const mismatch = await pa.put(`/admin/api/plans/${id}`).set('Content-Type', JSON_TYPE).send({ id: 'other', name: 'Tiny', quotas });
    expect([mismatch.status, code(mismatch.body)]).toEqual([400, 'PLAN_INVALID']);
    const ta = await userToken(server, home, 'tenant-admin');
    expect((await ta.api.get('/admin/api/plans')).status).toBe(200);
    const refused = await ta.api.put(`/admin/api/plans/${id}`).set('Content-Type', JSON_TYPE).send({ name: 'Free for all', quotas: { ...quotas, patients: null } });
    expect([refused.status, code(refused.body)]).toEqual([403, 'ADMIN_FORBIDDEN']);
    expect((await server.deps.plans.get(id))?.quotas.patients).toBe(100);
  });
});

describe('who may call the admin API', () => {
  it('needs a bearer token of this server (401)', async () => {
    const res = await request(server.origin).get('/admin/api/tenants');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses a practitioner and a system token (403 ADMIN_ROLE_REQUIRED)', async () => {
    const doc = await userToken(server, home, 'practitioner');
    for (const api of [doc.api, home.api]) {
      const res = await api.get(`/admin/api/tenants/${home.slug}`);
      expect([res.status, code(res.body)]).toEqual([403, 'ADMIN_ROLE_REQUIRED']);
    }
  });

  it("lets a tenant admin read and change their own tenant's safe fields, and nothing of another tenant", async () => {
    const ta = await userToken(server, home, 'tenant-admin');
    const list = await ta.api.get('/admin/api/tenants');
    expect(list.body.tenants.map((t: any) => t.slug)).toEqual([home.slug]);
    expect((await ta.api.get(`/admin/api/tenants/${home.slug}`)).status).toBe(200);
    const own = await ta.api.patch(`/admin/api/tenants/${home.slug}`).set('Content-Type', JSON_TYPE).send({ branding: { displayName: 'Home' }, settings: { passwordMinLength: 14 } });
    expect(own.status).toBe(200);
    expect(own.body.settings.passwordMinLength).toBe(14);
    const platformOnly: [string, string, Record<string, unknown>, number, string][] = [
      ['patch', `/admin/api/tenants/${home.slug}`, { settings: { auditRetentionDays: 1 } }, 400, 'TENANT_SETTINGS_INVALID'],
      ['patch', `/admin/api/tenants/${home.slug}`, { host: 'home.example.org' }, 403, 'ADMIN_FORBIDDEN'],
      ['post', `/admin/api/tenants/${home.slug}/suspend`, {}, 403, 'ADMIN_FORBIDDEN'],
      ['post', `/admin/api/tenants/${home.slug}/plan`, { plan: 'hospital-group' }, 403, 'ADMIN_FORBIDDEN'],
      ['post', '/admin/api/tenants', newTenantBody(), 403, 'ADMIN_FORBIDDEN'],
    ];
    // another tenant is unknown to them, whatever they try
    const before = await tenantRow(server, other.slug);
    const otherTenant: [string, string, Record<string, unknown>, number, string][] = [
      ['get', `/admin/api/tenants/${other.slug}`, {}, 404, 'TENANT_UNKNOWN'],
      ['get', `/admin/api/tenants/${other.slug}/usage`, {}, 404, 'TENANT_UNKNOWN'],
      ['patch', `/admin/api/tenants/${other.slug}`, { name: 'Taken over', settings: { mfaRequired: false } }, 404, 'TENANT_UNKNOWN'],
      ['post', `/admin/api/tenants/${other.slug}/suspend`, { reason: 'mischief' }, 404, 'TENANT_UNKNOWN'],
      ['post', `/admin/api/tenants/${other.slug}/terminate`, {}, 404, 'TENANT_UNKNOWN'],
    ];
    for (const [method, url, body, status, c] of [...platformOnly, ...otherTenant]) {
      const res = await (ta.api as any)[method](url).set('Content-Type', JSON_TYPE).send(body);
      expect({ method, url, status: res.status, code: code(res.body) }).toEqual({ method, url, status, code: c });
    }
    expect(await tenantRow(server, other.slug)).toEqual(before);
    expect((await tenantRow(server, home.slug))?.host).toBeNull();
    // the attempts are in the tenant admin's own trail, refused; the other tenant's trail has none of them
    const trail = await adminAudit(server, home.slug);
    expect(trail.filter((r) => r.outcome === 4 && r.detail?.tenant === other.slug).map((r) => r.subtype).sort()).toEqual(['tenant-read', 'tenant-suspend', 'tenant-terminate', 'tenant-update', 'tenant-usage']);
    expect((await adminAudit(server, other.slug)).filter((r) => r.outcome === 4)).toEqual([]);
  });

  it('accepts a platform admin whatever tenant their token was issued for', async () => {
    expect(paUser).toMatch(/^pa-/);
    const res = await pa.get(`/admin/api/tenants/${other.slug}`);
    expect(res.status).toBe(200);
    expect(res.body.slug).toBe(other.slug);
  });
});
