// Issue 8, "Faults": each finding reproduced against a real server. The connection faults run against real
// PostgreSQL (CI's second run): connections are cut with pg_terminate_backend or by taking a TCP relay away, never by
// stopping the shared cluster. The rest runs on both databases.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request as httpRequest } from 'node:http';
import pg from 'pg';
import type { Config } from '../../../src/config/index.js';
import { create, FHIR_JSON, newTenant, randomSlug, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';

const onPostgres = process.env.DATABASE_URL ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function code(body: any): string | undefined {
  return body?.issue?.[0]?.details?.coding?.[0]?.code;
}

/** The application's connection string with a name of its own, so a test can find (and kill) just its backends. */
function appUrl(name: string, url = process.env.DATABASE_URL!): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}

async function adminClient(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL });
  await c.connect();
  return c;
}

/** Holds a row lock on a resource from outside the server until release() (its writers then wait on the lock). */
async function lockResource(tenant: string, type: string, id: string): Promise<{ release(): Promise<void> }> {
  const c = await adminClient();
  await c.query('BEGIN');
  await c.query('SELECT 1 FROM resource WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 FOR UPDATE', [tenant, type, id]);
  return {
    async release() {
      await c.query('ROLLBACK');
      await c.end();
    },
  };
}

const patient = (family: string, extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', name: [{ family }], ...extra });

/** A server (its settings read when it starts) and one tenant on it, for the enclosing describe block. */
function serverWithTenant(settings: () => Partial<Config> = () => ({})): { server: TestServer; t: TestTenant } {
  const s = {} as { server: TestServer; t: TestTenant };
  beforeAll(async () => {
    s.server = await startServer(settings());
    s.t = await newTenant(s.server);
  });
  afterAll(() => s.server.close());
  return s;
}

describe('search cost has a bound (MAX_SEARCH_PARAMS)', () => {
  const s = serverWithTenant();

  it('answers 400 SEARCH_TOO_COMPLEX (too-costly) for 200 ANDed name= parameters, at once', async () => {
    const q = Array.from({ length: 200 }, (_, i) => `name=n${i}`).join('&');
    const res = await s.t.api.get(`${s.t.path}/Patient?${q}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('too-costly');
    expect(code(res.body)).toBe('SEARCH_TOO_COMPLEX');
    expect(res.body.issue[0].diagnostics).toMatch(/200 parameters; at most 40/);
  });

  it('accepts 40 parameters and refuses 41, also in POST _search and in a conditional create', async () => {
    const forty = Array.from({ length: 40 }, (_, i) => `name=n${i}`).join('&');
    expect((await s.t.api.get(`${s.t.path}/Patient?${forty}`)).status).toBe(200);
    const post = await s.t.api.post(`${s.t.path}/Patient/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(`${forty}&gender=male`);
    expect(post.status).toBe(400);
    expect(code(post.body)).toBe('SEARCH_TOO_COMPLEX');
    const cond = await s.t.api.post(`${s.t.path}/Patient`).set('Content-Type', FHIR_JSON).set('If-None-Exist', `${forty}&gender=male`).send(JSON.stringify(patient('Cond')));
    expect(cond.status).toBe(400);
    expect(code(cond.body)).toBe('SEARCH_TOO_COMPLEX');
    const count = await s.t.api.get(`${s.t.path}/Patient?name=Cond&_summary=count`);
    expect(count.body.total).toBe(0);
  });
});

describe('conditional creates with different criteria for the same new resource (fault 3)', () => {
  const s = serverWithTenant();

  it('creates exactly one Patient in each of 50 trials of two parallel If-None-Exist creates (identifier vs family:exact+birthdate)', async () => {
    const counts: number[] = [];
    for (let i = 0; i < 50; i++) {
      const mrn = `mrn-${randomSlug('c')}`;
      const family = `Race${mrn.replace(/[^a-z0-9]/g, '')}`;
      const body = JSON.stringify(patient(family, { identifier: [{ system: 'urn:mrn', value: mrn }], birthDate: '1980-02-03' }));
      const post = (condition: string) => s.t.api.post(`${s.t.path}/Patient`).set('Content-Type', FHIR_JSON).set('If-None-Exist', condition).send(body);
      const [a, b] = await Promise.all([post(`identifier=urn:mrn|${mrn}`), post(`family:exact=${family}&birthdate=1980-02-03`)]);
      expect([a.status, b.status].sort()).toEqual([200, 201]);
      expect(a.headers.location ?? b.headers.location).toBeDefined();
      const found = await s.t.api.get(`${s.t.path}/Patient?identifier=urn:mrn|${mrn}&_summary=count`);
      counts.push(found.body.total);
    }
    expect(counts.every((n) => n === 1)).toBe(true);
  }, 120_000);

  it('creates one resource when a conditional update and an If-None-Exist create race for the same new patient', async () => {
    for (let i = 0; i < 10; i++) {
      const mrn = `mrn-${randomSlug('u')}`;
      const family = `Up${mrn.replace(/[^a-z0-9]/g, '')}`;
      const body = JSON.stringify(patient(family, { identifier: [{ system: 'urn:mrn', value: mrn }] }));
      await Promise.all([
        s.t.api.put(`${s.t.path}/Patient?identifier=urn:mrn|${mrn}`).set('Content-Type', FHIR_JSON).send(body),
        s.t.api.post(`${s.t.path}/Patient`).set('Content-Type', FHIR_JSON).set('If-None-Exist', `family:exact=${family}`).send(body),
      ]);
      expect((await s.t.api.get(`${s.t.path}/Patient?identifier=urn:mrn|${mrn}&_summary=count`)).body.total).toBe(1);
    }
  }, 60_000);
});

onPostgres('a lost database connection does not take the server down (fault 1)', () => {
  const app = randomSlug('fault');
  const s = serverWithTenant(() => ({ databaseUrl: appUrl(app) }));

  const bundle = (n: number) => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: n }, (_, i) => ({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: patient(`Load${i}`), request: { method: 'POST', url: 'Patient' } })),
  });

  it('answers every request in flight with success or 503 (never 500) when its backends are terminated, then serves again', async () => {
    const admin = await adminClient();
    const p = await create(s.t, patient('Steady'));
    const statuses: number[] = [];
    let terminated = 0;
    const load = Array.from({ length: 24 }, (_, i) =>
      (i % 2 ? s.t.api.post(s.t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle(40))) : s.t.api.get(`${s.t.path}/Patient/${p.id}`)).then((r) => statuses.push(r.status)),
    );
    for (let round = 0; round < 5; round++) {
      await sleep(40);
      const r = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [app]);
      terminated += r.rowCount ?? 0;
    }
    await Promise.all(load);
    await admin.end();
    expect(terminated).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    // the pool replaces the dead connections: no restart needed
    const again = await s.t.api.get(`${s.t.path}/Patient/${p.id}`);
    expect(again.status).toBe(200);
  }, 60_000);

  // On Citus the row lock is waited for on the worker: the coordinator's backend never shows a Lock wait to find.
  (process.env.CITUS_ADMIN_URL ? it.skip : it)('a 503 for a broken connection names DB_UNAVAILABLE and asks to retry later', async () => {
    const admin = await adminClient();
    const p = await create(s.t, patient('Victim'));
    // a write blocked on a row lock is mid-statement when its backend is terminated
    const lock = await lockResource(s.t.slug, 'Patient', p.id);
    const put = s.t.api.put(`${s.t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'other' }));
    const pending = put.then((r) => r);
    for (let i = 0; i < 50; i++) {
      const r = await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app]);
      if (r.rowCount) {
        await admin.query('SELECT pg_terminate_backend($1)', [r.rows[0].pid]);
        break;
      }
      await sleep(50);
    }
    const res = await pending;
    await lock.release();
    await admin.end();
    expect(res.status).toBe(503);
    expect(code(res.body)).toBe('DB_UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('5');
    expect((await s.t.api.get(`${s.t.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  }, 30_000);
});

