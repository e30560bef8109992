// history (http.html#history; REST.md §6, §7): instance, type and system Bundles, _since, _at, _count and paging.
// The server clock is pinned (deps.clock), so every version's lastUpdated is known exactly.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let now = Date.parse('2021-03-01T00:00:00.000Z');

/** Moves the pinned clock forward; returns the new instant as ISO. */
function tick(ms = 1000): string {
  now += ms;
  return new Date(now).toISOString();
}

beforeAll(async () => {
  server = await startServer();
  server.deps.clock = () => new Date(now);
  t = await newTenant(server, 'hist');
});
afterAll(async () => server.close());

const patient = { resourceType: 'Patient', name: [{ family: 'Hist' }], gender: 'female' };

function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0].code).toBe(issueCode);
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  expect(res.text).not.toMatch(/\n\s+at |node_modules/);
}

const put = (id: string, body: Record<string, unknown>) => t.api.put(`${t.path}/Patient/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

/** Follows `next` links from `first` (a path under the tenant), returning every page's entries. */
async function allPages(first: string, tenant: TestTenant = t): Promise<{ pages: any[][]; entries: any[] }> {
  const pages: any[][] = [];
  let url: string | undefined = `${tenant.path}${first}`;
  while (url) {
    const res = await tenant.api.get(url);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    pages.push(res.body.entry ?? []);
    const next: string | undefined = res.body.link.find((l: any) => l.relation === 'next')?.url;
    url = next ? new URL(next).pathname + new URL(next).search : undefined;
    if (pages.length > 100) throw new Error('paging does not end');
  }
  return { pages, entries: pages.flat() };
}

describe('instance history (http.html#history)', () => {
  it('lists every version newest first with request, response.etag and lastModified; the deletion has no resource', async () => {
    const t1 = tick();
    const p = await create(t, patient);
    const t2 = tick();
    await put(p.id, { ...p, gender: 'male' });
    const t3 = tick();
    await put(p.id, { ...p, gender: 'other' });
    const t4 = tick();
    expect((await t.api.delete(`${t.path}/Patient/${p.id}`)).status).toBe(204);
    const res = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('history');
    expect(res.body.link[0]).toEqual({ relation: 'self', url: `${t.base}/Patient/${p.id}/_history` });
    const e = res.body.entry;
    expect(e.map((x: any) => x.request)).toEqual([
      { method: 'DELETE', url: `Patient/${p.id}` },
      { method: 'PUT', url: `Patient/${p.id}` },
      { method: 'PUT', url: `Patient/${p.id}` },
      { method: 'POST', url: 'Patient' },
    ]);
    expect(e.map((x: any) => x.response.etag)).toEqual(['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']);
    expect(e.map((x: any) => x.response.lastModified)).toEqual([t4, t3, t2, t1]);
    expect(e.map((x: any) => x.response.status)).toEqual(['204 No Content', '200 OK', '200 OK', '201 Created']);
    for (const x of e) expect(x.fullUrl).toBe(`${t.base}/Patient/${p.id}`);
    expect(e[0].resource).toBeUndefined();
    expect(e.slice(1).map((x: any) => [x.resource.meta.versionId, x.resource.gender, x.resource.meta.lastUpdated])).toEqual([
      ['3', 'other', t3],
      ['2', 'male', t2],
      ['1', 'female', t1],
    ]);
    // A PUT brings it back to life: version 5, and history keeps all five.
    tick();
    expect((await put(p.id, { ...p, gender: 'female' })).status).toBe(201);
    const after = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
    expect(after.body.entry.map((x: any) => x.response.etag)).toEqual(['W/"5"', 'W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']);
  });

  it('reports an update-as-create (PUT of version 1) as 201 Created', async () => {
    tick();
    const res = await put('client-chosen-1', { ...patient, id: 'client-chosen-1' });
    expect(res.status).toBe(201);
    const h = await t.api.get(`${t.path}/Patient/client-chosen-1/_history`);
    expect(h.body.entry.map((e: any) => [e.request.method, e.response.status])).toEqual([['PUT', '201 Created']]);
  });

  it('answers 404 RESOURCE_NOT_FOUND for a resource the tenant never held', async () => {
    expectOutcome(await t.api.get(`${t.path}/Patient/never-existed/_history`), 404, 'not-found', 'RESOURCE_NOT_FOUND');
  });

  it('is reachable with HEAD and honours _pretty', async () => {
    tick();
    const p = await create(t, patient);
    expect((await t.api.head(`${t.path}/Patient/${p.id}/_history`)).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient/${p.id}/_history?_pretty=true`)).text).toContain('\n  "');
  });
});

