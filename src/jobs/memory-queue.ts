// The in-process job runtime (no REDIS_URL): BullMQ's behaviour in one process — dedupe by job id, delays, attempts
// with backoff, JobDelay, per-queue concurrency, failed jobs kept (bounded) for `jobs list|show|retry`. Timers are
// unref'd, so a queue never keeps the process alive; nothing survives a restart (the job table does, for $reindex).
import { JobDelay, type JobInfo, type JobOptions, type JobQueues, type JobState, type QueuedJob } from '../core/deps.js';
import type { Logger } from '../platform/log.js';
import type { Metrics } from '../platform/metrics.js';
import { backoffDelay, CLOSE_WAIT_MS, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, DEFAULT_CONCURRENCY, failureReason, KEEP_FAILED, sleep } from './job-policy.js';

type Handler = (job: QueuedJob<unknown>, signal: AbortSignal) => Promise<void>;

interface JobRecord {
  id: string;
  name: string;
  data: unknown;
  attempts: number;
  backoffMs: number;
  attemptsMade: number;
  state: 'waiting' | 'delayed' | 'active' | 'failed';
  timestamp: number;
  runAt?: number;
  finishedOn?: number;
  failedReason?: string;
  timer?: NodeJS.Timeout;
}

class MemoryQueue {
  /** Waiting, delayed and active jobs by id (the dedupe set). */
  readonly live = new Map<string, JobRecord>();
  /** Failed jobs, oldest first, at most KEEP_FAILED. */
  readonly failed = new Map<string, JobRecord>();
  readonly waiting: JobRecord[] = [];
  handler?: Handler;
  concurrency = DEFAULT_CONCURRENCY;
  active = 0;
}

export class MemoryQueues implements JobQueues {
  readonly kind = 'memory' as const;
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private closing?: Promise<void>;

  constructor(private readonly log: Logger, private readonly metrics: Metrics) {}

  async add<T>(queue: string, name: string, data: T, opts: JobOptions): Promise<void> {
    if (this.stopping.signal.aborted) throw new Error('the job queues are closed');
    const q = this.queue(queue);
    if (q.live.has(opts.jobId)) return;
    q.failed.delete(opts.jobId);
    const job: JobRecord = {
      id: opts.jobId,
      name,
      data,
      attempts: opts.attempts ?? DEFAULT_ATTEMPTS,
      backoffMs: opts.backoffMs ?? DEFAULT_BACKOFF_MS,
      attemptsMade: 0,
      state: 'waiting',
      timestamp: Date.now(),
    };
    q.live.set(job.id, job);
    if (opts.delayMs && opts.delayMs > 0) this.delay(queue, q, job, opts.delayMs);
    else this.enqueue(queue, q, job);
  }

  work<T>(queue: string, handler: (job: QueuedJob<T>, signal: AbortSignal) => Promise<void>, opts: { concurrency?: number } = {}): void {
    const q = this.queue(queue);
    if (q.handler) throw new Error(`queue '${queue}' already has a worker in this process`);
    q.handler = handler as Handler;
    q.concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.pump(queue, q);
  }

  async counts(queue: string): Promise<Record<JobState, number>> {
    const q = this.queue(queue);
    const counts: Record<JobState, number> = { waiting: 0, delayed: 0, active: 0, completed: 0, failed: q.failed.size, unknown: 0 };
    for (const j of q.live.values()) counts[j.state]++;
    return counts;
  }

  async list(queue: string, state: JobState, limit = 50): Promise<JobInfo[]> {
    const q = this.queue(queue);
    const jobs = state === 'failed' ? [...q.failed.values()] : [...q.live.values()].filter((j) => j.state === state);
    const when = (j: JobRecord) => j.finishedOn ?? j.timestamp;
    return jobs.sort((a, b) => when(b) - when(a)).slice(0, limit).map((j) => info(queue, j));
  }

  async get(queue: string, id: string): Promise<JobInfo | undefined> {
    const q = this.queue(queue);
    const job = q.live.get(id) ?? q.failed.get(id);
    return job && info(queue, job);
  }

