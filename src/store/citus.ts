// Citus (issue 16, docs/scaling.md "Citus"): recognising a Citus coordinator, distributing the schema by tenant_id
// (read from the catalog, so a new table is never forgotten), and the shard operations behind `tenant isolate` and
// `tenant move`. Without the citus extension (plain PostgreSQL, PGlite) every entry point here changes nothing.
import type { Db, Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';

/** The table every tenant table is colocated with: all of one tenant's rows, in every table, share one shard group. */
export const ANCHOR = 'resource';

/**
 * Platform tables kept on the coordinator (a Citus local table, added to the metadata) rather than copied to every
 * node as a reference table, each with its reason. Every write to a reference table is a two-phase commit across all
 * nodes; these tables take several writes per request and are never joined with a tenant's shards.
 */
export const COORDINATOR_LOCAL: Record<string, string> = {
  oidc_payload:
    "oidc-provider's artifacts: a token request writes several (code consumed, grant, access and refresh token, replay record), each a two-phase commit as a reference table; read by opaque id only, never joined with tenant data",
};

/** Session advisory lock of `distributeSchema` (migrations hold 727_001): one distributor at a time across processes. */
const DISTRIBUTE_LOCK = 727_002;

export type Placement = 'distributed' | 'reference' | 'coordinator-local' | 'single-shard' | 'local';

/** One table of the schema as the catalog shows it. */
export interface TableState {
  name: string;
  /** Where Citus keeps it now ('local': not in Citus's metadata). */
  placement: Placement;
  /** Where it belongs: a tenant table (tenant_id leads every key) is distributed; a platform table is not. */
  wanted: Exclude<Placement, 'single-shard' | 'local'>;
  /** Distribution column of a distributed table. */
  column: string | null;
  colocationId: number | null;
  forceRls: boolean;
}

export interface DistributionReport {
  /** False: no citus extension; nothing was looked at or changed. */
  citus: boolean;
  /** What was changed, in order, one line each. Empty when the schema was already distributed. */
  changes: string[];
  /** Tables found placed otherwise than the rules say, left as they are. */
  warnings: string[];
  /** Every table and where it is now. */
  tables: TableState[];
}

/** True when the database has the citus extension (on PGlite and plain PostgreSQL: false). */
export async function isCitus(q: Queryable): Promise<boolean> {
  const r = await q.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  return (r.rowCount ?? 0) > 0;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Every table of the current schema (extensions' tables left out), where it is and where it belongs. */
export async function schemaTables(q: Queryable): Promise<TableState[]> {
  const r = await q.query<{ name: string; has_tenant: boolean; keyed_by_tenant: boolean; placement: Placement; dist_column: string | null; colocationid: number | null; force_rls: boolean }>(
    `SELECT c.relname AS name, a.attnum IS NOT NULL AS has_tenant,
            NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND NOT (a.attnum = ANY (i.indkey::int2[]))) AS keyed_by_tenant,
            CASE WHEN p.logicalrelid IS NULL THEN 'local' WHEN p.partmethod = 'h' THEN 'distributed' WHEN p.repmodel = 't' THEN 'reference'
                 WHEN p.colocationid = 0 THEN 'coordinator-local' ELSE 'single-shard' END AS placement,
            CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END AS dist_column,
            p.colocationid, c.relforcerowsecurity AS force_rls
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
       LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY c.relname`,
  );
  return r.rows.map((x) => ({
    name: x.name,
    placement: x.placement,
    // A table with tenant_id whose every unique key holds it shards by tenant; one keyed by something else (oauth_client:
    // client_id, looked up before the tenant is known) cannot, as Citus enforces uniqueness inside one shard only.
    wanted: x.has_tenant && x.keyed_by_tenant ? 'distributed' : x.name in COORDINATOR_LOCAL ? 'coordinator-local' : 'reference',
    column: x.dist_column,
    colocationId: x.colocationid,
    forceRls: x.force_rls,
  }));
}

/** `names` ordered so that a table comes after every table it references by foreign key (Citus needs the parent first). */
async function parentsFirst(q: Queryable, names: string[]): Promise<string[]> {
  const fks = await q.query<{ child: string; parent: string }>(
    `SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
      WHERE k.contype = 'f' AND ch.relnamespace = pa.relnamespace AND ch.relname <> pa.relname`,
  );
  const out: string[] = [];
  const pending = new Set(names);
  while (pending.size) {
    const ready = [...pending].filter((t) => !fks.rows.some((fk) => fk.child === t && pending.has(fk.parent)));
    // a cycle of foreign keys: take them in name order and let Citus say what it refuses
    for (const t of ready.length ? ready : [...pending]) {
      out.push(t);
      pending.delete(t);
    }
  }
  return out;
}

/** What is wrong with a table Citus already holds (null: nothing), for the report's warnings. */
function misplaced(t: TableState, anchor: TableState | undefined): string | null {
  if (t.placement === 'local' || t.placement === t.wanted) {
    if (t.placement !== 'distributed') return null;
    if (t.column !== 'tenant_id') return `${t.name}: distributed by ${t.column}, not tenant_id`;
    if (anchor?.placement === 'distributed' && t.colocationId !== anchor.colocationId) {
      return `${t.name}: not colocated with ${ANCHOR} (fix: SELECT alter_distributed_table('${t.name}', colocate_with => '${ANCHOR}'))`;
    }
    return null;
  }
  return `${t.name}: is ${t.placement}, the rules say ${t.wanted}; left as it is`;
}

/** Makes one local table what it should be; the report line. */
async function place(q: Queryable, t: TableState, shardCount: number | undefined, coordinatorInMetadata: boolean): Promise<string> {
  if (t.wanted === 'coordinator-local') {
    // Without the coordinator in pg_dist_node the table simply stays a plain local table, which works the same here.
    if (!coordinatorInMetadata) return `${t.name}: kept local on the coordinator (the coordinator is not in the metadata)`;
    await q.query('SELECT citus_add_local_table_to_metadata($1)', [t.name]);
    return `${t.name}: coordinator-local (a Citus local table: its writes need no two-phase commit)`;
  }
  if (t.wanted === 'reference') {
    await q.query('SELECT create_reference_table($1)', [t.name]);
  } else if (t.name === ANCHOR) {
    await q.query(`SELECT create_distributed_table($1, 'tenant_id'${shardCount ? ', shard_count => $2' : ''})`, shardCount ? [t.name, shardCount] : [t.name]);
  } else {
    await q.query("SELECT create_distributed_table($1, 'tenant_id', colocate_with => $2)", [t.name, ANCHOR]);
  }
  // Rows that were in the table were copied into its shards; the coordinator's own copy is dead weight from now on.
  await q.query('SELECT truncate_local_data_after_distributing_table($1)', [t.name]);
  if (t.wanted === 'reference') return `${t.name}: reference table (copied to every node)`;
  return t.name === ANCHOR ? `${t.name}: distributed by tenant_id (the colocation group of every tenant table)` : `${t.name}: distributed by tenant_id, colocated with ${ANCHOR}`;
}

/**
 * Distributes the schema on a Citus coordinator, idempotently: every tenant table (tenant_id leads its keys) by
 * tenant_id colocated with `resource` (created first), every platform table a reference table except those in
 * COORDINATOR_LOCAL; then switches FORCE row-level security off on the distributed tables (online shard moves hang
 * under it: docs/scaling.md), sets `citus.propagate_set_commands = 'local'` for the database (the tenant binding's
 * SET LOCAL reaches the workers only so) and analyzes what it distributed. Without Citus it changes nothing.
 */
export async function distributeSchema(db: Db, log?: Logger, opts: { shardCount?: number } = {}): Promise<DistributionReport> {
  const admin = db.admin();
  if (!(await isCitus(admin))) return { citus: false, changes: [], warnings: [], tables: [] };
  return admin.withClient(async (q) => {
    await q.query('SELECT pg_advisory_lock($1)', [DISTRIBUTE_LOCK]);
    try {
      return await distributeLocked(q, log, opts.shardCount);
    } finally {
      await q.query('SELECT pg_advisory_unlock($1)', [DISTRIBUTE_LOCK]);
    }
  });
}

async function distributeLocked(q: Queryable, log: Logger | undefined, shardCount: number | undefined): Promise<DistributionReport> {
  const changes: string[] = [];
  const note = (line: string) => {
    changes.push(line);
    log?.info({ change: line }, 'citus: schema distribution');
  };
  let tables = await schemaTables(q);
  const anchor = tables.find((t) => t.name === ANCHOR);
  if (!anchor) throw new Error(`no table ${ANCHOR} in the current schema: run the migrations first`);
  const warnings = tables.map((t) => misplaced(t, anchor)).filter((w): w is string => w !== null);
  const todo = tables.filter((t) => t.placement === 'local');
  if (todo.length) {
    const coordinator = await q.query('SELECT 1 FROM pg_dist_node WHERE groupid = 0');
    const byName = new Map(todo.map((t) => [t.name, t]));
    // platform tables first (tenant tables may reference them), then the anchor, then the other tenant tables
    const platform = await parentsFirst(q, todo.filter((t) => t.wanted !== 'distributed').map((t) => t.name));
    const tenant = await parentsFirst(q, todo.filter((t) => t.wanted === 'distributed' && t.name !== ANCHOR).map((t) => t.name));
    const order = [...platform, ...(byName.has(ANCHOR) ? [ANCHOR] : []), ...tenant];
    for (const name of order) {
      try {
        note(await place(q, byName.get(name)!, shardCount, (coordinator.rowCount ?? 0) > 0));
      } catch (err) {
        throw new Error(`could not distribute ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
    tables = await schemaTables(q);
  }
  for (const t of tables.filter((x) => x.placement === 'distributed' && x.forceRls)) {
    // Citus copies the change to every shard. The RLS wall still holds for the application's role, which owns nothing.
    await q.query(`ALTER TABLE ${quoteIdent(t.name)} NO FORCE ROW LEVEL SECURITY`);
    note(`${t.name}: FORCE ROW LEVEL SECURITY off (online shard moves replicate as the owner)`);
  }
  // Citus opens worker connections as the current role. The outbox and host scans (migrations 0006, 0016) run as
  // roles of their own, and a connection whose login role could lift the wall (the CLI on the owner's URL) works as
  // fhir_app after SET ROLE: those roles must be able to log in on the workers. They still have no password; a real
  // cluster authenticates node-to-node connections through pg_dist_authinfo or certificates (docs/scaling.md).
  const scanRoles = await q.query<{ rolname: string }>(
    "SELECT rolname FROM pg_roles WHERE rolname IN ('fhir_app', 'fhir_notify_scan', 'fhir_host_lookup') AND NOT rolcanlogin ORDER BY 1",
  );
  for (const { rolname } of scanRoles.rows) {
    await q.query(`ALTER ROLE ${quoteIdent(rolname)} LOGIN`);
    note(`role ${rolname}: may log in (Citus opens its worker connections as it)`);
  }
  // outbox_tenants() skips through the outbox's key with a recursive CTE, one probe per tenant; Citus refuses a
  // recursive CTE without a filter on the distribution column. On Citus it becomes a DISTINCT, pushed to every shard.
  const scan = await q.query<{ src: string }>("SELECT prosrc AS src FROM pg_proc WHERE proname = 'outbox_tenants' AND pronamespace = current_schema()::regnamespace");
  if (scan.rows[0]?.src.includes('RECURSIVE')) {
    await q.query(`CREATE OR REPLACE FUNCTION outbox_tenants() RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $f$
      SELECT DISTINCT o.tenant_id FROM public.outbox o
    $f$`);
    note('function outbox_tenants(): a DISTINCT over the shards instead of a recursive skip scan');
  }
  // Both scans run every dispatcher poll and touch every shard: one connection per worker (kept by the session) instead
  // of the executor opening up to 16 per worker for parallelism and closing them again at every poll.
  const pools = await q.query<{ name: string }>(
    `SELECT proname AS name FROM pg_proc WHERE proname IN ('outbox_tenants', 'subscription_tenants') AND pronamespace = current_schema()::regnamespace
        AND NOT coalesce('citus.max_adaptive_executor_pool_size=1' = ANY (proconfig), false) ORDER BY 1`,
  );
  for (const { name } of pools.rows) {
    await q.query(`ALTER FUNCTION ${quoteIdent(name)}() SET citus.max_adaptive_executor_pool_size = 1`);
    note(`function ${name}(): one connection per worker`);
  }
  const setting = await q.query(
    `SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = current_database() AND s.setrole = 0 AND 'citus.propagate_set_commands=local' = ANY (s.setconfig)`,
  );
  if (!setting.rowCount) {
    const stmt = await q.query<{ sql: string }>("SELECT format('ALTER DATABASE %I SET citus.propagate_set_commands = %L', current_database(), 'local') AS sql");
    await q.query(stmt.rows[0]!.sql);
    note("database: citus.propagate_set_commands = 'local' (new sessions carry SET LOCAL app.tenant_id to the workers)");
  }
  const placed = tables.filter((t) => todo.some((x) => x.name === t.name) && t.placement !== 'local' && t.placement !== 'coordinator-local');
  if (placed.length) {
    await q.query(`ANALYZE ${placed.map((t) => quoteIdent(t.name)).join(', ')}`);
    note(`analyzed ${placed.length} tables`);
  }
  return { citus: true, changes, warnings, tables };
}

/** A Citus node as pg_dist_node names it. */
export interface CitusNode {
  nodeId: number;
  groupId: number;
  host: string;
  port: number;
  active: boolean;
  takesShards: boolean;
}

/** The primary nodes of the cluster (coordinator included when it is in the metadata). */
export async function citusNodes(q: Queryable): Promise<CitusNode[]> {
  const r = await q.query<{ nodeid: number; groupid: number; nodename: string; nodeport: number; isactive: boolean; shouldhaveshards: boolean }>(
    "SELECT nodeid, groupid, nodename, nodeport, isactive, shouldhaveshards FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid, nodeid",
  );
  return r.rows.map((n) => ({ nodeId: n.nodeid, groupId: n.groupid, host: n.nodename, port: n.nodeport, active: n.isactive, takesShards: n.shouldhaveshards }));
}

/** The shard group that holds one tenant's rows: its shard of `resource`, where it is, and whether it is the tenant's alone. */
export interface TenantShardGroup {
  shardId: string;
  node: CitusNode;
  /** The shard's hash range holds this tenant only (after `tenant isolate`). */
  isolated: boolean;
  /** Tenants (rows of `tenant`) whose rows live in this shard group. */
  tenants: number;
  /** Every table of the group (colocated with `resource`). */
  tables: string[];
}

/** Where tenant `slug`'s rows live; undefined when `resource` is not distributed. */
export async function tenantShardGroup(q: Queryable, slug: string): Promise<TenantShardGroup | undefined> {
  const anchor = await q.query<{ colocationid: number }>("SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass AND partmethod = 'h'", [ANCHOR]);
  if (!anchor.rows[0]) return undefined;
  const shard = await q.query<{ shardid: string; min: string; max: string; groupid: number }>(
    `SELECT s.shardid::text, s.shardminvalue AS min, s.shardmaxvalue AS max, p.groupid
       FROM pg_dist_shard s JOIN pg_dist_placement p ON p.shardid = s.shardid
      WHERE s.shardid = get_shard_id_for_distribution_column($1, $2::text)`,
    [ANCHOR, slug],
  );
  const row = shard.rows[0]!;
  const node = (await citusNodes(q)).find((n) => n.groupId === row.groupid)!;
  const tenants = await q.query<{ n: string }>('SELECT count(*)::text AS n FROM tenant WHERE get_shard_id_for_distribution_column($1, id) = $2::bigint', [ANCHOR, row.shardid]);
  const tables = await q.query<{ name: string }>('SELECT logicalrelid::regclass::text AS name FROM pg_dist_partition WHERE colocationid = $1 ORDER BY 1', [anchor.rows[0].colocationid]);
  return { shardId: row.shardid, node, isolated: row.min === row.max, tenants: Number(tenants.rows[0]!.n), tables: tables.rows.map((t) => t.name) };
}

/** Tables of `resource`'s colocation group that logical replication cannot move online, each with the reason. */
export async function onlineMoveBlockers(q: Queryable): Promise<string[]> {
  const r = await q.query<{ name: string; no_identity: boolean; forced: boolean }>(
    `SELECT c.relname AS name, c.relforcerowsecurity AS forced,
            NOT (c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) AS no_identity
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass)
      ORDER BY 1`,
    [ANCHOR],
  );
  const out: string[] = [];
  for (const t of r.rows) {
    if (t.no_identity) out.push(`${t.name}: no primary key or replica identity (logical replication cannot apply its updates and deletes)`);
    if (t.forced) out.push(`${t.name}: FORCE ROW LEVEL SECURITY (the move's replication would hang: run \`db distribute\`)`);
  }
  return out;
}

export type TransferMode = 'auto' | 'force_logical' | 'block_writes';

/** The highest shard id so far: shards made by a later split have higher ids. */
export async function lastShardId(q: Queryable): Promise<string> {
  const r = await q.query<{ id: string }>('SELECT coalesce(max(shardid), 0)::text AS id FROM pg_dist_shard');
  return r.rows[0]!.id;
}

/** Splits the tenant's rows into a shard group of their own (every colocated table: CASCADE); the new shard id. */
export async function isolateTenant(q: Queryable, slug: string, mode: TransferMode): Promise<string> {
  const r = await q.query<{ shard: string }>("SELECT isolate_tenant_to_new_shard($1, $2::text, 'CASCADE', shard_transfer_mode => $3::citus.shard_transfer_mode)::text AS shard", [ANCHOR, slug, mode]);
  return r.rows[0]!.shard;
}

/** Moves shard `shardId` with every shard colocated with it (the tenant's whole shard group) to `to`. */
export async function moveShardGroup(q: Queryable, shardId: string, from: CitusNode, to: CitusNode, mode: TransferMode): Promise<void> {
  await q.query('SELECT citus_move_shard_placement($1::bigint, $2::int, $3::int, $4::citus.shard_transfer_mode)', [shardId, from.nodeId, to.nodeId, mode]);
}

/** A line of get_rebalance_progress(): one shard being moved or copied. */
export interface ShardProgress {
  table: string;
  shardId: string;
  status: string;
  sourceBytes: number;
  targetBytes: number;
}

/** What Citus reports of shard moves under way (splits report nothing there). */
export async function shardProgress(q: Queryable): Promise<ShardProgress[]> {
  const r = await q.query<{ table_name: string; shardid: string; status: string | null; source_shard_size: string; target_shard_size: string }>(
    'SELECT table_name::text, shardid::text, status, source_shard_size::text, target_shard_size::text FROM get_rebalance_progress() ORDER BY shardid',
  );
  return r.rows.map((x) => ({ table: x.table_name, shardId: x.shardid, status: x.status ?? '', sourceBytes: Number(x.source_shard_size), targetBytes: Number(x.target_shard_size) }));
}

/** Runs `command` on every node (run_command_on_all_nodes; before Citus 11.3 the workers only); each node's result. */
export async function runOnNodes(q: Queryable, command: string): Promise<{ ok: boolean; result: string }[]> {
  const all = await q.query("SELECT 1 FROM pg_proc WHERE proname = 'run_command_on_all_nodes'");
  const fn = all.rowCount ? 'run_command_on_all_nodes' : 'run_command_on_workers';
  const r = await q.query<{ success: boolean; result: string }>(`SELECT success, result FROM ${fn}($1)`, [command]);
  return r.rows.map((x) => ({ ok: x.success, result: x.result }));
}

/** Shard ids of `resource`'s colocation group above `after`: the shard groups a split made (every table, every range). */
export async function shardsAfter(q: Queryable, after: string): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `SELECT s.shardid::text AS id FROM pg_dist_shard s JOIN pg_dist_partition p ON p.logicalrelid = s.logicalrelid
      WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass) AND s.shardid > $2::bigint
      ORDER BY s.shardid`,
    [ANCHOR, after],
  );
  return r.rows.map((x) => x.id);
}

/** The shard `shardId` and every shard colocated with it (same colocation group, same hash range): one shard group. */
export async function colocatedShards(q: Queryable, shardId: string): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `SELECT c.shardid::text AS id
       FROM pg_dist_shard o JOIN pg_dist_partition po ON po.logicalrelid = o.logicalrelid,
            pg_dist_shard c JOIN pg_dist_partition pc ON pc.logicalrelid = c.logicalrelid
      WHERE o.shardid = $1::bigint AND pc.colocationid = po.colocationid AND c.shardminvalue = o.shardminvalue
      ORDER BY c.shardid`,
    [shardId],
  );
  return r.rows.map((x) => x.id);
}

/**
 * ANALYZEs the given shards where they live (one command per node; a node skips the names it does not hold). A shard
 * that was just moved or split has no statistics, and a plan made without them can run for minutes (issue 16).
 */
export async function analyzeShards(q: Queryable, shardIds: string[]): Promise<number> {
  if (!shardIds.length) return 0;
  const cmd = await q.query<{ sql: string }>(
    `SELECT format($f$DO $a$ DECLARE s text; BEGIN FOREACH s IN ARRAY %L::text[] LOOP
              -- a moved shard's old copy may be dropped by Citus's cleanup between the check and the ANALYZE
              BEGIN IF to_regclass(s) IS NOT NULL THEN EXECUTE format('ANALYZE %%s', to_regclass(s)); END IF;
              EXCEPTION WHEN undefined_table THEN NULL; END; END LOOP; END $a$$f$,
              -- the tables searches plan on first: until its shard is analyzed, a query there may be planned blind
              array_agg(shard_name(logicalrelid, shardid) ORDER BY logicalrelid::regclass::text <> $2, logicalrelid::regclass::text NOT LIKE 'sp\_%', shardid)) AS sql
       FROM pg_dist_shard WHERE shardid = ANY ($1::bigint[])`,
    [shardIds, ANCHOR],
  );
  const results = await runOnNodes(q, cmd.rows[0]!.sql);
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`ANALYZE of the shards failed: ${failed.map((f) => f.result).join('; ')}`);
  return shardIds.length;
}
