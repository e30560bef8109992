// Subscriptions Backport IG 1.1.0 server requirements (the certification kit's SHALL rows, docs/subscriptions-conformance.md)
// that the other subscription suites do not prove: the Subscription resource read, written and searched; the
// rest-hook handshake and its failure; the shape of every notification bundle and of each payload content level;
// filters AND-ed, maxCount, no heartbeat without heartbeatPeriod; $status at instance and type level; the refusals
// the bad-input suite does not list; the CapabilityStatement's Subscription entry. Real HTTP against a real server
// with its workers, real receivers on loopback (tests/helpers/webhook.ts), like the other subscription suites.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { FHIR_JSON, authed, create, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { BACKPORT, newPatient, postReport, subscribe, subscriptionStatus, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { ok, startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

const IG = 'http://hl7.org/fhir/uv/subscriptions-backport';
const STATUS_CODES = ['requested', 'active', 'error', 'off'];
const NOTIFICATION_TYPES = ['handshake', 'heartbeat', 'event-notification', 'query-status', 'query-event'];
const STATUS_PARAMETERS = ['subscription', 'topic', 'status', 'type', 'events-since-subscription-start', 'notification-event', 'error'];
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let server: TestServer;
let t: TestTenant;
const receivers: Receiver[] = [];

beforeAll(async () => {
  // three attempts, backoff capped at 100 ms, as in delivery.test.ts
  server = await startServer({ deliveryAttempts: 3, deliveryMaxBackoffMs: 100 }, { workers: true });
  t = await newTenant(server, 'sconf');
});

