// Tenant-first storage: row-level security is a second wall behind the tenant filter (ARCHITECTURE.md "Storage").
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CATALOG_TYPES } from '../../../src/store/resources.js';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'rls-a');
  b = await newTenant(server, 'rls-b');
  await create(a, { resourceType: 'Patient', name: [{ family: 'Alpha' }] });
  await create(b, { resourceType: 'Patient', name: [{ family: 'Beta' }] });
});
afterAll(async () => server.close());

describe('row-level security', () => {
  it("an unfiltered query inside a tenant's transaction sees only that tenant's rows (and the platform catalog's), in every table", async () => {
    const tables = ['resource', 'resource_history', 'sp_token', 'sp_string', 'sp_reference', 'sp_date', 'sp_number', 'sp_uri', 'tenant'];
    await server.deps.db.tx(a.slug, async (q) => {
      for (const table of tables) {
        const col = table === 'tenant' ? 'id' : 'tenant_id';
        // the platform catalog's rows of catalog types are readable by every tenant (docs/catalog.md)
        const catalog = table === 'tenant' ? '' : ` WHERE NOT (tenant_id = 'platform' AND resource_type = ANY($1::text[]))`;
        const r = await q.query<{ t: string }>(`SELECT DISTINCT ${col} AS t FROM ${table}${catalog}`, catalog ? [CATALOG_TYPES] : []);
        expect(r.rows.map((x) => x.t).filter((t) => t !== a.slug)).toEqual([]);
      }
      const names = await q.query<{ n: string }>(`SELECT content->'name'->0->>'family' AS n FROM resource WHERE resource_type = 'Patient'`);
      expect(names.rows.map((r) => r.n)).not.toContain('Beta');
      expect(names.rows.map((r) => r.n)).toContain('Alpha');
    });
  });

  it("cannot write a row for another tenant from inside a tenant's transaction", async () => {
    await expect(
      server.deps.db.tx(a.slug, (q) =>
        q.query(`INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, content) VALUES ($1, 'Patient', 'x', 1, now(), '{}')`, [b.slug]),
      ),
    ).rejects.toThrow(/row-level security/);
    // (Citus refuses to change a distribution column before row-level security is asked)
    await expect(server.deps.db.tx(a.slug, (q) => q.query(`UPDATE resource SET tenant_id = $1`, [b.slug]))).rejects.toThrow(/row-level security|modifying the partition value/);
  });

  it("works with the fhir_app role's privileges, as a role that has no BYPASSRLS and owns no table", async () => {
    const r = await server.deps.db.withTenant(a.slug, (q) =>
      q.query<{ u: string; app: boolean; bypass: boolean; owns: string }>(
        `SELECT current_user AS u, pg_has_role(current_user, 'fhir_app', 'USAGE') AS app,
                (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user) AS bypass,
                (SELECT count(*)::text FROM pg_tables WHERE tableowner = current_user) AS owns`,
      ),
    );
    // a plain login role (CI's DATABASE_URL) works as itself, so that Citus can open worker connections as it; an
    // embedded database or a login role that could lift the wall takes fhir_app itself
    const plainLogin = server.deps.db.kind === 'postgres' && !!process.env.DATABASE_ADMIN_URL && process.env.DATABASE_ADMIN_URL !== process.env.DATABASE_URL;
    expect(r.rows[0]).toEqual({ u: plainLogin ? decodeURIComponent(new URL(process.env.DATABASE_URL!).username) : 'fhir_app', app: true, bypass: false, owns: '0' });
    await expect(server.deps.db.withTenant(a.slug, (q) => q.query('ALTER TABLE resource DISABLE ROW LEVEL SECURITY'))).rejects.toThrow();
  });

  it('on PostgreSQL, the login role itself is not a superuser (CI connects as a plain role)', async () => {
    if (server.deps.db.kind !== 'postgres' || !process.env.DATABASE_ADMIN_URL) return;
    const r = await server.deps.db.withTenant(a.slug, (q) =>
      q.query<{ s: boolean }>(`SELECT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user) AS s`),
    );
    expect(r.rows[0].s).toBe(false);
    // and it cannot step out of the role to read other tenants
    await expect(server.deps.db.withTenant(a.slug, (q) => q.query('SET ROLE postgres'))).rejects.toThrow();
  });
});

describe('tenant isolation over HTTP', () => {
  it("tenant A's base never reads tenant B's resource ids", async () => {
    const pb = await create(b, { resourceType: 'Patient', name: [{ family: 'Gamma' }] });
    expect((await a.api.get(`${a.path}/Patient/${pb.id}`)).status).toBe(404);
    expect((await a.api.get(`${a.path}/Patient/${pb.id}/_history/1`)).status).toBe(404);
    const h = await a.api.get(`${a.path}/Patient/${pb.id}/_history`);
    expect(h.body.entry ?? []).toEqual([]);
    const s = await a.api.get(`${a.path}/Patient?_id=${pb.id}`);
    expect(s.body.entry ?? []).toEqual([]);
    const all = await a.api.get(`${a.path}/_history?_count=1000`);
    expect(JSON.stringify(all.body)).not.toContain(pb.id);
  });

  it('an unknown tenant answers 404 with an OperationOutcome', async () => {
    const res = await a.api.get('/fhir/no-such-tenant-xyz/Patient');
    expect(res.status).toBe(404);
    expect(res.body.issue[0].details.coding[0].code).toBe('TENANT_UNKNOWN');
  });
});
