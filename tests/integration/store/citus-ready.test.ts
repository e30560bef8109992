// The schema stays distributable by tenant_id (issue 11, docs/scaling.md): read from the catalog, so a new table that
// would keep Citus from sharding by tenant (a key not led by tenant_id, a foreign key across tenants, an unlisted
// platform table) or from moving a tenant's shards online (a tenant table without a primary key: issue 16) fails here.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Queryable } from '../../../src/platform/db.js';
import { startServer, type TestServer } from '../../helpers/server.js';

/** Tables without a tenant_id column: small platform tables, Citus reference tables (copied to every node). */
const PLATFORM_TABLES: Record<string, string> = {
  tenant: 'one row per tenant, read by every request: joined locally on every node',
  schema_migration: 'the applied migrations',
  oidc_payload: "oidc-provider's artifacts, found by opaque id before any tenant is known (issue 16 decides reference or coordinator-local)",
  signing_key: "the authorization server's signing keys, a few rows",
  auth_secret: 'the cookie keys, a few rows',
  plan: 'the plans and their quotas, a handful of rows',
  tenant_erasure: 'one row per erased tenant, read by platform administrators',
};

/** Tables WITH a tenant_id column that are nevertheless reference tables, keyed by something else. */
const REFERENCE_TABLES_WITH_TENANT_ID: Record<string, string> = {
  oauth_client:
    'found by client_id at the token endpoint before the tenant is known (primary key client_id); small, so a reference table, as the issue 16 trial distributed it',
};

interface Table {
  name: string;
  /** attnum of tenant_id, or null */
  tenantCol: number | null;
  tenantNotNull: boolean;
  rls: boolean;
  forceRls: boolean;
}

async function tables(q: Queryable): Promise<Map<string, Table>> {
  const r = await q.query<{ name: string; tenant_col: number | null; not_null: boolean | null; rls: boolean; force: boolean }>(
    `SELECT c.relname AS name, a.attnum AS tenant_col, a.attnotnull AS not_null, c.relrowsecurity AS rls, c.relforcerowsecurity AS force
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY c.relname`,
  );
  return new Map(r.rows.map((x) => [x.name, { name: x.name, tenantCol: x.tenant_col, tenantNotNull: !!x.not_null, rls: x.rls, forceRls: x.force }]));
}

/** Tables that Citus would shard by tenant_id (a tenant_id column, not a listed reference table). */
function distributed(all: Map<string, Table>): Table[] {
  return [...all.values()].filter((t) => t.tenantCol !== null && !(t.name in REFERENCE_TABLES_WITH_TENANT_ID));
}

/** Every rule of docs/scaling.md "Keeping the schema distributable", as violations (empty: distributable). */
async function violations(q: Queryable): Promise<string[]> {
  const all = await tables(q);
  const out: string[] = [];
  for (const t of all.values()) {
    if (t.tenantCol === null && !(t.name in PLATFORM_TABLES)) out.push(`${t.name}: no tenant_id column and not a listed platform table`);
  }
  const sharded = distributed(all);
  const keys = await q.query<{ tbl: string; idx: string; primary: boolean; first: number }>(
    `SELECT c.relname AS tbl, ic.relname AS idx, i.indisprimary AS primary, i.indkey[0] AS first
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND i.indisunique`,
  );
  for (const t of sharded) {
    if (!t.tenantNotNull) out.push(`${t.name}: tenant_id may be NULL`);
    const unique = keys.rows.filter((k) => k.tbl === t.name);
    // an online shard move (logical replication) needs a replica identity on every table of the shard group
    if (!unique.some((k) => k.primary)) out.push(`${t.name}: no primary key`);
    for (const k of unique) if (Number(k.first) !== t.tenantCol) out.push(`${t.name}: ${k.primary ? 'primary key' : 'unique index'} ${k.idx} does not lead with tenant_id`);
  }
  const fks = await q.query<{ name: string; child: string; parent: string; conkey: number[]; confkey: number[] }>(
    `SELECT k.conname AS name, ch.relname AS child, pa.relname AS parent, k.conkey, k.confkey
       FROM pg_constraint k JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = ch.relnamespace
      WHERE k.contype = 'f' AND n.nspname = current_schema()`,
  );
  const isSharded = (name: string) => sharded.some((t) => t.name === name);
  for (const fk of fks.rows) {
    const child = all.get(fk.child)!;
    const parent = all.get(fk.parent)!;
    if (isSharded(fk.parent) && !isSharded(fk.child)) out.push(`${fk.child}: foreign key ${fk.name} from a platform table to tenant table ${fk.parent}`);
    if (isSharded(fk.parent) && isSharded(fk.child)) {
      const joinedOnTenant = fk.conkey.some((c, i) => c === child.tenantCol && fk.confkey[i] === parent.tenantCol);
      if (!joinedOnTenant) out.push(`${fk.child}: foreign key ${fk.name} to ${fk.parent} is not joined on tenant_id`);
    }
    // a tenant table referencing a platform (reference) table is allowed: every node has the whole reference table
  }
  return out;
}

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => server.close());

