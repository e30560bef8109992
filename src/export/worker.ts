// The export queue (issue 12): a job row per export is the source of truth, a queue job runs it. A run interrupted by
// shutdown goes back to the queue; a process that died leaves a stale row, which the sweeper queues again, and the run
// continues from the row's cursor. The sweeper also removes the files of exports past EXPORT_RETENTION_HOURS.
import { join } from 'node:path';
import { JobDelay, type Deps, type QueuedJob } from '../core/deps.js';
import { endExport, expiredExports, staleExports } from '../store/export.js';
import { failJob } from '../store/jobs.js';
import { repeat } from '../store/maintenance.js';
import { listTenants } from '../store/tenants.js';
import { runExport } from './run.js';
import { LocalExportStorage, type ExportStorage } from './storage.js';

export const EXPORT_QUEUE = 'export';
const ATTEMPTS = 3;
const BACKOFF_MS = 2000;

interface ExportJobData {
  tenantId: string;
  jobId: string;
}

/** Where the worker finds the storage (the Exports service: tests may swap its storage). */
export interface StorageSource {
  storage: ExportStorage;
}

/** The shipped storage: files under `<DATA_DIR>/exports`. */
export function localExportStorage(deps: Deps): ExportStorage {
  return new LocalExportStorage(join(deps.config.dataDir, 'exports'));
}

const working = new WeakMap<Deps['queues'], StorageSource>();

export interface ExportWorkerOptions {
  /** Only these tenants' jobs are swept (tests share one database). */
  tenants?: (tenantId: string) => boolean;
  /** Running jobs not advanced for this long are queued again (default 60; on the embedded database 0 at start). */
  staleSeconds?: number;
}

/** Works the export queue in this process and starts its sweeper; idempotent per job runtime. Returns a stop function. */
export function startExportWorker(deps: Deps, source: StorageSource, opts: ExportWorkerOptions = {}): () => void {
  if (!working.has(deps.queues)) {
    working.set(deps.queues, source);
    deps.queues.work<ExportJobData>(EXPORT_QUEUE, (job, signal) => processExportJob(deps, source, job, signal), { concurrency: 1 });
  }
  const failure = 'could not sweep export jobs';
  const sweep = (stale: number) => sweepExports(deps, source, stale, opts.tenants);
  void sweep(opts.staleSeconds ?? (deps.db.kind === 'pglite' ? 0 : 60)).catch((err) => deps.log.warn({ err }, failure));
  return repeat(() => sweep(opts.staleSeconds ?? 60), 60_000, deps.log, failure);
}

/** Adds the queue job of an export row (idempotent by id); works the queue here when no other process will. */
export async function queueExport(deps: Deps, source: StorageSource, tenantId: string, id: string): Promise<void> {
  if ((deps.queues.kind === 'memory' || deps.config.runWorkers) && !working.has(deps.queues)) {
    working.set(deps.queues, source);
    deps.queues.work<ExportJobData>(EXPORT_QUEUE, (job, signal) => processExportJob(deps, source, job, signal), { concurrency: 1 });
  }
  const data: ExportJobData = { tenantId, jobId: id };
  await deps.queues.add(EXPORT_QUEUE, 'export', data, { jobId: `${tenantId}:${id}`, attempts: ATTEMPTS, backoffMs: BACKOFF_MS });
}

async function processExportJob(deps: Deps, source: StorageSource, job: QueuedJob<ExportJobData>, signal: AbortSignal): Promise<void> {
  const { tenantId, jobId } = job.data;
  let end;
  try {
    end = await runExport(deps, source.storage, tenantId, jobId, signal);
  } catch (err) {
    if (signal.aborted) throw new JobDelay(0, 'interrupted by shutdown');
    deps.log.warn({ err, tenantId, jobId }, 'export run failed');
    if (job.attemptsMade + 1 >= ATTEMPTS) await failJob(deps.db, tenantId, jobId, 'internal error').catch(() => undefined);
    throw err;
  }
  if (end === 'interrupted') throw new JobDelay(0, 'interrupted by shutdown');
}

async function sweepExports(deps: Deps, source: StorageSource, staleSeconds: number, only?: (t: string) => boolean): Promise<void> {
  for (const t of await listTenants(deps.db)) {
    if (only && !only(t.id)) continue;
    for (const id of await staleExports(deps.db, t.id, staleSeconds)) await queueExport(deps, source, t.id, id);
    for (const id of await expiredExports(deps.db, t.id, deps.config.exportRetentionHours)) {
      await source.storage.delete(t.id, id);
      await endExport(deps.db, t.id, id, 'expired');
    }
  }
}