afterAll(async () => {
  for (const r of receivers) await r.close();
  await server.close();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

const lab = () => topicUrl(server, 'lab-result-final');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Json = Record<string, any>;

function withChannel(body: Json, change: Json): Json {
  return { ...body, channel: { ...body.channel, ...change } };
}

async function post(tenant: TestTenant, body: Json) {
  return tenant.api.post(`${tenant.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
}

function errorCode(res: { body: Json }): string | undefined {
  return res.body.issue?.[0]?.details?.coding?.[0]?.code;
}

/** The event numbers of a receiver's event notifications, in arrival order. */
const eventNumbers = (r: Receiver) => r.of('event-notification').map((x) => statusOf(x.json).events[0]['event-number']);

/**
 * A SubscriptionStatus Parameters checked against backport-subscription-status-r4: subscription 1..1 (Reference),
 * topic 0..1 (canonical), status 1..1 and type 1..1 (codes of their value sets), events-since-subscription-start 0..1
 * (string), notification-event 0..* with event-number 1..1, timestamp 0..1, focus 0..1, error 0..* (CodeableConcept).
 */
function expectStatusParameters(p: Json, subscription: string, type: string): void {
  expect(p.resourceType).toBe('Parameters');
  const named = (name: string) => (p.parameter as Json[]).filter((x) => x.name === name);
  expect((p.parameter as Json[]).map((x) => x.name).filter((n) => !STATUS_PARAMETERS.includes(n))).toEqual([]);
  expect(named('subscription')).toEqual([{ name: 'subscription', valueReference: { reference: subscription } }]);
  expect(named('topic').length).toBeLessThanOrEqual(1);
  for (const x of named('topic')) expect(Object.keys(x).sort()).toEqual(['name', 'valueCanonical']);
  expect(named('status')).toHaveLength(1);
  expect(STATUS_CODES).toContain(named('status')[0].valueCode);
  expect(named('type')).toEqual([{ name: 'type', valueCode: type }]);
  expect(NOTIFICATION_TYPES).toContain(type);
  expect(named('events-since-subscription-start').length).toBeLessThanOrEqual(1);
  for (const x of named('events-since-subscription-start')) expect(x.valueString).toMatch(/^\d+$/);
  for (const e of named('notification-event')) {
    const part = (name: string) => (e.part as Json[]).filter((x) => x.name === name);
    expect(part('event-number')).toHaveLength(1);
    expect(part('event-number')[0].valueString).toMatch(/^[1-9]\d*$/);
    expect(part('timestamp').length).toBeLessThanOrEqual(1);
    for (const x of part('timestamp')) expect(x.valueInstant).toMatch(INSTANT);
    expect(part('focus').length).toBeLessThanOrEqual(1);
    for (const x of part('focus')) expect(x.valueReference.reference).toEqual(expect.any(String));
    for (const x of part('additional-context')) expect(x.valueReference.reference).toEqual(expect.any(String));
  }
  for (const x of named('error')) expect(x.valueCodeableConcept).toEqual(expect.any(Object));
}

/**
 * A notification bundle checked against backport-subscription-notification-r4 and the R4 Bundle invariants of a
 * history bundle: type history, the status Parameters first (its request a GET of the subscription's $status), every
 * entry with fullUrl (unique), request (method, url) and response (status).
 */
function expectNotificationBundle(bundle: Json, base: string, subscriptionId: string, type: string): void {
  expect(bundle.resourceType).toBe('Bundle');
  expect(bundle.type).toBe('history');
  expect(bundle.timestamp).toMatch(INSTANT);
  const [first, ...rest] = bundle.entry as Json[];
  expect(first.fullUrl).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  expect(first.request).toEqual({ method: 'GET', url: `${base}/Subscription/${subscriptionId}/$status` });
  expect(first.response.status).toBe('200');
  expectStatusParameters(first.resource, `${base}/Subscription/${subscriptionId}`, type);
  for (const e of rest) {
    expect(e.fullUrl).toEqual(expect.any(String));
    expect(['POST', 'PUT', 'DELETE', 'GET']).toContain(e.request?.method);
    expect(e.request.url).toEqual(expect.any(String));
    expect(e.response?.status).toMatch(/^\d{3}/);
  }
  const fullUrls = (bundle.entry as Json[]).map((e) => e.fullUrl);
  expect(new Set(fullUrls).size).toBe(fullUrls.length);
}

describe('the Subscription resource: read, write, search (CapabilityStatement-backport-subscription-server-r4)', () => {
  it('a create answers status requested whatever the client sent; a read returns criteria, filters, channel, payload and content as written', async () => {
    const hook = await receiver();
    const body: Json = { ...topicSubscription(lab(), hook.url, { content: 'id-only', filters: ['patient=Patient/conf-1'] }), status: 'active' };
    const res = await post(t, body);
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('requested');
    const read = await t.api.get(`${t.path}/Subscription/${res.body.id}`);
    expect(read.status).toBe(200);
    const s = read.body;
    // the mandatory elements of R4 Subscription and of the Backport profile, as the client wrote them
    expect(s).toMatchObject({ resourceType: 'Subscription', reason: body.reason, criteria: lab(), meta: { profile: [`${BACKPORT}/backport-subscription`] } });
    expect(STATUS_CODES).toContain(s.status);
    expect(s._criteria).toEqual({ extension: [{ url: `${BACKPORT}/backport-filter-criteria`, valueString: 'patient=Patient/conf-1' }] });
    expect(s.channel).toEqual({
      type: 'rest-hook',
      endpoint: hook.url,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: 'id-only' }] },
    });
  });

  it('a Subscription without reason (1..1 in R4) is refused, so none is stored without a mandatory element', async () => {
    const { reason: _reason, ...body } = topicSubscription(lab(), 'http://127.0.0.1:9/hook');
    const res = await post(t, body);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].expression).toEqual(['Subscription.reason']);
  });

  it('a Subscription is created by PUT to a new id as well, changed by PUT and by PATCH, and removed by DELETE', async () => {
    const hook = await receiver();
    const id = `conf-${randomBytes(4).toString('hex')}`;
    const created = await t.api.put(`${t.path}/Subscription/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...topicSubscription(lab(), hook.url), id }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id, status: 'requested' });
    expect(created.headers['x-subscription-secret']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await waitStatus(t, id, 'active');
    const current = (await t.api.get(`${t.path}/Subscription/${id}`)).body;
    const updated = await t.api.put(`${t.path}/Subscription/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...current, reason: 'renamed by PUT' }));
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ reason: 'renamed by PUT', status: 'active' });
    const patched = await t.api.patch(`${t.path}/Subscription/${id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/reason', value: 'renamed by PATCH' }]));
    expect(patched.status).toBe(200);
    expect((await t.api.get(`${t.path}/Subscription/${id}`)).body.reason).toBe('renamed by PATCH');
    expect((await t.api.delete(`${t.path}/Subscription/${id}`)).status).toBe(204);
    expect((await t.api.get(`${t.path}/Subscription/${id}`)).status).toBe(410);
    expect((await t.api.get(`${t.path}/Subscription/${id}/$status`)).status).toBe(404);
  });

  it('searches by url (channel.endpoint) and by status', async () => {
    const s = await newTenant(server, 'ssrch');
    const a = await receiver();
    const b = await receiver();
    const active = await subscribe(s, topicSubscription(lab(), a.url));
    const off = await subscribe(s, { ...topicSubscription(lab(), b.url), status: 'off' });
    await waitStatus(s, active.id, 'active');
    const ids = async (q: string) => {
      const res = await s.api.get(`${s.path}/Subscription?${q}`);
      expect(res.status).toBe(200);
      return ((res.body.entry ?? []) as Json[]).map((e) => e.resource.id).sort();
    };
    expect(await ids(`url=${encodeURIComponent(a.url)}`)).toEqual([active.id]);
    expect(await ids(`url=${encodeURIComponent(b.url)}`)).toEqual([off.id]);
    expect(await ids('url=https://nowhere.example/hook')).toEqual([]);
    expect(await ids('status=active')).toEqual([active.id]);
    expect(await ids('status=off')).toEqual([off.id]);
    expect(await ids('status=active,off')).toEqual([active.id, off.id].sort());
    expect(await ids('status=error')).toEqual([]);
  });
});

