// Backport IG rows the first conformance review found unmet (docs/subscriptions-conformance.md rows 7, 26, 27, 108),
// each with the test that now proves it.
import { FHIR_JSON, authed, newBackendClient, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newPatient, subscribe, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const servers: TestServer[] = [];
const receivers: Receiver[] = [];
let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer({}, { workers: true });
  servers.push(server);
  t = await newTenant(server, 'sreg');
});

afterAll(async () => {
  for (const r of receivers) await r.close();
  for (const s of servers) await s.close().catch(() => undefined);
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

async function put(api: TestTenant['api'], path: string, body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await api.put(path).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  expect([200, 201]).toContain(res.status);
  return res.body;
}

describe('row 7: every change of a topic is detected, even when several are dispatched in one batch', () => {
  it('planned -> in-progress -> finished written while no dispatcher runs is both an encounter-start and an encounter-end; final then amended is two events', async () => {
    const start = await receiver();
    const end = await receiver();
    const lab = await receiver();
    const s1 = await subscribe(t, topicSubscription(topicUrl(server, 'encounter-start'), start.url));
    const s2 = await subscribe(t, topicSubscription(topicUrl(server, 'encounter-end'), end.url));
    const s3 = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), lab.url));
    for (const s of [s1, s2, s3]) await waitStatus(t, s.id, 'active');
    // an API-only process takes the writes: they pile up in the outbox and reach a dispatcher together
    const apiOnly = await startServer({});
    servers.push(apiOnly);
    const api = authed(apiOnly.origin, await tokenFor(apiOnly, t));
    await server.workers!.dispatcher.stop();
    const patient = await newPatient({ ...t, api });
    const enc = { resourceType: 'Encounter', id: `enc-${Date.now()}`, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${patient}` } };
    for (const status of ['planned', 'in-progress', 'finished']) await put(api, `${t.path}/Encounter/${enc.id}`, { ...enc, status });
    const dr = { resourceType: 'DiagnosticReport', id: `dr-${Date.now()}`, code: { text: 'panel' }, subject: { reference: `Patient/${patient}` } };
    for (const status of ['final', 'amended']) await put(api, `${t.path}/DiagnosticReport/${dr.id}`, { ...dr, status });
    // a fresh process with workers dispatches the whole batch
    const next = await startServer({}, { workers: true });
    servers.push(next);
    next.tenants.add(t.slug);
    await waitFor(() => start.of('event-notification').length >= 1 && end.of('event-notification').length >= 1 && lab.of('event-notification').length >= 2, 20_000, 'the batch dispatched');
    await new Promise((r) => setTimeout(r, 300));
    expect(start.of('event-notification')).toHaveLength(1);
    expect(end.of('event-notification')).toHaveLength(1);
    expect(lab.of('event-notification').map((r) => r.json.entry[1].resource.status)).toEqual(['final', 'amended']);
  }, 60_000);
});

describe('rows 26 and 27: Content-Type as channel.payload, every channel.header line', () => {
  it('payload application/json is sent as application/json, with the fhirVersion parameter kept; repeated header names all arrive', async () => {
    const hook = await receiver();
    const body = topicSubscription(topicUrl(server, 'lab-result-final'), hook.url, { payload: 'application/json' });
    (body.channel as Record<string, unknown>).header = ['X-Dup: one', 'X-Dup: two', 'Authorization: Bearer receiver-token'];
    const sub = await subscribe(t, body);
    await waitStatus(t, sub.id, 'active');
    const [hs] = hook.of('handshake');
    expect(hs.headers['content-type']).toBe('application/json');
    expect(hs.headers['x-dup']).toBe('one, two');
    expect(hs.headers.authorization).toBe('Bearer receiver-token');
    const versioned = await receiver();
    const v = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), versioned.url, { payload: 'application/fhir+json; fhirVersion=4.0' }));
    await waitStatus(t, v.id, 'active');
    expect(versioned.of('handshake')[0].headers['content-type']).toBe('application/fhir+json; fhirVersion=4.0');
  });
});

describe('row 108: $status and $events show only the subscriptions the caller may read', () => {
  it('a granular Subscription scope narrows type-level $status, and instance $status/$events answer 404 outside it', async () => {
    const hook = await receiver();
    const on = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), hook.url));
    const off = await subscribe(t, { ...topicSubscription(topicUrl(server, 'lab-result-final'), hook.url), status: 'off' });
    const narrow = authed(server.origin, await tokenFor(server, t, { scope: 'system/Subscription.rs?status=off' }));
    const listed = await narrow.get(`${t.path}/Subscription/$status`);
    expect(listed.status).toBe(200);
    const ids = listed.body.entry.map((e: any) => statusOf({ entry: [e] }).subscription.split('/').pop());
    expect(ids).toContain(off.id);
    expect(ids).not.toContain(on.id);
    expect(listed.body.entry.every((e: any) => statusOf({ entry: [e] }).status === 'off')).toBe(true);
    expect((await narrow.get(`${t.path}/Subscription/${on.id}`)).status).toBe(404);
    expect((await narrow.get(`${t.path}/Subscription/${on.id}/$status`)).status).toBe(404);
    expect((await narrow.get(`${t.path}/Subscription/${on.id}/$events`)).status).toBe(404);
    expect((await narrow.get(`${t.path}/Subscription/${off.id}/$status`)).status).toBe(200);
  });
});

describe('review findings (issue 10)', () => {
  it('only the owner may bind to a websocket subscription: reading Subscription is not enough to receive clinical data', async () => {
    const ws = await subscribe(t, { ...topicSubscription(topicUrl(server, 'lab-result-final'), undefined, { channelType: 'websocket' }), status: 'requested' });
    // another client that may read subscriptions (as a platform operator may) but no clinical data
    const other = await newBackendClient(server, t.slug);
    const reader = authed(server.origin, await tokenFor(server, { slug: t.slug, clientId: other }, { scope: 'system/Subscription.rs' }));
    expect((await reader.get(`${t.path}/DiagnosticReport`)).status).toBe(403);
    expect((await reader.get(`${t.path}/Subscription/${ws.id}`)).status).toBe(200);
    const refused = await reader.get(`${t.path}/Subscription/${ws.id}/$get-ws-binding-token`);
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].details.coding[0].code).toBe('SUBSCRIPTION_NOT_OWNER');
    // the owner's own client, with a token that may not read the reports: refused too
    const narrow = authed(server.origin, await tokenFor(server, t, { scope: 'system/Subscription.rs' }));
    const alsoRefused = await narrow.get(`${t.path}/Subscription/${ws.id}/$get-ws-binding-token`);
    expect([alsoRefused.status, alsoRefused.body.issue[0].details.coding[0].code]).toEqual([403, 'SUBSCRIPTION_ACCESS']);
    expect((await t.api.get(`${t.path}/Subscription/${ws.id}/$get-ws-binding-token`)).status).toBe(200);
  });

  it('a channel.header value that cannot travel in HTTP is refused at create (it would stall every delivery)', async () => {
    const body = topicSubscription(topicUrl(server, 'lab-result-final'), 'http://127.0.0.1:9/hook');
    (body.channel as Record<string, unknown>).header = ['X-Note: café ✓'];
    const res = await t.api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SUBSCRIPTION_HEADER_INVALID');
  });

  it('$resend takes at most 1000 events at a time', async () => {
    const hook = await receiver();
    const sub = await subscribe(t, topicSubscription(topicUrl(server, 'lab-result-final'), hook.url));
    const res = await t.api.post(`${t.path}/Subscription/${sub.id}/$resend?eventsSinceNumber=1&eventsUntilNumber=5000`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/at most 1000/);
  });
});
