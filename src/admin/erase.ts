// Termination and erasure of a tenant (issue 11; docs/scaling.md, "Termination and erasure"): once a terminated
// tenant's grace period (TENANT_ERASURE_GRACE_DAYS) has passed, a job on the `tenant-erasure` queue removes every row
// of it in every table, its export files and its authorization artifacts, and leaves one platform-level record.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { JobDelay, type Deps, type QueuedJob } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { isTenantSlug, PLATFORM } from '../core/tenant.js';
import { eraseTenantRows, erasureRecords, erasureState, terminatedTenants } from '../store/erase.js';
import { tenantChanged } from '../tenancy/tenant-cache.js';
import { recordAuthEvents } from '../auth/audit.js';

export const ERASURE_QUEUE = 'tenant-erasure';
/**
 * The longest a job waits before it looks again: the in-process queue's timers cannot wait longer than ~24.8 days
 * (setTimeout), and a daily look also follows a grace period changed in the tenant row.
 */
const MAX_DELAY_MS = 24 * 3600_000;
const ATTEMPTS = 5;
const BACKOFF_MS = 60_000;
/** Who asks for an erasure nobody named (a job re-scheduled at start). */
const SERVER = 'tenfhir-server';

interface ErasureJobData {
  tenant: string;
  /** Who terminated the tenant (the account, as the audit trail names it). */
  by: string;
  /** When the erasure was scheduled, and when it is due (ISO). */
  requestedAt: string;
  at: string;
}

export interface Erasure {
  /** Rows deleted per table (every table with a tenant_id column, plus `tenant` and `oidc_payload`). */
  rowCounts: Record<string, number>;
  filesRemoved: number;
  erasedAt: string;
  /** True when the tenant had been erased before this call: nothing was done, the earlier record is returned. */
  alreadyErased: boolean;
}

const working = new WeakMap<Deps['queues'], true>();

/** Works the erasure queue in this process (once per job runtime). */
function work(deps: Deps): void {
  if (working.has(deps.queues)) return;
  working.set(deps.queues, true);
  deps.queues.work<ErasureJobData>(ERASURE_QUEUE, (job) => processErasureJob(deps, job), { concurrency: 1 });
}

/**
 * Schedules the erasure of `slug` at `at` (src/admin/tenants.ts terminateTenant: now + TENANT_ERASURE_GRACE_DAYS). One job per
 * tenant (adding it again adds nothing). On Redis the job survives restarts; the in-process queue does not, so
 * startErasureWorker schedules every terminated tenant again at start. The job checks the tenant row when it runs:
 * a tenant that is no longer terminated, or whose terminate_after moved, is not erased early.
 */
export async function scheduleErasure(deps: Deps, slug: string, at: Date, by: string = SERVER): Promise<void> {
  if (deps.queues.kind === 'memory' || deps.config.runWorkers) work(deps);
  const now = deps.clock();
  const data: ErasureJobData = { tenant: slug, by, requestedAt: now.toISOString(), at: at.toISOString() };
  const delayMs = Math.min(Math.max(0, at.getTime() - now.getTime()), MAX_DELAY_MS);
  await deps.queues.add(ERASURE_QUEUE, 'erase', data, { jobId: slug, delayMs, attempts: ATTEMPTS, backoffMs: BACKOFF_MS });
}

export interface ErasureWorkerOptions {
  /** Only these tenants are scheduled again (tests share one database). */
  tenants?: (slug: string) => boolean;
}

/**
 * Works the erasure queue here and schedules the erasure of every terminated tenant whose grace period has an end
 * (idempotent: a job already waiting is kept). main.ts and worker.ts call it at start.
 */
export async function startErasureWorker(deps: Deps, opts: ErasureWorkerOptions = {}): Promise<void> {
  work(deps);
  try {
    for (const t of await terminatedTenants(deps.db)) {
      if (!opts.tenants || opts.tenants(t.slug)) await scheduleErasure(deps, t.slug, t.terminateAfter);
    }
  } catch (err) {
    deps.log.warn({ err }, 'could not schedule the erasure of terminated tenants');
  }
}

