// $reindex: recomputes the search index rows of a tenant's current resources (after a custom SearchParameter is
// added or changed), in the background, in batches, each batch its own transaction. The job table is the source of
// truth: progress and the keyset cursor are stored after every batch, and a cancelled job stops at its next batch.
// The work itself is a job of the `reindex` queue (issue 10), so with Redis any worker process may run it; a job
// whose process died is added again by the sweeper and continues from its cursor. Never holds a connection while
// waiting for another (PGlite has one), and yields between batches so requests keep being answered while it runs
// (issue 8, "a reindex that freezes the embedded server").
import { randomUUID } from 'node:crypto';
import { JobDelay, type Deps, type QueuedJob } from '../core/deps.js';
import { extractIndexRows } from '../search/extract.js';
import { advanceJob, failJob, findJob, insertReindexJob, lockJob, nextResources, staleJobs, type JobRecord } from '../store/jobs.js';
import { writeVersions, type ResourceWrite } from '../store/resources.js';
import { repeat } from '../store/maintenance.js';
import { listTenants } from '../store/tenants.js';

/** The queue of reindex jobs (one of QUEUE_NAMES). */
export const REINDEX_QUEUE = 'reindex';

/** A reindex job on the queue names its row in the job table. */
interface ReindexJobData {
  tenantId: string;
  jobId: string;
}

/** Runs of a reindex job that end in an unexpected error (a lost connection) before the job row is failed. */
const REINDEX_ATTEMPTS = 3;
const REINDEX_BACKOFF_MS = 2000;

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

/**
 * Creates a reindex job for the tenant (all types, or `types`) and puts it on the reindex queue. When the queue cannot
 * take it (Redis down) the job still stands in the job table, and the sweeper queues it within a couple of minutes.
 */
export async function startReindex(deps: Deps, tenantId: string, types?: string[]): Promise<JobStatus> {
  const job = await insertReindexJob(deps.db, tenantId, randomUUID(), types);
  await queueReindex(deps, tenantId, job.id).catch((err) =>
    deps.log.warn({ err, tenantId, jobId: job.id }, 'reindex job not queued (the job queue is unavailable); the sweeper will queue it'),
  );
  return toStatus(job);
}

/**
 * Adds the job row's queue job (idempotent: nothing when it is already waiting, delayed or running somewhere). An
 * in-process queue is worked only here, and a process that runs workers works this queue, so either way the job runs.
 */
async function queueReindex(deps: Deps, tenantId: string, id: string): Promise<void> {
  if (deps.queues.kind === 'memory' || deps.config.runWorkers) startReindexWorker(deps);
  const data: ReindexJobData = { tenantId, jobId: id };
  await deps.queues.add(REINDEX_QUEUE, 'reindex', data, { jobId: `${tenantId}:${id}`, attempts: REINDEX_ATTEMPTS, backoffMs: REINDEX_BACKOFF_MS });
}

/** The job runtimes already working the reindex queue (one worker per runtime, however often this is called). */
const working = new WeakSet<Deps['queues']>();

/**
 * Works the reindex queue in this process (the server when RUN_WORKERS is on, `npm run worker`, the CLI's reindex).
 * Idempotent per job runtime.
 */
export function startReindexWorker(deps: Deps): void {
  if (working.has(deps.queues)) return;
  working.add(deps.queues);
  // one at a time per process: batches are small and each holds a connection (PGlite has one)
  deps.queues.work<ReindexJobData>(REINDEX_QUEUE, (job, signal) => processReindexJob(deps, job, signal), { concurrency: 1 });
}

export async function jobStatus(deps: Deps, tenantId: string, id: string): Promise<JobStatus | undefined> {
  const j = await findJob(deps.db, tenantId, id);
  return j ? toStatus(j) : undefined;
}

/** Waits until the job is no longer running (completed, failed or cancelled), whichever process runs it (CLI). */
export async function waitForJob(deps: Deps, tenantId: string, id: string, pollMs = 200): Promise<void> {
  for (;;) {
    const j = await findJob(deps.db, tenantId, id);
    if (!j || j.status !== 'running') return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * One run of a queued reindex job. Interrupted by shutdown it goes back to the queue (JobDelay: no attempt counted)
 * and continues from its cursor; an unexpected error is retried by the queue, and the last one fails the job row.
 */
async function processReindexJob(deps: Deps, job: QueuedJob<ReindexJobData>, signal: AbortSignal): Promise<void> {
  const { tenantId, jobId } = job.data;
  try {
    await runReindex(deps, tenantId, jobId, signal);
  } catch (err) {
    if (signal.aborted) throw new JobDelay(0, 'interrupted by shutdown');
    if (job.attemptsMade + 1 >= REINDEX_ATTEMPTS) await failJob(deps.db, tenantId, jobId, 'internal error').catch(() => undefined);
    throw err;
  }
  if (signal.aborted) throw new JobDelay(0, 'interrupted by shutdown');
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
 * After start (never before listening, never awaited by it) and then every minute: queue again the reindex jobs that
 * no process has advanced for `staleSeconds`, e.g. after a restart, a CLI that was killed, or Redis being down when
 * the job was created. Adding is idempotent by job id, so a job still queued or running somewhere is left alone. Per
 * tenant, because the job table is under row-level security.
 */
async function resumeStaleJobs(deps: Deps, staleSeconds = 60): Promise<number> {
  let resumed = 0;
  for (const t of await listTenants(deps.db)) {
    for (const j of await staleJobs(deps.db, t.id, staleSeconds)) {
      if (j.kind !== 'reindex') continue;
      await queueReindex(deps, t.id, j.id);
      resumed++;
    }
  }
  return resumed;
}

/** Queues stale jobs now (every running job, on the embedded database: no other process can be running it) and every minute. */
export function startJobSweeper(deps: Deps): () => void {
  const failure = 'could not resume background jobs';
  const sweep = (staleSeconds: number) =>
    resumeStaleJobs(deps, staleSeconds).then((resumed) => resumed && deps.log.info({ resumed }, 'queued stale background jobs again'));
  void sweep(deps.db.kind === 'pglite' ? 0 : 60).catch((err) => deps.log.warn({ err }, failure));
  return repeat(() => sweep(60), 60_000, deps.log, failure);
}
