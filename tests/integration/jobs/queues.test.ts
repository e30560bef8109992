// The job runtime (issue 10): the in-process queues and the BullMQ ones behave alike — a job runs once per id, delays,
// JobDelay without an attempt, attempts with backoff then a failure whose reason stays visible, retry, and close()
// firing the handlers' signals. BullMQ (when REDIS_URL is set) also shares work between processes on one prefix, and
// fails fast when Redis is unreachable. Every runtime here has its own key prefix, removed afterwards.
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { loadConfig, type Config } from '../../../src/config/index.js';
import { JobDelay, type JobQueues, type QueuedJob } from '../../../src/core/deps.js';
import { createQueues } from '../../../src/jobs/queues.js';
import { createLogger } from '../../../src/platform/log.js';
import { Metrics } from '../../../src/platform/metrics.js';

const REDIS_URL = process.env.REDIS_URL;
const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const Q = 'work';

interface Runtime {
  queues: JobQueues;
  metrics: Metrics;
  prefix: string;
}

const opened: { runtime: Runtime; redisUrl?: string }[] = [];

function newPrefix(): string {
  return `test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function runtime(redisUrl: string | undefined, prefix = newPrefix()): Runtime {
  const metrics = new Metrics();
  const config: Config = { ...loadConfig({ ...process.env, REDIS_URL: redisUrl ?? '' }), queuePrefix: prefix };
  const r = { queues: createQueues(config, log, metrics), metrics, prefix };
  opened.push({ runtime: r, redisUrl });
  return r;
}

afterEach(async () => {
  const all = opened.splice(0);
  await Promise.all(all.map(({ runtime: r }) => r.queues.close()));
  // the keys this test created on the shared Redis
  for (const prefix of new Set(all.filter((o) => o.redisUrl === REDIS_URL && REDIS_URL).map((o) => o.runtime.prefix))) {
    const q = new Queue(Q, { connection: { url: REDIS_URL }, prefix });
    await q.obliterate({ force: true });
    await q.close();
  }
});

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** metrics.jobs of one queue, by outcome. */
async function outcomes(m: Metrics, queue = Q): Promise<Record<string, number>> {
  const { values } = await m.jobs.get();
  return Object.fromEntries(values.filter((v) => v.labels.queue === queue).map((v) => [String(v.labels.outcome), v.value]));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The behaviour both runtimes promise (src/core/deps.ts JobQueues). */
function behavesAsAJobRuntime(make: () => Runtime): void {
  it('runs a job with its name and data, once, and keeps no completed job', async () => {
    const { queues, metrics } = make();
    const seen: QueuedJob[] = [];
    queues.work(Q, async (job) => void seen.push(job));
    await queues.add(Q, 'greet', { n: 1 }, { jobId: 'tenant-a:1' });
    await waitFor('the job', () => seen.length === 1);
    expect(seen[0]).toEqual({ id: 'tenant-a:1', name: 'greet', data: { n: 1 }, attemptsMade: 0 });
    await waitFor('completion', async () => (await outcomes(metrics)).completed === 1);
    expect(await queues.get(Q, 'tenant-a:1')).toBeUndefined();
    expect(await queues.counts(Q)).toMatchObject({ waiting: 0, delayed: 0, active: 0, failed: 0 });
    expect(queues.names()).toContain(Q);
  });

  it('adds nothing for an id that is waiting, delayed or active, and takes the id again once the job completed', async () => {
    const { queues } = make();
    for (let i = 0; i < 3; i++) await queues.add(Q, 'x', { i }, { jobId: 'x' });
    await queues.add(Q, 'later', {}, { jobId: 'later', delayMs: 60_000 });
    await queues.add(Q, 'later', {}, { jobId: 'later' });
    expect(await queues.counts(Q)).toMatchObject({ waiting: 1, delayed: 1 });
    expect((await queues.get(Q, 'x'))?.data).toEqual({ i: 0 });

    const runs: unknown[] = [];
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    queues.work<{ i: number }>(Q, async (job) => {
      runs.push(job.data.i);
      if (runs.length === 1) await gate;
    });
    await waitFor('the first run', () => runs.length === 1);
    await queues.add(Q, 'x', { i: 3 }, { jobId: 'x' });
    expect(await queues.counts(Q)).toMatchObject({ active: 1, waiting: 0 });
    release();
    await waitFor('completion', async () => (await queues.get(Q, 'x')) === undefined);
    await queues.add(Q, 'x', { i: 4 }, { jobId: 'x' });
    await waitFor('the second run', () => runs.length === 2);
    expect(runs).toEqual([0, 4]);
  });

  it('runs a delayed job after its delay', async () => {
    const { queues } = make();
    const added = Date.now();
    let ranAt = 0;
    queues.work(Q, async () => void (ranAt = Date.now()));
    await queues.add(Q, 'd', {}, { jobId: 'd', delayMs: 500 });
    const info = await queues.get(Q, 'd');
    expect(info?.state).toBe('delayed');
    expect(info?.runAt).toBeGreaterThanOrEqual(added + 450);
    expect(info?.runAt).toBeLessThanOrEqual(Date.now() + 550);
    await waitFor('the run', () => ranAt > 0);
    expect(ranAt - added).toBeGreaterThanOrEqual(450);
  });

  it('runs a job that throws JobDelay again after the delay, without counting an attempt', async () => {
    const { queues, metrics } = make();
    const runs: { attemptsMade: number; at: number }[] = [];
    queues.work(Q, async (job) => {
      runs.push({ attemptsMade: job.attemptsMade, at: Date.now() });
      if (runs.length < 3) throw new JobDelay(150, 'not yet');
    });
    // one attempt only: were a JobDelay counted, the job would fail at once
    await queues.add(Q, 'poll', {}, { jobId: 'poll', attempts: 1 });
    await waitFor('three runs', () => runs.length === 3);
    expect(runs.map((r) => r.attemptsMade)).toEqual([0, 0, 0]);
    expect(runs[1].at - runs[0].at).toBeGreaterThanOrEqual(130);
    await waitFor('completion', async () => (await outcomes(metrics)).completed === 1);
    expect(await outcomes(metrics)).toMatchObject({ delayed: 2, completed: 1 });
    expect((await outcomes(metrics)).failed ?? 0).toBe(0);
  });

  it('retries a throwing job with exponential backoff, then fails it for good with its reason visible', async () => {
    const { queues, metrics } = make();
    const runs: { attemptsMade: number; at: number }[] = [];
    queues.work(Q, async (job) => {
      runs.push({ attemptsMade: job.attemptsMade, at: Date.now() });
      throw new Error(`boom ${runs.length}`);
    });
    await queues.add(Q, 'flaky', { k: 'v' }, { jobId: 'flaky:1', attempts: 3, backoffMs: 200 });
    await waitFor('the failure', async () => (await queues.get(Q, 'flaky:1'))?.state === 'failed');
    expect(runs.map((r) => r.attemptsMade)).toEqual([0, 1, 2]);
    // 200 ms then 400 ms, each with up to 50% jitter off
    expect(runs[1].at - runs[0].at).toBeGreaterThanOrEqual(90);
    expect(runs[2].at - runs[1].at).toBeGreaterThanOrEqual(190);
    const info = await queues.get(Q, 'flaky:1');
    expect(info).toMatchObject({ queue: Q, id: 'flaky:1', name: 'flaky', state: 'failed', attemptsMade: 3, failedReason: 'boom 3', data: { k: 'v' } });
    expect(info?.finishedOn).toBeGreaterThan(0);
    const failed = await queues.list(Q, 'failed');
    expect(failed.map((j) => [j.id, j.failedReason])).toEqual([['flaky:1', 'boom 3']]);
    expect((await queues.counts(Q)).failed).toBe(1);
    expect(await outcomes(metrics)).toMatchObject({ retried: 2, failed: 1 });
  });

  it('retry() runs a failed job again (with all its attempts); false for a job that is not failed', async () => {
    const { queues } = make();
    let healthy = false;
    let runs = 0;
    queues.work(Q, async () => {
      runs++;
      if (!healthy) throw new Error('down');
    });
    await queues.add(Q, 'r', {}, { jobId: 'r' });
    await waitFor('the failure', async () => (await queues.get(Q, 'r'))?.state === 'failed');
    expect(await queues.retry(Q, 'no-such-job')).toBe(false);
    healthy = true;
    expect(await queues.retry(Q, 'r')).toBe(true);
    await waitFor('the second run', async () => runs === 2 && (await queues.get(Q, 'r')) === undefined);
    expect(await queues.retry(Q, 'r')).toBe(false);
    // adding the id of a failed job starts it anew as well
    healthy = false;
    await queues.add(Q, 'r', {}, { jobId: 'r' });
    await waitFor('the third run failed', async () => runs === 3 && (await queues.get(Q, 'r'))?.state === 'failed');
    await queues.add(Q, 'r', {}, { jobId: 'r' });
    await waitFor('a fourth run', () => runs === 4);
  });

  it("close() fires the handlers' signals, waits for them, and may be called twice", async () => {
    const { queues } = make();
    let signalled = false;
    let started = false;
    queues.work(Q, async (_job, signal) => {
      started = true;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await new Promise((r) => setTimeout(r, 100)); // the handler's own cleanup, waited for
      signalled = signal.aborted;
      throw new Error('stopped');
    });
    await queues.add(Q, 'long', {}, { jobId: 'long' });
    await waitFor('the handler', () => started);
    const t0 = Date.now();
    await Promise.all([queues.close(), queues.close()]);
    expect(signalled).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(queues.add(Q, 'after', {}, { jobId: 'after' })).rejects.toThrow(/closed/);
  });
}

describe('in-process job queues (no REDIS_URL)', () => {
  behavesAsAJobRuntime(() => runtime(undefined));

  it('is what createQueues builds without REDIS_URL', () => {
    expect(runtime(undefined).queues.kind).toBe('memory');
  });
});

(REDIS_URL ? describe : describe.skip)('BullMQ job queues (REDIS_URL)', () => {
  behavesAsAJobRuntime(() => runtime(REDIS_URL));

  it('shares the work of one prefix between two runtimes (two processes), each job processed once', async () => {
    const a = runtime(REDIS_URL);
    const b = runtime(REDIS_URL, a.prefix);
    const done: { id: string; by: string }[] = [];
    const handler = (by: string) => async (job: QueuedJob) => {
      await new Promise((r) => setTimeout(r, 30));
      done.push({ id: job.id, by });
    };
    a.queues.work(Q, handler('a'), { concurrency: 1 });
    b.queues.work(Q, handler('b'), { concurrency: 1 });
    for (let i = 0; i < 20; i++) await a.queues.add(Q, 'share', { i }, { jobId: `share:${i}` });
    await waitFor('every job', () => done.length >= 20);
    await new Promise((r) => setTimeout(r, 200)); // no job runs twice, even late
    expect(done.map((d) => d.id).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `share:${i}`).sort());
    expect(new Set(done.map((d) => d.by))).toEqual(new Set(['a', 'b']));
  });

  it('puts a job interrupted by close() back on the queue, its attempt not counted', async () => {
    const a = runtime(REDIS_URL);
    let started = false;
    a.queues.work(Q, async (_job, signal) => {
      started = true;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('interrupted');
    });
    await a.queues.add(Q, 'long', {}, { jobId: 'long', attempts: 1 });
    await waitFor('the handler', () => started);
    await a.queues.close();
    const b = runtime(REDIS_URL, a.prefix);
    const info = await b.queues.get(Q, 'long');
    expect(['waiting', 'delayed']).toContain(info?.state);
    expect(info?.attemptsMade).toBe(0);
  });

  it('is what createQueues builds with REDIS_URL', () => {
    expect(runtime(REDIS_URL).queues.kind).toBe('bullmq');
  });
});

describe('BullMQ job queues when Redis is unreachable', () => {
  it('connects to nothing before the first use, and closes at once', async () => {
    const { queues } = runtime(`redis://127.0.0.1:${await freePort()}`);
    const t0 = Date.now();
    await queues.close();
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('rejects add() within 3 s, keeps a worker alive without crashing, and still closes', async () => {
    const { queues } = runtime(`redis://127.0.0.1:${await freePort()}`);
    queues.work(Q, async () => {});
    const t0 = Date.now();
    await expect(queues.add(Q, 'x', {}, { jobId: 'x' })).rejects.toThrow(/unavailable/);
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect(queues.counts(Q)).rejects.toThrow(/unavailable/);
    const t1 = Date.now();
    await queues.close();
    expect(Date.now() - t1).toBeLessThan(8000);
    // ioredis destroys a socket that never connected a moment after close (src/jobs/bullmq-queue.ts, DISCONNECT_MS)
    await new Promise((r) => setTimeout(r, 500));
  }, 20_000);
});