describe('type and system history', () => {
  let other: TestTenant;
  beforeAll(async () => {
    other = await newTenant(server, 'hist2');
  });

  it('type history lists only that type, newest first across resources', async () => {
    tick();
    const a = await other.api.post(`${other.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient));
    tick();
    const o = await other.api.post(`${other.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }));
    tick();
    const b = await other.api.post(`${other.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient));
    tick();
    await other.api.put(`${other.path}/Patient/${a.body.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...a.body, gender: 'male' }));
    const res = await other.api.get(`${other.path}/Patient/_history`);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('history');
    expect(res.body.link[0]).toEqual({ relation: 'self', url: `${other.base}/Patient/_history` });
    expect(res.body.entry.map((e: any) => `${e.request.method} ${e.fullUrl.split('/').slice(-2).join('/')} ${e.response.etag}`)).toEqual([
      `PUT Patient/${a.body.id} W/"2"`,
      `POST Patient/${b.body.id} W/"1"`,
      `POST Patient/${a.body.id} W/"1"`,
    ]);
    const sys = await other.api.get(`${other.path}/_history`);
    expect(sys.body.link[0]).toEqual({ relation: 'self', url: `${other.base}/_history` });
    const keys = sys.body.entry.map((e: any) => `${e.request.method} ${e.fullUrl.split('/').slice(-2).join('/')}`);
    expect(keys.slice(0, 4)).toEqual([`PUT Patient/${a.body.id}`, `POST Patient/${b.body.id}`, `POST Observation/${o.body.id}`, `POST Patient/${a.body.id}`]);
    expect(keys).toContain(`PUT Organization/${other.slug}`); // the tenant's root Organization
    // The other tenant's versions never appear here, and this tenant's never appear there.
    const mine = await t.api.get(`${t.path}/_history?_count=1000`);
    for (const e of mine.body.entry) expect(e.fullUrl.startsWith(`${t.base}/`)).toBe(true);
    for (const e of sys.body.entry) expect(e.fullUrl.startsWith(`${other.base}/`)).toBe(true);
  });

  it('answers 404 for type history of an unknown type and 405 for writes', async () => {
    expectOutcome(await t.api.get(`${t.path}/Widget/_history`), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
    expectOutcome(await t.api.post(`${t.path}/_history`).set('Content-Type', FHIR_JSON).send('{}'), 405, 'not-supported', 'METHOD_NOT_ALLOWED');
  });
});

