// The job runtime on Redis (REDIS_URL): BullMQ queues shared by every API and worker process. Connections open on the
// first add(), work() or counts() (most test servers never touch a queue); adds fail within ADD_TIMEOUT_MS while Redis is down,
// workers keep reconnecting (ioredis) and only warn, rate-limited. Job ids may hold ':' (BullMQ's own separator).
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { JobDelay, type JobInfo, type JobOptions, type JobQueues, type JobState, type QueuedJob } from '../core/deps.js';
import type { Logger } from '../platform/log.js';
import type { Metrics } from '../platform/metrics.js';
import { BACKOFF_JITTER, CLOSE_WAIT_MS, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, DEFAULT_CONCURRENCY, failureReason, KEEP_FAILED, sleep } from './job-policy.js';

/** add(), counts(), list(), get() and retry() give up after this long when Redis does not answer. */
const ADD_TIMEOUT_MS = 2000;
/** A socket that has not closed this long after close() (Redis unreachable) is destroyed (ioredis waits 2 s). */
const DISCONNECT_MS = 300;
/** ioredis reconnects after this long (ms): soon after Redis is back (BullMQ's default grows to 20 s). */
const reconnectDelay = (attempt: number): number => Math.min(250 * attempt, 5000);
/** One warning per this long per source while Redis is unreachable. */
const WARN_EVERY_MS = 30_000;

type Handler = (job: QueuedJob<unknown>, signal: AbortSignal) => Promise<void>;

export class BullQueues implements JobQueues {
  readonly kind = 'bullmq' as const;
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly warned = new Map<string, number>();
  private closing?: Promise<void>;

  constructor(private readonly url: string, private readonly prefix: string, private readonly log: Logger, private readonly metrics: Metrics) {}

