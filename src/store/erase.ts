// The SQL of tenant erasure (issue 11, src/admin/erase.ts): every row of one terminated tenant, in every table that
// has a tenant_id column (found in the catalog when the erasure runs, so a table added later is never forgotten),
// the authorization server's platform rows that belong to it, and the tenant row, in ONE transaction on the admin
// connection, which also writes the platform-level record of the erasure (migrations/0015_erasure.sql).
import type { Db, Queryable } from '../platform/db.js';

/** What the erasure transaction found and did. */
export type ErasureOutcome =
  | { state: 'erased'; rowCounts: Record<string, number> }
  /** No tenant row (never existed, or erased before). */
  | { state: 'missing' }
  /** The tenant exists but is not terminated: nothing was touched. */
  | { state: 'refused'; status: string };

export interface ErasureRecord {
  id: string;
  erasedTenant: string;
  requestedBy: string;
  requestedAt: string;
  erasedAt: string;
  rowCounts: Record<string, number>;
  filesRemoved: number;
}

/**
 * Every table of the current schema with a tenant_id column, a table before any table it references by a foreign
 * key (its rows go first), otherwise by name.
 */
export async function tenantTables(q: Queryable): Promise<string[]> {
  const tables = await q.query<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.column_name = 'tenant_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name`,
  );
  const edges = await q.query<{ child: string; parent: string }>(
    `SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
      WHERE k.contype = 'f' AND ch.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`,
  );
  return referencingFirst(tables.rows.map((r) => r.table_name), edges.rows);
}

/** Orders `tables` so that every table comes before the tables it references (depth-first; self-references ignored). */
function referencingFirst(tables: string[], edges: { child: string; parent: string }[]): string[] {
  const out: string[] = [];
  const placed = new Set<string>();
  const place = (t: string, path: Set<string>): void => {
    if (placed.has(t) || path.has(t)) return;
    path.add(t);
    for (const e of edges) if (e.parent === t && e.child !== t && tables.includes(e.child)) place(e.child, path);
    placed.add(t);
    out.push(t);
  };
  for (const t of tables) place(t, new Set());
  return out;
}

/**
 * oidc-provider's artifacts of the tenant (migrations/0004: keyed by opaque ids, not by tenant): everything of its
 * users' accounts ("tenant|user", src/auth/claims.ts accountId), of its clients (codes, refresh tokens, grants,
 * interactions, registration tokens, client-assertion replay records), and the SMART contexts of grants on it with
 * the tokens of those grants.
 */
const DELETE_PAYLOADS = `
  WITH c AS (SELECT client_id FROM oauth_client WHERE tenant_id = $1),
       g AS (SELECT grant_id FROM oidc_payload WHERE model = 'SmartGrant' AND payload->>'tenant' = $1 AND grant_id IS NOT NULL)
  DELETE FROM oidc_payload p
   WHERE left(p.payload->>'accountId', $3) = $2
      OR left(p.payload->'session'->>'accountId', $3) = $2
      OR left(p.payload->'result'->'login'->>'accountId', $3) = $2
      OR p.payload->>'clientId' IN (SELECT client_id FROM c)
      OR p.payload->'params'->>'client_id' IN (SELECT client_id FROM c)
      OR (p.model = 'ReplayDetection' AND p.payload->>'iss' IN (SELECT client_id FROM c))
      OR (p.model = 'SmartGrant' AND p.payload->>'tenant' = $1)
      OR p.grant_id IN (SELECT grant_id FROM g)`;

/**
 * Erases tenant `slug` if its row says it is terminated: one transaction, which also inserts the erasure record.
 * The admin connection owns the tables, but FORCE ROW LEVEL SECURITY applies to the owner too (unless superuser), so
 * the transaction binds itself to the tenant first, exactly as the tenant's own sessions are bound.
 */
export async function eraseTenantRows(
  db: Db,
  slug: string,
  record: { id: string; requestedBy: string; requestedAt: Date; erasedAt: Date; filesRemoved: number },
): Promise<ErasureOutcome> {
  return db.admin().tx(async (q) => {
    await q.query("SELECT set_config('app.tenant_id', $1, true)", [slug]);
    const t = await q.query<{ status: string }>('SELECT status FROM tenant WHERE id = $1 FOR UPDATE', [slug]);
    if (!t.rows[0]) return { state: 'missing' };
    if (t.rows[0].status !== 'terminated') return { state: 'refused', status: t.rows[0].status };
    const rowCounts: Record<string, number> = {};
    const account = `${slug}|`;
    rowCounts.oidc_payload = (await q.query(DELETE_PAYLOADS, [slug, account, account.length])).rowCount ?? 0;
    for (const table of await tenantTables(q)) {
      // table names come from the catalog; quoted as identifiers all the same
      rowCounts[table] = (await q.query(`DELETE FROM "${table.replace(/"/g, '""')}" WHERE tenant_id = $1`, [slug])).rowCount ?? 0;
    }
    rowCounts.tenant = (await q.query('DELETE FROM tenant WHERE id = $1', [slug])).rowCount ?? 0;
    await q.query(
      `INSERT INTO tenant_erasure (id, erased_tenant, requested_by, requested_at, erased_at, row_counts, files_removed)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [record.id, slug, record.requestedBy, record.requestedAt.toISOString(), record.erasedAt.toISOString(), JSON.stringify(rowCounts), record.filesRemoved],
    );
    return { state: 'erased', rowCounts };
  });
}

type RecordRow = { id: string; erased_tenant: string; requested_by: string; requested_at: Date; erased_at: Date; row_counts: Record<string, number>; files_removed: number };

/** The erasure records of `slug`, newest first (a slug may be taken again and erased again). */
export async function erasureRecords(db: Db, slug: string): Promise<ErasureRecord[]> {
  const r = await db.admin().query<RecordRow>(
    `SELECT id, erased_tenant, requested_by, requested_at, erased_at, row_counts, files_removed FROM tenant_erasure
      WHERE erased_tenant = $1 ORDER BY erased_at DESC, id`,
    [slug],
  );
  return r.rows.map((x) => ({
    id: x.id,
    erasedTenant: x.erased_tenant,
    requestedBy: x.requested_by,
    requestedAt: x.requested_at.toISOString(),
    erasedAt: x.erased_at.toISOString(),
    rowCounts: x.row_counts,
    filesRemoved: x.files_removed,
  }));
}

/** A tenant's status and the end of its erasure grace period (migrations/0010), or undefined when there is no row. */
export async function erasureState(db: Db, slug: string): Promise<{ status: string; terminateAfter: Date | null } | undefined> {
  const r = await db.admin().query<{ status: string; terminate_after: Date | null }>('SELECT status, terminate_after FROM tenant WHERE id = $1', [slug]);
  return r.rows[0] && { status: r.rows[0].status, terminateAfter: r.rows[0].terminate_after };
}

/** Terminated tenants whose grace period has an end: the erasures to (re)schedule. */
export async function terminatedTenants(db: Db): Promise<{ slug: string; terminateAfter: Date }[]> {
  const r = await db.admin().query<{ id: string; terminate_after: Date }>(
    "SELECT id, terminate_after FROM tenant WHERE status = 'terminated' AND terminate_after IS NOT NULL ORDER BY terminate_after",
  );
  return r.rows.map((x) => ({ slug: x.id, terminateAfter: x.terminate_after }));
}
