// Issue 10, delivery faults and the subscription operations: a webhook answering 500, timing out, closing the
// connection, redirecting or answering slowly; retries with backoff; error after the last attempt with the reason;
// re-activation by the client and $resend; a removed owner stops deliveries; $status (with the delivery log) and
// $events; heartbeats; R4 criteria subscriptions; a rolled-back write notifies nobody; the outbox is emptied.
import type { ServerResponse } from 'node:http';
import { jest } from '@jest/globals';
import { subscriptionCommand } from '../../../src/cli/subscriptions.js';
import { deleteClient } from '../../../src/store/auth-payloads.js';
import { FHIR_JSON, authed, newBackendClient, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { criteriaSubscription, newPatient, postReport, subscribe, subscriptionStatus, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { ok, startReceiver, statusOf, waitFor, type Receiver } from '../../helpers/webhook.js';

let server: TestServer;
let t: TestTenant;
let patient: string;
const receivers: Receiver[] = [];

beforeAll(async () => {
  // three attempts, backoff capped at 100 ms: failures play out in a second, not a day
  server = await startServer({ deliveryAttempts: 3, deliveryMaxBackoffMs: 100 }, { workers: true });
  t = await newTenant(server, 'sdel');
  patient = await newPatient(t);
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
const events = (r: Receiver) => r.of('event-notification').map((x) => statusOf(x.json).events[0]['event-number']);

/** An active subscription on its own fresh receiver. */
async function activeSubscription(opts: Parameters<typeof topicSubscription>[2] = {}, api = t.api): Promise<{ id: string; secret: string; hook: Receiver }> {
  const hook = await receiver();
  const sub = await subscribe(t, topicSubscription(lab(), hook.url, { filters: [`patient=Patient/${patient}`], ...opts }), api);
  await waitStatus(t, sub.id, 'active');
  return { ...sub, hook };
}

/** Answers with `first` for the first `n` event notifications, then 200. */
function failingFirst(n: number, first: (res: ServerResponse) => void) {
  let seen = 0;
  return (r: { json: any }, res: ServerResponse) => {
    if (statusOf(r.json).type === 'event-notification' && seen++ < n) first(res);
    else res.writeHead(200).end();
  };
}

describe('delivery faults', () => {
  it('a webhook answering 500 is retried until it answers 200: delivered once, the attempts logged', async () => {
    const { id, hook } = await activeSubscription();
    hook.behave(failingFirst(2, (res) => res.writeHead(500).end('boom')));
    await postReport(t, patient, 'final');
    await waitFor(() => hook.received.filter((r) => statusOf(r.json).type === 'event-notification').length >= 3, 15_000, 'three attempts');
    await waitFor(async () => (await t.api.get(`${t.path}/Subscription/${id}/$status?log=true`)).body.entry[0].resource.parameter.some((p: any) => p.name === 'delivery-attempt' && p.part.some((x: any) => x.name === 'status-code' && x.valueInteger === 200)), 10_000, 'the 200 in the log');
    const status = await t.api.get(`${t.path}/Subscription/${id}/$status?log=true`);
    const attempts = status.body.entry[0].resource.parameter.filter((p: any) => p.name === 'delivery-attempt' && p.part.find((x: any) => x.name === 'type').valueCode === 'event-notification');
    const codes = attempts.map((a: any) => a.part.find((x: any) => x.name === 'status-code')?.valueInteger).reverse();
    expect(codes).toEqual([500, 500, 200]);
    expect(attempts[0].part.find((x: any) => x.name === 'latency-ms').valueInteger).toBeGreaterThanOrEqual(0);
    // every attempt carried the same event number: the receiver de-duplicates by it
    expect(new Set(events(hook))).toEqual(new Set(['1']));
    expect((await subscriptionStatus(t, id)).status).toBe('active');
    // the same log through the CLI (`npm run cli -- subscription log|list <tenant> ...`)
    const lines: string[] = [];
    const spy = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      expect(await subscriptionCommand(server.deps, 'log', [t.slug, id])).toBe(0);
      expect(await subscriptionCommand(server.deps, 'list', [t.slug])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const eventLines = lines.filter((l) => l.includes('\tevent-notification\t1\t'));
    expect(eventLines.map((l) => l.split('\t')[4]).reverse()).toEqual(['500', '500', '200']);
    expect(lines.some((l) => l.startsWith(`${id}\tactive\ttopic lab-result-final\trest-hook\tevents 1`))).toBe(true);
  });

  it('a webhook that times out, or closes the connection, is retried', async () => {
    const timing = await activeSubscription({ timeout: 1 });
    const hangs: ServerResponse[] = [];
    timing.hook.behave(failingFirst(1, (res) => hangs.push(res)));
    const closing = await activeSubscription();
    closing.hook.behave(failingFirst(1, (res) => res.socket?.destroy()));
    await postReport(t, patient, 'final');
    await waitFor(() => timing.hook.of('event-notification').length >= 2 && closing.hook.of('event-notification').length >= 2, 15_000, 'the retries');
    for (const res of hangs) res.socket?.destroy();
    const log = async (id: string) => (await t.api.get(`${t.path}/Subscription/${id}/$status?log=true`)).body.entry[0].resource.parameter.filter((p: any) => p.name === 'delivery-attempt');
    await waitFor(async () => (await log(timing.id)).length >= 3, 10_000, 'the timeout logged');
    const errors = (await log(timing.id)).map((a: any) => a.part.find((x: any) => x.name === 'error')?.valueString).filter(Boolean);
    expect(errors.join(' ')).toMatch(/took longer than 1000 ms/);
    const closed = (await log(closing.id)).map((a: any) => a.part.find((x: any) => x.name === 'error')?.valueString).filter(Boolean);
    expect(closed.join(' ')).toMatch(/failed|closed|ECONNRESET|socket hang up/);
  });

  it('a redirect is not followed: the target never hears from us, and the subscription goes to error after the last attempt', async () => {
    const target = await receiver();
    const { id, hook } = await activeSubscription();
    hook.behave((r, res) => (statusOf(r.json).type === 'event-notification' ? res.writeHead(302, { Location: target.url }).end() : res.writeHead(200).end()));
    await postReport(t, patient, 'final');
    const s = await waitStatus(t, id, 'error');
    expect(s.error).toMatch(/after 3 attempts: the endpoint answered 302 \(redirects are not followed\)/);
    expect(target.received).toEqual([]);
    expect(hook.of('event-notification')).toHaveLength(3);
    // $status keeps answering in error (Backport errors.html), with the reason
    const st = await t.api.get(`${t.path}/Subscription/${id}/$status`);
    const p = statusOf({ entry: [{ resource: st.body.entry[0].resource }] });
    expect(p.status).toBe('error');
    expect(p.error).toMatch(/302/);
  });

  it('an errored subscription is never reset by the server; the client re-activates it and $resend delivers the failed event again', async () => {
    const { id, hook } = await activeSubscription();
    hook.behave((r, res) => res.writeHead(statusOf(r.json).type === 'event-notification' ? 503 : 200).end());
    await postReport(t, patient, 'final');
    await waitStatus(t, id, 'error');
    hook.behave(ok);
    await postReport(t, patient, 'final'); // counted while in error, not sent
    await waitFor(async () => (await subscriptionStatus(t, id) as any) && (await t.api.get(`${t.path}/Subscription/${id}/$status`)).body.entry[0].resource.parameter.find((p: any) => p.name === 'events-since-subscription-start').valueString === '2', 10_000, 'the second event counted');
    expect((await subscriptionStatus(t, id)).status).toBe('error');
    // the client asks for re-activation: handshake again, then what waited goes out
    const current = (await t.api.get(`${t.path}/Subscription/${id}`)).body;
    const put = await t.api.put(`${t.path}/Subscription/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...current, status: 'requested' }));
    expect({ status: put.status, body: put.status === 200 ? undefined : put.body }).toEqual({ status: 200, body: undefined });
    expect(put.body.status).toBe('requested');
    await waitStatus(t, id, 'active');
    await waitFor(() => events(hook).includes('2'), 10_000, 'event 2 after re-activation');
    expect(hook.of('handshake')).toHaveLength(2);
    // event 1 failed for good: $resend brings it back
    const resend = await t.api.post(`${t.path}/Subscription/${id}/$resend`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'eventsSinceNumber', valueString: '1' }, { name: 'eventsUntilNumber', valueString: '1' }] }));
    expect(resend.status).toBe(200);
    expect(resend.body.issue[0].diagnostics).toMatch(/1 event/);
    await waitFor(() => hook.of('event-notification').filter((r) => r.headers['x-tenfhir-signature'] && statusOf(r.json).events[0]['event-number'] === '1' && r.json && true).length >= 4, 10_000, 'event 1 again');
  });

  it("a subscription whose owning client was removed stops delivering: error, with the reason", async () => {
    const clientId = await newBackendClient(server, t.slug);
    const api = authed(server.origin, await tokenFor(server, { slug: t.slug, clientId }));
    const { id, hook } = await activeSubscription({}, api);
    await deleteClient(server.deps.db, clientId);
    await postReport(t, patient, 'final');
    const s = await waitStatus(t, id, 'error');
    expect(s.error).toMatch(/no longer registered/);
    expect(hook.of('event-notification')).toEqual([]);
  });

  it('answers slowly but within the timeout: delivered on the first attempt', async () => {
    const { hook } = await activeSubscription();
    hook.behave((_r, res) => setTimeout(() => res.writeHead(204).end(), 400));
    await postReport(t, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 1, 10_000, 'the slow delivery');
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.of('event-notification')).toHaveLength(1);
  });
});

describe('operations, heartbeats, criteria subscriptions, the outbox', () => {
  it('$events returns the stored events between two numbers, as a history bundle with query-event status first', async () => {
    const { id, hook } = await activeSubscription({ content: 'id-only' });
    const r1 = await postReport(t, patient, 'final');
    const r2 = await postReport(t, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 2, 10_000, 'two events');
    // id-only: the focus reference, no resource
    expect(hook.of('event-notification')[0].json.entry[1].resource).toBeUndefined();
    const res = await t.api.get(`${t.path}/Subscription/${id}/$events?eventsSinceNumber=1&eventsUntilNumber=2&content=full-resource`);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('history');
    const s = statusOf(res.body);
    expect(s.type).toBe('query-event');
    expect(s.events.map((e: any) => [e['event-number'], e.focus])).toEqual([
      ['1', `${t.base}/DiagnosticReport/${r1}`],
      ['2', `${t.base}/DiagnosticReport/${r2}`],
    ]);
    expect(res.body.entry[1].resource.id).toBe(r1);
    expect((await t.api.get(`${t.path}/Subscription/${id}/$events?eventsSinceNumber=x`)).status).toBe(400);
    expect((await t.api.get(`${t.path}/Subscription/$events`)).status).toBe(400);
  });

  it('type-level $status filters by id and by status (each OR-joined)', async () => {
    const a = await activeSubscription();
    const b = await activeSubscription();
    const byId = await t.api.get(`${t.path}/Subscription/$status?id=${a.id},${b.id}`);
    expect(byId.body.type).toBe('searchset');
    expect(byId.body.entry.map((e: any) => statusOf({ entry: [e] }).subscription).sort()).toEqual([`${t.base}/Subscription/${a.id}`, `${t.base}/Subscription/${b.id}`].sort());
    const errored = await t.api.get(`${t.path}/Subscription/$status?status=error`);
    expect(errored.body.entry.every((e: any) => statusOf({ entry: [e] }).status === 'error')).toBe(true);
    expect((await t.api.get(`${t.path}/Subscription/not-there/$status`)).status).toBe(404);
  });

  it('heartbeats arrive every heartbeatPeriod on a quiet channel, with the current count', async () => {
    const { hook } = await activeSubscription({ heartbeat: 1 });
    const beats = await waitFor(() => (hook.of('heartbeat').length >= 2 ? hook.of('heartbeat') : undefined), 10_000, 'two heartbeats');
    expect(statusOf(beats[0].json)).toMatchObject({ type: 'heartbeat', status: 'active', 'events-since-subscription-start': '0' });
  });

  it('an R4 criteria subscription notifies exactly what its search would now return', async () => {
    const hook = await receiver();
    const sub = await subscribe(t, criteriaSubscription(`DiagnosticReport?status=final&subject=Patient/${patient}`, hook.url, 'application/fhir+json'));
    await waitStatus(t, sub.id, 'active');
    await postReport(t, patient, 'preliminary');
    const id = await postReport(t, patient, 'final');
    const [n] = await waitFor(() => (hook.of('event-notification').length ? hook.of('event-notification') : undefined), 10_000, 'the criteria notification');
    expect(n.json.entry[1].resource).toMatchObject({ resourceType: 'DiagnosticReport', id, status: 'final' });
    expect(hook.of('event-notification')).toHaveLength(1);
  });

  it('a rolled-back transaction notifies nobody and leaves no change event', async () => {
    const { hook } = await activeSubscription();
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } }, request: { method: 'POST', url: 'DiagnosticReport' } },
        { resource: { resourceType: 'Observation', status: 'not-a-status', code: { text: 'x' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    };
    expect((await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle))).status).toBe(400);
    // a later final report is the first event: the rolled-back one was never numbered
    await postReport(t, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 1, 10_000, 'the later event');
    expect(events(hook)).toEqual(['1']);
  });

  it('end is honoured: the server turns the subscription off when its end passes', async () => {
    const hook = await receiver();
    const end = new Date(Date.now() + 1500).toISOString();
    const sub = await subscribe(t, { ...topicSubscription(lab(), hook.url), end });
    await waitStatus(t, sub.id, 'active');
    await waitStatus(t, sub.id, 'off');
    await postReport(t, patient, 'final');
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.of('event-notification')).toEqual([]);
  });

  it('dispatched change events leave the outbox', async () => {
    await postReport(t, patient, 'final');
    await waitFor(async () => {
      const r = await server.deps.db.admin().query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE tenant_id = $1', [t.slug]);
      return r.rows[0].n === 0;
    }, 10_000, 'an empty outbox');
  });
});
