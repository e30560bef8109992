// $reindex: recomputes the search index rows of a tenant's current resources (after a custom SearchParameter is
// added or changed), in the background, in batches, each batch its own transaction. Progress is stored in the job
// table after every batch, so a restarted server resumes where it stopped; a cancelled job stops at its next batch.
// Never holds a connection while waiting for another (PGlite has one), and yields between batches so requests keep
// being answered while it runs (issue 8, "a reindex that freezes the embedded server").
import { randomUUID } from 'node:crypto';
import type { Deps } from '../core/deps.js';
import { extractIndexRows } from '../search/extract.js';
import { advanceJob, failJob, findJob, insertReindexJob, lockJob, nextResources, staleJobs, type JobRecord } from '../store/jobs.js';
import { writeVersions, type ResourceWrite } from '../store/resources.js';
import { repeat } from '../store/maintenance.js';
import { listTenants } from '../store/tenants.js';

export interface JobStatus {
  id: string;
  kind: string;
  status: JobRecord['status'];
  types: string[] | null;
  total: number;
  done: number;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

function toStatus(j: JobRecord): JobStatus {
  return { id: j.id, kind: j.kind, status: j.status, types: j.params.types ?? null, total: j.total, done: j.done, error: j.error, createdAt: j.createdAt.toISOString(), updatedAt: j.updatedAt.toISOString() };
}

const jobKey = (tenantId: string, id: string) => `reindex/${tenantId}/${id}`;

/** Creates a reindex job for the tenant (all types, or `types`) and starts it in this process. */
export async function startReindex(deps: Deps, tenantId: string, types?: string[]): Promise<JobStatus> {
  const job = await insertReindexJob(deps.db, tenantId, randomUUID(), types);
  deps.jobs.start(jobKey(tenantId, job.id), (signal) => runJob(deps, tenantId, job.id, signal));
  return toStatus(job);
}

export async function jobStatus(deps: Deps, tenantId: string, id: string): Promise<JobStatus | undefined> {
  const j = await findJob(deps.db, tenantId, id);
  return j ? toStatus(j) : undefined;
}

/** Waits for a job started in this process (CLI and tests). */
export function waitForJob(deps: Deps, tenantId: string, id: string): Promise<void> {
  return deps.jobs.wait(jobKey(tenantId, id));
}

async function runJob(deps: Deps, tenantId: string, id: string, signal: AbortSignal): Promise<void> {
  try {
    await runReindex(deps, tenantId, id, signal);
  } catch (err) {
    if (signal.aborted) return; // shutdown: the job stays 'running' and is resumed by the next start
    deps.log.error({ err, tenantId, jobId: id }, 'reindex failed');
    await failJob(deps.db, tenantId, id, 'internal error').catch(() => undefined);
  }
}

/** Rows per batch: small on the embedded database, whose one connection every request shares. */
function batchSize(deps: Deps): number {
  return deps.db.kind === 'pglite' ? 50 : 200;
}

/** Lets queued requests take the connection (and the event loop) between two batches. */
function yieldBetweenBatches(deps: Deps): Promise<void> {
  return new Promise((r) => setTimeout(r, deps.db.kind === 'pglite' ? 5 : 0));
}

/** Processes the job batch by batch until done. Safe to call again after a crash: it continues from the cursor. */
async function runReindex(deps: Deps, tenantId: string, id: string, signal?: AbortSignal): Promise<void> {
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${tenantId}`;
  const limit = batchSize(deps);
  for (;;) {
    if (signal?.aborted) return;
    // read outside the batch's transaction: the registry may query the database itself
    const registry = await deps.searchParams.forTenant(tenantId);
    const more = await deps.db.tx(tenantId, async (q) => {
      const job = await lockJob(q, tenantId, id);
      if (!job || job.status !== 'running') return false;
      // FOR UPDATE: a concurrent update of the same resource waits, so its index rows are never overwritten by stale ones
      const rows = await nextResources(q, tenantId, job.params.types, job.cursor ?? ['', ''], limit);
      const writes: ResourceWrite[] = rows.map((r) => ({
        resourceType: r.resourceType,
        id: r.id,
        versionId: r.versionId,
        lastUpdated: r.lastUpdated.toISOString(),
        method: 'PUT',
        json: '',
        index: extractIndexRows(registry, r.content, baseUrl),
        replaces: true,
      }));
      await writeVersions(q, tenantId, writes, { indexOnly: true });
      const last = rows[rows.length - 1];
      const finished = rows.length < limit;
      await advanceJob(q, tenantId, id, rows.length, last ? [last.resourceType, last.id] : job.cursor, finished);
      return !finished;
    });
    if (!more) return;
    await yieldBetweenBatches(deps);
  }
}

/**
 * After start (never before listening, never awaited by it) and then every minute: resume reindex jobs that no process
 * has advanced for `staleSeconds`, e.g. after a restart or a CLI that was killed. Per tenant, because the job table is
 * under row-level security.
 */
async function resumeStaleJobs(deps: Deps, staleSeconds = 60): Promise<number> {
  let resumed = 0;
  for (const t of await listTenants(deps.db)) {
    for (const j of await staleJobs(deps.db, t.id, staleSeconds)) {
      if (j.kind !== 'reindex') continue;
      if (deps.jobs.has(jobKey(t.id, j.id))) continue;
      deps.jobs.start(jobKey(t.id, j.id), (signal) => runJob(deps, t.id, j.id, signal));
      resumed++;
    }
  }
  return resumed;
}

/** Resumes stale jobs now (every running job, on the embedded database: no other process can be running it) and every minute. */
export function startJobSweeper(deps: Deps): () => void {
  const failure = 'could not resume background jobs';
  const sweep = (staleSeconds: number) =>
    resumeStaleJobs(deps, staleSeconds).then((resumed) => resumed && deps.log.info({ resumed }, 'resumed background jobs'));
  void sweep(deps.db.kind === 'pglite' ? 0 : 60).catch((err) => deps.log.warn({ err }, failure));
  return repeat(() => sweep(60), 60_000, deps.log, failure);
}