  async add<T>(queue: string, name: string, data: T, opts: JobOptions): Promise<void> {
    const q = this.queue(queue);
    const jobId = encodeId(opts.jobId);
    await this.withinDeadline(`add to ${queue}`, q, async (expired) => {
      // a failed job is kept for `jobs list`, but adding its id again starts it anew (BullMQ alone would ignore the add)
      const old = await q.getJob(jobId);
      if (old && (await old.getState()) === 'failed') await old.remove();
      if (expired()) return;
      await q.add(name, data, {
        jobId,
        delay: opts.delayMs && opts.delayMs > 0 ? opts.delayMs : undefined,
        attempts: opts.attempts ?? DEFAULT_ATTEMPTS,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? DEFAULT_BACKOFF_MS, jitter: BACKOFF_JITTER },
        removeOnComplete: true,
        removeOnFail: { count: KEEP_FAILED },
      });
    });
  }

  work<T>(queue: string, handler: (job: QueuedJob<T>, signal: AbortSignal) => Promise<void>, opts: { concurrency?: number } = {}): void {
    if (this.stopping.signal.aborted) throw new Error('the job queues are closed');
    if (this.workers.has(queue)) throw new Error(`queue '${queue}' already has a worker in this process`);
    const worker = new Worker(queue, (job: Job, token?: string) => this.process(queue, handler as Handler, job, token), {
      // blocking connections must wait for Redis forever (BullMQ requires maxRetriesPerRequest: null); ioredis reconnects
      connection: { url: this.url, maxRetriesPerRequest: null, disconnectTimeout: DISCONNECT_MS, retryStrategy: reconnectDelay },
      prefix: this.prefix,
      concurrency: Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY),
      // started once connected: a worker closed before Redis ever answered then leaves no stalled-job timer behind
      autorun: false,
      // a worker that dies mid-job (SIGKILL, a lost machine) gives its jobs back within ~15 s instead of ~60 s; live
      // workers renew the lock every 5 s, however long a job runs
      lockDuration: 10_000,
      stalledInterval: 5_000,
    });
    worker.on('error', (err) => this.warn(`worker ${queue}`, err));
    this.workers.set(queue, worker);
    worker
      .waitUntilReady()
      .then(() => (this.stopping.signal.aborted ? undefined : worker.run()))
      .catch((err) => this.stopping.signal.aborted || this.warn(`worker ${queue}`, err));
  }

  async counts(queue: string): Promise<Record<JobState, number>> {
    const q = this.queue(queue);
    const c = await this.withinDeadline(`counts of ${queue}`, q, () => q.getJobCounts('waiting', 'prioritized', 'paused', 'delayed', 'active', 'completed', 'failed'));
    return { waiting: c.waiting + c.prioritized + c.paused, delayed: c.delayed, active: c.active, completed: c.completed, failed: c.failed, unknown: 0 };
  }

  async list(queue: string, state: JobState, limit = 50): Promise<JobInfo[]> {
    if (state === 'unknown') return [];
    const q = this.queue(queue);
    return this.withinDeadline(`list of ${queue}`, q, async () => {
      const jobs = (await q.getJobs([state], 0, Math.max(1, limit) - 1, false)).filter((j): j is Job => !!j);
      return Promise.all(jobs.map(async (j) => info(queue, j, state, await runAt(q, j, state))));
    });
  }

  async get(queue: string, id: string): Promise<JobInfo | undefined> {
    const q = this.queue(queue);
    return this.withinDeadline(`get from ${queue}`, q, async () => {
      const job = await q.getJob(encodeId(id));
      if (!job) return undefined;
      const state = await job.getState();
      return info(queue, job, state, await runAt(q, job, state));
    });
  }

  async retry(queue: string, id: string): Promise<boolean> {
    const q = this.queue(queue);
    return this.withinDeadline(`retry in ${queue}`, q, async () => {
      const job = await q.getJob(encodeId(id));
      if (!job || (await job.getState()) !== 'failed') return false;
      // a manual retry starts over: the job gets all its attempts again
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    });
  }

  names(): string[] {
    return [...new Set([...this.queues.keys(), ...this.workers.keys()])].sort();
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  /** Signals the handlers, waits for them (briefly), then closes the workers and the queues' connections. */
  private async stop(): Promise<void> {
    this.stopping.abort();
    // paused workers fetch nothing more, so a job put back below is left for another process
    await Promise.all([...this.workers.values()].map((w) => w.pause(true).catch((err) => this.warn('pausing a worker', err))));
    const settled = Promise.allSettled([...this.running]).then(() => true);
    const finished = await Promise.race([settled, sleep(CLOSE_WAIT_MS).then(() => false)]);
    const closeAll = (what: string, closers: (() => Promise<void>)[]) =>
      Promise.all(closers.map((c) => Promise.race([c().catch((err) => this.warn(what, err)), sleep(CLOSE_WAIT_MS)])));
    // a worker whose handlers did not stop is closed by force: its jobs go back to the queue when their locks expire
    await closeAll('closing a worker', [...this.workers.values()].map((w) => () => w.close(!finished)));
    await closeAll('closing a queue', [...this.queues.values()].map((q) => () => q.close()));
  }

  /** The producer side of a queue, connected on first use; commands fail at once while Redis is unreachable. */
  private queue(name: string): Queue {
    if (this.stopping.signal.aborted) throw new Error('the job queues are closed');
    let q = this.queues.get(name);
    if (!q) {
      const connection: ConnectionOptions = { url: this.url, enableOfflineQueue: false, connectTimeout: ADD_TIMEOUT_MS, maxRetriesPerRequest: 1, disconnectTimeout: DISCONNECT_MS, retryStrategy: reconnectDelay };
      q = new Queue(name, { connection, prefix: this.prefix });
      q.on('error', (err) => this.warn(`queue ${name}`, err));
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * Runs `fn` once the queue's connection is ready, or rejects after ADD_TIMEOUT_MS. `expired()` tells a step that
   * finishes after the deadline not to go on (the caller was already told that nothing was done).
   */
  private async withinDeadline<R>(what: string, q: Queue, fn: (expired: () => boolean) => Promise<R>): Promise<R> {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`job queue unavailable: ${what} got no answer from Redis within ${ADD_TIMEOUT_MS} ms`));
      }, ADD_TIMEOUT_MS);
    });
    const work = q.waitUntilReady().then(() => {
      if (timedOut) throw new Error('expired');
      return fn(() => timedOut);
    });
    work.catch(() => undefined); // after the deadline its own failure is nobody's
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One run of a job: JobDelay and an interruption by close() put it back without counting an attempt. */
  private async process(queue: string, handler: Handler, job: Job, token: string | undefined): Promise<void> {
    if (this.stopping.signal.aborted) return this.putBack(queue, job, token, 0);
    const run = (async () => handler({ id: decodeId(job.id!), name: job.name, data: job.data, attemptsMade: job.attemptsMade }, this.stopping.signal))();
    const tracked = run.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(tracked);
    try {
      await run;
      this.metrics.jobs.inc({ queue, outcome: 'completed' });
    } catch (err) {
      const interrupted = this.stopping.signal.aborted;
      if (err instanceof JobDelay || interrupted) return this.putBack(queue, job, token, err instanceof JobDelay && !interrupted ? err.delayMs : 0);
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      this.metrics.jobs.inc({ queue, outcome: last ? 'failed' : 'retried' });
      if (last) this.log.error({ err, queue, jobId: decodeId(job.id!), attemptsMade: job.attemptsMade + 1 }, 'job failed');
      else this.log.warn({ err, queue, jobId: decodeId(job.id!), attemptsMade: job.attemptsMade + 1 }, 'job failed; retrying');
      throw err instanceof Error ? err : new Error(failureReason(err));
    } finally {
      this.running.delete(tracked);
    }
  }

  /** Back to the queue for `delayMs`, the attempt not counted (moveToDelayed skips it); DelayedError tells BullMQ so. */
  private async putBack(queue: string, job: Job, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(Date.now() + delayMs, token);
    this.metrics.jobs.inc({ queue, outcome: 'delayed' });
    throw new DelayedError();
  }

  /** Connection trouble: a warning per source at most every WARN_EVERY_MS (ioredis retries, the process goes on). */
  private warn(source: string, err: unknown): void {
    const now = Date.now();
    if (now - (this.warned.get(source) ?? 0) < WARN_EVERY_MS) return;
    this.warned.set(source, now);
    this.log.warn({ err, source }, 'job queue: Redis error (retrying)');
  }
}