async function processErasureJob(deps: Deps, job: QueuedJob<ErasureJobData>): Promise<void> {
  const { tenant, by, requestedAt, at } = job.data;
  const state = await erasureState(deps.db, tenant);
  if (!state) return;
  if (state.status !== 'terminated') {
    deps.log.info({ tenantId: tenant, status: state.status }, 'tenant erasure skipped: the tenant is not terminated');
    return;
  }
  const due = (state.terminateAfter ?? new Date(at)).getTime() - deps.clock().getTime();
  if (due > 0) throw new JobDelay(Math.min(due, MAX_DELAY_MS), 'grace period');
  await eraseTenant(deps, tenant, by, { requestedAt: new Date(requestedAt) });
}

/**
 * Erases terminated tenant `slug` now: in ONE transaction every row with its tenant_id in every table (enumerated
 * from the catalog), its authorization artifacts and clients (their secrets and keys with them), its audit trail and
 * the tenant row, plus the platform's tenant_erasure record (who, when, rows per table); its export files before.
 * Refuses a tenant that is not terminated (409 TENANT_NOT_TERMINATED) and the platform tenant. Running it again is
 * harmless: it returns the earlier record. `by`: who terminated the tenant or asks for the erasure.
 */
export async function eraseTenant(deps: Deps, slug: string, by: string, opts: { requestedAt?: Date } = {}): Promise<Erasure> {
  if (slug === PLATFORM) {
    throw new FhirError('forbidden', 'The platform tenant holds the platform administrators and the shared catalog; it cannot be erased', { code: 'TENANT_PLATFORM_PROTECTED' });
  }
  if (!isTenantSlug(slug)) throw new FhirError('not-found', `Unknown tenant '${slug}'`, { code: 'TENANT_UNKNOWN' });
  const state = await erasureState(deps.db, slug);
  if (!state) return earlierErasure(deps, slug);
  if (state.status !== 'terminated') throw notTerminated(slug, state.status);
  // this process's spooled audit records of the tenant reach the database first, and go with the rest
  await deps.audit.settle();
  const filesRemoved = await removeTenantFiles(deps, slug);
  const erasedAt = deps.clock();
  const out = await eraseTenantRows(deps.db, slug, { id: deps.newId(), requestedBy: by, requestedAt: opts.requestedAt ?? erasedAt, erasedAt, filesRemoved });
  if (out.state === 'missing') return earlierErasure(deps, slug);
  if (out.state === 'refused') throw notTerminated(slug, out.status);
  // an export that was still writing when the directory went leaves nothing behind either
  await removeTenantFiles(deps, slug);
  // this process forgets the tenant at once (others within TENANT_CACHE_TTL_MS; they already answered 404 for it)
  tenantChanged(deps.db, slug);
  deps.searchParams.invalidate(slug);
  const rows = Object.values(out.rowCounts).reduce((a, b) => a + b, 0);
  deps.log.info({ tenantId: slug, rows, filesRemoved }, 'tenant erased');
  // the tenant's own audit trail is gone with it: the platform's trail keeps the act
  await recordAuthEvents(deps, PLATFORM, {
    category: 'admin',
    subtype: 'tenant-erase',
    action: 'D',
    outcome: 0,
    agent: { userSub: by },
    detail: { tenant: slug, rows, filesRemoved },
  });
  return { rowCounts: out.rowCounts, filesRemoved, erasedAt: erasedAt.toISOString(), alreadyErased: false };
}

function notTerminated(slug: string, status: string): FhirError {
  return new FhirError('conflict', `Tenant '${slug}' is ${status}: only a terminated tenant can be erased`, { code: 'TENANT_NOT_TERMINATED' });
}

/** The answer for a tenant that has no row any more: its latest erasure record (files left over are removed). */
async function earlierErasure(deps: Deps, slug: string): Promise<Erasure> {
  const [last] = await erasureRecords(deps.db, slug);
  if (!last) throw new FhirError('not-found', `Unknown tenant '${slug}'`, { code: 'TENANT_UNKNOWN' });
  await removeTenantFiles(deps, slug);
  return { rowCounts: last.rowCounts, filesRemoved: last.filesRemoved, erasedAt: last.erasedAt, alreadyErased: true };
}

/** Removes the tenant's export files (`<DATA_DIR>/exports/<tenant>`, src/export/storage.ts); returns how many there were. */
async function removeTenantFiles(deps: Deps, slug: string): Promise<number> {
  const dir = join(deps.config.dataDir, 'exports', slug);
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  await rm(dir, { recursive: true, force: true });
  return entries.filter((e) => e.isFile()).length;
}
