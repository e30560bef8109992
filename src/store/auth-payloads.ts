// oidc-provider's artifacts (sessions, interactions, codes, grants, refresh tokens, replay records, ...) and the
// registered OAuth clients, as the provider's storage adapter needs them. Platform tables: see migrations/0004.
// At rest (issue 8, migrations/0005): an artifact's id IS its bearer value (the refresh token, the code, the session
// cookie), so rows are keyed by its SHA-256 and the payload's copy of it (`jti`) is dropped; client secrets and the
// session cookie an Interaction remembers are sealed (src/store/auth-sealing.ts).
import { createHash } from 'node:crypto';
import type { Db } from '../platform/db.js';
import { sealerOf, type Sealer } from './auth-sealing.js';

export type Payload = Record<string, unknown>;

/** The stored key of an artifact id (sha256, hex): what the table holds instead of the bearer value. */
export function payloadKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

/**
 * Values inside a payload that are bearer values of another artifact: an Interaction keeps its session's id
 * (`session.cookie`) and its own id inside `returnTo`. They are sealed, the rest of the payload stays readable.
 */
function sealInteraction(s: Sealer, key: string, payload: Payload, how: 'seal' | 'open'): Payload {
  const f = how === 'seal' ? (v: string, c: string) => s.seal(v, c) : (v: string, c: string) => s.open(v, c);
  const out = { ...payload };
  const session = out.session as Payload | undefined;
  if (session && typeof session.cookie === 'string') out.session = { ...session, cookie: f(session.cookie, `oidc_payload.session:${key}`) };
  if (typeof out.returnTo === 'string') out.returnTo = f(out.returnTo, `oidc_payload.returnTo:${key}`);
  return out;
}

/** What is written for `payload` stored under `id`: no `jti` equal to the id, bearer values inside sealed. */
function toStored(db: Db, model: string, key: string, id: string, payload: Payload): Payload {
  const { jti, ...rest } = payload;
  const kept = jti === id ? rest : payload;
  return model === 'Interaction' ? sealInteraction(sealerOf(db), key, kept, 'seal') : kept;
}

export async function upsertPayload(db: Db, model: string, id: string, payload: Payload, expiresIn: number | undefined): Promise<void> {
  const key = payloadKey(id);
  const stored = toStored(db, model, key, id, payload);
  // no expiry (NULL $7): make_interval is strict, so the sum is NULL too; no CASE, which Citus refuses around now()
  await db.platform((q) =>
    q.query(
      `INSERT INTO oidc_payload (model, id, payload, grant_id, uid, user_code, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::int))
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
         user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at`,
      [model, key, stored, payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresIn ?? null],
    ),
  );
}

type Row = { model: string; id: string; payload: Payload; consumed_at: Date | null };