onPostgres('while the database is down (fault 1)', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let t: TestTenant;
  beforeAll(async () => {
    const target = new URL(process.env.DATABASE_URL!);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    server = await startServer({
      databaseUrl: proxy.via(process.env.DATABASE_URL!),
      databaseAdminUrl: proxy.via(process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL!),
      dbAcquireTimeoutMs: 2000,
    });
    t = await newTenant(server);
  });
  afterAll(async () => {
    await proxy.up().catch(() => undefined);
    await server.close();
    await proxy.close();
  });

  it('answers FHIR requests 503 DB_UNAVAILABLE and /readyz 503, and serves again when the database returns, without a restart', async () => {
    const p = await create(t, patient('Before'));
    await proxy.down();
    const read = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(read.status).toBe(503);
    expect(code(read.body)).toBe('DB_UNAVAILABLE');
    expect(read.body.issue[0].code).toBe('transient');
    const write = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient('During')));
    expect(write.status).toBe(503);
    expect((await t.api.get('/readyz')).status).toBe(503);
    await proxy.up();
    const back = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(back.status).toBe(200);
    expect((await t.api.get('/readyz')).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient?name=During&_summary=count`)).body.total).toBe(0);
  }, 60_000);
});

onPostgres('statement limits and abandoned requests (fault 2)', () => {
  const app = randomSlug('stmt');
  const s = serverWithTenant(() => ({ databaseUrl: appUrl(app), dbStatementTimeoutMs: 400 }));

  it('stops a statement that runs past DB_STATEMENT_TIMEOUT_MS and answers 503 STATEMENT_TIMEOUT (too-costly), changing nothing', async () => {
    const p = await create(s.t, patient('Slow'));
    const lock = await lockResource(s.t.slug, 'Patient', p.id);
    const res = await s.t.api.put(`${s.t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'male' }));
    await lock.release();
    expect(res.status).toBe(503);
    expect(code(res.body)).toBe('STATEMENT_TIMEOUT');
    expect(res.body.issue[0].code).toBe('too-costly');
    expect((await s.t.api.get(`${s.t.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  // On Citus the row lock is waited for on the worker: the coordinator's backend shows no Lock wait to watch for.
  (process.env.CITUS_ADMIN_URL ? it.skip : it)('cancels the statement of a request whose client went away', async () => {
    const slow = await startServer({ databaseUrl: appUrl(`${app}-cancel`), dbStatementTimeoutMs: 60_000 });
    try {
      const st = await newTenant(slow);
      const p = await create(st, patient('Abandoned'));
      const lock = await lockResource(st.slug, 'Patient', p.id);
      const admin = await adminClient();
      const waiting = async () =>
        (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [`${app}-cancel`])).rows[0].n as number;
      const body = JSON.stringify({ ...p, gender: 'female' });
      const url = new URL(`${slow.origin}${st.path}/Patient/${p.id}`);
      const req = httpRequest(url, { method: 'PUT', headers: { authorization: `Bearer ${st.token}`, 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(body) } });
      req.on('error', () => undefined);
      req.end(body);
      let seen = 0;
      for (let i = 0; i < 100 && !seen; i++) {
        seen = await waiting();
        if (!seen) await sleep(20);
      }
      expect(seen).toBe(1);
      req.destroy(); // the client goes away
      let left = 1;
      for (let i = 0; i < 100 && left; i++) {
        await sleep(20);
        left = await waiting();
      }
      expect(left).toBe(0);
      await lock.release();
      await admin.end();
      await sleep(200);
      // the abandoned update never happened
      expect((await st.api.get(`${st.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
    } finally {
      await slow.close();
    }
  }, 30_000);
});

