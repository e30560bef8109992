// The websocket channel (Backport IG channels.html "websocket", SUBSCRIPTIONS.md §4, §5): a websocket subscription is
// active at once; $get-ws-binding-token answers a short-lived single-tenant token; `bind-with-token` on
// /fhir/{tenant}/$subscription-ws gets a handshake, then one event-notification per event. Real server with workers,
// real `ws` client; events posted while no client is bound wait (pending, retried) and go out once one binds.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { deliveryLog } from '../../../src/store/subscriptions.js';
import { TenantStore } from '../../../src/store/session.js';
import { FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newPatient, postReport } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';

let server: TestServer;
let lab: TestTenant;
let other: TestTenant;
const sockets: WsClient[] = [];
let hook: Receiver;

beforeAll(async () => {
  // a short backoff: an event that found no bound client is retried within half a second
  server = await startServer({ deliveryMaxBackoffMs: 500 }, { workers: true });
  lab = await newTenant(server, 'wsl');
  other = await newTenant(server, 'wso');
  hook = await startReceiver();
});

afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  await hook.close();
  await server.close();
});

interface WsClient {
  ws: WebSocket;
  messages: string[];
  /** The close code and reason, once closed. */
  closed: Promise<{ code: number; reason: string }>;
  /** Notification bundles of one type (handshake, event-notification, ...). */
  of(type: string): any[];
}

async function connect(url: string): Promise<WsClient> {
  const ws = new WebSocket(url);
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const client: WsClient = {
    ws, messages, closed,
    of: (type) => messages.filter((m) => m.startsWith('{')).map((m) => JSON.parse(m)).filter((b) => statusOf(b).type === type),
  };
  sockets.push(client);
  return client;
}

/** The HTTP status an upgrade request is refused with. */
function refusedWith(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error(`${url} was accepted`)));
    ws.once('error', () => undefined);
  });
}

function wsUrl(t: TestTenant): string {
  return `${server.origin.replace(/^http/, 'ws')}${t.path}/$subscription-ws`;
}

/** A Backport topic-based websocket subscription (no endpoint), id-only payload. */
function websocketSubscription(topic: string): Record<string, unknown> {
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    status: 'requested',
    reason: 'lab results on the ward screen',
    criteria: topic,
    channel: {
      type: 'websocket',
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: 'id-only' }] },
    },
  };
}

function topic(name: string): string {
  return `${server.origin}/topics/${name}`;
}

async function subscribe(t: TestTenant, body: Record<string, unknown>): Promise<{ id: string; status: string }> {
  const res = await t.api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  expect({ status: res.status, issue: res.body.issue }).toEqual({ status: 201, issue: undefined });
  return res.body;
}

/** $get-ws-binding-token's Parameters as name -> value(s). */
async function bindingToken(t: TestTenant, id: string): Promise<{ token: string; expiration: string; subscription: string[]; 'websocket-url': string }> {
  const res = await t.api.get(`${t.path}/Subscription/${id}/$get-ws-binding-token`);
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Parameters');
  const p = res.body.parameter as { name: string; valueString?: string; valueDateTime?: string; valueUrl?: string }[];
  return {
    token: p.find((x) => x.name === 'token')!.valueString!,
    expiration: p.find((x) => x.name === 'expiration')!.valueDateTime!,
    subscription: p.filter((x) => x.name === 'subscription').map((x) => x.valueString!),
    'websocket-url': p.find((x) => x.name === 'websocket-url')!.valueUrl!,
  };
}

/** Connects to `url` and binds with `token`; answers the client once its first message (handshake or error) is in. */
async function bound(url: string, token: string): Promise<WsClient> {
  const c = await connect(url);
  c.ws.send(`bind-with-token ${token}`);
  await waitFor(() => c.messages.length > 0, 10_000, 'the answer to bind-with-token');
  return c;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('websocket channel: binding tokens ($get-ws-binding-token)', () => {
  it('a websocket subscription needs no endpoint and is active at once', async () => {
    const s = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    expect(s.status).toBe('active');
  });

  it('answers a token, its expiration (5 minutes), the subscription and the websocket url; type-level with id= too', async () => {
    const s = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    const before = Date.now();
    const b = await bindingToken(lab, s.id);
    expect(b.token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(Date.parse(b.expiration) - before).toBeGreaterThan(4 * 60_000);
    expect(Date.parse(b.expiration) - before).toBeLessThanOrEqual(5 * 60_000 + 1000);
    expect(b.subscription).toEqual([s.id]);
    expect(b['websocket-url']).toBe(wsUrl(lab));
    const typeLevel = await lab.api.post(`${lab.path}/Subscription/$get-ws-binding-token`).set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'id', valueString: s.id }] }));
    expect(typeLevel.status).toBe(200);
    expect(typeLevel.body.parameter.find((p: any) => p.name === 'token').valueString).not.toBe(b.token);
  });

  it('a rest-hook subscription gets no binding token (400 SUBSCRIPTION_NOT_WEBSOCKET)', async () => {
    const body = websocketSubscription(topic('lab-result-final'));
    const s = await subscribe(lab, { ...body, channel: { ...(body.channel as object), type: 'rest-hook', endpoint: hook.url } });
    const res = await lab.api.get(`${lab.path}/Subscription/${s.id}/$get-ws-binding-token`);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('invalid');
    expect(res.body.issue[0].details.coding[0].code).toBe('SUBSCRIPTION_NOT_WEBSOCKET');
  });

  it("another tenant's subscription is not found", async () => {
    const s = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    expect((await other.api.get(`${other.path}/Subscription/${s.id}/$get-ws-binding-token`)).status).toBe(404);
  });
});

