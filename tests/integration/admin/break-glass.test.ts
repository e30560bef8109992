// Break-glass support access (issue 11): a platform administrator's token reads no clinical data of a tenant until
// a grant is active (403 BREAK_GLASS_REQUIRED saying how to ask); with approval required the grant waits for a tenant
// admin of THAT tenant; under it reads work, read-only, each read's AuditEvent naming the grant; it ends by itself
// at its expiry, or when revoked; a grant on one tenant gives nothing in another.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import request, { type Response } from 'supertest';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

type Res = Record<string, any>;

let server: TestServer;
/** Break-glass needs a tenant admin's approval here. */
let a: TestTenant;
/** No approval needed here: a grant is active at once. */
let b: TestTenant;
let admin: ReturnType<typeof request>;
const PLATFORM_USER = `bg-platform-${randomBytes(4).toString('hex')}`;
let platformSub: string;
/** The platform administrator's tokens on each tenant's FHIR API (and the admin API). */
const glass = {} as Record<'a' | 'b', Api & { token: string }>;
/** Each tenant's administrator. */
const tenantAdmin = {} as Record<'a' | 'b', Api & { token: string }>;
const patient = {} as Record<'a' | 'b', string>;
const REASON = 'Ticket 4711: lab results do not show on the chart of one patient';

function api(token: string): Api & { token: string } {
  return Object.assign(authed(server.origin, token), { token });
}

function as(who: { token: string }) {
  const auth = (t: request.Test) => t.set('Authorization', `Bearer ${who.token}`);
  return {
    ask: (slug: string, body: unknown) => auth(admin.post(`/admin/api/tenants/${slug}/break-glass`)).send(body as object),
    list: (slug: string) => auth(admin.get(`/admin/api/tenants/${slug}/break-glass`)),
    act: (slug: string, id: string, step: 'approve' | 'deny' | 'revoke', body: unknown = {}) => auth(admin.post(`/admin/api/tenants/${slug}/break-glass/${id}/${step}`)).send(body as object),
  };
}

/** The stable error code of an OperationOutcome answer, with its status. */
function failure(res: Response): { status: number; code: unknown; issue: unknown } {
  return { status: res.status, code: res.body?.issue?.[0]?.details?.coding?.[0]?.code, issue: res.body?.issue?.[0]?.code };
}

async function readPatient(t: 'a' | 'b'): Promise<Response> {
  return glass[t].get(`/fhir/${(t === 'a' ? a : b).slug}/Patient/${patient[t]}`);
}

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'bg');
  b = await newTenant(server, 'bg');
  admin = request(server.origin);
  await updateTenantSettings(server.deps.db, a.slug, { breakGlassApproval: true });
  await newUser(server, 'platform', PLATFORM_USER, 'platform-admin');
  for (const [k, t] of [['a', a], ['b', b]] as const) {
    const app = await newApp(server, t.slug, { scope: 'openid fhirUser user/*.cruds' });
    await newUser(server, t.slug, 'bg-admin', 'tenant-admin');
    glass[k] = api(await tokenFor(server, t, { clientId: app.clientId, username: PLATFORM_USER, scope: 'user/*.cruds' }));
    tenantAdmin[k] = api(await tokenFor(server, t, { clientId: app.clientId, username: 'bg-admin', scope: 'user/*.cruds' }));
    patient[k] = (await create(t, { resourceType: 'Patient', name: [{ family: `Chart-${k}` }] })).id;
  }
  platformSub = JSON.parse(Buffer.from(glass.a.token.split('.')[1], 'base64url').toString()).sub;
});
afterAll(async () => server?.close());

