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
  /**
   * A current row that met these plans (indexes into `plans`) only in their lifted form (ExportBatchQuery.byTarget):
   * it belongs in the export only if one of its targets lay in one of the lifted compartments at the snapshot.
   */
  pending?: number[];
}

/** A plan whose Patient compartment restrictions on the type are lifted (its other criteria kept). */
export interface LiftedPlan {
  plan: SearchPlan;
  /** The patients whose compartments were lifted: the resource must then reach one of them through a target. */
  patients: string[];
}

/**
 * Provenance at Patient and Group level (Bulk 2.0 export.html#query-parameters): a Provenance is in the export when
 * a plan holds as it is, or in its lifted form with a `target` in one of the lifted patients' compartments.
 */
export interface ByTarget {
  /** Parallel to `plans` (undefined: the plan holds as it is). */
  lifted: (LiftedPlan | undefined)[];
  /** The types a target may have (the caller may search them without a filter). */
  targetTypes: string[];
  /** "Type:code" pairs of the Patient compartment. */
  compartmentParams: string[];
}

export interface ExportBatchQuery {
  type: string;
  /** Each plan's criteria, compartment and restrictions must hold (authorization; _typeFilter and Group members). */
  plans: SearchPlan[];
  since?: string;
  transactionTime: string;
  afterId: string;
  limit: number;
  byTarget?: ByTarget;
}

/**
 * The next `limit` resources of one type after `afterId` (id order), as of transactionTime. `lastId` is where the
 * scan stopped (continue after it), `more` whether it may go on: skipped rows still advance the cursor.
 */
export async function exportBatch(q: Queryable, tenantId: string, baseUrl: string, b: ExportBatchQuery): Promise<{ rows: ExportRow[]; lastId?: string; more: boolean }> {
  const p = new Params();
  const tenant = p.add(tenantId);
  const type = p.add(b.type);
  const t = p.add(b.transactionTime);
  // per lifted plan, whether the plan held as it is ('1') or only lifted ('0': its targets are judged in memory)
  const flags: string[] = [];
  const liftedAt: number[] = [];
  const conds = b.plans.map((plan, i) => {
    const main = planCondition({ ...plan, resourceTypes: [b.type] }, tenantId, baseUrl, p);
    const l = b.byTarget?.lifted[i];
    if (!l || !b.byTarget) return main;
    const lifted = planCondition({ ...l.plan, resourceTypes: [b.type] }, tenantId, baseUrl, p);
    flags.push(`CASE WHEN ${main} THEN '1' ELSE '0' END`);
    liftedAt.push(i);
    return `((${main}) OR ((${lifted}) AND ${targetCondition(p, tenant, t, b.byTarget, l.patients)}))`;
  });
  const flagsOf = flags.length ? `concat(${flags.join(', ')})` : `''`;
  const after = p.add(b.afterId);
  const since = p.add(b.since ?? null);
  const limit = Math.floor(b.limit);
  const sql = `(SELECT r.id, r.content::text AS content, false AS later, ${flagsOf} AS flags FROM resource r
                  WHERE r.tenant_id = ${tenant} AND r.resource_type = ${type} AND ${conds.length ? conds.join(' AND ') : 'NOT r.deleted'}
                    AND r.last_updated <= ${t}::timestamptz AND (${since}::timestamptz IS NULL OR r.last_updated > ${since}::timestamptz) AND r.id > ${after}
                  ORDER BY r.id LIMIT ${limit})
               UNION ALL
               (SELECT r.id, NULL AS content, true AS later, NULL AS flags FROM resource r
                  WHERE r.tenant_id = ${tenant} AND r.resource_type = ${type} AND r.last_updated > ${t}::timestamptz AND r.id > ${after}
                  ORDER BY r.id LIMIT ${limit})
               ORDER BY id LIMIT ${limit}`;
  const r = await q.query<{ id: string; content: string | null; later: boolean; flags: string | null }>(sql, p.list);
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
    if (!x.later) {
      const pending = liftedAt.filter((_, k) => x.flags?.[k] !== '1');
      rows.push({ id: x.id, json: x.content!, historic: false, ...(pending.length ? { pending } : {}) });
    } else {
      const json = old.get(x.id);
      if (json !== undefined) rows.push({ id: x.id, json, historic: true });
    }
  }
  return { rows, ...(lastId !== undefined ? { lastId } : {}), more };
}

