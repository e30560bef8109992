// Bulk Data export (Bulk 2.0 export.html): the SQL of an export job. Its job row (kind 'export') holds the request,
// the snapshot time and the progress; its reads stream one type in id order, as of the snapshot: current rows
// written up to transactionTime, and for rows changed after it, their version as of transactionTime from history.
import type { Db, Queryable } from '../platform/db.js';
import type { SearchPlan } from '../search/plan.js';
import type { JobRecord } from './jobs.js';
import { Params, planCondition } from './search-sql.js';

/** Creates a running export job; returns the database's now() as the export's transactionTime. */
export async function insertExportJob(db: Db, tenantId: string, id: string, params: Record<string, unknown>): Promise<string> {
  return db.tx(tenantId, async (q) => {
    const now = await q.query<{ t: string }>(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
    const transactionTime = now.rows[0].t;
    await q.query(`INSERT INTO job (tenant_id, id, kind, status, params, cursor) VALUES ($1, $2, 'export', 'running', $3, NULL)`, [
      tenantId, id, JSON.stringify({ ...params, transactionTime }),
    ]);
    return transactionTime;
  });
}

/**
 * Records one finished file chunk (or the end): the new params (outputs, errors), the keyset cursor (type, last id, and
 * the run's step within the type) and the count. Only while the job is still running: false when it was cancelled
 * meanwhile (the caller then removes its files).
 */
export async function advanceExport(
  db: Db, tenantId: string, id: string, params: Record<string, unknown>, cursor: readonly string[] | null, processed: number, finished: boolean,
): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query(`UPDATE job SET params = $3, cursor = $4, done = done + $5, status = $6, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND kind = 'export' AND status = 'running'`, [
      tenantId, id, JSON.stringify(params), cursor ? JSON.stringify(cursor) : null, processed, finished ? 'completed' : 'running',
    ]),
  );
  return (r.rowCount ?? 0) > 0;
}

/** Marks the job alive (a long file chunk), so no sweeper takes it for stale. */
export async function touchExport(db: Db, tenantId: string, id: string): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) => q.query(`UPDATE job SET updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'running'`, [tenantId, id]));
  return (r.rowCount ?? 0) > 0;
}

/** Ends an export for its client (DELETE, expiry): running or completed -> cancelled. False when it was neither. */
export async function endExport(db: Db, tenantId: string, id: string, reason: string): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query(`UPDATE job SET status = 'cancelled', error = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND kind = 'export' AND status IN ('running', 'completed')`, [
      tenantId, id, reason,
    ]),
  );
  return (r.rowCount ?? 0) > 0;
}

/** Completed exports whose files have been kept for `hours` (their retention is over). */
export async function expiredExports(db: Db, tenantId: string, hours: number): Promise<string[]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ id: string }>(`SELECT id FROM job WHERE tenant_id = $1 AND kind = 'export' AND status IN ('completed', 'failed') AND updated_at < now() - make_interval(secs => $2)`, [
      tenantId, hours * 3600,
    ]),
  );
  return r.rows.map((x) => x.id);
}

/** Running export jobs no process has advanced for `staleSeconds`. */
export async function staleExports(db: Db, tenantId: string, staleSeconds: number): Promise<JobRecord['id'][]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ id: string }>(`SELECT id FROM job WHERE tenant_id = $1 AND kind = 'export' AND status = 'running' AND updated_at <= now() - make_interval(secs => $2)`, [
      tenantId, staleSeconds,
    ]),
  );
  return r.rows.map((x) => x.id);
}

/** One resource of an export batch: its JSON as of the snapshot (undefined: skipped, e.g. created later). */
export interface ExportRow {
  id: string;
  json: string;
  /** Changed after the snapshot: this is the older version from history, not matched in SQL (judge it in memory). */
  historic: boolean;
}

export interface ExportBatchQuery {
  type: string;
  /** Each plan's criteria, compartment and restrictions must hold (authorization; _typeFilter and Group members). */
  plans: SearchPlan[];
  since?: string;
  transactionTime: string;
  afterId: string;
  limit: number;
}

/**
 * The next `limit` resources of one type after `afterId` (id order), as of transactionTime. `lastId` is where the
 * scan stopped (continue after it), `more` whether it may go on: skipped rows still advance the cursor.
 */