/** The payload as oidc-provider wrote it; `id` (when the caller knows it) is put back as its `jti`. */
function live(db: Db, row: Row | undefined, id?: string): Payload | undefined {
  if (!row) return undefined;
  let payload = row.model === 'Interaction' ? sealInteraction(sealerOf(db), row.id, row.payload, 'open') : row.payload;
  if (id !== undefined && payload.jti === undefined) payload = { ...payload, jti: id };
  return row.consumed_at ? { ...payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : payload;
}

const NOT_EXPIRED = '(expires_at IS NULL OR expires_at > now())';

export async function findPayload(db: Db, model: string, id: string): Promise<Payload | undefined> {
  const r = await db.platform((q) => q.query<Row>(`SELECT model, id, payload, consumed_at FROM oidc_payload WHERE model = $1 AND id = $2 AND ${NOT_EXPIRED}`, [model, payloadKey(id)]));
  return live(db, r.rows[0], id);
}

/** By a column kept in clear (a Session's uid): the artifact's own id is not known here, so no `jti` comes back. */
export async function findPayloadBy(db: Db, model: string, column: 'uid' | 'user_code', value: string): Promise<Payload | undefined> {
  const r = await db.platform((q) => q.query<Row>(`SELECT model, id, payload, consumed_at FROM oidc_payload WHERE model = $1 AND ${column} = $2 AND ${NOT_EXPIRED} LIMIT 1`, [model, value]));
  return live(db, r.rows[0]);
}

export async function consumePayload(db: Db, model: string, id: string): Promise<void> {
  await db.platform((q) => q.query('UPDATE oidc_payload SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL', [model, payloadKey(id)]));
}

export async function destroyPayload(db: Db, model: string, id: string): Promise<void> {
  await db.platform((q) => q.query('DELETE FROM oidc_payload WHERE model = $1 AND id = $2', [model, payloadKey(id)]));
}

export async function revokeGrant(db: Db, grantId: string): Promise<void> {
  await db.platform((q) => q.query('DELETE FROM oidc_payload WHERE grant_id = $1', [grantId]));
}

/** Removes artifacts that expired more than an hour ago (src/auth/purge.ts runs it periodically). */
export async function purgeExpiredPayloads(db: Db): Promise<number> {
  const r = await db.platform((q) => q.query('DELETE FROM oidc_payload WHERE expires_at < now() - interval \'1 hour\''));
  return r.rowCount ?? 0;
}

// --- OAuth clients -------------------------------------------------------------------------------------------

export interface StoredClient {
  clientId: string;
  tenantId: string;
  metadata: Payload;
}

type ClientRow = { client_id: string; tenant_id: string; metadata: Payload };

/**
 * client_secret is sealed in the stored metadata and opened on every read: oidc-provider compares the plaintext (and
 * would use it as an HMAC key), so it cannot be a one-way hash.
 */
const secretContext = (clientId: string) => `oauth_client.client_secret:${clientId}`;

function toClient(db: Db, r: ClientRow): StoredClient {
  const secret = r.metadata.client_secret;
  const metadata = typeof secret === 'string' ? { ...r.metadata, client_secret: sealerOf(db).open(secret, secretContext(r.client_id)) } : r.metadata;
  return { clientId: r.client_id, tenantId: r.tenant_id, metadata };
}

function sealedMetadata(db: Db, c: StoredClient): Payload {
  const secret = c.metadata.client_secret;
  return typeof secret === 'string' ? { ...c.metadata, client_secret: sealerOf(db).seal(secret, secretContext(c.clientId)) } : c.metadata;
}

export async function findClient(db: Db, clientId: string): Promise<StoredClient | undefined> {
  const r = await db.platform((q) => q.query<ClientRow>('SELECT client_id, tenant_id, metadata FROM oauth_client WHERE client_id = $1', [clientId]));
  return r.rows[0] ? toClient(db, r.rows[0]) : undefined;
}

export async function upsertClient(db: Db, c: StoredClient): Promise<void> {
  await db.platform((q) =>
    q.query(
      // the time goes in VALUES: Citus refuses now() in DO UPDATE SET, on reference tables too (issue 16)
      `INSERT INTO oauth_client (client_id, tenant_id, metadata, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (client_id) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at WHERE oauth_client.tenant_id = EXCLUDED.tenant_id`,
      [c.clientId, c.tenantId, sealedMetadata(db, c)],
    ),
  );
}

export async function deleteClient(db: Db, clientId: string): Promise<boolean> {
  const r = await db.platform((q) => q.query('DELETE FROM oauth_client WHERE client_id = $1', [clientId]));
  return (r.rowCount ?? 0) > 0;
}

export async function listClients(db: Db, tenantId: string): Promise<StoredClient[]> {
  const r = await db.platform((q) => q.query<ClientRow>('SELECT client_id, tenant_id, metadata FROM oauth_client WHERE tenant_id = $1 ORDER BY client_id', [tenantId]));
  return r.rows.map((row) => toClient(db, row));
}

/** Seals client secrets still stored in clear (clients written before encryption at rest). Returns how many. */
export async function sealStoredClientSecrets(db: Db): Promise<number> {
  const r = await db.platform((q) => q.query<ClientRow>("SELECT client_id, tenant_id, metadata FROM oauth_client WHERE jsonb_typeof(metadata->'client_secret') = 'string'"));
  let sealed = 0;
  for (const row of r.rows.filter((x) => !sealerOf(db).isSealed(x.metadata.client_secret as string))) {
    const c = { clientId: row.client_id, tenantId: row.tenant_id, metadata: row.metadata };
    const u = await db.platform((q) =>
      q.query('UPDATE oauth_client SET metadata = $2 WHERE client_id = $1 AND metadata = $3', [c.clientId, sealedMetadata(db, c), row.metadata]),
    );
    sealed += u.rowCount ?? 0;
  }
  return sealed;
}

/** A live grant of one account, with the SMART context stored beside it (the "connected apps" page). */
export interface AccountGrant {
  clientId: string;
  smart: Payload;
  expiresAt: Date | null;
}

/** The live grants of `accountId` that carry a SMART context, newest first. */
export async function listGrantsOf(db: Db, accountId: string): Promise<AccountGrant[]> {
  const r = await db.platform((q) =>
    q.query<{ client_id: string; smart: Payload; expires_at: Date | null }>(
      `SELECT g.payload->>'clientId' AS client_id, s.payload AS smart, g.expires_at
         FROM oidc_payload g JOIN oidc_payload s ON s.model = 'SmartGrant' AND s.id = g.id
        WHERE g.model = 'Grant' AND g.payload->>'accountId' = $1 AND (g.expires_at IS NULL OR g.expires_at > now())
        ORDER BY (g.payload->>'iat')::bigint DESC NULLS LAST LIMIT 200`,
      [accountId],
    ),
  );
  return r.rows.map((x) => ({ clientId: x.client_id, smart: x.smart, expiresAt: x.expires_at }));
}
