// Background job records (migrations/0003_jobs.sql): one row per job under row-level security, with its progress and
// keyset position, so a job survives restarts, shows its progress, and is cancelled by flipping its status.
import type { Db, DbCallOptions, Queryable } from '../platform/db.js';

export type JobState = 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobRecord {
  tenantId: string;
  id: string;
  kind: string;
  status: JobState;
  params: { types?: string[] };
  total: number;
  done: number;
  cursor: [string, string] | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

type JobRow = {
  tenant_id: string; id: string; kind: string; status: JobState; params: { types?: string[] }; total: number; done: number;
  cursor: [string, string] | null; error: string | null; created_at: Date; updated_at: Date;
};

const toJob = (r: JobRow): JobRecord => ({
  tenantId: r.tenant_id, id: r.id, kind: r.kind, status: r.status, params: r.params, total: r.total, done: r.done, cursor: r.cursor,
  error: r.error, createdAt: r.created_at, updatedAt: r.updated_at,
});

/** Creates a running reindex job over the tenant's current resources (all types, or `types`). */
export async function insertReindexJob(db: Db, tenantId: string, id: string, types: string[] | undefined, opts?: DbCallOptions): Promise<JobRecord> {
  return db.tx(
    tenantId,
    async (q) => {
      const total = await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM resource WHERE tenant_id = $1 AND NOT deleted AND ($2::text[] IS NULL OR resource_type = ANY($2::text[]))`,
        [tenantId, types ?? null],
      );
      const r = await q.query<JobRow>(`INSERT INTO job (tenant_id, id, kind, status, params, total) VALUES ($1, $2, 'reindex', 'running', $3, $4) RETURNING *`, [
        tenantId, id, JSON.stringify(types ? { types } : {}), total.rows[0].n,
      ]);
      return toJob(r.rows[0]);
    },
    opts,
  );
}

export async function findJob(db: Db, tenantId: string, id: string, opts?: DbCallOptions): Promise<JobRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<JobRow>('SELECT * FROM job WHERE tenant_id = $1 AND id = $2', [tenantId, id]), opts);
  return r.rows[0] ? toJob(r.rows[0]) : undefined;
}

/** The tenant's jobs, newest first (optionally only those in `status`). */
export async function listJobs(db: Db, tenantId: string, status?: JobState): Promise<JobRecord[]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<JobRow>('SELECT * FROM job WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id LIMIT 1000', [tenantId, status ?? null]),
  );
  return r.rows.map(toJob);
}

/** Stops a running job (the worker sees the status at its next batch); false when it was not running. */
export async function cancelJob(db: Db, tenantId: string, id: string): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query(`UPDATE job SET status = 'cancelled', error = 'cancelled', updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'running'`, [tenantId, id]),
  );
  return (r.rowCount ?? 0) > 0;
}

export async function failJob(db: Db, tenantId: string, id: string, error: string): Promise<void> {
  await db.withTenant(tenantId, (q) => q.query(`UPDATE job SET status = 'failed', error = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'running'`, [tenantId, id, error]));
}

/** Inside a batch's transaction: the job row, locked, so two processes never run the same batch. */
export async function lockJob(q: Queryable, tenantId: string, id: string): Promise<JobRecord | undefined> {
  const r = await q.query<JobRow>('SELECT * FROM job WHERE tenant_id = $1 AND id = $2 FOR UPDATE', [tenantId, id]);
  return r.rows[0] ? toJob(r.rows[0]) : undefined;
}

export interface CurrentRow {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  content: Record<string, unknown>;
}

/** The next `limit` current resources after `after` in (type, id) order, locked against concurrent updates. */
export async function nextResources(q: Queryable, tenantId: string, types: string[] | undefined, after: [string, string], limit: number): Promise<CurrentRow[]> {
  const r = await q.query<{ resource_type: string; id: string; version_id: number; last_updated: Date; content: Record<string, unknown> }>(
    `SELECT resource_type, id, version_id, last_updated, content FROM resource
      WHERE tenant_id = $1 AND NOT deleted AND ($2::text[] IS NULL OR resource_type = ANY($2::text[]))
        AND (resource_type, id) > ($3, $4)
      ORDER BY resource_type, id LIMIT ${Math.floor(limit)} FOR UPDATE`,
    [tenantId, types ?? null, after[0], after[1]],
  );
  return r.rows.map((x) => ({ resourceType: x.resource_type, id: x.id, versionId: x.version_id, lastUpdated: x.last_updated, content: x.content }));
}

/** Records a batch's progress (and completion). */
export async function advanceJob(q: Queryable, tenantId: string, id: string, processed: number, cursor: [string, string] | null, finished: boolean): Promise<void> {
  await q.query(`UPDATE job SET done = done + $3, cursor = $4, status = $5, updated_at = now() WHERE tenant_id = $1 AND id = $2`, [
    tenantId, id, processed, cursor ? JSON.stringify(cursor) : null, finished ? 'completed' : 'running',
  ]);
}

/** Running jobs of a tenant that no process has advanced for `staleSeconds` (their process stopped). */
export async function staleJobs(db: Db, tenantId: string, staleSeconds: number): Promise<JobRecord[]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<JobRow>(`SELECT * FROM job WHERE tenant_id = $1 AND status = 'running' AND updated_at < now() - make_interval(secs => $2)`, [tenantId, staleSeconds]),
  );
  return r.rows.map(toJob);
}