describe('the rest-hook handshake (workflow.html, channels.html#rest-hook)', () => {
  it('requested until the handshake, a POST to the endpoint, is answered 2xx; then active', async () => {
    const hook = await receiver();
    let release: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (release = resolve));
    hook.behave((_r, res) => void answered.then(() => res.writeHead(200).end()));
    try {
      const { id } = await subscribe(t, { ...topicSubscription(lab(), hook.url), status: 'active' });
      const [hs] = await waitFor(() => (hook.of('handshake').length ? hook.of('handshake') : undefined), 10_000, 'the handshake');
      // the handshake is out but not answered yet: still requested
      expect((await subscriptionStatus(t, id)).status).toBe('requested');
      expect(hs.method).toBe('POST');
      expect(hs.path).toBe('/hook');
      expect(statusOf(hs.json)).toMatchObject({ type: 'handshake', status: 'requested', 'events-since-subscription-start': '0' });
      release();
      await waitStatus(t, id, 'active');
      expect(hook.of('handshake')).toHaveLength(1);
    } finally {
      release();
      hook.behave(ok);
    }
  });

  it('a handshake answered with an error status, or that cannot connect, puts the subscription in error with the reason', async () => {
    const refusing = await receiver();
    refusing.behave((_r, res) => res.writeHead(500).end('no'));
    const gone = await startReceiver();
    await gone.close(); // nothing listens on its port any more
    const a = await subscribe(t, topicSubscription(lab(), refusing.url));
    const b = await subscribe(t, topicSubscription(lab(), gone.url));
    expect((await waitStatus(t, a.id, 'error')).error).toMatch(/^handshake failed: the endpoint answered 500/);
    expect((await waitStatus(t, b.id, 'error')).error).toMatch(/^handshake failed: /);
    expect(refusing.of('handshake')).toHaveLength(1);
    // the server keeps the error (it never resets it to active by itself)
    await pause(600);
    expect((await subscriptionStatus(t, a.id)).status).toBe('error');
  });
});