/** When a delayed job runs next: its score in the delayed set (ms × 0x1000 + a sequence number, BullMQ's encoding). */
async function runAt(q: Queue, j: Job, state: string): Promise<number | undefined> {
  if (state !== 'delayed') return undefined;
  const score = await (await q.client).zscore(q.keys.delayed, j.id!);
  return score === null ? undefined : Math.floor(Number(score) / 0x1000);
}

function info(queue: string, j: Job, state: JobState | string, next: number | undefined): JobInfo {
  const known: JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];
  const s: JobState = state === 'prioritized' || state === 'waiting-children' ? 'waiting' : known.includes(state as JobState) ? (state as JobState) : 'unknown';
  return {
    queue,
    id: decodeId(j.id!),
    name: j.name,
    state: s,
    attemptsMade: j.attemptsMade,
    data: j.data,
    ...(j.failedReason ? { failedReason: j.failedReason } : {}),
    timestamp: j.timestamp,
    ...(next !== undefined ? { runAt: next } : {}),
    ...(j.finishedOn ? { finishedOn: j.finishedOn } : {}),
  };
}

/**
 * BullMQ refuses custom ids that contain ':' or look like integers; ours are often `${tenant}:${id}`. '%' and ':' are
 * percent-encoded, and an all-digit id gets a '%N' mark, so every id maps to an accepted one and back.
 */
export function encodeId(id: string): string {
  const escaped = id.replace(/%/g, '%25').replace(/:/g, '%3A');
  return `${parseInt(escaped, 10)}` === escaped ? `%N${escaped}` : escaped;
}

export function decodeId(id: string): string {
  return (id.startsWith('%N') ? id.slice(2) : id).replace(/%3A/g, ':').replace(/%25/g, '%');
}
