// Rate limits (issue 11, docs/rate-limits.md): per tenant and per client on the FHIR API, with RateLimit-* headers and
// 429 RATE_LIMITED + Retry-After over budget; per client address on the token endpoint and the sign-in pages; counted
// in this process when there is no Redis, and still serving when Redis does not answer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { authed, newBackendClient, newTenant, randomSlug, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { createTenant } from '../../../src/tenancy/create-tenant.js';
import type { RateLimits } from '../../../src/tenancy/rate-limits.js';

/** Small budgets, so a test spends them in a few requests. */
const BUDGETS = { rateLimitTenantPerMinute: 8, rateLimitClientPerMinute: 5, rateLimitAuthIpPerMinute: 4 };

type Res = { status: number; headers: Record<string, string>; body: any; text: string };

const servers: TestServer[] = [];
async function server(overrides: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const s = await startServer({ ...BUDGETS, ...overrides });
  servers.push(s);
  return s;
}

afterAll(async () => {
  for (const s of servers) {
    await s.close();
    await s.deps.rateLimits.close();
  }
});

const search = (t: TestTenant, api = t.api): Promise<Res> => api.get(`${t.path}/Patient?_count=1`) as unknown as Promise<Res>;

function expectRateLimited(res: Res, limit?: number): void {
  expect(res.status).toBe(429);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'throttled', details: { coding: [{ code: 'RATE_LIMITED' }] } });
  if (limit) expect(res.body.issue[0].diagnostics).toContain(`${limit} per minute`);
  const retry = Number(res.headers['retry-after']);
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(60);
  expect(res.headers['ratelimit-remaining']).toBe('0');
}

describe('FHIR API budgets per tenant and per client', () => {
  let s: TestServer;
  let a: TestTenant;
  let b: TestTenant;
  beforeAll(async () => {
    s = await server();
    a = await newTenant(s, 'rl');
    b = await newTenant(s, 'rl');
  });

  it('answers admitted requests with RateLimit-Limit, -Remaining (decreasing) and -Reset', async () => {
    const first = await search(a);
    const second = await search(a);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    // the client's budget (5) is the tighter of the two
    expect(first.headers['ratelimit-limit']).toBe('5');
    expect(first.headers['ratelimit-remaining']).toBe('4');
    expect(second.headers['ratelimit-remaining']).toBe('3');
    const reset = Number(second.headers['ratelimit-reset']);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(60);
  });

  it("refuses a client past its budget with 429 RATE_LIMITED and Retry-After, the tenant's other clients still served", async () => {
    for (let i = 0; i < 3; i++) expect((await search(a)).status).toBe(200);
    expectRateLimited(await search(a), 5);
    expectRateLimited(await search(a), 5);
    // another client of the same tenant has its own budget; the refused requests did not spend the tenant's (8 - 5 = 3 left)
    const other = authed(s.origin, await tokenFor(s, { slug: a.slug, clientId: await newBackendClient(s, a.slug) }));
    const res = await search(a, other);
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-limit']).toBe('8');
    expect(res.headers['ratelimit-remaining']).toBe('2');
    expect((await search(a, other)).status).toBe(200);
    expect((await search(a, other)).status).toBe(200);
    // now the tenant's budget is spent, whichever client asks
    expectRateLimited(await search(a, other), 8);
  });

  it("leaves another tenant's budget untouched by the first tenant spending all of its own", async () => {
    // both of its budgets are spent now
    expectRateLimited(await search(a));
    const res = await search(b);
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-limit']).toBe('5');
    expect(res.headers['ratelimit-remaining']).toBe('4');
  });

  it("counts metadata (no token) per address, never against the tenant's budget", async () => {
    const c = await newTenant(s, 'rl');
    for (let i = 0; i < 3; i++) expect((await c.api.get(`${c.path}/metadata`)).status).toBe(200);
    const res = await search(c);
    expect(res.headers['ratelimit-remaining']).toBe('4');
  });
});

describe("a tenant's plan sets its budget", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server({ rateLimitClientPerMinute: 100_000 });
  });

  /** A tenant on `plan` with a backend client's token (plans may be edited by other tests: read the figure). */
  async function onPlan(plan: string, type: string): Promise<TestTenant> {
    const slug = randomSlug('rlplan');
    await createTenant(s.deps, slug, `Plan ${plan}`, { plan, type });
    const clientId = await newBackendClient(s, slug);
    const token = await tokenFor(s, { slug, clientId });
    return { slug, base: `${s.origin}/fhir/${slug}`, path: `/fhir/${slug}`, api: authed(s.origin, token), token, clientId };
  }

  it("counts a tenant against its plan's requests per minute, not the server default", async () => {
    const t = await onPlan('solo-practice', 'solo-practice');
    const perMinute = (await s.deps.plans.get('solo-practice'))!.quotas.requestsPerMinute;
    const res = await search(t);
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-limit']).toBe(String(perMinute ?? 100_000));
    if (perMinute !== null) expect(res.headers['ratelimit-remaining']).toBe(String(perMinute - 1));
  });

  it('gives a tenant whose plan has no request limit no tenant budget (its clients still have theirs)', async () => {
    const t = await onPlan('hospital-group', 'hospital-group');
    const perMinute = (await s.deps.plans.get('hospital-group'))!.quotas.requestsPerMinute;
    const res = await search(t);
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-limit']).toBe(String(perMinute ?? 100_000));
  });
});

describe('the token endpoint and the sign-in pages, per client address', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server();
  });

  it('answers the token endpoint 429 as an OAuth error past the budget, and the sign-in pages 429 as a page', async () => {
    const token = () => fetch(`${s.origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=nobody' });
    for (let i = 0; i < 4; i++) expect((await token()).status).not.toBe(429);
    const refused = await token();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable', error_description: expect.stringContaining('Too many requests') });
    const page = await fetch(`${s.origin}/auth/authorize?client_id=x&response_type=code`);
    expect(page.status).toBe(429);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('Too many requests from this address');
    // the FHIR API is budgeted apart: a tenant's client is still served from this address
    const t = await newTenant(s, 'rl');
    expect((await search(t)).status).toBe(200);
  });
});

describe('without Redis, and when Redis does not answer', () => {
  it('counts in this process when REDIS_URL is unset', async () => {
    const s = await server({ redisUrl: undefined });
    expect((s.deps.rateLimits as RateLimits).kind).toBe('memory');
    const t = await newTenant(s, 'rl');
    for (let i = 0; i < 5; i++) expect((await search(t)).status).toBe(200);
    expectRateLimited(await search(t), 5);
  });

  it('keeps serving, counting in this process, when Redis is unreachable (fail open)', async () => {
    const s = await server({ redisUrl: 'redis://127.0.0.1:1' });
    expect((s.deps.rateLimits as RateLimits).kind).toBe('redis');
    const t = await newTenant(s, 'rl');
    const first = await search(t);
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-remaining']).toBe('4');
    for (let i = 0; i < 4; i++) expect((await search(t)).status).toBe(200);
    expectRateLimited(await search(t), 5);
  });

  it('sends no RateLimit headers and refuses nothing when RATE_LIMIT_ENABLED is false', async () => {
    const s = await server({ rateLimitEnabled: false });
    const t = await newTenant(s, 'rl');
    for (let i = 0; i < 6; i++) {
      const res = await search(t);
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});
