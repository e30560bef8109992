// Running on Citus (issue 16, docs/scaling.md "Citus"): `npm run cli -- db distribute` and the migrate hook are a
// clear no-op on plain PostgreSQL and the embedded database (exit code, message, catalog unchanged), and `tenant
// isolate|move` refuse there. With CITUS_ADMIN_URL (a Citus coordinator's database, as its owner) the schema is
// distributed by the catalog's rules, a second run changes nothing, and the stats keeper reads the shards; with
// CITUS_TEST_SHARD_MOVES=1 as well, a tenant with rows is isolated and moved (scripts/citus-test.sh does that after the
// suite, alone: a split holds the writes of the tenants that share the shard, which other test files would feel).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db, type Queryable } from '../../../src/platform/db.js';
import { createLogger } from '../../../src/platform/log.js';
import { ANCHOR, distributeSchema, isCitus, schemaTables, tenantShardGroup } from '../../../src/store/citus.js';
import { analyzeChangedTables } from '../../../src/store/maintenance.js';
import { migrate } from '../../../src/store/migrate.js';
import { randomSlug, startServer, type TestServer } from '../../helpers/server.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-citus-cli-'));
const log = createLogger('silent');

/** The CLI as a process on `databaseUrl` (the owner's URL), or on an embedded database of its own without one. */
function cli(databaseUrl: string | undefined, ...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  delete env.DATABASE_ADMIN_URL;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  else delete env.DATABASE_URL;
  return spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 240_000 });
}

