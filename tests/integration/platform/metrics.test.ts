// GET /metrics: the Prometheus text format, counters that move with the traffic, label values from fixed sets only
// (no tenant slug, resource id or path), METRICS_TOKEN as a bearer token, 404 when switched off, one registry per server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

const TOKEN = 'metrics-scraper-token-0123456789';

let open: TestServer;
let guarded: TestServer;
let off: TestServer;
let t: TestTenant;

beforeAll(async () => {
  // explicit, whatever METRICS_* the environment running the tests has
  open = await startServer({ metricsEnabled: true, metricsToken: undefined });
  guarded = await startServer({ metricsEnabled: true, metricsToken: TOKEN });
  off = await startServer({ metricsEnabled: false, metricsToken: undefined });
  t = await newTenant(open, 'metricsslug');
});
afterAll(async () => {
  await Promise.all([open, guarded, off].filter(Boolean).map((s) => s.close()));
});

async function scrape(server: TestServer, authorization?: string): Promise<string> {
  const r = request(server.origin).get('/metrics');
  const res = await (authorization ? r.set('Authorization', authorization) : r);
  expect(res.status).toBe(200);
  return res.text;
}

/** The value of one sample (`name{labels} value`), 0 when the series is absent. */
function sample(body: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (want.length === have.length && want.every((l) => have.includes(l))) return Number(m[3]);
  }
  return 0;
}

/** Every label value of every tenfhir_ sample. */
function labelValues(body: string): Map<string, Set<string>> {
  const seen = new Map<string, Set<string>>();
  for (const line of body.split('\n')) {
    if (!line.startsWith('tenfhir_')) continue;
    for (const [, k, v] of line.matchAll(/(\w+)="([^"]*)"/g)) {
      if (!seen.has(k)) seen.set(k, new Set());
      seen.get(k)!.add(v);
    }
  }
  return seen;
}

describe('GET /metrics', () => {
  it('answers the Prometheus text format with every metric family and the process metrics', async () => {
    const res = await request(open.origin).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const [name, type] of [
      ['tenfhir_http_requests_total', 'counter'],
      ['tenfhir_http_request_duration_seconds', 'histogram'],
      ['tenfhir_outbox_events_total', 'counter'],
      ['tenfhir_outbox_dispatch_lag_seconds', 'histogram'],
      ['tenfhir_subscription_matches_total', 'counter'],
      ['tenfhir_notifications_total', 'counter'],
      ['tenfhir_notification_latency_seconds', 'histogram'],
      ['tenfhir_delivery_attempt_seconds', 'histogram'],
      ['tenfhir_websocket_connections', 'gauge'],
      ['tenfhir_jobs_total', 'counter'],
      ['tenfhir_process_cpu_user_seconds_total', 'counter'],
    ]) {
      expect(res.text).toContain(`# TYPE ${name} ${type}\n`);
    }
  });

  it('counts FHIR requests by method and status class, never by tenant, resource or path', async () => {
    const before = await scrape(open);
    const p = await create(t, { resourceType: 'Patient', name: [{ family: 'Metricsfamily' }] });
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient?family=Metricsfamily`)).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient/no-such-patient-4711`)).status).toBe(404);
    expect((await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'other' }))).status).toBe(200);
    const odd = await fetch(`${t.base}/Patient/${p.id}`, { method: 'PROPFIND' });
    expect(odd.status).toBeGreaterThanOrEqual(400);
    const after = await scrape(open);

    const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('tenfhir_http_requests_total', { method: 'POST', status: '2xx' })).toBeGreaterThanOrEqual(1);
    expect(delta('tenfhir_http_requests_total', { method: 'PUT', status: '2xx' })).toBeGreaterThanOrEqual(1);
    // the two reads and the search, plus the first scrape
    expect(delta('tenfhir_http_requests_total', { method: 'GET', status: '2xx' })).toBeGreaterThanOrEqual(3);
    expect(delta('tenfhir_http_requests_total', { method: 'GET', status: '4xx' })).toBeGreaterThanOrEqual(1);
    expect(delta('tenfhir_http_request_duration_seconds_count', { method: 'GET' })).toBeGreaterThanOrEqual(4);
    expect(sample(after, 'tenfhir_http_request_duration_seconds_bucket', { method: 'POST', le: '+Inf' })).toBeGreaterThanOrEqual(1);
    expect(delta('tenfhir_http_requests_total', { method: 'other', status: '4xx' })).toBe(1);

    expect(after).not.toContain(t.slug);
    expect(after).not.toContain(p.id as string);
    expect(after).not.toContain('no-such-patient-4711');
    expect(after).not.toContain('PROPFIND');
    expect(after).not.toContain('/fhir');
    const labels = labelValues(after);
    expect([...labels.get('method')!].every((m) => ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'other'].includes(m))).toBe(true);
    expect([...labels.get('status')!].every((s) => /^[1-5]xx$/.test(s))).toBe(true);
    expect(labels.has('tenant')).toBe(false);
    expect(labels.has('path')).toBe(false);
  });
});

describe('METRICS_TOKEN', () => {
  it('answers 401 with WWW-Authenticate: Bearer without a token and with a wrong one', async () => {
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer ', `Basic ${TOKEN}`, TOKEN]) {
      const r = request(guarded.origin).get('/metrics');
      const res = await (authorization === undefined ? r : r.set('Authorization', authorization));
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(JSON.parse(res.text)).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
      expect(res.text).not.toContain('tenfhir_http_requests_total');
    }
  });

  it('answers 200 with the right token', async () => {
    const body = await scrape(guarded, `Bearer ${TOKEN}`);
    expect(body).toContain('# TYPE tenfhir_http_requests_total counter');
    // the refused scrapes above were counted too
    expect(sample(body, 'tenfhir_http_requests_total', { method: 'GET', status: '4xx' })).toBeGreaterThanOrEqual(6);
  });
});

describe('METRICS_ENABLED=false', () => {
  it('answers 404 at /metrics', async () => {
    const res = await request(off.origin).get('/metrics');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('tenfhir_');
  });
});

describe('one registry per server', () => {
  it('two servers in one process count their own requests only', async () => {
    expect(open.deps.metrics.registry).not.toBe(guarded.deps.metrics.registry);
    // the FHIR writes went to `open` only
    const openBody = await scrape(open);
    const guardedBody = await scrape(guarded, `Bearer ${TOKEN}`);
    expect(sample(openBody, 'tenfhir_http_requests_total', { method: 'POST', status: '2xx' })).toBeGreaterThanOrEqual(1);
    expect(sample(guardedBody, 'tenfhir_http_requests_total', { method: 'POST', status: '2xx' })).toBe(0);
    expect(sample(guardedBody, 'tenfhir_http_requests_total', { method: 'PUT', status: '2xx' })).toBe(0);
    // a request on one server moves only that server's counter
    const before = (await off.deps.metrics.httpRequests.get()).values.reduce((n, v) => n + v.value, 0);
    const openBefore = (await open.deps.metrics.httpRequests.get()).values.reduce((n, v) => n + v.value, 0);
    await request(off.origin).get('/healthz').expect(200);
    expect((await off.deps.metrics.httpRequests.get()).values.reduce((n, v) => n + v.value, 0)).toBe(before + 1);
    expect((await open.deps.metrics.httpRequests.get()).values.reduce((n, v) => n + v.value, 0)).toBe(openBefore);
  });
});