describe('the schema stays distributable by tenant_id (Citus)', () => {
  it('every tenant table is keyed by tenant, no foreign key crosses tenants, every other table is a listed platform table', async () => {
    expect(await violations(server.deps.db.admin())).toEqual([]);
  });

  it('every tenant table has the tenant wall: row-level security, enabled and forced, on app.tenant_id', async () => {
    const all = await tables(server.deps.db.admin());
    const policies = await server.deps.db.admin().query<{ tablename: string; qual: string | null }>(
      "SELECT tablename, qual FROM pg_policies WHERE schemaname = current_schema() AND policyname = 'tenant_isolation'",
    );
    const walled = new Set(policies.rows.filter((p) => p.qual?.includes("current_setting('app.tenant_id'")).map((p) => p.tablename));
    // On Citus, `db distribute` turns FORCE off on the distributed tables (online shard moves replicate as the owner,
    // docs/scaling.md); the application's role owns nothing, so the wall holds for it either way.
    const citus = (await server.deps.db.admin().query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rowCount! > 0;
    const missing = distributed(all).filter((t) => !t.rls || (!citus && !t.forceRls) || !walled.has(t.name)).map((t) => t.name);
    expect(missing).toEqual([]);
  });

  it('fails for a table that breaks a rule (checked on tables created and rolled back)', async () => {
    const found = await server.deps.db.admin().withClient(async (q) => {
      await q.query('BEGIN');
      try {
        await q.query('CREATE TABLE citus_probe_keyed_by_id (id text PRIMARY KEY, tenant_id text NOT NULL)');
        await q.query('CREATE TABLE citus_probe_child (tenant_id text NOT NULL, id text NOT NULL, parent text REFERENCES citus_probe_keyed_by_id (id), PRIMARY KEY (tenant_id, id))');
        await q.query('CREATE UNIQUE INDEX citus_probe_child_unique ON citus_probe_child (id)');
        await q.query('CREATE TABLE citus_probe_platform (id text PRIMARY KEY)');
        await q.query('CREATE TABLE citus_probe_unkeyed (tenant_id text NOT NULL, value text)');
        return await violations(q);
      } finally {
        await q.query('ROLLBACK');
      }
    });
    expect(found.sort()).toEqual(
      [
        'citus_probe_keyed_by_id: primary key citus_probe_keyed_by_id_pkey does not lead with tenant_id',
        'citus_probe_child: unique index citus_probe_child_unique does not lead with tenant_id',
        'citus_probe_child: foreign key citus_probe_child_parent_fkey to citus_probe_keyed_by_id is not joined on tenant_id',
        'citus_probe_platform: no tenant_id column and not a listed platform table',
        'citus_probe_unkeyed: no primary key',
      ].sort(),
    );
  });
});