onPostgres('one tenant cannot take every connection (fault 2)', () => {
  let server: TestServer;
  let busy: TestTenant;
  let calm: TestTenant;
  beforeAll(async () => {
    // a pool of 4: each tenant may hold 2 at once
    server = await startServer({ dbPoolSize: 4, dbTenantMaxConnections: 2, dbAcquireTimeoutMs: 600 });
    busy = await newTenant(server, 'busy');
    calm = await newTenant(server, 'calm');
  });
  afterAll(() => server.close());

  it("queues a tenant's requests beyond its share (429 TENANT_BUSY after the wait) while another tenant is served", async () => {
    const p = await create(busy, patient('Busy'));
    const q = await create(calm, patient('Calm'));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // the busy tenant's share is taken by two long transactions
    const holders = [1, 2].map(() => server.deps.db.tx(busy.slug, () => held));
    await sleep(50);
    const other = await calm.api.get(`${calm.path}/Patient/${q.id}`);
    expect(other.status).toBe(200);
    const own = await busy.api.get(`${busy.path}/Patient/${p.id}`);
    expect(own.status).toBe(429);
    expect(code(own.body)).toBe('TENANT_BUSY');
    expect(own.headers['retry-after']).toBe('2');
    // a waiting request gets the first slot that frees up
    const waiting = busy.api.get(`${busy.path}/Patient/${p.id}`);
    await sleep(100);
    release();
    await Promise.all(holders);
    expect((await waiting).status).toBe(200);
  });
});

onPostgres('a connection that cannot take the fhir_app role is never used (hardening)', () => {
  it('fails the request instead of running it as the login role, even a role that could bypass row-level security', async () => {
    const admin = await adminClient();
    const role = `tenfhir_setrole_${randomSlug('r').replace(/-/g, '_')}`;
    const app = randomSlug('setrole');
    await admin.query(`CREATE ROLE ${role} LOGIN BYPASSRLS`);
    await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    const url = new URL(appUrl(app));
    url.username = role;
    const server = await startServer({ databaseUrl: url.toString() }); // the server grants fhir_app to the role at start
    try {
      const t = await newTenant(server);
      const p = await create(t, patient('Walled'));
      await admin.query(`REVOKE fhir_app FROM ${role}`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
      await sleep(100);
      const res = await t.api.get(`${t.path}/Patient/${p.id}`);
      expect(res.status).toBe(500);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(res.body)).not.toContain('Walled');
    } finally {
      await server.close();
      await admin.query(`DROP OWNED BY ${role}`);
      await admin.query(`DROP ROLE ${role}`);
      await admin.end();
    }
  }, 30_000);
});
