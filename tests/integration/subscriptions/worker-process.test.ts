// Issue 10, separate worker processes (the PostgreSQL + Redis run only): an API process with RUN_WORKERS off takes
// the writes, `npm run worker` processes dispatch and deliver; a worker killed (SIGKILL) in the middle of a delivery
// loses nothing: another worker delivers the event (at least once), numbering stays gapless. The test works on a
// database of its own, so its workers never touch other test files' tenants, and kills only processes it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import pg from 'pg';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newPatient, postReport, subscribe, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const withServices = process.env.REDIS_URL && process.env.DATABASE_URL && process.env.DATABASE_ADMIN_URL ? describe : describe.skip;

/** The same server and credentials, another database. */
function onDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.href;
}

withServices('npm run worker beside an API process', () => {
  const db = `tenfhir_worker_${randomBytes(4).toString('hex')}`;
  const prefix = `test-worker-${randomBytes(4).toString('hex')}`;
  let databaseUrl: string;
  let adminUrl: string;
  let server: TestServer;
  let t: TestTenant;
  let hook: Receiver;
  const workers: ChildProcess[] = [];

  function startWorker(): ChildProcess {
    const env = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATABASE_ADMIN_URL: adminUrl,
      QUEUE_PREFIX: prefix,
      PUBLIC_BASE_URL: server.origin,
      SUBSCRIPTIONS_ALLOW_LOOPBACK: 'true',
      OUTBOX_POLL_MS: '200',
      LOG_LEVEL: 'warn',
    };
    const w = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/worker.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    w.stderr!.on('data', () => undefined);
    workers.push(w);
    return w;
  }

  async function kill(w: ChildProcess, signal: NodeJS.Signals): Promise<void> {
    if (w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise((r) => w.once('exit', r));
    w.kill(signal);
    await exited;
  }

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: onDatabase(process.env.DATABASE_ADMIN_URL!, 'postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    databaseUrl = onDatabase(process.env.DATABASE_URL!, db);
    adminUrl = onDatabase(process.env.DATABASE_ADMIN_URL!, db);
    // the API process: no workers of its own (RUN_WORKERS=false in production)
    server = await startServer({ databaseUrl, databaseAdminUrl: adminUrl, queuePrefix: prefix, runWorkers: false });
    t = await newTenant(server, 'swrk');
    hook = await startReceiver();
  }, 60_000);

  afterAll(async () => {
    for (const w of workers) await kill(w, 'SIGKILL');
    await server?.close();
    await hook?.close();
    const admin = new pg.Client({ connectionString: onDatabase(process.env.DATABASE_ADMIN_URL!, 'postgres') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  }, 60_000);

  it('a worker process delivers; killed mid-delivery, the next worker delivers the same event, and numbering has no gap', async () => {
    const first = startWorker();
    const patient = await newPatient(t);
    const { id } = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), hook.url));
    await waitStatus(t, id, 'active', 60_000);
    await postReport(t, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 1, 30_000, 'event 1 through the worker process');

    // the next event's delivery hangs at the receiver; the worker is killed while it waits
    const hanging: ServerResponse[] = [];
    hook.behave((r, res) => (statusOf(r.json).type === 'event-notification' ? hanging.push(res) : res.writeHead(200).end()));
    await postReport(t, patient, 'final');
    await waitFor(() => hanging.length >= 1, 30_000, 'the delivery of event 2 in flight');
    await kill(first, 'SIGKILL');
    for (const res of hanging) res.socket?.destroy();
    hook.behave((_r, res) => res.writeHead(200).end());
    await postReport(t, patient, 'final');

    startWorker();
    await waitFor(() => {
      const n = new Set(hook.of('event-notification').map((r) => statusOf(r.json).events[0]['event-number']));
      return n.has('2') && n.has('3');
    }, 90_000, 'events 2 and 3 after the restart');
    const numbers = [...new Set(hook.of('event-notification').map((r) => Number(statusOf(r.json).events[0]['event-number'])))].sort();
    expect(numbers).toEqual([1, 2, 3]);
    // delivered in order: event 3 never before event 2 was accepted
    const accepted = hook.of('event-notification').map((r) => Number(statusOf(r.json).events[0]['event-number']));
    expect(accepted.lastIndexOf(2)).toBeLessThan(accepted.lastIndexOf(3));
  }, 180_000);
});
