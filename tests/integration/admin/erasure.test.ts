// Erasure of a terminated tenant (issue 11, src/admin/erase.ts): a tenant with rows in every table of the schema
// (enumerated from the catalog, so a table added later is covered too), terminated and erased by its job, leaves zero
// rows with its tenant id anywhere, no authorization artifact, no export file, and one platform-level record; another
// tenant's rows are byte-identical before and after.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { eraseTenant, ERASURE_QUEUE, scheduleErasure, startErasureWorker } from '../../../src/admin/erase.js';
import type { Queryable } from '../../../src/platform/db.js';
import { claimSignInAttempt } from '../../../src/store/auth-signin-counters.js';
import { insertLaunch, insertRegistrationToken } from '../../../src/store/auth-users.js';
import { erasureRecords, tenantTables } from '../../../src/store/erase.js';
import { kickOff, waitForManifest } from '../export/helpers.js';
import { ASSERTION_TYPE, Browser, clientAssertion, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { create, FHIR_JSON, newTenant, startServer, testBackendKey, type TestServer, type TestTenant } from '../../helpers/server.js';
import { criteriaSubscription, subscribe, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, waitFor, type Receiver } from '../../helpers/webhook.js';

let server: TestServer;
let receiver: Receiver;
let a: TestTenant;
let b: TestTenant;
/** What tenant a had that lives outside its tenant_id rows: its clients and its refresh token. */
const outside = { clients: [] as string[], refreshToken: '', appClient: '' };
let patientB: Record<string, any>;

/** Columns of filler rows that must meet a CHECK constraint (tables no flow of this test fills yet). */
const FILLER_VALUES: Record<string, Record<string, unknown>> = {
  break_glass_grant: { status: 'pending', minutes: 30 },
};

/** Runs `fn` on the admin connection bound to `slug` (FORCE ROW LEVEL SECURITY binds the table owner too). */
function asOwner<T>(slug: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return server.deps.db.admin().tx(async (q) => {
    await q.query("SELECT set_config('app.tenant_id', $1, true)", [slug]);
    return fn(q);
  });
}

/** Rows of `slug` per tenant table (every table with a tenant_id column). */
async function rowCounts(slug: string): Promise<Record<string, number>> {
  return asOwner(slug, async (q) => {
    const out: Record<string, number> = {};
    for (const t of await tenantTables(q)) out[t] = Number((await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t} WHERE tenant_id = $1`, [slug])).rows[0].n);
    return out;
  });
}

/** A digest of every row of `slug` per tenant table, in a stable order: equal digests, byte-identical rows. */
async function digests(slug: string): Promise<Record<string, string>> {
  return asOwner(slug, async (q) => {
    const out: Record<string, string> = {};
    for (const t of await tenantTables(q)) {
      const r = await q.query<{ d: string | null }>(`SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) AS d FROM ${t} x WHERE tenant_id = $1`, [slug]);
      out[t] = r.rows[0].d ?? '';
    }
    return out;
  });
}

/** Adds one synthetic row (NOT NULL columns only) to each tenant table the real flows left empty for `slug`. */
async function fillEmptyTables(slug: string): Promise<string[]> {
  const empty = Object.entries(await rowCounts(slug)).filter(([, n]) => n === 0).map(([t]) => t);
  await asOwner(slug, async (q) => {
    for (const table of empty) {
      const cols = await q.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'`,
        [table],
      );
      const values = cols.rows.map((c) => FILLER_VALUES[table]?.[c.column_name] ?? (c.column_name === 'tenant_id' ? slug : fillerValue(c.data_type)));
      const names = cols.rows.map((c) => c.column_name);
      await q.query(`INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`, values);
    }
  });
  return empty;
}

function fillerValue(type: string): unknown {
  if (/int|numeric|double|real/.test(type)) return 1;
  if (type === 'boolean') return false;
  if (type.startsWith('timestamp') || type === 'date') return new Date();
  if (type === 'jsonb' || type === 'json') return '{}';
  if (type === 'ARRAY') return '{}';
  if (type === 'tsvector') return '';
  return `filler-${randomBytes(4).toString('hex')}`;
}

