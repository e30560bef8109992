// Per-tenant Prometheus series (issue 11): none without METRICS_TENANT_SERIES (no metric carries a tenant label);
// with it, requests, resources, stored bytes, live sessions and last activity per tenant, and with
// METRICS_TENANT_SERIES_MAX the tenants beyond the cap summed under tenant="_other".
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { create, newTenant, onServer, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let plain: TestServer;
let series: TestServer;
let capped: TestServer;

beforeAll(async () => {
  // explicit, whatever METRICS_* the environment running the tests has
  const common = { metricsEnabled: true, metricsToken: undefined };
  plain = await startServer({ ...common, metricsTenantSeries: false });
  // no cap in effect: the test database holds other test files' tenants too (they would take the first labels)
  series = await startServer({ ...common, metricsTenantSeries: true, metricsTenantSeriesMax: 1_000_000 });
  capped = await startServer({ ...common, metricsTenantSeries: true, metricsTenantSeriesMax: 1 });
});
afterAll(async () => {
  await Promise.all([plain, series, capped].filter(Boolean).map((s) => s.close()));
});

async function scrape(server: TestServer): Promise<string> {
  const res = await request(server.origin).get('/metrics');
  expect(res.status).toBe(200);
  return res.text;
}

/** Every sample of `name`: its labels and value. */
function samples(body: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    out.push({ labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v])), value: Number(m[3]) });
  }
  return out;
}

function valueOf(body: string, name: string, tenant: string): number | undefined {
  return samples(body, name).find((s) => s.labels.tenant === tenant)?.value;
}

/** A tenant on `server` with `reads` searches done (its token is `server`'s). */
async function busyTenant(server: TestServer, prefix: string, reads: number): Promise<TestTenant> {
  const t = await newTenant(server, prefix);
  for (let i = 0; i < reads; i++) expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
  return t;
}

describe('without METRICS_TENANT_SERIES', () => {
  it('no metric carries a tenant label, and there is no per-tenant family', async () => {
    const t = await busyTenant(plain, 'mt-plain', 2);
    await create(t, { resourceType: 'Patient' });
    const body = await scrape(plain);
    expect(body).not.toContain('tenant=');
    expect(body).not.toContain('tenfhir_tenant_');
    expect(body).not.toContain(t.slug);
    // the usage is still counted (the admin API shows it)
    expect(plain.deps.usage.pending(t.slug).requests).toBe(3);
  });
});

describe('with METRICS_TENANT_SERIES', () => {
  it('shows each tenant its requests, resources, stored bytes, live sessions and last activity', async () => {
    const started = Date.now() / 1000;
    const t = await busyTenant(series, 'mt-on', 3);
    await create(t, { resourceType: 'Patient' });
    await create(t, { resourceType: 'Patient' });
    const quiet = await newTenant(series, 'mt-quiet');
    const body = await scrape(series);
    for (const [name, type] of [
      ['tenfhir_tenant_requests_total', 'counter'],
      ['tenfhir_tenant_resources', 'gauge'],
      ['tenfhir_tenant_storage_bytes', 'gauge'],
      ['tenfhir_tenant_active_sessions', 'gauge'],
      ['tenfhir_tenant_last_activity_timestamp_seconds', 'gauge'],
    ]) {
      expect(body).toContain(`# TYPE ${name} ${type}\n`);
    }
    expect(valueOf(body, 'tenfhir_tenant_requests_total', t.slug)).toBe(5);
    // the root Organization and the two patients
    expect(valueOf(body, 'tenfhir_tenant_resources', t.slug)).toBe(3);
    expect(valueOf(body, 'tenfhir_tenant_storage_bytes', t.slug)).toBeGreaterThan(0);
    expect(valueOf(body, 'tenfhir_tenant_active_sessions', t.slug)).toBe(0);
    expect(valueOf(body, 'tenfhir_tenant_last_activity_timestamp_seconds', t.slug)).toBeGreaterThanOrEqual(started - 1);
    // a tenant without requests: its resources, no request series, no last activity
    expect(valueOf(body, 'tenfhir_tenant_resources', quiet.slug)).toBe(1);
    expect(valueOf(body, 'tenfhir_tenant_requests_total', quiet.slug)).toBeUndefined();
    expect(valueOf(body, 'tenfhir_tenant_last_activity_timestamp_seconds', quiet.slug)).toBeUndefined();
    // the other families stay without tenant labels
    expect(samples(body, 'tenfhir_http_requests_total').every((s) => s.labels.tenant === undefined)).toBe(true);
  });

  it('the request counter moves with the traffic and survives a flush (a counter never goes down)', async () => {
    const t = await busyTenant(series, 'mt-flush', 2);
    expect(valueOf(await scrape(series), 'tenfhir_tenant_requests_total', t.slug)).toBe(2);
    await series.deps.usage.flush();
    expect(valueOf(await scrape(series), 'tenfhir_tenant_requests_total', t.slug)).toBe(2);
    expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
    expect(valueOf(await scrape(series), 'tenfhir_tenant_requests_total', t.slug)).toBe(3);
  });

  it('with a cap of 1 and two active tenants, one series is the first tenant and the other is _other', async () => {
    const reads = new Map<string, number>();
    for (const n of [2, 3]) reads.set((await busyTenant(capped, 'mt-cap', n)).slug, n);
    // the first scrape meets both at once: the first slug in sort order keeps its own label
    const [x, y] = [...reads.keys()].sort();
    const body = await scrape(capped);
    const requests = samples(body, 'tenfhir_tenant_requests_total');
    expect(requests.map((s) => s.labels.tenant).sort()).toEqual(['_other', x].sort());
    expect(valueOf(body, 'tenfhir_tenant_requests_total', x)).toBe(reads.get(x));
    expect(valueOf(body, 'tenfhir_tenant_requests_total', '_other')).toBe(reads.get(y));
    expect(body).not.toContain(y);
    // every per-tenant family holds at most two series: the first tenant and everyone else (the whole database)
    for (const name of ['tenfhir_tenant_resources', 'tenfhir_tenant_storage_bytes', 'tenfhir_tenant_active_sessions']) {
      const labels = samples(body, name).map((s) => s.labels.tenant);
      expect(labels.sort()).toEqual(['_other', x].sort());
    }
    expect(valueOf(body, 'tenfhir_tenant_resources', '_other')).toBeGreaterThanOrEqual(1);
    // a tenant met later never gets a series of its own
    const z = await newTenant(capped, 'aaa-mt-cap');
    expect((await (await onServer(capped, z)).get(`${z.path}/Patient`)).status).toBe(200);
    const later = await scrape(capped);
    expect(later).not.toContain(z.slug);
    expect(samples(later, 'tenfhir_tenant_requests_total').reduce((n, s) => n + s.value, 0)).toBe(6);
  });
});