  async retry(queue: string, id: string): Promise<boolean> {
    const q = this.queue(queue);
    const job = q.failed.get(id);
    if (!job || this.stopping.signal.aborted) return false;
    q.failed.delete(id);
    // a manual retry starts over: the job gets all its attempts again
    Object.assign(job, { attemptsMade: 0, failedReason: undefined, finishedOn: undefined });
    q.live.set(id, job);
    this.enqueue(queue, q, job);
    return true;
  }

  names(): string[] {
    return [...this.queues.keys()].sort();
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    this.stopping.abort();
    for (const q of this.queues.values()) for (const j of q.live.values()) clearTimeout(j.timer);
    await Promise.race([Promise.allSettled([...this.running]), sleep(CLOSE_WAIT_MS)]);
  }

  private queue(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new MemoryQueue()));
    return q;
  }

  private enqueue(name: string, q: MemoryQueue, job: JobRecord): void {
    job.state = 'waiting';
    job.runAt = undefined;
    q.waiting.push(job);
    this.pump(name, q);
  }

  private delay(name: string, q: MemoryQueue, job: JobRecord, ms: number): void {
    job.state = 'delayed';
    job.runAt = Date.now() + ms;
    job.timer = setTimeout(() => {
      job.timer = undefined;
      this.enqueue(name, q, job);
    }, ms);
    job.timer.unref();
  }

  /** Starts waiting jobs while the queue has a handler and room under its concurrency. */
  private pump(name: string, q: MemoryQueue): void {
    while (q.handler && q.active < q.concurrency && q.waiting.length && !this.stopping.signal.aborted) {
      const job = q.waiting.shift()!;
      const run = this.run(name, q, q.handler, job);
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }

  private async run(name: string, q: MemoryQueue, handler: Handler, job: JobRecord): Promise<void> {
    q.active++;
    job.state = 'active';
    try {
      await handler({ id: job.id, name: job.name, data: job.data, attemptsMade: job.attemptsMade }, this.stopping.signal);
      q.live.delete(job.id);
      this.metrics.jobs.inc({ queue: name, outcome: 'completed' });
    } catch (err) {
      this.settleFailure(name, q, job, err);
    } finally {
      q.active--;
      this.pump(name, q);
    }
  }

  /** JobDelay: again after its delay, no attempt counted; another error: an attempt, then backoff or failed for good. */
  private settleFailure(name: string, q: MemoryQueue, job: JobRecord, err: unknown): void {
    // interrupted by close(): nothing runs again in this process (BullMQ would hand it to another worker)
    if (this.stopping.signal.aborted) {
      job.state = 'waiting';
      return;
    }
    if (err instanceof JobDelay) {
      this.metrics.jobs.inc({ queue: name, outcome: 'delayed' });
      this.delay(name, q, job, err.delayMs);
      return;
    }
    job.attemptsMade++;
    if (job.attemptsMade < job.attempts) {
      this.metrics.jobs.inc({ queue: name, outcome: 'retried' });
      this.log.warn({ err, queue: name, jobId: job.id, attemptsMade: job.attemptsMade }, 'job failed; retrying');
      this.delay(name, q, job, backoffDelay(job.attemptsMade, job.backoffMs));
      return;
    }
    this.metrics.jobs.inc({ queue: name, outcome: 'failed' });
    this.log.error({ err, queue: name, jobId: job.id, attemptsMade: job.attemptsMade }, 'job failed');
    q.live.delete(job.id);
    Object.assign(job, { state: 'failed', failedReason: failureReason(err), finishedOn: Date.now(), runAt: undefined });
    q.failed.set(job.id, job);
    if (q.failed.size > KEEP_FAILED) q.failed.delete(q.failed.keys().next().value!);
  }
}

function info(queue: string, j: JobRecord): JobInfo {
  return {
    queue,
    id: j.id,
    name: j.name,
    state: j.state,
    attemptsMade: j.attemptsMade,
    data: j.data,
    ...(j.failedReason !== undefined ? { failedReason: j.failedReason } : {}),
    timestamp: j.timestamp,
    ...(j.runAt !== undefined ? { runAt: j.runAt } : {}),
    ...(j.finishedOn !== undefined ? { finishedOn: j.finishedOn } : {}),
  };
}
