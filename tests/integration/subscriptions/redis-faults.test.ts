// Issue 10, faults with Redis (the PostgreSQL + Redis run only): Redis stopped while writes continue — writes keep
// succeeding, and when Redis returns every event is delivered, numbered without gaps, none twice. The test runs its
// own redis-server on a free port and stops only that one.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newPatient, postReport, subscribe, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const withRedis = process.env.REDIS_URL ? describe : describe.skip;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (/Ready to accept connections/.test(d.toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
  });
  return p;
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

withRedis('Redis stopped while writes continue', () => {
  let redis: ChildProcess | undefined;
  let port: number;
  let server: TestServer;
  let t: TestTenant;
  let hook: Receiver;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    server = await startServer({ redisUrl: `redis://127.0.0.1:${port}` }, { workers: true });
    t = await newTenant(server, 'sred');
    hook = await startReceiver();
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await hook?.close();
    await stop(redis);
  });

  it('writes keep succeeding; when Redis returns every event is delivered once, numbered without gaps', async () => {
    const patient = await newPatient(t);
    const { id } = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), hook.url));
    await waitStatus(t, id, 'active');
    await postReport(t, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 1, 15_000, 'the first event');

    await stop(redis);
    for (let i = 0; i < 4; i++) await postReport(t, patient, 'final'); // each asserts 200: the writes do not need Redis
    const counted = await server.deps.db.admin().query<{ n: string }>('SELECT events_since_start AS n FROM subscription_state WHERE tenant_id = $1 AND id = $2', [t.slug, id]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(hook.of('event-notification')).toHaveLength(1);

    redis = await startRedis(port);
    await waitFor(() => hook.of('event-notification').length >= 5, 60_000, 'the four events after Redis returned');
    await new Promise((r) => setTimeout(r, 1000));
    const numbers = hook.of('event-notification').map((r) => Number(statusOf(r.json).events[0]['event-number']));
    expect(numbers.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(Number(counted.rows[0].n)).toBeGreaterThanOrEqual(1);
    expect((await t.api.get(`${t.path}/Subscription/${id}`)).body.status).toBe('active');
  }, 120_000);
});
