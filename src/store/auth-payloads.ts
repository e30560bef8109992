// oidc-provider's artifacts (sessions, interactions, codes, grants, refresh tokens, replay records, ...) and the
// registered OAuth clients, as the provider's storage adapter needs them. Platform tables: see migrations/0004.
import type { Db } from '../platform/db.js';

export type Payload = Record<string, unknown>;

export async function upsertPayload(db: Db, model: string, id: string, payload: Payload, expiresIn: number | undefined): Promise<void> {
  await db.platform((q) =>
    q.query(
      `INSERT INTO oidc_payload (model, id, payload, grant_id, uid, user_code, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7::int IS NULL THEN NULL ELSE now() + make_interval(secs => $7::int) END)
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
         user_code = EXCLUDED.user_code, expires_at = EXCLUDED.expires_at`,
      [model, id, payload, payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresIn ?? null],
    ),
  );
}

type Row = { payload: Payload; consumed_at: Date | null };

function live(row: Row | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
}

const NOT_EXPIRED = '(expires_at IS NULL OR expires_at > now())';

export async function findPayload(db: Db, model: string, id: string): Promise<Payload | undefined> {
  const r = await db.platform((q) => q.query<Row>(`SELECT payload, consumed_at FROM oidc_payload WHERE model = $1 AND id = $2 AND ${NOT_EXPIRED}`, [model, id]));
  return live(r.rows[0]);
}

export async function findPayloadBy(db: Db, model: string, column: 'uid' | 'user_code', value: string): Promise<Payload | undefined> {
  const r = await db.platform((q) => q.query<Row>(`SELECT payload, consumed_at FROM oidc_payload WHERE model = $1 AND ${column} = $2 AND ${NOT_EXPIRED} LIMIT 1`, [model, value]));
  return live(r.rows[0]);
}

export async function consumePayload(db: Db, model: string, id: string): Promise<void> {
  await db.platform((q) => q.query('UPDATE oidc_payload SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL', [model, id]));
}

export async function destroyPayload(db: Db, model: string, id: string): Promise<void> {
  await db.platform((q) => q.query('DELETE FROM oidc_payload WHERE model = $1 AND id = $2', [model, id]));
}

export async function revokeGrant(db: Db, grantId: string): Promise<void> {
  await db.platform((q) => q.query('DELETE FROM oidc_payload WHERE grant_id = $1', [grantId]));
}

/** Removes expired artifacts (called periodically). */
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
const toClient = (r: ClientRow): StoredClient => ({ clientId: r.client_id, tenantId: r.tenant_id, metadata: r.metadata });

export async function findClient(db: Db, clientId: string): Promise<StoredClient | undefined> {
  const r = await db.platform((q) => q.query<ClientRow>('SELECT client_id, tenant_id, metadata FROM oauth_client WHERE client_id = $1', [clientId]));
  return r.rows[0] ? toClient(r.rows[0]) : undefined;
}

export async function upsertClient(db: Db, c: StoredClient): Promise<void> {
  await db.platform((q) =>
    q.query(
      `INSERT INTO oauth_client (client_id, tenant_id, metadata) VALUES ($1, $2, $3)
       ON CONFLICT (client_id) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now() WHERE oauth_client.tenant_id = EXCLUDED.tenant_id`,
      [c.clientId, c.tenantId, c.metadata],
    ),
  );
}

export async function deleteClient(db: Db, clientId: string): Promise<boolean> {
  const r = await db.platform((q) => q.query('DELETE FROM oauth_client WHERE client_id = $1', [clientId]));
  return (r.rowCount ?? 0) > 0;
}

export async function listClients(db: Db, tenantId: string): Promise<StoredClient[]> {
  const r = await db.platform((q) => q.query<ClientRow>('SELECT client_id, tenant_id, metadata FROM oauth_client WHERE tenant_id = $1 ORDER BY client_id', [tenantId]));
  return r.rows.map(toClient);
}
