// Usage per tenant (issue 11, "Usage metrics"): tenantUsage() after real FHIR traffic: resources by type, stored bytes,
// requests today / in 30 days (counted in memory, stored by each process's flush, added up across processes), live
// sign-in sessions and last activity; one tenant's numbers never include another's.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tenantUsage } from '../../../src/tenancy/usage.js';
import { create, newTenant, onServer, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { Browser, newApp, newUser, runAuthorization } from '../../helpers/oauth.js';

let server: TestServer;
let other: TestServer;
let a: TestTenant;
let b: TestTenant;

beforeAll(async () => {
  server = await startServer();
  // a second process on the same database: its own counters, its own caches
  other = await startServer();
  a = await newTenant(server, 'usage-a');
  b = await newTenant(server, 'usage-b');
});
afterAll(async () => {
  await Promise.all([server, other].filter(Boolean).map((s) => s.close()));
});

describe('tenantUsage', () => {
  it('reports the resources by type, the requests and the last activity after N reads and M creates', async () => {
    const started = Date.now();
    const patients = [];
    for (let i = 0; i < 3; i++) patients.push(await create(a, { resourceType: 'Patient', name: [{ family: `Usage${i}` }] }));
    await create(a, { resourceType: 'Observation', status: 'final', code: { text: 'usage' }, subject: { reference: `Patient/${patients[0].id}` } });
    for (let i = 0; i < 5; i++) expect((await a.api.get(`${a.path}/Patient/${patients[i % 3].id}`)).status).toBe(200);
    expect((await a.api.get(`${a.path}/Patient?family=Usage0`)).status).toBe(200);

    const u = await tenantUsage(server.deps, a.slug);
    // the root Organization comes with the tenant
    expect(u.resources).toEqual({ Organization: 1, Patient: 3, Observation: 1 });
    // 4 creates + 5 reads + 1 search
    expect(u.requestsToday).toBe(10);
    expect(u.requests30d).toBe(10);
    expect(u.storageBytes).toBeGreaterThan(0);
    expect(u.activeSessions).toBe(0);
    expect(Date.parse(u.lastActivity!)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(u.lastActivity!)).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('counts deleted resources out, and refused requests and discovery not at all', async () => {
    const t = await newTenant(server, 'usage-del');
    const p = await create(t, { resourceType: 'Patient' });
    expect((await t.api.delete(`${t.path}/Patient/${p.id}`)).status).toBe(204);
    // public discovery (no token): not the tenant's activity
    expect((await fetch(`${t.base}/metadata`)).status).toBe(200);
    // no token: refused before admission
    expect((await fetch(`${t.base}/Patient`)).status).toBe(401);
    const u = await tenantUsage(server.deps, t.slug);
    expect(u.resources).toEqual({ Organization: 1 });
    expect(u.requestsToday).toBe(2);
  });

  it('shows more stored bytes after a write (the size is cached for a minute per process)', async () => {
    const t = await newTenant(server, 'usage-bytes');
    const before = (await tenantUsage(server.deps, t.slug)).storageBytes;
    const p = await create(t, { resourceType: 'Patient', name: [{ family: 'Bytes', given: ['A'.repeat(2000)] }] });
    // the same process reuses its reading for a minute
    expect((await tenantUsage(server.deps, t.slug)).storageBytes).toBe(before);
    // another process reads it afresh: the new body and its history row
    const grown = (await tenantUsage(other.deps, t.slug)).storageBytes;
    expect(grown).toBeGreaterThan(before);
    // an update adds a history version: more again
    const api = await onServer(other, t);
    expect((await api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify({ ...p, gender: 'other' }))).status).toBe(200);
    const third = await startServer();
    try {
      expect((await tenantUsage(third.deps, t.slug)).storageBytes).toBeGreaterThan(grown);
    } finally {
      await third.close();
    }
  });

  it('keeps counting across a flush, and adds up the counts of several processes', async () => {
    const t = await newTenant(server, 'usage-flush');
    for (let i = 0; i < 3; i++) expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
    expect(server.deps.usage.pending(t.slug).requests).toBe(3);
    await server.deps.usage.flush();
    expect(server.deps.usage.pending(t.slug).requests).toBe(0);
    // stored in the tenant's own row of today (read through the tenant-bound connection)
    const rows = await server.deps.db.withTenant(t.slug, (q) => q.query<{ requests: string }>('SELECT requests::text FROM tenant_activity WHERE tenant_id = $1', [t.slug]));
    expect(rows.rows.map((r) => Number(r.requests))).toEqual([3]);
    for (let i = 0; i < 2; i++) expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
    expect((await tenantUsage(server.deps, t.slug)).requestsToday).toBe(5);

    // the other process counts its own requests; once both stored them, either process sees the sum
    const api = await onServer(other, t);
    for (let i = 0; i < 4; i++) expect((await api.get(`${t.path}/Patient`)).status).toBe(200);
    expect((await tenantUsage(server.deps, t.slug)).requestsToday).toBe(5);
    await Promise.all([server.deps.usage.flush(), other.deps.usage.flush()]);
    expect((await tenantUsage(server.deps, t.slug)).requestsToday).toBe(9);
    expect((await tenantUsage(other.deps, t.slug)).requests30d).toBe(9);
  });

  it('stores nothing for a tenant terminated before its counts were stored (no row comes back after an erasure)', async () => {
    const t = await newTenant(server, 'usage-term');
    expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
    await server.deps.db.admin().query("UPDATE tenant SET status = 'terminated' WHERE id = $1", [t.slug]);
    await server.deps.usage.flush();
    const rows = await server.deps.db.withTenant(t.slug, (q) => q.query('SELECT 1 FROM tenant_activity WHERE tenant_id = $1', [t.slug]));
    expect(rows.rowCount).toBe(0);
    expect(server.deps.usage.pending(t.slug).requests).toBe(0);
  });

  it('counts live sign-in sessions of the tenant only', async () => {
    const t = await newTenant(server, 'usage-sess');
    const app = await newApp(server, t.slug, { scope: 'openid fhirUser user/Patient.rs' });
    await newUser(server, t.slug, 'usage-doc', 'practitioner');
    const browser = new Browser(server.origin);
    await runAuthorization(browser, server.origin, { clientId: app.clientId, scope: 'openid fhirUser user/Patient.rs', aud: t.base, username: 'usage-doc' });
    expect((await tenantUsage(server.deps, t.slug)).activeSessions).toBe(1);
    expect((await tenantUsage(server.deps, b.slug)).activeSessions).toBe(0);
  });

  it("keeps another tenant's numbers apart: B's traffic and B's ids move nothing of A", async () => {
    await server.deps.usage.flush();
    const aBefore = await tenantUsage(server.deps, a.slug);
    const bp = await create(b, { resourceType: 'Patient', name: [{ family: 'Other' }] });
    for (let i = 0; i < 3; i++) expect((await b.api.get(`${b.path}/Patient/${bp.id}`)).status).toBe(200);
    // A's token on B's resource id, through A's base: not found, and counted for A only
    expect((await a.api.get(`${a.path}/Patient/${bp.id}`)).status).toBe(404);
    // A's token on B's base: refused
    expect((await a.api.get(`${b.path}/Patient/${bp.id}`)).status).toBe(401);

    const aAfter = await tenantUsage(server.deps, a.slug);
    const bNow = await tenantUsage(server.deps, b.slug);
    expect(aAfter.resources).toEqual(aBefore.resources);
    expect(aAfter.requestsToday).toBe(aBefore.requestsToday + 1);
    expect(bNow.resources).toEqual({ Organization: 1, Patient: 1 });
    expect(bNow.requestsToday).toBe(4);
    // B's storage is its own: a fresh process reads both, and B's is far smaller than A's five resources
    const bFresh = await tenantUsage(other.deps, b.slug);
    expect(bFresh.storageBytes).toBeGreaterThan(0);
    expect(bFresh.storageBytes).toBeLessThan((await tenantUsage(other.deps, a.slug)).storageBytes);
  });

  it('answers 404 TENANT_UNKNOWN for a tenant that does not exist', async () => {
    await expect(tenantUsage(server.deps, 'no-such-tenant-4711')).rejects.toMatchObject({ kind: 'not-found', code: 'TENANT_UNKNOWN' });
    await expect(tenantUsage(server.deps, '../etc')).rejects.toMatchObject({ kind: 'not-found', code: 'TENANT_UNKNOWN' });
  });
});