export async function exportBatch(q: Queryable, tenantId: string, baseUrl: string, b: ExportBatchQuery): Promise<{ rows: ExportRow[]; lastId?: string; more: boolean }> {
  const p = new Params();
  const tenant = p.add(tenantId);
  const type = p.add(b.type);
  const conds = b.plans.map((plan) => planCondition({ ...plan, resourceTypes: [b.type] }, tenantId, baseUrl, p));
  const t = p.add(b.transactionTime);
  const after = p.add(b.afterId);
  const since = p.add(b.since ?? null);
  const limit = Math.floor(b.limit);
  const sql = `(SELECT r.id, r.content::text AS content, false AS later FROM resource r
                  WHERE r.tenant_id = ${tenant} AND r.resource_type = ${type} AND ${conds.length ? conds.join(' AND ') : 'NOT r.deleted'}
                    AND r.last_updated <= ${t}::timestamptz AND (${since}::timestamptz IS NULL OR r.last_updated > ${since}::timestamptz) AND r.id > ${after}
                  ORDER BY r.id LIMIT ${limit})
               UNION ALL
               (SELECT r.id, NULL AS content, true AS later FROM resource r
                  WHERE r.tenant_id = ${tenant} AND r.resource_type = ${type} AND r.last_updated > ${t}::timestamptz AND r.id > ${after}
                  ORDER BY r.id LIMIT ${limit})
               ORDER BY id LIMIT ${limit}`;
  const r = await q.query<{ id: string; content: string | null; later: boolean }>(sql, p.list);
  const more = r.rows.length === limit;
  const lastId = r.rows.at(-1)?.id;
  const later = r.rows.filter((x) => x.later).map((x) => x.id);
  const old = new Map<string, string>();
  if (later.length) {
    // the version each had at the snapshot: the latest one written up to transactionTime (none, or a deletion: skip)
    const h = await q.query<{ id: string; last_updated: Date; deleted: boolean; content: string | null }>(
      `SELECT DISTINCT ON (id) id, last_updated, deleted, content::text AS content FROM resource_history
        WHERE tenant_id = $1 AND resource_type = $2 AND id = ANY($3::text[]) AND last_updated <= $4::timestamptz
        ORDER BY id, last_updated DESC, version_id DESC`,
      [tenantId, b.type, later, b.transactionTime],
    );
    for (const x of h.rows) {
      if (x.deleted || x.content === null) continue;
      if (b.since && x.last_updated.getTime() <= Date.parse(b.since)) continue;
      old.set(x.id, x.content);
    }
  }
  const rows: ExportRow[] = [];
  for (const x of r.rows) {
    if (!x.later) rows.push({ id: x.id, json: x.content!, historic: false });
    else {
      const json = old.get(x.id);
      if (json !== undefined) rows.push({ id: x.id, json, historic: true });
    }
  }
  return { rows, ...(lastId !== undefined ? { lastId } : {}), more };
}

/** One resource deleted in (since, transactionTime] that was still deleted at transactionTime. */
export interface DeletedRow {
  id: string;
  /** Its last version before the deletion (the content it had), when asked for (null: none, or not asked for). */
  live: string | null;
}

export interface DeletedBatchQuery {
  type: string;
  since: string;
  transactionTime: string;
  afterId: string;
  limit: number;
  /** Also read each one's last version before the deletion (to judge whether it was in the caller's region). */
  withContent: boolean;
}

/**
 * The manifest's `deleted` (Bulk 2.0 export.html#response---complete-status): the next `limit` resources of one type
 * after `afterId` (id order) whose state at transactionTime is a deletion written after `since`. Deletion rows carry no
 * content and no search index rows, so what they were is read from history: the version before the deletion. A resource
 * deleted and created again before transactionTime is not here (it is in `output`), so no resource is in both. Like
 * exportBatch, `lastId`/`more` describe the scan: rows that are not deletions still advance the cursor.
 */
export async function deletedBatch(q: Queryable, tenantId: string, b: DeletedBatchQuery): Promise<{ rows: DeletedRow[]; lastId?: string; more: boolean }> {
  const limit = Math.floor(b.limit);
  // current rows written up to the snapshot: a deleted one is the state at the snapshot; rows written after it: the
  // state at the snapshot is their latest history version up to transactionTime (s)
  const sql = `WITH c AS (
      (SELECT r.id, r.version_id, false AS later FROM resource r
         WHERE r.tenant_id = $1 AND r.resource_type = $2 AND r.deleted AND r.last_updated > $3::timestamptz AND r.last_updated <= $4::timestamptz AND r.id > $5
         ORDER BY r.id LIMIT ${limit})
      UNION ALL
      (SELECT r.id, NULL::integer, true AS later FROM resource r
         WHERE r.tenant_id = $1 AND r.resource_type = $2 AND r.last_updated > $4::timestamptz AND r.id > $5
         ORDER BY r.id LIMIT ${limit})
      ORDER BY id LIMIT ${limit})
    SELECT c.id, gone.version_id IS NOT NULL AS listed, live.content
      FROM c
      LEFT JOIN LATERAL (
        SELECT s.version_id FROM (
          SELECT h.version_id, h.deleted, h.last_updated FROM resource_history h
           WHERE c.later AND h.tenant_id = $1 AND h.resource_type = $2 AND h.id = c.id AND h.last_updated <= $4::timestamptz
           ORDER BY h.version_id DESC LIMIT 1) s
         WHERE s.deleted AND s.last_updated > $3::timestamptz
        UNION ALL
        SELECT c.version_id WHERE NOT c.later) gone ON true
      LEFT JOIN LATERAL (
        SELECT h.content::text AS content FROM resource_history h
         WHERE $6::boolean AND gone.version_id IS NOT NULL AND h.tenant_id = $1 AND h.resource_type = $2 AND h.id = c.id
           AND NOT h.deleted AND h.version_id < gone.version_id
         ORDER BY h.version_id DESC LIMIT 1) live ON true
     ORDER BY c.id`;
  const r = await q.query<{ id: string; listed: boolean; content: string | null }>(sql, [tenantId, b.type, b.since, b.transactionTime, b.afterId, b.withContent]);
  const lastId = r.rows.at(-1)?.id;
  return {
    rows: r.rows.filter((x) => x.listed).map((x) => ({ id: x.id, live: x.content })),
    ...(lastId !== undefined ? { lastId } : {}),
    more: r.rows.length === limit,
  };
}