describe('notification bundles (notifications.html, payloads.html, channels.html#rest-hook)', () => {
  let patient: string;
  const subs: Record<string, { id: string; hook: Receiver }> = {};
  const reports: string[] = [];
  const headers = ['Authorization: Bearer receiver-token-1', 'X-Ward: 7B'];

  beforeAll(async () => {
    patient = await newPatient(t);
    for (const content of ['full-resource', 'id-only', 'empty']) {
      const hook = await receiver();
      let body = topicSubscription(lab(), hook.url, { content, filters: [`patient=Patient/${patient}`], ...(content === 'full-resource' ? { heartbeat: 1 } : {}) });
      if (content === 'full-resource') body = withChannel(body, { header: headers });
      subs[content] = { id: (await subscribe(t, body)).id, hook };
    }
    for (const s of Object.values(subs)) await waitStatus(t, s.id, 'active');
    for (let i = 1; i <= 2; i++) {
      reports.push(await postReport(t, patient, 'final'));
      await waitFor(() => Object.values(subs).every((s) => s.hook.of('event-notification').length >= i), 15_000, `event ${i} at every receiver`);
    }
    // a heartbeat after the second event (heartbeatPeriod 1 s)
    await waitFor(() => subs['full-resource'].hook.of('heartbeat').some((h) => statusOf(h.json)['events-since-subscription-start'] === '2'), 10_000, 'a heartbeat after event 2');
  }, 60_000);

  it('every notification (handshake, heartbeat, event-notification) is a history Bundle whose first entry is the SubscriptionStatus, requested as GET of $status; every entry has request and response', () => {
    const seen = new Set<string>();
    for (const s of Object.values(subs)) {
      for (const r of s.hook.received) {
        const type = statusOf(r.json).type;
        seen.add(type);
        expectNotificationBundle(r.json, t.base, s.id, type);
      }
    }
    expect([...seen].sort()).toEqual(['event-notification', 'handshake', 'heartbeat']);
  });

  it('each notification is a POST to the endpoint with Content-Type application/fhir+json and every channel.header', () => {
    const { hook } = subs['full-resource'];
    expect(hook.received.length).toBeGreaterThanOrEqual(4);
    for (const r of hook.received) {
      expect(r.method).toBe('POST');
      expect(r.path).toBe('/hook');
      expect(r.headers['content-type']).toBe('application/fhir+json');
      expect(r.headers.authorization).toBe('Bearer receiver-token-1');
      expect(r.headers['x-ward']).toBe('7B');
    }
    for (const r of subs['id-only'].hook.received) expect(r.headers.authorization).toBeUndefined();
  });

  it('empty: the notification event has no focus and no additional context, there is no topic, and the status is the only entry', () => {
    const list = subs.empty.hook.of('event-notification');
    expect(list).toHaveLength(2);
    for (const n of list) {
      expect(n.json.entry).toHaveLength(1);
      const params = n.json.entry[0].resource.parameter as Json[];
      expect(params.find((p) => p.name === 'topic')).toBeUndefined();
      const events = params.filter((p) => p.name === 'notification-event');
      expect(events).toHaveLength(1);
      expect((events[0].part as Json[]).map((x) => x.name).sort()).toEqual(['event-number', 'timestamp']);
    }
    // handshakes and heartbeats of an empty subscription carry no topic either
    for (const r of subs.empty.hook.received) expect(statusOf(r.json).topic).toBeUndefined();
  });

  it('id-only: the focus references the report, and its entry has fullUrl and request but no resource', () => {
    const list = subs['id-only'].hook.of('event-notification');
    expect(list.map((n) => statusOf(n.json).events[0].focus)).toEqual(reports.map((id) => `${t.base}/DiagnosticReport/${id}`));
    list.forEach((n, i) => {
      expect(n.json.entry).toHaveLength(2);
      expect(n.json.entry[1]).toEqual({ fullUrl: `${t.base}/DiagnosticReport/${reports[i]}`, request: { method: 'POST', url: 'DiagnosticReport' }, response: { status: '201', etag: 'W/"1"' } });
    });
  });

  it('full-resource: the focus references the report, the topic is named, and the entry carries the report itself with request and response', () => {
    const list = subs['full-resource'].hook.of('event-notification');
    list.forEach((n, i) => {
      const s = statusOf(n.json);
      expect(s.topic).toBe(lab());
      expect(s.events[0].focus).toBe(`${t.base}/DiagnosticReport/${reports[i]}`);
      expect(n.json.entry).toHaveLength(2);
      expect(n.json.entry[1]).toMatchObject({
        fullUrl: `${t.base}/DiagnosticReport/${reports[i]}`,
        request: { method: 'POST', url: 'DiagnosticReport' },
        response: { status: '201' },
        resource: { resourceType: 'DiagnosticReport', id: reports[i], status: 'final' },
      });
    });
  });

  it('events-since-subscription-start: 0 at the handshake, each event its own number, heartbeats repeat the count and never add to it', () => {
    for (const s of Object.values(subs)) {
      expect(s.hook.of('handshake').map((r) => statusOf(r.json)['events-since-subscription-start'])).toEqual(['0']);
      expect(s.hook.of('event-notification').map((r) => statusOf(r.json)['events-since-subscription-start'])).toEqual(['1', '2']);
      expect(eventNumbers(s.hook)).toEqual(['1', '2']);
    }
    const { hook } = subs['full-resource'];
    const beats = hook.of('heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(1);
    for (const b of beats) {
      const count = Number(statusOf(b.json)['events-since-subscription-start']);
      const before = hook.received.slice(0, hook.received.indexOf(b)).filter((r) => statusOf(r.json).type === 'event-notification').length;
      expect(count).toBeGreaterThanOrEqual(before);
      expect(count).toBeLessThanOrEqual(2);
      expect(statusOf(b.json).events).toBeUndefined();
    }
  });

  it('$events: eventsSinceNumber and eventsUntilNumber are inclusive bounds, the answer a history Bundle with the query-event status first', async () => {
    const { id } = subs['full-resource'];
    const numbers = async (query: string) => {
      const res = await t.api.get(`${t.path}/Subscription/${id}/$events?${query}`);
      expect(res.status).toBe(200);
      expectNotificationBundle(res.body, t.base, id, 'query-event');
      expect(res.body.entry).toHaveLength(1 + (statusOf(res.body).events?.length ?? 0));
      return ((statusOf(res.body).events ?? []) as Json[]).map((e) => e['event-number']);
    };
    expect(await numbers('eventsSinceNumber=2&eventsUntilNumber=2')).toEqual(['2']);
    expect(await numbers('eventsSinceNumber=1&eventsUntilNumber=1')).toEqual(['1']);
    expect(await numbers('eventsSinceNumber=1&eventsUntilNumber=2')).toEqual(['1', '2']);
    expect(await numbers('eventsSinceNumber=3&eventsUntilNumber=9')).toEqual([]);
  });

  it('full-resource the caller may not read: the entry keeps fullUrl, request and response, without the resource', async () => {
    const { id } = subs['full-resource'];
    // this caller may read the subscription, but no DiagnosticReport
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Subscription.rs' }));
    const res = await api.get(`${t.path}/Subscription/${id}/$events?eventsSinceNumber=1&eventsUntilNumber=2&content=full-resource`);
    expect(res.status).toBe(200);
    expectNotificationBundle(res.body, t.base, id, 'query-event');
    expect(res.body.entry.slice(1)).toEqual(reports.map((r) => ({ fullUrl: `${t.base}/DiagnosticReport/${r}`, request: { method: 'POST', url: 'DiagnosticReport' }, response: { status: '201', etag: 'W/"1"' } })));
    // the subscriber's own access carries the resources
    const own = await t.api.get(`${t.path}/Subscription/${id}/$events?eventsSinceNumber=1&eventsUntilNumber=2`);
    expect((own.body.entry as Json[]).slice(1).map((e) => e.resource?.id)).toEqual(reports);
  });
});

describe('topics, filters, maxCount and heartbeatPeriod (StructureDefinition-backport-subscription)', () => {
  it('every advertised topic detects its own events and applies its filters', async () => {
    const cs = (await t.api.get(`${t.path}/metadata`)).body;
    const advertised = ((cs.rest[0].resource as Json[]).find((r) => r.type === 'Subscription')!.extension as Json[])
      .filter((e) => e.url === `${IG}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`)
      .map((e) => e.valueCanonical);
    const names = ['lab-result-final', 'encounter-start', 'encounter-end', 'service-request-status'];
    expect(advertised.sort()).toEqual(names.map((n) => topicUrl(server, n)).sort());
    const p = await newPatient(t);
    const q = await newPatient(t);
    const hooks: Record<string, Receiver> = {};
    for (const name of names) {
      hooks[name] = await receiver();
      const { id } = await subscribe(t, topicSubscription(topicUrl(server, name), hooks[name].url, { content: 'id-only', filters: [`patient=Patient/${p}`] }));
      await waitStatus(t, id, 'active');
    }
    const update = async (type: string, id: string, change: Json) => {
      const current = (await t.api.get(`${t.path}/${type}/${id}`)).body;
      const res = await t.api.put(`${t.path}/${type}/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...current, ...change }));
      expect(res.status).toBe(200);
    };
    const encounter = (patient: string, status: string) => ({
      resourceType: 'Encounter', status, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${patient}` },
    });
    const order = (patient: string, status: string) => ({ resourceType: 'ServiceRequest', status, intent: 'order', code: { text: 'full blood count' }, subject: { reference: `Patient/${patient}` } });
    // the other patient: every topic fires, every filter says no
    const eq = (await create(t, encounter(q, 'in-progress'))).id;
    await update('Encounter', eq, { status: 'finished' });
    await create(t, order(q, 'active'));
    await postReport(t, q, 'final');
    // this patient; each change waits for the one before to be notified, as changes of one resource that the
    // dispatcher takes in one batch are judged as one change (docs/subscriptions-conformance.md, row 7)
    const heard = (name: string, n: number) => waitFor(() => hooks[name].of('event-notification').length >= n, 15_000, `${name} event ${n}`);
    const e = (await create(t, encounter(p, 'planned'))).id; // no topic: not started
    await update('Encounter', e, { status: 'in-progress' }); // encounter-start
    await heard('encounter-start', 1);
    await update('Encounter', e, { status: 'finished' }); // encounter-end
    await heard('encounter-end', 1);
    const s = (await create(t, order(p, 'active'))).id; // service-request-status (created)
    await heard('service-request-status', 1);
    await update('ServiceRequest', s, { note: [{ text: 'same status' }] }); // no change of status
    await update('ServiceRequest', s, { status: 'completed' }); // service-request-status
    const r = await postReport(t, p, 'final'); // lab-result-final
    const expected: Record<string, string[]> = {
      'encounter-start': [`Encounter/${e}`],
      'encounter-end': [`Encounter/${e}`],
      'service-request-status': [`ServiceRequest/${s}`, `ServiceRequest/${s}`],
      'lab-result-final': [`DiagnosticReport/${r}`],
    };
    await waitFor(() => names.every((n) => hooks[n].of('event-notification').length >= expected[n].length), 20_000, 'the events of every topic');
    await pause(300);
    for (const n of names) {
      const got = hooks[n].of('event-notification').map((x) => [statusOf(x.json).events[0]['event-number'], statusOf(x.json).events[0].focus]);
      expect({ topic: n, got }).toEqual({ topic: n, got: expected[n].map((f, i) => [String(i + 1), `${t.base}/${f}`]) });
    }
  }, 40_000);

  it('several filter criteria are AND-ed: only a report meeting all of them is an event', async () => {
    const p1 = await newPatient(t);
    const p2 = await newPatient(t);
    const hook = await receiver();
    const { id } = await subscribe(t, topicSubscription(lab(), hook.url, { filters: [`patient=Patient/${p1}`, 'code=http://loinc.org|24323-8'] }));
    await waitStatus(t, id, 'active');
    await postReport(t, p2, 'final'); // the code, another patient
    const otherCode = await t.api.post(`${t.path}/DiagnosticReport`).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'DiagnosticReport', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '58410-2' }] }, subject: { reference: `Patient/${p1}` },
    }));
    expect(otherCode.status).toBe(201); // the patient, another code
    const both = await postReport(t, p1, 'final');
    await waitFor(() => hook.of('event-notification').length >= 1, 15_000, 'the matching report');
    await pause(300);
    // numbered in commit order: had either earlier report matched, it would be event 1
    expect(hook.of('event-notification').map((n) => [statusOf(n.json).events[0]['event-number'], statusOf(n.json).events[0].focus])).toEqual([['1', `${t.base}/DiagnosticReport/${both}`]]);
  });

  it('maxCount 1: two reports of one transaction are two notifications, each with one focus', async () => {
    const patient = await newPatient(t);
    const hook = await receiver();
    const body = topicSubscription(lab(), hook.url, { filters: [`patient=Patient/${patient}`] });
    const { id } = await subscribe(t, withChannel(body, { extension: [{ url: `${BACKPORT}/backport-max-count`, valuePositiveInt: 1 }] }));
    await waitStatus(t, id, 'active');
    const report = (n: number) => ({
      fullUrl: `urn:uuid:0b1c3b4e-0000-4000-8000-00000000010${n}`,
      resource: { resourceType: 'DiagnosticReport', status: 'final', code: { text: `panel ${n}` }, subject: { reference: `Patient/${patient}` } },
      request: { method: 'POST', url: 'DiagnosticReport' },
    });
    const tx = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [report(1), report(2)] }));
    expect(tx.status).toBe(200);
    await waitFor(() => hook.of('event-notification').length >= 2, 15_000, 'two notifications');
    await pause(300);
    const list = hook.of('event-notification');
    expect(list).toHaveLength(2);
    for (const n of list) {
      expect(statusOf(n.json).events).toHaveLength(1);
      expect(n.json.entry).toHaveLength(2);
    }
    expect(eventNumbers(hook)).toEqual(['1', '2']);
  });

  it('no heartbeatPeriod, no heartbeat: a quiet channel hears none while one with heartbeatPeriod 1 s hears two', async () => {
    const quiet = await receiver();
    const beating = await receiver();
    const q = await subscribe(t, topicSubscription(lab(), quiet.url));
    const b = await subscribe(t, topicSubscription(lab(), beating.url, { heartbeat: 1 }));
    await waitStatus(t, q.id, 'active');
    await waitStatus(t, b.id, 'active');
    await waitFor(() => beating.of('heartbeat').length >= 2, 10_000, 'two heartbeats');
    expect(quiet.of('heartbeat')).toEqual([]);
    expect(quiet.received.map((r) => statusOf(r.json).type)).toEqual(['handshake']);
  });
});

