// Planner statistics upkeep. Search plans depend on fresh statistics; where autovacuum is switched off (as on
// this project's CI machines) the server runs VACUUM (ANALYZE) itself, through the admin (owner) connection, on tables
// that changed by more than 10% since their last analysis. With autovacuum on, it does nothing.
// On Citus the coordinator's own statistics of a distributed table stay empty (its rows live in shards on the workers),
// so the counters are read from the shards, on every node, and the distributed table is analyzed (Citus runs that on
// each of its shards). A node whose autovacuum is on looks after its own shards.
import type { Db, Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { isCitus, runOnNodes } from './citus.js';

/** The tables whose statistics the search plans lean on. */
const WATCHED = ['resource', 'resource_history', 'sp_token', 'sp_string', 'sp_reference', 'sp_date', 'sp_number', 'sp_uri', 'sp_composite', 'sp_fulltext'];

/** Changed beyond the threshold: more than 500 rows and more than 10% of the table (or shard) since its last analysis. */
const CHANGED = (mod: number, live: number) => mod > Math.max(500, 0.1 * live);

/** Watched tables changed enough, by this database's own counters (plain PostgreSQL, PGlite). */
async function changedHere(db: Db, force: boolean): Promise<string[]> {
  const admin = db.admin();
  const auto = await admin.query<{ autovacuum: string }>('SHOW autovacuum').catch(() => undefined);
  if (!force && db.kind === 'postgres' && auto?.rows[0]?.autovacuum === 'on') return [];
  const r = await admin.query<{ relname: string; mod: string; live: string }>(
    'SELECT relname, n_mod_since_analyze::text AS mod, n_live_tup::text AS live FROM pg_stat_user_tables WHERE relname = ANY ($1::text[])',
    [WATCHED],
  );
  return r.rows.filter((x) => CHANGED(Number(x.mod), Number(x.live))).map((x) => x.relname);
}

/**
 * Watched distributed tables of which some shard changed enough, by the shards' counters: one command per node reads
 * them for the shards it holds (a node with autovacuum on answers none unless `force`).
 */
async function changedOnShards(q: Queryable, force: boolean): Promise<string[]> {
  const shards = await q.query<{ shard: string; tbl: string }>(
    `SELECT shard_name(s.logicalrelid, s.shardid) AS shard, s.logicalrelid::regclass::text AS tbl
       FROM pg_dist_shard s JOIN pg_dist_partition p ON p.logicalrelid = s.logicalrelid
      WHERE p.partmethod = 'h' AND s.logicalrelid::regclass::text = ANY ($1::text[])`,
    [WATCHED],
  );
  if (!shards.rowCount) return [];
  const tableOf = new Map(shards.rows.map((x) => [x.shard, x.tbl]));
  const cmd = await q.query<{ sql: string }>(
    `SELECT format($f$SELECT coalesce(json_agg(json_build_array(s, pg_stat_get_mod_since_analyze(r), pg_stat_get_live_tuples(r))), '[]')
                        FROM (SELECT s, to_regclass(s) AS r FROM unnest(%L::text[]) s) x
                       WHERE r IS NOT NULL AND (%L OR current_setting('autovacuum') = 'off')$f$, $1::text[], $2::boolean) AS sql`,
    [[...tableOf.keys()], force],
  );
  const changed = new Set<string>();
  for (const node of await runOnNodes(q, cmd.rows[0]!.sql)) {
    if (!node.ok) throw new Error(`reading shard statistics failed: ${node.result}`);
    for (const [shard, mod, live] of JSON.parse(node.result) as [string, number, number][]) {
      if (CHANGED(mod, live)) changed.add(tableOf.get(shard)!);
    }
  }
  return WATCHED.filter((t) => changed.has(t));
}

/**
 * VACUUM (ANALYZE)s the watched tables that changed enough since their last analysis; the names done. `force`: also
 * where autovacuum is on (a test, or an operator after a bulk load).
 */
export async function analyzeChangedTables(db: Db, log: Logger, force = false): Promise<string[]> {
  const admin = db.admin();
  const citus = db.kind === 'postgres' && (await isCitus(admin));
  const changed = citus ? await changedOnShards(admin, force) : await changedHere(db, force);
  const done: string[] = [];
  for (const relname of changed) {
    // relname comes from the fixed list above; VACUUM also keeps the visibility map current for index-only scans.
    // (PGlite: ANALYZE only — VACUUM cannot run inside the transaction its shared session needs.)
    await admin.query(db.kind === 'postgres' ? `VACUUM (ANALYZE) ${relname}` : `ANALYZE ${relname}`);
    done.push(relname);
  }
  if (done.length) log.info({ tables: done }, 'analyzed tables');
  return done;
}

/** Runs analyzeChangedTables every `intervalMs` until stopped. */
export function startStatsKeeper(db: Db, log: Logger, intervalMs: number): () => void {
  return repeat(() => analyzeChangedTables(db, log), intervalMs, log, 'ANALYZE failed');
}

/**
 * Runs `task` every `intervalMs` until the returned function is called: never two runs at once, a failure is logged
 * (`failure` is the message) and the next run goes ahead, and the timer does not keep the process alive.
 */
export function repeat(task: () => Promise<unknown>, intervalMs: number, log: Logger, failure: string): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    task()
      .catch((err) => log.warn({ err }, failure))
      .finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
