// $reindex: recomputes the search index rows of a tenant's current resources (after a custom SearchParameter is
// added or changed), in the background, in batches, each batch its own transaction. Progress is stored in the
// job table after every batch, so a restarted server resumes where it stopped.
import { randomUUID } from 'node:crypto';
import type { Deps } from '../fhir/context.js';
import { extractIndexRows } from '../search/extract.js';
import { writeVersions, type ResourceWrite } from '../store/resources.js';

const BATCH = 200;

export interface JobStatus {
  id: string;
  kind: string;
  status: 'running' | 'completed' | 'failed';
  types: string[] | null;
  total: number;
  done: number;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

type JobRow = { id: string; kind: string; status: JobStatus['status']; params: { types?: string[] }; total: number; done: number; cursor: [string, string] | null; error: string | null; created_at: Date; updated_at: Date };

function toStatus(r: JobRow): JobStatus {
  return { id: r.id, kind: r.kind, status: r.status, types: r.params.types ?? null, total: r.total, done: r.done, error: r.error, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() };
}

const running = new Map<string, Promise<void>>();

/** Creates a reindex job for the tenant (all types, or `types`) and starts it in this process. */
export async function startReindex(deps: Deps, tenantId: string, types?: string[]): Promise<JobStatus> {
  const id = randomUUID();
  const row = await deps.db.tx(tenantId, async (q) => {
    const total = await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM resource WHERE tenant_id = $1 AND NOT deleted AND ($2::text[] IS NULL OR resource_type = ANY($2::text[]))`,
      [tenantId, types ?? null],
    );
    const r = await q.query<JobRow>(
      `INSERT INTO job (tenant_id, id, kind, status, params, total) VALUES ($1, $2, 'reindex', 'running', $3, $4) RETURNING *`,
      [tenantId, id, JSON.stringify(types ? { types } : {}), total.rows[0].n],
    );
    return r.rows[0];
  });
  runInBackground(deps, tenantId, id);
  return toStatus(row);
}

export async function jobStatus(deps: Deps, tenantId: string, id: string): Promise<JobStatus | undefined> {
  const r = await deps.db.withTenant(tenantId, (q) => q.query<JobRow>('SELECT * FROM job WHERE tenant_id = $1 AND id = $2', [tenantId, id]));
  return r.rows[0] ? toStatus(r.rows[0]) : undefined;
}

function runInBackground(deps: Deps, tenantId: string, id: string): void {
  const key = `${tenantId}/${id}`;
  if (running.has(key)) return;
  const p = runReindex(deps, tenantId, id)
    .catch(async (err) => {
      deps.log.error({ err, tenantId, jobId: id }, 'reindex failed');
      await deps.db
        .tx(tenantId, (q) => q.query(`UPDATE job SET status = 'failed', error = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2`, [tenantId, id, 'internal error']))
        .catch(() => undefined);
    })
    .finally(() => running.delete(key));
  running.set(key, p);
}

/** Waits for a job started in this process (CLI and tests). */
export async function waitForJob(tenantId: string, id: string): Promise<void> {
  await running.get(`${tenantId}/${id}`);
}

/** Processes the job batch by batch until done. Safe to call again after a crash: it continues from the cursor. */
export async function runReindex(deps: Deps, tenantId: string, id: string): Promise<void> {
  for (;;) {
    const more = await deps.db.tx(tenantId, async (q) => {
      const job = (await q.query<JobRow>('SELECT * FROM job WHERE tenant_id = $1 AND id = $2 FOR UPDATE', [tenantId, id])).rows[0];
      if (!job || job.status !== 'running') return false;
      const registry = await deps.searchParams.forTenant(tenantId);
      const [afterType, afterId] = job.cursor ?? ['', ''];
      // FOR UPDATE: a concurrent update of the same resource waits, so its index rows are never overwritten by stale ones
      const rows = await q.query<{ resource_type: string; id: string; version_id: number; last_updated: Date; content: Record<string, unknown> }>(
        `SELECT resource_type, id, version_id, last_updated, content FROM resource
          WHERE tenant_id = $1 AND NOT deleted AND ($2::text[] IS NULL OR resource_type = ANY($2::text[]))
            AND (resource_type, id) > ($3, $4)
          ORDER BY resource_type, id LIMIT ${BATCH} FOR UPDATE`,
        [tenantId, job.params.types ?? null, afterType, afterId],
      );
      const writes: ResourceWrite[] = rows.rows.map((r) => ({
        resourceType: r.resource_type,
        id: r.id,
        versionId: r.version_id,
        lastUpdated: r.last_updated.toISOString(),
        method: 'PUT',
        json: '',
        index: extractIndexRows(registry, r.content, `${deps.config.publicBaseUrl}/fhir/${tenantId}`),
        replaces: true,
      }));
      await writeVersions(q, tenantId, writes, { indexOnly: true });
      const last = rows.rows[rows.rows.length - 1];
      const finished = rows.rows.length < BATCH;
      await q.query(
        `UPDATE job SET done = done + $3, cursor = $4, status = $5, updated_at = now() WHERE tenant_id = $1 AND id = $2`,
        [tenantId, id, rows.rows.length, last ? JSON.stringify([last.resource_type, last.id]) : job.cursor ? JSON.stringify(job.cursor) : null, finished ? 'completed' : 'running'],
      );
      return !finished;
    });
    if (!more) return;
  }
}

/** On start: resume reindex jobs that no process has advanced for a minute (e.g. the server was restarted). */
export async function resumeStaleJobs(deps: Deps): Promise<number> {
  const r = await deps.db
    .admin()
    .query<{ tenant_id: string; id: string }>(`SELECT tenant_id, id FROM job WHERE kind = 'reindex' AND status = 'running' AND updated_at < now() - interval '60 seconds'`)
    .catch(() => ({ rows: [] as { tenant_id: string; id: string }[] }));
  for (const j of r.rows) runInBackground(deps, j.tenant_id, j.id);
  return r.rows.length;
}
