// Planner statistics upkeep. Search plans depend on fresh statistics; where autovacuum is switched off (as on
// this project's CI machines) the server runs VACUUM (ANALYZE) itself, through the admin (owner) connection, on tables
// that changed by more than 10% since their last analysis. With autovacuum on, it does nothing.
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';

async function analyzeChangedTables(db: Db, log: Logger): Promise<string[]> {
  const admin = db.admin();
  const auto = await admin.query<{ autovacuum: string }>('SHOW autovacuum').catch(() => undefined);
  if (db.kind === 'postgres' && auto?.rows[0]?.autovacuum === 'on') return [];
  const r = await admin.query<{ relname: string }>(
    `SELECT relname FROM pg_stat_user_tables
      WHERE relname IN ('resource','resource_history','sp_token','sp_string','sp_reference','sp_date','sp_number','sp_uri','sp_composite','sp_fulltext')
        AND n_mod_since_analyze > greatest(500, 0.1 * n_live_tup)`,
    [],
  );
  const done: string[] = [];
  for (const { relname } of r.rows) {
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
