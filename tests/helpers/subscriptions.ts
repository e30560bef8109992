// Subscriptions as a client writes them (Backport IG topic-based and R4 criteria-based), and the lab's transaction.
import { expect } from '@jest/globals';
import { FHIR_JSON, type Api, type TestServer, type TestTenant } from './server.js';
import { waitFor } from './webhook.js';

export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';

export function topicUrl(server: TestServer, name: string): string {
  return `${server.origin}/topics/${name}`;
}

export interface SubscriptionOptions {
  filters?: string[];
  content?: string;
  heartbeat?: number;
  timeout?: number;
  channelType?: string;
  payload?: string;
}

/** A Backport topic-based rest-hook subscription. */
export function topicSubscription(topic: string, endpoint: string | undefined, o: SubscriptionOptions = {}): Record<string, unknown> {
  const ext = [
    ...(o.heartbeat !== undefined ? [{ url: `${BACKPORT}/backport-heartbeat-period`, valueUnsignedInt: o.heartbeat }] : []),
    ...(o.timeout !== undefined ? [{ url: `${BACKPORT}/backport-timeout`, valueUnsignedInt: o.timeout }] : []),
  ];
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    status: 'requested',
    reason: 'lab results for the ward',
    criteria: topic,
    ...(o.filters?.length ? { _criteria: { extension: o.filters.map((f) => ({ url: `${BACKPORT}/backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      type: o.channelType ?? 'rest-hook',
      ...(endpoint !== undefined ? { endpoint } : {}),
      payload: o.payload ?? 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: o.content ?? 'full-resource' }] },
      ...(ext.length ? { extension: ext } : {}),
    },
  };
}

/** An R4 query-based subscription (criteria = a search). */
export function criteriaSubscription(criteria: string, endpoint: string, payload?: string): Record<string, unknown> {
  return { resourceType: 'Subscription', status: 'requested', reason: 'r4 criteria', criteria, channel: { type: 'rest-hook', endpoint, ...(payload ? { payload } : {}) } };
}

export async function subscribe(t: TestTenant, body: Record<string, unknown>, api: Api = t.api): Promise<{ id: string; secret: string }> {
  const res = await api.post(`${t.path}/Subscription`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  expect({ status: res.status, issue: res.body.issue }).toEqual({ status: 201, issue: undefined });
  const secret = res.headers['x-subscription-secret'];
  expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return { id: res.body.id, secret };
}

export async function subscriptionStatus(t: TestTenant, id: string): Promise<{ status: string; error?: string }> {
  return (await t.api.get(`${t.path}/Subscription/${id}`)).body;
}

export async function waitStatus(t: TestTenant, id: string, status: string, timeoutMs = 15_000): Promise<{ status: string; error?: string }> {
  return waitFor(async () => {
    const s = await subscriptionStatus(t, id);
    return s.status === status ? s : undefined;
  }, timeoutMs, `Subscription/${id} ${status}`);
}

export async function newPatient(t: TestTenant): Promise<string> {
  const res = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Lab' }] }));
  expect(res.status).toBe(201);
  return res.body.id;
}

/** The lab's transaction: a DiagnosticReport with two Observations, in one Bundle; returns the report's id. */
export async function postReport(t: TestTenant, patientId: string, status: string): Promise<string> {
  const obs = (code: string, value: number) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${patientId}` }, valueQuantity: { value, unit: 'mmol/L' },
  });
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:0b1c3b4e-0000-4000-8000-000000000001', resource: obs('2345-7', 5.4), request: { method: 'POST', url: 'Observation' } },
      { fullUrl: 'urn:uuid:0b1c3b4e-0000-4000-8000-000000000002', resource: obs('2951-2', 140), request: { method: 'POST', url: 'Observation' } },
      {
        fullUrl: 'urn:uuid:0b1c3b4e-0000-4000-8000-000000000003',
        resource: {
          resourceType: 'DiagnosticReport', status, code: { coding: [{ system: 'http://loinc.org', code: '24323-8' }] },
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }],
          subject: { reference: `Patient/${patientId}` },
          result: [{ reference: 'urn:uuid:0b1c3b4e-0000-4000-8000-000000000001' }, { reference: 'urn:uuid:0b1c3b4e-0000-4000-8000-000000000002' }],
        },
        request: { method: 'POST', url: 'DiagnosticReport' },
      },
    ],
  };
  const res = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));
  expect(res.status).toBe(200);
  return res.body.entry[2].response.location.split('/')[1];
}
