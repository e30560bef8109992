// Issue 10, "bad input": every Subscription the server cannot honour is refused at create with a 400 naming the code
// and the element, and nothing is stored (SUBSCRIPTIONS.md §2: unsupported topics, filters, channels, payloads, FHIR
// versions SHALL be rejected).
import { FHIR_JSON, authed, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { BACKPORT, criteriaSubscription, subscribe, topicSubscription, topicUrl } from '../../helpers/subscriptions.js';

let server: TestServer;
let t: TestTenant;
const hook = 'http://127.0.0.1:9/hook';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sbad');
});

afterAll(async () => {
  await server.close();
});

const lab = () => topicUrl(server, 'lab-result-final');

function withChannel(body: Record<string, unknown>, change: Record<string, unknown>): Record<string, unknown> {
  return { ...body, channel: { ...(body.channel as Record<string, unknown>), ...change } };
}

const cases: [string, () => Record<string, unknown>, string, string][] = [
  ['criteria that is not a search', () => criteriaSubscription('not a search at all', hook, 'application/fhir+json'), 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria'],
  ['criteria on an unknown type', () => criteriaSubscription('Widget?status=final', hook), 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria'],
  ['criteria with an unknown parameter', () => criteriaSubscription('DiagnosticReport?colour=blue', hook), 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria'],
  ['criteria with a result parameter', () => criteriaSubscription('DiagnosticReport?status=final&_sort=date', hook), 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria'],
  ['criteria with a malformed value', () => criteriaSubscription('DiagnosticReport?date=yesterday', hook), 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria'],
  ['an unknown topic', () => topicSubscription(`${server.origin}/topics/no-such-topic`, hook), 'SUBSCRIPTION_TOPIC_UNKNOWN', 'Subscription.criteria'],
  ['a filter the topic does not offer', () => topicSubscription(lab(), hook, { filters: ['issued=2024'] }), 'SUBSCRIPTION_FILTER_UNSUPPORTED', 'Subscription.criteria.extension[0]'],
  ['a filter about another type', () => topicSubscription(lab(), hook, { filters: ['Encounter.patient=Patient/1'] }), 'SUBSCRIPTION_FILTER_UNSUPPORTED', 'Subscription.criteria.extension[0]'],
  ['a filter that is not name=value', () => topicSubscription(lab(), hook, { filters: ['patient'] }), 'SUBSCRIPTION_FILTER_INVALID', 'Subscription.criteria.extension[0]'],
  ['an unsupported channel (email)', () => topicSubscription(lab(), 'mailto:lab@example.org', { channelType: 'email' }), 'SUBSCRIPTION_CHANNEL_UNSUPPORTED', 'Subscription.channel.type'],
  ['an unsupported channel (message)', () => topicSubscription(lab(), hook, { channelType: 'message' }), 'SUBSCRIPTION_CHANNEL_UNSUPPORTED', 'Subscription.channel.type'],
  ['an XML payload', () => topicSubscription(lab(), hook, { payload: 'application/fhir+xml' }), 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload'],
  ['another FHIR version', () => topicSubscription(lab(), hook, { payload: 'application/fhir+json;fhirVersion=5.0' }), 'SUBSCRIPTION_FHIR_VERSION_UNSUPPORTED', 'Subscription.channel.payload'],
  ['an unknown content level', () => topicSubscription(lab(), hook, { content: 'everything' }), 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload.extension'],
  ['a topic subscription without payload', () => withChannel(topicSubscription(lab(), hook), { payload: undefined, _payload: undefined }), 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload'],
  ['a rest-hook without endpoint', () => topicSubscription(lab(), undefined), 'SUBSCRIPTION_ENDPOINT_MISSING', 'Subscription.channel.endpoint'],
  ['an http: endpoint off loopback', () => topicSubscription(lab(), 'http://example.org/hook'), 'SUBSCRIPTION_ENDPOINT_INSECURE', 'Subscription.channel.endpoint'],
  ['an endpoint with credentials', () => topicSubscription(lab(), 'https://user:pw@example.org/hook'), 'SUBSCRIPTION_ENDPOINT_INVALID', 'Subscription.channel.endpoint'],
  ['a private-range endpoint', () => topicSubscription(lab(), 'https://10.1.2.3/hook'), 'SUBSCRIPTION_ENDPOINT_PRIVATE', 'Subscription.channel.endpoint'],
  ['a link-local (metadata) endpoint', () => topicSubscription(lab(), 'https://169.254.169.254/latest'), 'SUBSCRIPTION_ENDPOINT_PRIVATE', 'Subscription.channel.endpoint'],
  ['an IPv4-mapped private endpoint', () => topicSubscription(lab(), 'https://[::ffff:a00:1]/hook'), 'SUBSCRIPTION_ENDPOINT_PRIVATE', 'Subscription.channel.endpoint'],
  ['a heartbeatPeriod of 0', () => topicSubscription(lab(), hook, { heartbeat: 0 }), 'SUBSCRIPTION_CHANNEL_INVALID', 'Subscription.channel.extension'],
  ['a heartbeatPeriod that is not a number', () => withChannel(topicSubscription(lab(), hook), { extension: [{ url: `${BACKPORT}/backport-heartbeat-period`, valueString: 'often' }] }), 'SUBSCRIPTION_CHANNEL_INVALID', 'Subscription.channel.extension'],
  ['a timeout over 300 s', () => topicSubscription(lab(), hook, { timeout: 3600 }), 'SUBSCRIPTION_CHANNEL_INVALID', 'Subscription.channel.extension'],
  ['a header that sets Host', () => withChannel(topicSubscription(lab(), hook), { header: ['Host: evil.example'] }), 'SUBSCRIPTION_HEADER_INVALID', 'Subscription.channel.header[0]'],
  ['a header that forges the signature', () => withChannel(topicSubscription(lab(), hook), { header: ['X-Tenfhir-Signature: t=1,v1=00'] }), 'SUBSCRIPTION_HEADER_INVALID', 'Subscription.channel.header[0]'],
  ['a header line that is not "Name: value"', () => withChannel(topicSubscription(lab(), hook), { header: ['no colon here'] }), 'SUBSCRIPTION_HEADER_INVALID', 'Subscription.channel.header[0]'],
  ['status error from the client', () => ({ ...topicSubscription(lab(), hook), status: 'error' }), 'SUBSCRIPTION_STATUS_INVALID', 'Subscription.status'],
];

describe('Subscriptions the server cannot honour are refused, and nothing is stored', () => {
  it.each(cases)('%s -> 400 %s', async (_what, body, code, expression) => {
    const res = await t.api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body()));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].details.coding[0].code).toBe(code);
    expect(res.body.issue[0].expression).toEqual([expression]);
    const search = await t.api.get(`${t.path}/Subscription?_summary=count`);
    expect(search.body.total).toBe(0);
  });

  it('the same checks hold for an update, and a refused update changes nothing', async () => {
    const { id } = await subscribe(t, topicSubscription(lab(), hook));
    const before = (await t.api.get(`${t.path}/Subscription/${id}`)).body;
    const res = await t.api.put(`${t.path}/Subscription/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...topicSubscription(`${server.origin}/topics/nope`, hook), id }));
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SUBSCRIPTION_TOPIC_UNKNOWN');
    const after = (await t.api.get(`${t.path}/Subscription/${id}`)).body;
    expect(after.meta.versionId).toBe(before.meta.versionId);
    expect((await t.api.delete(`${t.path}/Subscription/${id}`)).status).toBe(204);
  });

  it('a subscription about a type its creator may not search is refused (403): it could never deliver anything', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Subscription.cruds system/Patient.rs' }));
    const res = await api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(topicSubscription(lab(), hook)));
    expect(res.status).toBe(403);
    expect(res.body.issue[0].details.coding[0].code).toBe('SUBSCRIPTION_ACCESS');
  });

  it('a token without Subscription scopes may neither create nor read subscriptions', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/DiagnosticReport.rs' }));
    expect((await api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(topicSubscription(lab(), hook)))).status).toBe(403);
    expect((await api.get(`${t.path}/Subscription/$status`)).status).toBe(403);
  });
});

describe('the CapabilityStatement says what is built', () => {
  it('lists the Backport profile, the built-in topics, the Subscription operations and the websocket URL', async () => {
    const cs = (await t.api.get(`${t.path}/metadata`)).body;
    expect(cs.instantiates).toContain('http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4');
    const sub = cs.rest[0].resource.find((r: any) => r.type === 'Subscription');
    expect(sub.supportedProfile).toEqual([`${BACKPORT}/backport-subscription`]);
    expect(sub.extension.map((e: any) => e.valueCanonical)).toEqual(['lab-result-final', 'encounter-start', 'encounter-end', 'service-request-status'].map((n) => topicUrl(server, n)));
    expect(sub.operation.map((o: any) => o.name)).toEqual(expect.arrayContaining(['status', 'events', 'get-ws-binding-token', 'resend']));
    expect(cs.rest[0].extension[0]).toEqual({ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUri: `${t.base.replace('http', 'ws')}/$subscription-ws` });
  });
});

describe('loopback endpoints are for development only', () => {
  it('with SUBSCRIPTIONS_ALLOW_LOOPBACK off (the default), http and https endpoints on loopback are refused', async () => {
    const strict = await startServer({ subscriptionsAllowLoopback: false });
    try {
      const s = await newTenant(strict, 'sstr');
      for (const [endpoint, code] of [
        ['http://127.0.0.1:9/hook', 'SUBSCRIPTION_ENDPOINT_INSECURE'],
        ['https://127.0.0.1:9/hook', 'SUBSCRIPTION_ENDPOINT_PRIVATE'],
        ['https://localhost:9/hook', 'SUBSCRIPTION_ENDPOINT_PRIVATE'],
        ['https://[::1]:9/hook', 'SUBSCRIPTION_ENDPOINT_PRIVATE'],
      ]) {
        const res = await s.api.post(`${s.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(topicSubscription(topicUrl(strict, 'lab-result-final'), endpoint)));
        expect([endpoint, res.status, res.body.issue?.[0]?.details?.coding?.[0]?.code]).toEqual([endpoint, 400, code]);
      }
    } finally {
      await strict.close();
    }
  });
});

describe('end', () => {
  it('a subscription whose end has passed is stored off', async () => {
    const past = await t.api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...topicSubscription(lab(), hook), end: '2020-01-01T00:00:00Z' }));
    expect(past.status).toBe(201);
    expect(past.body.status).toBe('off');
  });
});
