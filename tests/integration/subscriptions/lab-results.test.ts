// Issue 10, "done means": a lab's backend client posts a final DiagnosticReport with its Observations in one
// transaction; the subscriber hears exactly one signed full-resource notification; a preliminary report produces
// none; an amended one the next event number; a subscriber confined to another patient, and one in another tenant,
// hear nothing. Real HTTP receivers on loopback, real workers (dispatcher, deliveries) in the server.
import { FHIR_JSON, authed, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newPatient, postReport, subscribe, topicSubscription, topicUrl, waitStatus } from '../../helpers/subscriptions.js';
import { startReceiver, statusOf, verifySignature, waitFor, type Receiver } from '../../helpers/webhook.js';

let server: TestServer;
let lab: TestTenant;
let other: TestTenant;
const receivers: Receiver[] = [];

beforeAll(async () => {
  server = await startServer({}, { workers: true });
  lab = await newTenant(server, 'lab');
  other = await newTenant(server, 'oth');
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

function topic(name: string): string {
  return topicUrl(server, name);
}

describe('lab-result final, rest-hook, end to end', () => {
  let hook: Receiver;
  let confinedHook: Receiver;
  let otherHook: Receiver;
  let sub: { id: string; secret: string };
  let patient: string;
  let otherPatient: string;

  beforeAll(async () => {
    hook = await receiver();
    confinedHook = await receiver();
    otherHook = await receiver();
    patient = await newPatient(lab);
    otherPatient = await newPatient(lab);
    sub = await subscribe(lab, topicSubscription(topic('lab-result-final'), hook.url));
    // a subscriber whose token is confined to another patient (a granular scope: that patient's reports only)
    const confined = authed(server.origin, await tokenFor(server, lab, { scope: `system/DiagnosticReport.rs?patient=Patient/${otherPatient} system/Subscription.cruds` }));
    const c = await subscribe(lab, topicSubscription(topic('lab-result-final'), confinedHook.url), confined);
    // a subscriber in another tenant, on the same topic, with no filter at all
    const o = await subscribe(other, topicSubscription(topic('lab-result-final'), otherHook.url));
    await waitStatus(lab, sub.id, 'active');
    await waitStatus(lab, c.id, 'active');
    await waitStatus(other, o.id, 'active');
  });

  it('shakes hands first: the handshake is signed, carries status requested and 0 events', () => {
    const [hs] = hook.of('handshake');
    expect(hs).toBeDefined();
    const s = statusOf(hs.json);
    expect(s).toMatchObject({ status: 'requested', type: 'handshake', 'events-since-subscription-start': '0' });
    expect(verifySignature(sub.secret, hs.headers['x-tenfhir-signature'] as string, hs.body)).toBe(true);
  });

  it('a preliminary report notifies nobody; the final one notifies once, signed, with the full resource', async () => {
    await postReport(lab, patient, 'preliminary');
    const reportId = await postReport(lab, patient, 'final');
    const [n] = await waitFor(() => (hook.of('event-notification').length ? hook.of('event-notification') : undefined), 15_000, 'the notification');
    const s = statusOf(n.json);
    expect(s.type).toBe('event-notification');
    expect(s.status).toBe('active');
    expect(s['events-since-subscription-start']).toBe('1');
    expect(s.events).toEqual([expect.objectContaining({ 'event-number': '1', focus: `${lab.base}/DiagnosticReport/${reportId}` })]);
    expect(s.topic).toBe(topic('lab-result-final'));
    expect(n.json.type).toBe('history');
    expect(n.json.entry[1].resource).toMatchObject({ resourceType: 'DiagnosticReport', id: reportId, status: 'final' });
    expect(n.headers['content-type']).toBe('application/fhir+json');
    expect(verifySignature(sub.secret, n.headers['x-tenfhir-signature'] as string, n.body)).toBe(true);
    // a tampered body or another subscription's secret does not verify
    expect(verifySignature(sub.secret, n.headers['x-tenfhir-signature'] as string, n.body.replace('final', 'finaL'))).toBe(false);
  });

  it('an amended report is the next event number; exactly one notification per event', async () => {
    const [first] = hook.of('event-notification');
    const reportId = statusOf(first.json).events[0].focus.split('/').pop();
    const current = (await lab.api.get(`${lab.path}/DiagnosticReport/${reportId}`)).body;
    const res = await lab.api.put(`${lab.path}/DiagnosticReport/${reportId}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...current, status: 'amended' }));
    expect(res.status).toBe(200);
    await waitFor(() => hook.of('event-notification').length >= 2, 15_000, 'the second notification');
    const numbers = hook.of('event-notification').map((r) => statusOf(r.json).events[0]['event-number']);
    expect(numbers).toEqual(['1', '2']);
    // an edit that keeps the status is not a change of status: no third event (a later final to another report proves the pipeline has moved past it)
    await lab.api.put(`${lab.path}/DiagnosticReport/${reportId}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...current, status: 'amended', conclusion: 'typo fixed' }));
    await postReport(lab, patient, 'final');
    await waitFor(() => hook.of('event-notification').length >= 3, 15_000, 'the third notification');
    await new Promise((r) => setTimeout(r, 300));
    const all = hook.of('event-notification').map((r) => statusOf(r.json).events[0]['event-number']);
    expect(all).toEqual(['1', '2', '3']);
  });

  it('a subscriber confined to another patient hears nothing about this patient, then hears its own patient', async () => {
    expect(confinedHook.of('event-notification')).toEqual([]);
    const own = await postReport(lab, otherPatient, 'final');
    const [n] = await waitFor(() => (confinedHook.of('event-notification').length ? confinedHook.of('event-notification') : undefined), 15_000, 'the confined notification');
    expect(statusOf(n.json).events[0].focus).toBe(`${lab.base}/DiagnosticReport/${own}`);
    expect(confinedHook.of('event-notification')).toHaveLength(1);
  });

  it("another tenant's subscriber on the same topic hears nothing of this tenant", () => {
    expect(otherHook.of('handshake')).toHaveLength(1);
    expect(otherHook.of('event-notification')).toEqual([]);
    expect(otherHook.received.map((r) => r.body).join('')).not.toContain(lab.slug);
  });

  it("another tenant's token sees neither the subscription nor its status", async () => {
    expect((await other.api.get(`${other.path}/Subscription/${sub.id}`)).status).toBe(404);
    expect((await other.api.get(`${other.path}/Subscription/${sub.id}/$status`)).status).toBe(404);
    expect((await authed(server.origin, other.token).get(`${lab.path}/Subscription/${sub.id}/$status`)).status).toBe(401);
  });
});