describe('without a grant', () => {
  it('a platform admin reading clinical data gets 403 BREAK_GLASS_REQUIRED saying how to ask; the standing ceiling still works', async () => {
    const read = await readPatient('a');
    expect(failure(read)).toEqual({ status: 403, code: 'BREAK_GLASS_REQUIRED', issue: 'forbidden' });
    expect(read.body.issue[0].diagnostics).toContain(`POST ${server.origin}/admin/api/tenants/${a.slug}/break-glass`);
    expect(failure(await glass.a.get(`/fhir/${a.slug}/Patient?name=Chart`))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    expect(failure(await glass.a.get(`/fhir/${a.slug}/Observation?subject=Patient/${patient.a}`))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    // tenant administration (the root Organization) needs no grant
    expect((await glass.a.get(`/fhir/${a.slug}/Organization`)).status).toBe(200);
    // a write is refused as a write: no grant would allow it
    const write = await glass.a.post(`/fhir/${a.slug}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient' }));
    expect(failure(write)).toMatchObject({ status: 403, code: 'SCOPE_INSUFFICIENT' });
  });

  it('refuses a request without a real reason or a bounded duration, or from a tenant admin', async () => {
    const bad = async (body: unknown) => failure(await as(glass.a).ask(a.slug, body));
    expect(await bad({ reason: 'support', minutes: 30 })).toEqual({ status: 400, code: 'BREAK_GLASS_INVALID', issue: 'invalid' });
    expect(await bad({ reason: REASON })).toMatchObject({ status: 400, code: 'BREAK_GLASS_INVALID' });
    expect(await bad({ reason: REASON, minutes: server.deps.config.breakGlassMaxMinutes + 1 })).toMatchObject({ status: 400, code: 'BREAK_GLASS_INVALID' });
    expect(await bad({ reason: REASON, minutes: 1.5 })).toMatchObject({ status: 400, code: 'BREAK_GLASS_INVALID' });
    const minutes = await as(glass.a).ask(a.slug, { reason: REASON, minutes: 0 });
    expect(minutes.body.issue[0].expression).toEqual(['minutes']);
    expect(failure(await as(tenantAdmin.a).ask(a.slug, { reason: REASON, minutes: 30 }))).toMatchObject({ status: 403, code: 'ADMIN_FORBIDDEN' });
    expect(failure(await as(glass.a).ask('no-such-tenant', { reason: REASON, minutes: 30 }))).toMatchObject({ status: 404, code: 'TENANT_UNKNOWN' });
    expect((await as(tenantAdmin.a).list(a.slug)).body.grants).toEqual([]);
  });
});

describe('with approval required', () => {
  let grant: Res;

  it('a request stays pending (reads still 403) until a tenant admin of that tenant approves it', async () => {
    const asked = await as(glass.a).ask(a.slug, { reason: REASON, minutes: 30 });
    expect(asked.status).toBe(201);
    grant = asked.body;
    expect(grant).toMatchObject({ tenant: a.slug, state: 'pending', status: 'pending', reason: REASON, minutes: 30, scope: 'user/*.rs', requestedBy: { sub: platformSub, username: PLATFORM_USER }, startsAt: null });
    const read = await readPatient('a');
    expect(failure(read)).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    expect(read.body.issue[0].diagnostics).toContain(`grant ${grant.id}) awaits approval`);
    // a second request while one is open
    expect(failure(await as(glass.a).ask(a.slug, { reason: REASON, minutes: 10 }))).toMatchObject({ status: 409, code: 'BREAK_GLASS_CONFLICT' });

    // neither the platform admin, nor another tenant's admin (through either tenant's path) may approve it
    expect(failure(await as(glass.a).act(a.slug, grant.id, 'approve'))).toMatchObject({ status: 403, code: 'ADMIN_FORBIDDEN' });
    expect(failure(await as(tenantAdmin.b).act(a.slug, grant.id, 'approve'))).toMatchObject({ status: 404, code: 'TENANT_UNKNOWN' });
    expect(failure(await as(tenantAdmin.b).act(b.slug, grant.id, 'approve'))).toMatchObject({ status: 404, code: 'BREAK_GLASS_NOT_FOUND' });
    expect(failure(await as(tenantAdmin.b).list(a.slug))).toMatchObject({ status: 404, code: 'TENANT_UNKNOWN' });
    expect(failure(await readPatient('a'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });

    const approved = await as(tenantAdmin.a).act(a.slug, grant.id, 'approve');
    expect(approved.status).toBe(200);
    grant = approved.body;
    expect(grant).toMatchObject({ state: 'active', status: 'approved', decidedBy: { username: 'bg-admin' } });
    expect(Date.parse(grant.expiresAt) - Date.parse(grant.startsAt)).toBe(30 * 60_000);
    expect(failure(await as(tenantAdmin.a).act(a.slug, grant.id, 'approve'))).toMatchObject({ status: 409, code: 'BREAK_GLASS_CONFLICT' });
  });

  it('under the grant reads and searches work, read-only, and never in another tenant', async () => {
    const read = await readPatient('a');
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe('Chart-a');
    const search = await glass.a.get(`/fhir/${a.slug}/Patient?name=Chart-a`);
    expect(search.status).toBe(200);
    expect(search.body.entry.map((e: Res) => e.resource.id)).toEqual([patient.a]);
    // writes stay refused, and nothing is stored
    const write = await glass.a.put(`/fhir/${a.slug}/Patient/${patient.a}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...read.body, name: [{ family: 'Changed' }] }));
    expect(failure(write)).toMatchObject({ status: 403, code: 'SCOPE_INSUFFICIENT' });
    expect(failure(await glass.a.delete(`/fhir/${a.slug}/Patient/${patient.a}`))).toMatchObject({ status: 403, code: 'SCOPE_INSUFFICIENT' });
    expect((await a.api.get(`/fhir/${a.slug}/Patient/${patient.a}`)).body.meta.versionId).toBe('1');
    // and so does bulk export: the grant is for looking, not for copying the tenant out
    expect(failure(await glass.a.get(`/fhir/${a.slug}/Patient/$export`).set('Prefer', 'respond-async'))).toMatchObject({ status: 403, code: 'SCOPE_INSUFFICIENT' });
    // tenant B: nothing (its own token for B, and A's token is not B's at all)
    expect(failure(await readPatient('b'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    expect((await glass.a.get(`/fhir/${b.slug}/Patient/${patient.b}`)).status).toBe(401);
  });

  it("the tenant's admins see the grant, every step, and every access naming the grant", async () => {
    const listed = await as(tenantAdmin.a).list(a.slug);
    expect(listed.status).toBe(200);
    expect(listed.body.grants.map((g: Res) => [g.id, g.state, g.requestedBy.username, g.reason])).toEqual([[grant.id, 'active', PLATFORM_USER, REASON]]);
    // the platform admin sees their own; tenant B's admin sees none of A's
    expect((await as(glass.b).list(a.slug)).body.grants.map((g: Res) => g.id)).toEqual([grant.id]);
    expect((await as(tenantAdmin.b).list(b.slug)).body.grants).toEqual([]);

    // the accesses: the grant's AuditEvent search, read by the tenant admin through the FHIR API
    const accesses = new URL(listed.body.grants[0].accesses);
    const audit = await tenantAdmin.a.get(`${accesses.pathname}${accesses.search}&subtype=read`);
    expect(audit.status).toBe(200);
    const reads = audit.body.entry.map((e: Res) => e.resource);
    expect(reads.length).toBeGreaterThanOrEqual(1);
    for (const ev of reads) {
      const user = ev.agent.find((x: Res) => x.altId === platformSub);
      expect(user.purposeOfUse).toEqual([{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }] }]);
      expect(user.policy).toEqual([`urn:tenfhir:break-glass:${grant.id}`]);
      expect(user.role).toEqual([{ text: 'platform-admin' }]);
    }
    expect(reads.some((ev: Res) => ev.entity?.some((x: Res) => x.what?.reference?.startsWith(`Patient/${patient.a}`)))).toBe(true);
    // the refused write is in the trail too, under the grant
    const refused = await tenantAdmin.a.get(`/fhir/${a.slug}/AuditEvent?altid=${encodeURIComponent(platformSub)}&subtype=update`);
    expect(refused.body.entry[0].resource).toMatchObject({ outcome: '4', agent: expect.arrayContaining([expect.objectContaining({ policy: [`urn:tenfhir:break-glass:${grant.id}`] })]) });

    // the steps: asked, refused approvals, approved (category admin)
    const steps = await tenantAdmin.a.get(`/fhir/${a.slug}/AuditEvent?subtype=break-glass-request,break-glass-approve&_sort=date`);
    const summary = steps.body.entry.map((e: Res) => [e.resource.subtype[0].code, e.resource.outcome, e.resource.agent[0].altId]);
    expect(summary).toEqual(expect.arrayContaining([
      ['break-glass-request', '0', platformSub],
      ['break-glass-approve', '4', platformSub],
      ['break-glass-approve', '0', expect.stringContaining(`${a.slug}|`)],
    ]));
    // tenant B's trail holds nothing of it: only its own admin's refused try at A's grant id through B's path
    const other = await tenantAdmin.b.get(`/fhir/${b.slug}/AuditEvent?subtype=break-glass-request,break-glass-approve`);
    expect(other.body.entry.map((e: Res) => [e.resource.subtype[0].code, e.resource.outcome, e.resource.agent[0].altId.split('|')[0]])).toEqual([['break-glass-approve', '4', b.slug]]);
  });

  it('ends by itself at its expiry: reads are refused again, the grant shows expired', async () => {
    const realClock = server.deps.clock;
    server.deps.clock = () => new Date(Date.now() + 31 * 60_000);
    try {
      expect(failure(await readPatient('a'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
      expect((await as(tenantAdmin.a).list(a.slug)).body.grants[0]).toMatchObject({ id: grant.id, state: 'expired', status: 'approved' });
      expect(failure(await as(tenantAdmin.a).act(a.slug, grant.id, 'revoke'))).toMatchObject({ status: 409, code: 'BREAK_GLASS_CONFLICT' });
    } finally {
      server.deps.clock = realClock;
    }
  });

  it('a tenant admin may deny a request, and the platform admin may withdraw one', async () => {
    expect(failure(await readPatient('a'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    // the first grant is still active on the real clock: revoke it from the platform side first
    expect((await as(glass.a).act(a.slug, grant.id, 'revoke', { reason: 'done' })).body).toMatchObject({ state: 'revoked', revokeReason: 'done', decidedBy: { username: 'bg-admin' } });
    const denied = await as(glass.a).ask(a.slug, { reason: REASON, minutes: 15 });
    expect((await as(tenantAdmin.a).act(a.slug, denied.body.id, 'deny')).body).toMatchObject({ state: 'denied', decidedBy: { username: 'bg-admin' } });
    expect(failure(await readPatient('a'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    const withdrawn = await as(glass.a).ask(a.slug, { reason: REASON, minutes: 15 });
    expect((await as(glass.a).act(a.slug, withdrawn.body.id, 'revoke')).body).toMatchObject({ state: 'revoked', revokedBy: { username: PLATFORM_USER } });
    expect(failure(await as(tenantAdmin.a).act(a.slug, withdrawn.body.id, 'approve'))).toMatchObject({ status: 409, code: 'BREAK_GLASS_CONFLICT' });
    expect((await as(tenantAdmin.a).list(a.slug)).body.grants.map((g: Res) => g.state)).toEqual(['revoked', 'denied', 'revoked']);
  });
});

describe('without approval required', () => {
  it('a grant is active at once and ends when a tenant admin revokes it', async () => {
    const asked = await as(glass.b).ask(b.slug, { reason: REASON, minutes: 60 });
    expect(asked.status).toBe(201);
    expect(asked.body).toMatchObject({ state: 'active', status: 'approved', decidedBy: null });
    expect((await readPatient('b')).status).toBe(200);
    // nothing in tenant A from it
    expect(failure(await readPatient('a'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    const revoked = await as(tenantAdmin.b).act(b.slug, asked.body.id, 'revoke', { reason: 'not needed any more' });
    expect(revoked.body).toMatchObject({ state: 'revoked', revokedBy: { username: 'bg-admin' } });
    expect(Date.parse(revoked.body.expiresAt)).toBeLessThanOrEqual(Date.now());
    expect(failure(await readPatient('b'))).toMatchObject({ status: 403, code: 'BREAK_GLASS_REQUIRED' });
    const trail = await tenantAdmin.b.get(`/fhir/${b.slug}/AuditEvent?subtype=break-glass-revoke`);
    expect(trail.body.entry[0].resource.entity[0].detail).toEqual(expect.arrayContaining([{ type: 'grant', valueString: asked.body.id }, { type: 'reason', valueString: 'not needed any more' }]));
  });
});