/** Everything a tenant can hold, through the real API where there is one. */
async function populate(t: TestTenant): Promise<{ clients: string[]; refreshToken: string; appClient: string; patient: Record<string, any> }> {
  const patient = await create(t, { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: randomUUID() }], name: [{ family: 'Erasable', given: ['Ada'] }], birthDate: '1970-01-01', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada</div>' } });
  const updated = await t.api.put(`${t.path}/Patient/${patient.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient, gender: 'female' }));
  expect(updated.status).toBe(200);
  await create(t, {
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, subject: { reference: `Patient/${patient.id}` },
    effectiveDateTime: '2024-05-01T10:00:00Z', valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  });
  await create(t, { resourceType: 'Questionnaire', status: 'active', url: `http://example.org/q/${t.slug}` });
  // users, an app signed in to with a refresh token, a backend's client_credentials token, a launch, a registration token
  await newUser(server, t.slug, 'nurse', 'practitioner');
  const app = await newApp(server, t.slug, { scope: 'openid fhirUser offline_access user/*.rs' });
  const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope: 'openid offline_access user/Patient.rs', username: 'nurse' });
  const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
  expect(tok.status).toBe(200);
  const cc = await tokenRequest(server.origin, {
    grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE,
    client_assertion: clientAssertion(t.clientId, `${server.origin}/auth/token`, testBackendKey().privateKey),
  });
  expect(cc.status).toBe(200);
  await insertLaunch(server.deps.db, { tenantId: t.slug, id: randomUUID(), clientId: app.clientId, patient: patient.id, encounter: null, createdBy: 'test', expiresAt: new Date(Date.now() + 3600_000) });
  await insertRegistrationToken(server.deps.db, t.slug, randomBytes(16).toString('hex'), 'user/*.rs', 'test', new Date(Date.now() + 3600_000));
  await claimSignInAttempt(server.deps.db, t.slug, randomUUID(), '192.0.2.7', { perAddress: 5, perAccount: 50, minutes: 15 });
  // a subscription that delivered (state, events, delivery log)
  const sub = await subscribe(t, criteriaSubscription('Observation?status=final', receiver.url, FHIR_JSON));
  await waitStatus(t, sub.id, 'active');
  const obs = await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'K' }, subject: { reference: `Patient/${patient.id}` } });
  await waitFor(() => receiver.received.some((r) => r.body.includes(obs.id)), 15_000, 'the notification');
  // an export with files on disk
  const status = await kickOff(t.api, `${t.path}/$export?_type=Patient,Observation`);
  await waitForManifest(t.api, status);
  return { clients: [t.clientId, app.clientId], refreshToken: tok.body.refresh_token, appClient: app.clientId, patient: updated.body };
}

beforeAll(async () => {
  receiver = await startReceiver();
  server = await startServer({}, { workers: true });
  a = await newTenant(server, 'erase-a');
  b = await newTenant(server, 'erase-b');
  const filled = await populate(a);
  Object.assign(outside, { clients: filled.clients, refreshToken: filled.refreshToken, appClient: filled.appClient });
  patientB = (await populate(b)).patient;
  // with the dispatcher stopped, a write's change event stays in the outbox
  await server.workers!.stop();
  for (const t of [a, b]) await create(t, { resourceType: 'Patient', name: [{ family: 'Outboxed' }] });
  await server.deps.audit.settle();
  for (const t of [a, b]) await fillEmptyTables(t.slug);
}, 120_000);
afterAll(async () => {
  await server.close();
  await receiver.close();
});