/**
 * The row `r` (a Provenance) has a `target` that may have lain in one of `patients`' compartments at the snapshot: one
 * unchanged since then that is in one now (by its index rows), or one changed since (its state then is judged in
 * memory, compartmentsAt). A pre-filter: the rows it lets through are judged exactly in memory.
 */
function targetCondition(p: Params, tenant: string, t: string, bt: ByTarget, patients: string[]): string {
  const ids = p.add(patients);
  return `EXISTS (SELECT 1 FROM sp_reference pt
      JOIN resource tr ON tr.tenant_id = pt.tenant_id AND tr.resource_type = pt.target_type AND tr.id = pt.target_id
     WHERE pt.tenant_id = ${tenant} AND pt.resource_id = r.id AND pt.resource_type = r.resource_type AND pt.code = 'target'
       AND pt.target_type = ANY(${p.add(bt.targetTypes)}::text[])
       AND (tr.last_updated > ${t}::timestamptz OR (NOT tr.deleted AND (
             (tr.resource_type = 'Patient' AND tr.id = ANY(${ids}::text[]))
             OR EXISTS (SELECT 1 FROM sp_reference c
                         WHERE c.tenant_id = ${tenant} AND c.resource_id = tr.id AND c.resource_type = tr.resource_type
                           AND c.target_type = 'Patient' AND c.target_id = ANY(${ids}::text[])
                           AND (c.resource_type || ':' || c.code) = ANY(${p.add(bt.compartmentParams)}::text[]))))))`;
}

/**
 * What a resource was at the snapshot, for a Patient compartment check: unchanged since, the patients whose
 * compartment its index rows put it in; changed since, its content then (judged in memory); absent: it did not exist
 * then (or was deleted).
 */
export type StateAt = { patients: string[] } | { json: string };

/** The state at transactionTime of each `[type, id]` (keyed `Type/id`), in this tenant. */
export async function statesAt(q: Queryable, tenantId: string, refs: [string, string][], transactionTime: string, compartmentParams: string[]): Promise<Map<string, StateAt>> {
  const out = new Map<string, StateAt>();
  if (!refs.length) return out;
  const types = refs.map((x) => x[0]);
  const ids = refs.map((x) => x[1]);
  const cur = await q.query<{ resource_type: string; id: string; later: boolean; deleted: boolean; patients: string | null }>(
    `SELECT r.resource_type, r.id, r.last_updated > $4::timestamptz AS later, r.deleted,
            (SELECT string_agg(DISTINCT c.target_id, ',') FROM sp_reference c
              WHERE c.tenant_id = $1 AND c.resource_id = r.id AND c.resource_type = r.resource_type AND c.target_type = 'Patient'
                AND (c.resource_type || ':' || c.code) = ANY($5::text[])) AS patients
       FROM unnest($2::text[], $3::text[]) AS k(resource_type, id)
       JOIN resource r ON r.tenant_id = $1 AND r.resource_type = k.resource_type AND r.id = k.id`,
    [tenantId, types, ids, transactionTime, compartmentParams],
  );
  const later: [string, string][] = [];
  for (const x of cur.rows) {
    if (x.later) later.push([x.resource_type, x.id]);
    else if (!x.deleted) out.set(`${x.resource_type}/${x.id}`, { patients: x.patients ? x.patients.split(',') : [] });
  }
  if (later.length) {
    const h = await q.query<{ resource_type: string; id: string; deleted: boolean; content: string | null }>(
      `SELECT DISTINCT ON (h.resource_type, h.id) h.resource_type, h.id, h.deleted, h.content::text AS content
         FROM unnest($2::text[], $3::text[]) AS k(resource_type, id)
         JOIN resource_history h ON h.tenant_id = $1 AND h.resource_type = k.resource_type AND h.id = k.id AND h.last_updated <= $4::timestamptz
        ORDER BY h.resource_type, h.id, h.last_updated DESC, h.version_id DESC`,
      [tenantId, later.map((x) => x[0]), later.map((x) => x[1]), transactionTime],
    );
    for (const x of h.rows) if (!x.deleted && x.content !== null) out.set(`${x.resource_type}/${x.id}`, { json: x.content });
  }
  return out;
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