/** What distribution would change: every table's row-level security flags, and the database's settings. */
async function catalogState(q: Queryable): Promise<unknown> {
  const tables = await q.query(
    `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  const settings = await q.query(
    'SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database() ORDER BY s.setrole',
  );
  return { tables: tables.rows, settings: settings.rows };
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('without Citus (the run database: PostgreSQL or embedded)', () => {
  let server: TestServer;
  /** The run's database is itself a Citus coordinator (scripts/citus-test.sh): the next describe covers it. */
  let onCitus = false;
  beforeAll(async () => {
    server = await startServer();
    onCitus = await isCitus(server.deps.db.admin());
  });
  afterAll(async () => server?.close());

  it('the migrate hook and distributeSchema change nothing and report no Citus', async () => {
    if (onCitus) return;
    const admin = server.deps.db.admin();
    const before = await catalogState(admin);
    expect(await migrate(server.deps.db, { log })).toEqual([]);
    expect(await distributeSchema(server.deps.db, log)).toEqual({ citus: false, changes: [], warnings: [], tables: [] });
    expect(await catalogState(admin)).toEqual(before);
  });

  it('`db distribute` exits 0 saying the database is not a Citus cluster, and changes nothing', async () => {
    if (onCitus) return;
    const admin = server.deps.db.admin();
    const before = await catalogState(admin);
    // PostgreSQL: the run's database; embedded: a data directory of the CLI's own (the run's PGlite has no file)
    const res = cli(process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL, 'db', 'distribute');
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toBe('nothing to distribute: this database is not a Citus cluster (the citus extension is not installed); nothing was changed\n');
    expect(await catalogState(admin)).toEqual(before);
  }, 120_000);

  it('`tenant isolate` and `tenant move` refuse with exit 1: this database is not a Citus cluster', () => {
    if (onCitus) return;
    const url = process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL;
    const isolate = cli(url, 'tenant', 'isolate', 'some-tenant');
    expect(isolate.status).toBe(1);
    expect(isolate.stderr).toBe('error: this database is not a Citus cluster (the citus extension is not installed)\n');
    const moved = cli(url, 'tenant', 'move', 'some-tenant', '--node', '127.0.0.1:9601');
    expect(moved.status).toBe(1);
    expect(moved.stderr).toBe('error: this database is not a Citus cluster (the citus extension is not installed)\n');
    const usage = cli(url, 'tenant', 'move', 'some-tenant');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('usage: tenant move <slug> --node <host:port>');
  }, 180_000);

  it('the stats keeper analyzes a watched table that changed by more than its threshold', async () => {
    const admin = server.deps.db.admin();
    const slug = randomSlug('stats');
    const live = await admin.query<{ n: string }>("SELECT coalesce(max(n_live_tup), 0)::text AS n FROM pg_stat_user_tables WHERE relname = 'sp_uri'");
    const rows = 1000 + Math.ceil(0.2 * Number(live.rows[0]!.n));
    await admin.query(
      "INSERT INTO sp_uri (tenant_id, resource_type, resource_id, code, value) SELECT $1, 'Patient', 'p' || g, 'url', 'urn:x:' || g FROM generate_series(1, $2::int) g",
      [slug, rows],
    );
    // the inserting backend reports its counters within a second or so
    let analyzed: string[] = [];
    for (let i = 0; i < 20 && !analyzed.includes('sp_uri'); i++) {
      analyzed = await analyzeChangedTables(server.deps.db, log, true);
      if (!analyzed.includes('sp_uri')) await new Promise((r) => setTimeout(r, 500));
    }
    expect(analyzed).toContain('sp_uri');
  }, 60_000);
});

const citusUrl = process.env.CITUS_ADMIN_URL;

(citusUrl ? describe : describe.skip)('on a Citus coordinator (CITUS_ADMIN_URL)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({ databaseUrl: citusUrl, databaseAdminUrl: citusUrl, dataDir, poolSize: 1, statementTimeoutMs: 0, tenantMaxConnections: 1, acquireTimeoutMs: 10_000, log });
  });
  afterAll(async () => db?.close());

  it('migrate distributes every table by the catalog rules; a second run and `db distribute` change nothing', async () => {
    await migrate(db, { log });
    const tables = await schemaTables(db.admin());
    const anchor = tables.find((t) => t.name === ANCHOR)!;
    expect(anchor.placement).toBe('distributed');
    for (const t of tables) {
      expect({ table: t.name, placement: t.placement }).toEqual({ table: t.name, placement: t.wanted });
      if (t.placement === 'distributed') {
        expect({ table: t.name, column: t.column, colocated: t.colocationId === anchor.colocationId, force: t.forceRls }).toEqual({ table: t.name, column: 'tenant_id', colocated: true, force: false });
      }
    }
    expect(tables.find((t) => t.name === 'oauth_client')?.placement).toBe('reference');
    expect(tables.find((t) => t.name === 'tenant')?.placement).toBe('reference');
    expect(tables.find((t) => t.name === 'oidc_payload')?.placement).toBe('coordinator-local');
    const setting = await db.admin().query(
      `SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = current_database() AND s.setrole = 0 AND 'citus.propagate_set_commands=local' = ANY (s.setconfig)`,
    );
    expect(setting.rowCount).toBe(1);

    const again = await distributeSchema(db, log);
    expect(again).toMatchObject({ citus: true, changes: [], warnings: [] });
    const res = cli(citusUrl, 'db', 'distribute');
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^already distributed, nothing to do: \d+ tables distributed by tenant_id, \d+ reference tables, 1 coordinator-local\n$/);
  }, 240_000);

  it("the stats keeper reads the shards' counters (the coordinator's are empty) and analyzes the distributed table", async () => {
    const slug = randomSlug('citus-stats');
    await db.admin().query(
      "INSERT INTO sp_uri (tenant_id, resource_type, resource_id, code, value) SELECT $1, 'Patient', 'p' || g, 'url', 'urn:x:' || g FROM generate_series(1, 3000) g",
      [slug],
    );
    let analyzed: string[] = [];
    for (let i = 0; i < 20 && !analyzed.includes('sp_uri'); i++) {
      analyzed = await analyzeChangedTables(db, log, true);
      if (!analyzed.includes('sp_uri')) await new Promise((r) => setTimeout(r, 500));
    }
    expect(analyzed).toContain('sp_uri');
    // the tenant's shard was analyzed on its worker: its counter of changes since then is back under the threshold
    const shard = await db.admin().query<{ result: string }>(
      `SELECT result FROM run_command_on_placements('sp_uri', 'SELECT pg_stat_get_mod_since_analyze(''%s''::regclass)')
        WHERE shardid = get_shard_id_for_distribution_column('sp_uri', $1::text)`,
      [slug],
    );
    expect(Number(shard.rows[0]!.result)).toBeLessThan(3000);
  }, 120_000);

  (process.env.CITUS_TEST_SHARD_MOVES === '1' ? it : it.skip)('`tenant isolate` gives a tenant with rows its own shard group and `tenant move` moves it; the rows stay', async () => {
    const admin = db.admin();
    expect(cli(citusUrl, 'tenant', 'isolate', 'no-such-tenant').stderr).toBe("error: unknown tenant 'no-such-tenant'\n");
    const slug = randomSlug('citus');
    await admin.query("INSERT INTO tenant (id, name) VALUES ($1, 'Citus test tenant')", [slug]);
    await admin.query(
      `INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, content)
       SELECT $1, 'Patient', 'p' || g, 1, now(), jsonb_build_object('resourceType', 'Patient', 'id', 'p' || g) FROM generate_series(1, 500) g`,
      [slug],
    );
    // the move online (logical replication) where the workers allow Citus's decoder; otherwise writes wait during the copy
    const plugins = await admin.query<{ result: string }>("SELECT result FROM run_command_on_workers($$SELECT coalesce(current_setting('output_plugin_libraries', true), '*')$$)");
    const mode = plugins.rows.every((r) => r.result === '*' || /\bcitus\b/.test(r.result)) ? 'auto' : 'block_writes';

    const isolated = cli(citusUrl, 'tenant', 'isolate', slug);
    expect(isolated.stderr).toBe('');
    expect(isolated.status).toBe(0);
    expect(isolated.stdout).toContain('mode block_writes');
    expect(isolated.stdout).toMatch(new RegExp(`tenant ${slug} isolated in [\\d.]+ s: its shard of resource is now \\d+\\n`));
    expect(isolated.stdout).toMatch(/analyzed \d+ shards/);
    const group = (await tenantShardGroup(admin, slug))!;
    expect(group).toMatchObject({ isolated: true, tenants: 1 });
    expect(cli(citusUrl, 'tenant', 'isolate', slug).stdout).toContain(`tenant ${slug} already has a shard group of its own`);

    const nodes = await admin.query<{ nodename: string; nodeport: number }>(
      "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND shouldhaveshards AND groupid <> $1 ORDER BY nodeport LIMIT 1",
      [group.node.groupId],
    );
    const target = `${nodes.rows[0]!.nodename}:${nodes.rows[0]!.nodeport}`;
    expect(cli(citusUrl, 'tenant', 'move', slug, '--node', '127.0.0.1:1').stderr).toMatch(/^error: unknown node 127\.0\.0\.1:1: this cluster's nodes are /);
    const moved = cli(citusUrl, 'tenant', 'move', slug, '--node', target, '--mode', mode);
    expect(moved.stderr).toBe('');
    expect(moved.status).toBe(0);
    expect(moved.stdout).toMatch(/moved in [\d.]+ s/);
    const after = (await tenantShardGroup(admin, slug))!;
    expect(`${after.node.host}:${after.node.port}`).toBe(target);
    const count = await admin.query<{ n: string }>('SELECT count(*)::text AS n FROM resource WHERE tenant_id = $1', [slug]);
    expect(count.rows[0]!.n).toBe('500');
  }, 600_000);
});