describe('$status (OperationDefinition-backport-subscription-status)', () => {
  let s: TestTenant;
  let active: string;
  let errored: string;
  let off: string;

  beforeAll(async () => {
    s = await newTenant(server, 'sstat');
    const good = await receiver();
    const bad = await receiver();
    bad.behave((_r, res) => res.writeHead(503).end());
    active = (await subscribe(s, topicSubscription(lab(), good.url))).id;
    errored = (await subscribe(s, topicSubscription(lab(), bad.url))).id;
    off = (await subscribe(s, { ...topicSubscription(lab(), good.url), status: 'off' })).id;
    await waitStatus(s, active, 'active');
    await waitStatus(s, errored, 'error');
  }, 30_000);

  /** $status answered as [subscription id, status] pairs, after checking the searchset and each status resource. */
  async function statuses(path: string): Promise<[string, string][]> {
    const res = await s.api.get(`${s.path}/Subscription/${path}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    const entries = (res.body.entry ?? []) as Json[];
    expect(res.body.total).toBe(entries.length);
    return entries
      .map((e) => {
        const p = statusOf({ entry: [e] });
        expectStatusParameters(e.resource, p.subscription, 'query-status');
        return [p.subscription.split('/').pop(), p.status] as [string, string];
      })
      .sort();
  }

  it('type level with neither id nor status: every subscription of the tenant, whatever its status, one query-status Parameters each in a searchset', async () => {
    expect(await statuses('$status')).toEqual(([[active, 'active'], [errored, 'error'], [off, 'off']] as [string, string][]).sort());
  });

  it('type level: repeated id parameters are OR-joined, and so are repeated or comma-joined status values', async () => {
    expect(await statuses(`$status?id=${active}&id=${off}`)).toEqual(([[active, 'active'], [off, 'off']] as [string, string][]).sort());
    expect(await statuses('$status?status=active&status=off')).toEqual(([[active, 'active'], [off, 'off']] as [string, string][]).sort());
    expect(await statuses('$status?status=error,off')).toEqual(([[errored, 'error'], [off, 'off']] as [string, string][]).sort());
  });

  it('instance level ignores the id and status parameters', async () => {
    expect(await statuses(`${active}/$status`)).toEqual([[active, 'active']]);
    expect(await statuses(`${active}/$status?id=${errored}&status=error`)).toEqual([[active, 'active']]);
    expect(await statuses(`${off}/$status?status=active`)).toEqual([[off, 'off']]);
  });
});

describe('refusals the bad-input suite does not list (conformance.html)', () => {
  it('a custom channel type in the backport-channel-type extension is read and refused (400 SUBSCRIPTION_CHANNEL_UNSUPPORTED)', async () => {
    const body = withChannel(topicSubscription(lab(), 'http://127.0.0.1:9/hook'), {
      _type: { extension: [{ url: `${BACKPORT}/backport-channel-type`, valueCoding: { system: 'http://example.org/subscription-channel-type', code: 'zulip' } }] },
    });
    const res = await post(t, body);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('SUBSCRIPTION_CHANNEL_UNSUPPORTED');
    expect(res.body.issue[0].expression).toEqual(['Subscription.channel.type']);
  });

  it('a Backport-profiled subscription whose criteria is not a topic canonical is refused (400 SUBSCRIPTION_TOPIC_UNKNOWN)', async () => {
    const res = await post(t, { ...topicSubscription(lab(), 'http://127.0.0.1:9/hook'), criteria: 'DiagnosticReport?status=final' });
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('SUBSCRIPTION_TOPIC_UNKNOWN');
    expect(res.body.issue[0].expression).toEqual(['Subscription.criteria']);
  });

  it('notifications in FHIR 4.0 are accepted (fhirVersion=4.0 or 4.0.1); FHIR 3.0 and 4.3 are refused', async () => {
    for (const v of ['4.0', '4.0.1']) {
      const res = await post(t, topicSubscription(lab(), 'http://127.0.0.1:9/hook', { payload: `application/fhir+json; fhirVersion=${v}` }));
      expect(res.status).toBe(201);
      expect((await t.api.delete(`${t.path}/Subscription/${res.body.id}`)).status).toBe(204);
    }
    for (const v of ['3.0', '4.3']) {
      const res = await post(t, topicSubscription(lab(), 'http://127.0.0.1:9/hook', { payload: `application/fhir+json;fhirVersion=${v}` }));
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('SUBSCRIPTION_FHIR_VERSION_UNSUPPORTED');
    }
  });

  it('a maxCount outside 1..1000 is refused (400 SUBSCRIPTION_CHANNEL_INVALID)', async () => {
    for (const n of [0, 1001]) {
      const res = await post(t, withChannel(topicSubscription(lab(), 'http://127.0.0.1:9/hook'), { extension: [{ url: `${BACKPORT}/backport-max-count`, valuePositiveInt: n }] }));
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('SUBSCRIPTION_CHANNEL_INVALID');
    }
  });
});

describe('the CapabilityStatement (CapabilityStatement-backport-subscription-server-r4)', () => {
  it('Subscription: read, create, update, patch, delete and search-type; the url and status search parameters; $status by its canonical', async () => {
    const cs = (await t.api.get(`${t.path}/metadata`)).body;
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.instantiates).toContain(`${IG}/CapabilityStatement/backport-subscription-server-r4`);
    const sub = (cs.rest[0].resource as Json[]).find((r) => r.type === 'Subscription')!;
    expect(sub).toBeDefined();
    expect((sub.interaction as Json[]).map((i) => i.code)).toEqual(expect.arrayContaining(['read', 'create', 'update', 'patch', 'delete', 'search-type']));
    expect(sub.searchParam).toEqual(expect.arrayContaining([
      { name: 'url', definition: 'http://hl7.org/fhir/SearchParameter/Subscription-url', type: 'uri' },
      { name: 'status', definition: 'http://hl7.org/fhir/SearchParameter/Subscription-status', type: 'token' },
    ]));
    expect(sub.operation).toEqual(expect.arrayContaining([{ name: 'status', definition: `${IG}/OperationDefinition/backport-subscription-status` }]));
    expect(sub.supportedProfile).toContain(`${IG}/StructureDefinition/backport-subscription`);
  });
});