describe('erasure of a terminated tenant', () => {
  it('removes every row of the tenant in every table, its authorization artifacts and files; the other tenant is untouched', async () => {
    const before = await rowCounts(a.slug);
    expect(Object.entries(before).filter(([, n]) => n === 0)).toEqual([]);
    const exportsDir = join(server.deps.config.dataDir, 'exports', a.slug);
    expect(existsSync(exportsDir)).toBe(true);
    const otherBefore = await digests(b.slug);
    const otherPayloadsBefore = await payloadsOf(b.slug, [b.clientId]);
    expect(otherPayloadsBefore).toBeGreaterThan(0);

    // terminated with the grace period over (LIFE's terminateTenant sets the same columns), then its job runs
    await server.deps.db.admin().query("UPDATE tenant SET status = 'terminated', terminate_after = now() - interval '1 second' WHERE id = $1", [a.slug]);
    await scheduleErasure(server.deps, a.slug, new Date(Date.now() - 1000), 'platform|ops');
    const [record] = await waitFor(async () => {
      const r = await erasureRecords(server.deps.db, a.slug);
      return r.length ? r : undefined;
    }, 30_000, 'the erasure record');

    expect(await rowCounts(a.slug)).toEqual(Object.fromEntries(Object.keys(before).map((t) => [t, 0])));
    expect((await server.deps.db.admin().query('SELECT 1 FROM tenant WHERE id = $1', [a.slug])).rowCount).toBe(0);
    expect(await payloadsOf(a.slug, outside.clients)).toBe(0);
    expect(existsSync(exportsDir)).toBe(false);
    // the record: who, when, rows per table (every table counted, as many as there were)
    expect(record).toMatchObject({ erasedTenant: a.slug, requestedBy: 'platform|ops', filesRemoved: expect.any(Number) });
    expect(record.filesRemoved).toBeGreaterThan(0);
    for (const [t, n] of Object.entries(before)) expect([t, record.rowCounts[t]]).toEqual([t, n]);
    expect(record.rowCounts.tenant).toBe(1);
    expect(record.rowCounts.oidc_payload).toBeGreaterThan(0);

    // the erased tenant's API, token and refresh token are gone
    expect((await a.api.get(`${a.path}/Patient`)).status).toBe(404);
    const refresh = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: outside.refreshToken, client_id: outside.appClient });
    // (its client is gone with it: the token endpoint no longer knows the app)
    expect([refresh.status, refresh.body.error]).toEqual([401, 'invalid_client']);

    // the other tenant: every row byte-identical, its artifacts kept, its API as before
    expect(await digests(b.slug)).toEqual(otherBefore);
    expect(await payloadsOf(b.slug, [b.clientId])).toBe(otherPayloadsBefore);
    const read = await b.api.get(`${b.path}/Patient/${patientB.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(patientB);
  });

  it('is idempotent: erasing again returns the first record and adds none', async () => {
    const first = await erasureRecords(server.deps.db, a.slug);
    const again = await eraseTenant(server.deps, a.slug, 'platform|ops');
    expect(again).toMatchObject({ alreadyErased: true, rowCounts: first[0].rowCounts, erasedAt: first[0].erasedAt });
    expect(await erasureRecords(server.deps.db, a.slug)).toEqual(first);
  });

  it('refuses a tenant that is not terminated, the platform tenant and an unknown one, touching nothing', async () => {
    // records of earlier requests still in the audit spool would land in between (an erasure settles the spool first)
    await server.deps.audit.settle();
    const before = await digests(b.slug);
    await expect(eraseTenant(server.deps, b.slug, 'platform|ops')).rejects.toMatchObject({ kind: 'conflict', code: 'TENANT_NOT_TERMINATED' });
    await expect(eraseTenant(server.deps, 'platform', 'platform|ops')).rejects.toMatchObject({ kind: 'forbidden', code: 'TENANT_PLATFORM_PROTECTED' });
    await expect(eraseTenant(server.deps, `never-${randomBytes(4).toString('hex')}`, 'platform|ops')).rejects.toMatchObject({ kind: 'not-found', code: 'TENANT_UNKNOWN' });
    expect(await digests(b.slug)).toEqual(before);
  });

  it('waits for the grace period: a job scheduled for later is added once and erases nothing before its time', async () => {
    const c = await newTenant(server, 'erase-later');
    await create(c, { resourceType: 'Patient', name: [{ family: 'Later' }] });
    const later = new Date(Date.now() + 3600_000);
    await server.deps.db.admin().query("UPDATE tenant SET status = 'terminated', terminate_after = $2 WHERE id = $1", [c.slug, later]);
    await scheduleErasure(server.deps, c.slug, later, 'platform|ops');
    const job = await server.deps.queues.get(ERASURE_QUEUE, c.slug);
    expect(job).toMatchObject({ state: 'delayed', data: { tenant: c.slug, at: later.toISOString() } });
    await scheduleErasure(server.deps, c.slug, new Date(), 'someone-else');
    expect(await server.deps.queues.get(ERASURE_QUEUE, c.slug)).toMatchObject({ state: 'delayed', data: { by: 'platform|ops' }, timestamp: job!.timestamp });
    expect((await rowCounts(c.slug)).resource).toBeGreaterThan(0);
    expect(await erasureRecords(server.deps.db, c.slug)).toEqual([]);
  });

  it('at start, every terminated tenant whose grace period has an end is scheduled again (the in-process queue forgets)', async () => {
    const d = await newTenant(server, 'erase-restart');
    await create(d, { resourceType: 'Patient', name: [{ family: 'Restart' }] });
    await server.deps.db.admin().query("UPDATE tenant SET status = 'terminated', terminate_after = now() - interval '1 second' WHERE id = $1", [d.slug]);
    await startErasureWorker(server.deps, { tenants: (s) => s === d.slug });
    await waitFor(async () => (await erasureRecords(server.deps.db, d.slug)).length > 0, 30_000, 'the erasure record');
    expect(await rowCounts(d.slug)).toMatchObject({ resource: 0, app_user: 0, oauth_client: 0 });
    expect((await erasureRecords(server.deps.db, d.slug))[0]).toMatchObject({ requestedBy: 'tenfhir-server' });
  });
});

/** oidc_payload rows of the tenant's accounts, clients and grants (the erasure's own criteria, asserted independently). */
async function payloadsOf(slug: string, clients: string[]): Promise<number> {
  const r = await server.deps.db.admin().query<{ n: string }>(
    `SELECT count(*)::text AS n FROM oidc_payload
      WHERE payload::text LIKE '%' || $1 || '|%' OR payload->>'tenant' = $1 OR payload->>'clientId' = ANY($2)
         OR payload->'params'->>'client_id' = ANY($2) OR payload->>'iss' = ANY($2)`,
    [slug, clients],
  );
  return Number(r.rows[0].n);
}