describe('websocket channel: the endpoint', () => {
  it('upgrades elsewhere (another path, an unknown tenant) are answered 404', async () => {
    const ws = server.origin.replace(/^http/, 'ws');
    expect(await refusedWith(`${ws}/fhir/${lab.slug}/Patient`)).toBe(404);
    expect(await refusedWith(`${ws}/fhir/no-such-tenant-${randomBytes(3).toString('hex')}/$subscription-ws`)).toBe(404);
    expect(await refusedWith(`${ws}/elsewhere`)).toBe(404);
    // and plain HTTP goes on as before
    expect((await lab.api.get(`${lab.path}/metadata`)).status).toBe(200);
  });

  it('an unknown command gets an error and the socket stays; an unknown token is refused and closed', async () => {
    const c = await connect(wsUrl(lab));
    c.ws.send('bind 123');
    await waitFor(() => c.messages.length === 1, 5000, 'the error');
    expect(c.messages[0]).toMatch(/^error /);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.ws.send(`bind-with-token ${randomBytes(32).toString('base64url')}`);
    expect((await c.closed).code).toBe(1008);
    expect(c.messages[1]).toMatch(/^error .*token/);
  });

  it('an expired token is refused', async () => {
    const s = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    const { token } = await bindingToken(lab, s.id);
    const clock = server.deps.clock;
    server.deps.clock = () => new Date(Date.now() + 5 * 60_000 + 1000);
    try {
      const c = await bound(wsUrl(lab), token);
      expect((await c.closed).code).toBe(1008);
      expect(c.of('handshake')).toEqual([]);
    } finally {
      server.deps.clock = clock;
    }
  });

  it('a message bigger than 4 KiB closes the socket', async () => {
    const c = await connect(wsUrl(lab));
    c.ws.send(`bind-with-token ${'x'.repeat(5000)}`);
    expect((await c.closed).code).toBe(1009);
  });
});

