// CLI `jobs`: the job table (reindex progress, cancel) and the job queues (counts, failed jobs and why, show, retry).
// The queues are shared only on Redis; without REDIS_URL each process has its own, so there is nothing to show here.
import { parseArgs } from 'node:util';
import type { Deps, JobInfo } from '../core/deps.js';
import { JOB_STATES as QUEUE_STATES, QUEUE_NAMES } from '../jobs/queues.js';
import { cancelJob, listJobs, type JobState } from '../store/jobs.js';
import { findTenant, listTenants } from '../store/tenants.js';

export const JOBS_USAGE = `  jobs list [<slug>] [--status running|completed|failed|cancelled]   background jobs with their progress, then
                                            each queue's counts and failed jobs with their reasons (REDIS_URL)
  jobs cancel <slug> <job-id>               stop a running job (at its next batch, in whichever process runs it)
  jobs show <queue> <job-id>                one queued job: state, attempts, data, why it failed (REDIS_URL)
  jobs retry <queue> <job-id>               run a failed queued job again (queues: ${QUEUE_NAMES.join(', ')})`;

const ROW_STATES = ['running', 'completed', 'failed', 'cancelled'];
/** Failed jobs listed per queue. */
const FAILED_SHOWN = 20;

export async function jobsCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number> {
  if (sub === 'list') return listCommand(deps, rest);
  if (sub === 'cancel' && rest[0] && rest[1]) {
    if (!(await findTenant(deps.db, rest[0]))) {
      console.error(`error: unknown tenant '${rest[0]}'`);
      return 1;
    }
    if (!(await cancelJob(deps.db, rest[0], rest[1]))) {
      console.error(`error: no running job '${rest[1]}' in ${rest[0]}`);
      return 1;
    }
    console.log(`job ${rest[1]} cancelled (whichever process runs it stops at its next batch)`);
    return 0;
  }
  if ((sub === 'show' || sub === 'retry') && rest[0] && rest[1]) {
    const [queue, id] = rest;
    if (!(QUEUE_NAMES as readonly string[]).includes(queue)) {
      console.error(`error: unknown queue '${queue}' (queues: ${QUEUE_NAMES.join(', ')})`);
      return 2;
    }
    if (deps.queues.kind === 'memory') {
      console.error('error: REDIS_URL is unset: every process has its own in-process queue, which this CLI cannot see');
      return 1;
    }
    return sub === 'show' ? showCommand(deps, queue, id) : retryCommand(deps, queue, id);
  }
  console.error(`usage:\n${JOBS_USAGE}`);
  return 2;
}

async function listCommand(deps: Deps, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, options: { status: { type: 'string' } }, allowPositionals: true });
  if (values.status !== undefined && !ROW_STATES.includes(values.status)) {
    console.error(`usage: jobs list [<slug>] [--status ${ROW_STATES.join('|')}]`);
    return 2;
  }
  const slug = positionals[0];
  if (slug && !(await findTenant(deps.db, slug))) {
    console.error(`error: unknown tenant '${slug}'`);
    return 1;
  }
  const tenants = slug ? [slug] : (await listTenants(deps.db)).map((t) => t.id);
  let n = 0;
  for (const tenant of tenants) {
    for (const j of await listJobs(deps.db, tenant, values.status as JobState | undefined)) {
      const types = j.params.types?.join(',') ?? 'all types';
      console.log(`${tenant}\t${j.id}\t${j.kind}\t${j.status}\t${j.done}/${j.total}\t${types}\tupdated ${j.updatedAt.toISOString()}${j.error ? `\t${j.error}` : ''}`);
      n++;
    }
  }
  if (!n) console.error('no jobs');
  if (deps.queues.kind === 'memory') {
    console.error('queues: in-process (REDIS_URL unset); each process has its own, so there are none to show here');
    return 0;
  }
  return listQueues(deps, slug);
}

/** Per queue: `queue <name>\twaiting 0\tdelayed 0\t...`, then its failed jobs (of the tenant, when one is named). */
async function listQueues(deps: Deps, slug: string | undefined): Promise<number> {
  for (const queue of [...new Set([...QUEUE_NAMES, ...deps.queues.names()])]) {
    try {
      const counts = await deps.queues.counts(queue);
      console.log(`queue ${queue}\t${QUEUE_STATES.filter((s) => s !== 'unknown').map((s) => `${s} ${counts[s]}`).join('\t')}`);
      const failed = (await deps.queues.list(queue, 'failed', FAILED_SHOWN)).filter((j) => !slug || tenantOf(j) === slug);
      for (const j of failed) console.log(`  failed\t${j.id}\t${j.name}\tattempts ${j.attemptsMade}\t${time(j.finishedOn)}\t${j.failedReason ?? ''}`);
    } catch (err) {
      console.error(`error: queue ${queue}: ${(err as Error).message}`);
      return 1;
    }
  }
  return 0;
}

async function showCommand(deps: Deps, queue: string, id: string): Promise<number> {
  const job = await deps.queues.get(queue, id);
  if (!job) {
    console.error(`error: no job '${id}' in queue ${queue} (completed jobs are not kept)`);
    return 1;
  }
  console.log(`queue\t${job.queue}\nid\t${job.id}\nname\t${job.name}\nstate\t${job.state}\nattempts\t${job.attemptsMade}`);
  console.log(`added\t${time(job.timestamp)}`);
  if (job.runAt) console.log(`runs at\t${time(job.runAt)}`);
  if (job.finishedOn) console.log(`finished\t${time(job.finishedOn)}`);
  if (job.failedReason) console.log(`reason\t${job.failedReason}`);
  console.log(`data\t${JSON.stringify(job.data)}`);
  return 0;
}

async function retryCommand(deps: Deps, queue: string, id: string): Promise<number> {
  if (!(await deps.queues.retry(queue, id))) {
    console.error(`error: '${id}' is not a failed job of queue ${queue}`);
    return 1;
  }
  console.log(`job ${id} of queue ${queue} queued again`);
  return 0;
}

/** The tenant a queued job is for, when its data names one. */
function tenantOf(j: JobInfo): string | undefined {
  const t = (j.data as { tenantId?: unknown } | null)?.tenantId;
  return typeof t === 'string' ? t : undefined;
}

function time(ms: number | undefined): string {
  return ms ? new Date(ms).toISOString() : '-';
}
