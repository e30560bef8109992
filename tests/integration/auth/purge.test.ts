// Expired authorization records are purged (issue 8): oidc-provider artifacts, launch contexts, registration tokens
// and sign-in counters, the tenant tables tenant by tenant (they are under FORCE ROW LEVEL SECURITY).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { purgeExpiredAuthRecords } from '../../../src/auth/purge.js';
import { createLogger } from '../../../src/platform/log.js';
import { payloadKey, upsertPayload } from '../../../src/store/auth-payloads.js';
import { claimSignInAttempt } from '../../../src/store/auth-signin-counters.js';
import { insertLaunch, insertRegistrationToken } from '../../../src/store/auth-users.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'purge');
});
afterAll(async () => server.close());

const id = () => randomBytes(12).toString('base64url');
const HOUR = 3_600_000;

/** Rows of a tenant table whose key column is one of `keys`, as the app role bound to the tenant sees them. */
async function present(table: string, column: string, keys: string[]): Promise<string[]> {
  const r = await server.deps.db.withTenant(t.slug, (q) => q.query<{ k: string }>(`SELECT ${column} AS k FROM ${table} WHERE tenant_id = $1 AND ${column} = ANY($2)`, [t.slug, keys]));
  return r.rows.map((x) => x.k).sort();
}

describe('purging expired authorization records', () => {
  it('removes what expired and keeps what is live', async () => {
    const db = server.deps.db;
    // oidc-provider artifacts: one expired two hours ago, one live
    const [oldSession, liveSession] = [id(), id()];
    await upsertPayload(db, 'Session', oldSession, { accountId: 'x|y' }, -2 * 3600);
    await upsertPayload(db, 'Session', liveSession, { accountId: 'x|y' }, 3600);
    // launch contexts: one expired, one live
    const [oldLaunch, liveLaunch] = [id(), id()];
    for (const [l, at] of [[oldLaunch, -60_000], [liveLaunch, 300_000]] as const) {
      await insertLaunch(db, { tenantId: t.slug, id: l, clientId: null, patient: 'p1', encounter: null, createdBy: 'test', expiresAt: new Date(Date.now() + at) });
    }
    // registration tokens: expired two days ago, used two days ago, used just now, live
    const [expired, usedLongAgo, usedNow, live] = [id(), id(), id(), id()];
    await insertRegistrationToken(db, t.slug, expired, 'user/*.rs', 'test', new Date(Date.now() - 48 * HOUR));
    for (const h of [usedLongAgo, usedNow, live]) await insertRegistrationToken(db, t.slug, h, 'user/*.rs', 'test', new Date(Date.now() + 24 * HOUR));
    await db.withTenant(t.slug, (q) => q.query("UPDATE registration_token SET used_at = now() - interval '2 days' WHERE tenant_id = $1 AND token_hash = $2", [t.slug, usedLongAgo]));
    await db.withTenant(t.slug, (q) => q.query('UPDATE registration_token SET used_at = now() WHERE tenant_id = $1 AND token_hash = $2', [t.slug, usedNow]));
    // sign-in counters: one user's window has passed, another's is current
    const [oldUser, liveUser] = [randomUUID(), randomUUID()];
    const limits = { perAddress: 5, perAccount: 50, minutes: 15 };
    await claimSignInAttempt(db, t.slug, oldUser, '192.0.2.1', limits);
    await claimSignInAttempt(db, t.slug, liveUser, '192.0.2.1', limits);
    await db.withTenant(t.slug, (q) => q.query("UPDATE signin_counter SET expires_at = now() - interval '1 minute' WHERE tenant_id = $1 AND user_id = $2", [t.slug, oldUser]));

    const removed = await purgeExpiredAuthRecords(db, createLogger('silent'));
    expect(removed).toBeGreaterThanOrEqual(6);

    const payloads = await db.admin().query<{ id: string }>('SELECT id FROM oidc_payload WHERE id = ANY($1)', [[payloadKey(oldSession), payloadKey(liveSession)]]);
    expect(payloads.rows.map((r) => r.id)).toEqual([payloadKey(liveSession)]);
    expect(await present('launch_context', 'id', [oldLaunch, liveLaunch])).toEqual([liveLaunch]);
    expect(await present('registration_token', 'token_hash', [expired, usedLongAgo, usedNow, live])).toEqual([usedNow, live].sort());
    const counters = await db.withTenant(t.slug, (q) => q.query<{ user_id: string; address: string }>('SELECT user_id, address FROM signin_counter WHERE tenant_id = $1 AND user_id = ANY($2)', [t.slug, [oldUser, liveUser]]));
    expect(counters.rows.sort((x, y) => (x.address < y.address ? -1 : 1))).toEqual([
      { user_id: liveUser, address: '*' },
      { user_id: liveUser, address: '192.0.2.1' },
    ]);
  });
});