describe('websocket channel: lab-result final, end to end', () => {
  let sub: { id: string };
  let labSocket: WsClient;
  let otherSub: { id: string };
  let otherToken: string;
  let otherSocket: WsClient;
  let patient: string;

  beforeAll(async () => {
    patient = await newPatient(lab);
    sub = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    otherSub = await subscribe(other, websocketSubscription(topic('lab-result-final')));
    otherToken = (await bindingToken(other, otherSub.id)).token;
  });

  it('bind-with-token: one handshake, status active, 0 events so far', async () => {
    const b = await bindingToken(lab, sub.id);
    labSocket = await bound(b['websocket-url'], b.token);
    const [hs] = labSocket.of('handshake');
    expect(hs).toBeDefined();
    expect(hs.type).toBe('history');
    expect(statusOf(hs)).toMatchObject({ subscription: `${lab.base}/Subscription/${sub.id}`, status: 'active', type: 'handshake', 'events-since-subscription-start': '0' });
    expect((await server.deps.metrics.websocketConnections.get()).values[0].value).toBeGreaterThanOrEqual(1);
  });

  it('a token binds one connection only', async () => {
    const b = await bindingToken(lab, sub.id);
    const first = await bound(wsUrl(lab), b.token);
    expect(first.of('handshake')).toHaveLength(1);
    const second = await bound(wsUrl(lab), b.token);
    expect((await second.closed).code).toBe(1008);
    first.ws.close();
  });

  it("another tenant's token is refused on this tenant's url, and still binds on its own", async () => {
    const wrong = await bound(wsUrl(lab), otherToken);
    expect((await wrong.closed).code).toBe(1008);
    expect(wrong.messages[0]).toMatch(/^error /);
    expect(wrong.of('handshake')).toEqual([]);
    otherSocket = await bound(wsUrl(other), otherToken);
    expect(statusOf(otherSocket.of('handshake')[0]).subscription).toBe(`${other.base}/Subscription/${otherSub.id}`);
  });

  it('a preliminary report notifies nobody; a final one exactly once, event 1, id-only', async () => {
    await postReport(lab, patient, 'preliminary');
    const reportId = await postReport(lab, patient, 'final');
    const [n] = await waitFor(() => (labSocket.of('event-notification').length ? labSocket.of('event-notification') : undefined), 15_000, 'the notification');
    const s = statusOf(n);
    expect(s).toMatchObject({ status: 'active', type: 'event-notification', 'events-since-subscription-start': '1' });
    expect(s.events).toEqual([expect.objectContaining({ 'event-number': '1', focus: `${lab.base}/DiagnosticReport/${reportId}` })]);
    // id-only: the entry names the resource, never carries it
    expect(n.entry[1]).toMatchObject({ fullUrl: `${lab.base}/DiagnosticReport/${reportId}`, request: { method: 'POST' } });
    expect(n.entry[1].resource).toBeUndefined();
    await pause(500);
    expect(labSocket.of('event-notification')).toHaveLength(1);
  });

  it("another tenant's websocket subscriber hears nothing of this tenant", async () => {
    await pause(300);
    expect(otherSocket.of('handshake')).toHaveLength(1);
    expect(otherSocket.of('event-notification')).toEqual([]);
    expect(otherSocket.messages.join('')).not.toContain(lab.slug);
  });

  it('events while no client is bound are delivered once a client binds', async () => {
    const later = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    const reportId = await postReport(lab, patient, 'final');
    // matched, numbered, and its first delivery found no socket (the event stays pending, retried with backoff)
    const store = new TenantStore(server.deps.db, lab.slug, lab.base);
    const [miss] = await waitFor(() => store.read((s) => deliveryLog(s.q, s.tenantId, later.id, 10)).then((log) => log.length ? log : undefined), 15_000, 'a failed attempt');
    expect(miss).toMatchObject({ type: 'event-notification', eventNumber: 1, error: 'no websocket client is bound to this subscription' });
    const b = await bindingToken(lab, later.id);
    const c = await bound(b['websocket-url'], b.token);
    expect(statusOf(c.of('handshake')[0])['events-since-subscription-start']).toBe('1');
    const [n] = await waitFor(() => (c.of('event-notification').length ? c.of('event-notification') : undefined), 15_000, 'the waiting notification');
    expect(statusOf(n).events).toEqual([expect.objectContaining({ 'event-number': '1', focus: `${lab.base}/DiagnosticReport/${reportId}` })]);
    // the subscription bound earlier heard it too (its own event 2), once
    await waitFor(() => labSocket.of('event-notification').length >= 2, 15_000, 'the first socket');
    expect(labSocket.of('event-notification').map((x) => statusOf(x).events[0]['event-number'])).toEqual(['1', '2']);
  });
});

// Redis: binding tokens live in Redis and deliveries are PUBLISHed, so the process holding the socket need not be the
// one that issued the token nor the one that delivers (a worker, or another API process).
(process.env.REDIS_URL ? describe : describe.skip)('websocket channel across processes (Redis)', () => {
  let apiOnly: TestServer;

  beforeAll(async () => {
    // another API process of the same deployment (same queues, same public URL), without workers
    apiOnly = await startServer({ queuePrefix: server.deps.config.queuePrefix, publicBaseUrl: server.deps.config.publicBaseUrl, deliveryMaxBackoffMs: 500 });
  });

  afterAll(async () => {
    await apiOnly.close();
  });

  it('a token issued by one process binds on another, and deliveries reach that socket through Redis', async () => {
    const patient = await newPatient(lab);
    const s = await subscribe(lab, websocketSubscription(topic('lab-result-final')));
    const { token } = await bindingToken(lab, s.id);
    const c = await bound(`${apiOnly.origin.replace(/^http/, 'ws')}${lab.path}/$subscription-ws`, token);
    expect(statusOf(c.of('handshake')[0])).toMatchObject({ type: 'handshake', subscription: `${lab.base}/Subscription/${s.id}` });
    const reportId = await postReport(lab, patient, 'final');
    const [n] = await waitFor(() => (c.of('event-notification').length ? c.of('event-notification') : undefined), 15_000, 'the notification via Redis');
    expect(statusOf(n).events).toEqual([expect.objectContaining({ 'event-number': '1', focus: `${lab.base}/DiagnosticReport/${reportId}` })]);
    // the socket's process no longer listens once the socket is gone: the delivery process reaches nobody
    c.ws.close();
    await c.closed;
    await waitFor(async () => (await server.websockets.send(lab.slug, s.id, '{}')) === 0, 5000, 'the unsubscribe');
  });
});