describe('_since and _at (http.html#history parameters)', () => {
  it('_since keeps versions created at or after the instant', async () => {
    tick(60_000);
    const p = await create(t, patient);
    const t2 = tick();
    await put(p.id, { ...p, gender: 'male' });
    tick();
    await put(p.id, { ...p, gender: 'other' });
    const res = await t.api.get(`${t.path}/Patient/${p.id}/_history?_since=${encodeURIComponent(t2)}`);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"']);
    expect(res.body.link[0].url).toBe(`${t.base}/Patient/${p.id}/_history?_since=${encodeURIComponent(t2)}`);
    const typeLevel = await t.api.get(`${t.path}/Patient/_history?_since=${encodeURIComponent(t2)}`);
    expect(typeLevel.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"']);
    const future = await t.api.get(`${t.path}/_history?_since=2099-01-01T00:00:00Z`);
    expect(future.body.entry).toBeUndefined();
    // A zone offset is honoured: the same instant written in +02:00.
    const shifted = new Date(Date.parse(t2) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    const withOffset = await t.api.get(`${t.path}/Patient/${p.id}/_history?_since=${encodeURIComponent(shifted)}`);
    expect(withOffset.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"', 'W/"2"']);
  });

  it('_at returns the version current at that instant (and nothing before the resource existed)', async () => {
    tick(60_000);
    const t1 = tick();
    const p = await create(t, patient);
    const t2 = tick(10_000);
    await put(p.id, { ...p, gender: 'male' });
    const t3 = tick(10_000);
    await put(p.id, { ...p, gender: 'other' });
    const between = new Date(Date.parse(t2) + 5000).toISOString();
    const at2 = await t.api.get(`${t.path}/Patient/${p.id}/_history?_at=${encodeURIComponent(between)}`);
    expect(at2.status).toBe(200);
    expect(at2.body.entry.map((e: any) => [e.response.etag, e.resource.gender])).toEqual([['W/"2"', 'male']]);
    const atExact = await t.api.get(`${t.path}/Patient/${p.id}/_history?_at=${encodeURIComponent(t3)}`);
    expect(atExact.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"3"']);
    const before = await t.api.get(`${t.path}/Patient/${p.id}/_history?_at=${encodeURIComponent(new Date(Date.parse(t1) - 1000).toISOString())}`);
    expect(before.body.entry).toBeUndefined();
    // Type level: one version per resource, each the one current then.
    const typeAt = await t.api.get(`${t.path}/Patient/_history?_at=${encodeURIComponent(between)}&_count=1000`);
    const forP = typeAt.body.entry.filter((e: any) => e.fullUrl.endsWith(`/Patient/${p.id}`));
    expect(forP.map((e: any) => e.response.etag)).toEqual(['W/"2"']);
    const ids = typeAt.body.entry.map((e: any) => e.fullUrl);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('answers 400 HISTORY_PARAM_INVALID to an invalid _since or _at, and 400 to repeats', async () => {
    for (const q of ['_since=yesterday', '_since=2021-13-01', '_since=', '_at=not-a-date', '_at=2021-02-30']) {
      expectOutcome(await t.api.get(`${t.path}/_history?${q}`), 400, 'invalid', 'HISTORY_PARAM_INVALID');
    }
    expectOutcome(await t.api.get(`${t.path}/Patient/_history?_since=2021-01-01&_since=2021-02-01`), 400, 'invalid', 'HISTORY_PARAM_REPEATED');
  });

  it('answers 400 HISTORY_PARAM_INVALID to a bad _count', async () => {
    for (const q of ['_count=-1', '_count=abc', '_count=1.5', '_count=']) {
      expectOutcome(await t.api.get(`${t.path}/_history?${q}`), 400, 'invalid', 'HISTORY_PARAM_INVALID');
    }
  });
});

describe('paging (http.html#paging: next links, _count respected across pages)', () => {
  it('pages 25 versions with _count=7 through next links with no duplicates or gaps', async () => {
    tick(60_000);
    const p = await create(t, patient);
    for (let v = 2; v <= 25; v++) {
      tick();
      const res = await put(p.id, { ...p, gender: v % 2 ? 'male' : 'female' });
      expect(res.status).toBe(200);
    }
    const { pages, entries } = await allPages(`/Patient/${p.id}/_history?_count=7`);
    expect(pages.map((x) => x.length)).toEqual([7, 7, 7, 4]);
    expect(entries.map((e: any) => e.response.etag)).toEqual(Array.from({ length: 25 }, (_, i) => `W/"${25 - i}"`));
  });

  it('pages versions that share one lastUpdated (ties broken by type, id and version) without loss', async () => {
    const tenant = await newTenant(server, 'tie');
    tick(60_000); // every write below gets the same instant
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await create(tenant, patient)).id);
    for (const id of ids.slice(0, 3)) {
      await tenant.api.put(`${tenant.path}/Patient/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient, id, gender: 'male' }));
    }
    const { pages, entries } = await allPages('/Patient/_history?_count=3', tenant);
    expect(pages.map((x) => x.length)).toEqual([3, 3, 3, 3, 1]);
    const keys = entries.map((e: any) => `${e.fullUrl} ${e.response.etag}`);
    expect(new Set(keys).size).toBe(13);
    for (const id of ids) expect(keys).toContain(`${tenant.base}/Patient/${id} W/"1"`);
    const sys = await allPages('/_history?_count=4', tenant);
    expect(sys.entries).toHaveLength(14); // + the root Organization
    expect(new Set(sys.entries.map((e: any) => `${e.fullUrl} ${e.response.etag}`)).size).toBe(14);
  });

  it('keeps _since on next links, and _count=0 answers an empty page without next', async () => {
    tick(60_000);
    const p = await create(t, patient);
    const since = tick();
    for (let i = 0; i < 5; i++) {
      await put(p.id, { ...p, gender: 'male' });
      tick();
    }
    const { pages, entries } = await allPages(`/Patient/${p.id}/_history?_count=2&_since=${encodeURIComponent(since)}`);
    expect(pages.map((x) => x.length)).toEqual([2, 2, 1]);
    expect(entries.map((e: any) => e.response.etag)).toEqual(['W/"6"', 'W/"5"', 'W/"4"', 'W/"3"', 'W/"2"']);
    const zero = await t.api.get(`${t.path}/Patient/${p.id}/_history?_count=0`);
    expect(zero.status).toBe(200);
    expect(zero.body.entry).toBeUndefined();
    expect(zero.body.link.map((l: any) => l.relation)).toEqual(['self']);
  });

  it('answers 400 CURSOR_INVALID to a forged or garbled paging token', async () => {
    const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const c of ['%%%', 'bm90IGpzb24', forged(['not-a-date', 'Patient', 'x', 1]), forged(['2021-01-01T00:00:00Z', "Patient'; --", 'x', 1]), forged(['2021-01-01T00:00:00Z', 'Patient', 'x', 1e20]), forged({})]) {
      expectOutcome(await t.api.get(`${t.path}/_history?_cursor=${encodeURIComponent(c)}`), 400, 'invalid', 'CURSOR_INVALID');
    }
  });
});
