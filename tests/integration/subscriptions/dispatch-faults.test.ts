// Issue 10, faults of the pipeline inside one database: the server restarted with events in the outbox (nothing is
// lost: the next process dispatches them), and two dispatchers running at once (each event numbered and delivered
// once per subscription, numbers without gaps).
import { authed, newTenant, startServer, tokenFor, type TestServer } from '../../helpers/server.js';
import { newPatient, postReport, subscribe, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const servers: TestServer[] = [];
const receivers: Receiver[] = [];

afterAll(async () => {
  for (const r of receivers) await r.close();
  for (const s of servers) await s.close().catch(() => undefined);
});

async function server(workers: boolean, queuePrefix?: string): Promise<TestServer> {
  const s = await startServer(queuePrefix ? { queuePrefix } : {}, { workers });
  servers.push(s);
  return s;
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

const numbers = (r: Receiver) => r.of('event-notification').map((x) => Number(statusOf(x.json).events[0]['event-number']));

it('events written while no dispatcher runs are delivered, in order, once the next process starts', async () => {
  const first = await server(true);
  const t = await newTenant(first, 'srst');
  const hook = await receiver();
  const patient = await newPatient(t);
  const { id } = await subscribe(t, topicSubscription(topicUrl(first, 'lab-result-final'), hook.url));
  await waitStatus(t, id, 'active');
  // the server goes away; an API-only process (no workers) keeps taking writes: they wait in the outbox
  await first.close();
  const apiOnly = await server(false);
  apiOnly.tenants.add(t.slug);
  const api = { ...t, api: authed(apiOnly.origin, await tokenFor(apiOnly, t)) };
  for (let i = 0; i < 3; i++) await postReport(api, patient, 'final');
  const waiting = await apiOnly.deps.db.admin().query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE tenant_id = $1', [t.slug]);
  expect(waiting.rows[0].n).toBeGreaterThanOrEqual(3);
  expect(hook.of('event-notification')).toEqual([]);
  // a process with workers starts: it finds them
  const next = await server(true);
  next.tenants.add(t.slug);
  await waitFor(() => hook.of('event-notification').length >= 3, 20_000, 'the three events');
  expect(numbers(hook)).toEqual([1, 2, 3]);
});

it('two dispatchers at once: every event is numbered and delivered once, without gaps', async () => {
  // one queue prefix: on Redis the two processes share the deliveries queue, as API and worker processes do
  const prefix = `test-shared-${Date.now()}`;
  const a = await server(true, prefix);
  const b = await server(true, prefix);
  const t = await newTenant(a, 'sdup');
  b.tenants.add(t.slug);
  const hook = await receiver();
  const patient = await newPatient(t);
  const { id } = await subscribe(t, topicSubscription(topicUrl(a, 'lab-result-final'), hook.url));
  await waitStatus(t, id, 'active');
  const viaB = { ...t, api: authed(b.origin, await tokenFor(b, t)) };
  const writes: Promise<string>[] = [];
  for (let i = 0; i < 20; i++) writes.push(postReport(i % 2 ? viaB : t, patient, 'final'));
  await Promise.all(writes);
  await waitFor(() => hook.of('event-notification').length >= 20, 30_000, 'twenty events');
  await new Promise((r) => setTimeout(r, 500));
  const got = numbers(hook).sort((x, y) => x - y);
  expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  // and each report exactly once
  const focuses = hook.of('event-notification').map((x) => statusOf(x.json).events[0].focus);
  expect(new Set(focuses).size).toBe(20);
});
