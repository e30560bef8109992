// Numbered SQL migrations from migrations/: each applied once, in its own transaction, recorded in schema_migration.
// On a Citus coordinator the schema is then distributed (src/store/citus.ts), so every start leaves it so (issue 16).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db, Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { distributeSchema } from './citus.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
const LOCK_KEY = 727_001; // advisory lock: one migrator at a time across processes

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f, sql: readFileSync(`${dir}/${f}`, 'utf8') }));
}

async function ensureTable(q: Queryable): Promise<void> {
  await q.query(`CREATE TABLE IF NOT EXISTS schema_migration (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
}

export interface MigrateOptions {
  /** Distribute the schema afterwards when the database is a Citus coordinator (default true; `db distribute` says false and does it itself). */
  distribute?: boolean;
  /** Where the distribution says what it changed (info); silent without. */
  log?: Logger;
}

/**
 * Applies pending migrations; returns the names applied. Every statement runs inside a transaction that holds
 * the migration advisory lock, so concurrent starters wait and re-check (and PGlite's shared session is safe).
 * Then, on a Citus coordinator, distributes what is not distributed yet (distributeSchema: nothing once done).
 */
export async function migrate(db: Db, opts: MigrateOptions = {}): Promise<string[]> {
  const applied = await applyMigrations(db);
  if (opts.distribute !== false) await distributeSchema(db, opts.log);
  return applied;
}

async function applyMigrations(db: Db): Promise<string[]> {
  // each step in its own transaction holding the migration lock
  const locked = <T>(fn: (q: Queryable) => Promise<T>): Promise<T> =>
    db.admin().tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      return fn(q);
    });
  await locked(ensureTable);
  const applied: string[] = [];
  for (const m of listMigrations()) {
    const ran = await locked(async (q) => {
      const done = await q.query('SELECT 1 FROM schema_migration WHERE version = $1', [m.version]);
      if (done.rowCount) return false;
      try {
        await q.query(m.sql);
      } catch (err) {
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await q.query('INSERT INTO schema_migration (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (ran) applied.push(m.name);
  }
  return applied;
}

/** True when every migration in migrations/ is recorded as applied. */
export async function isMigrated(db: Db): Promise<boolean> {
  try {
    const r = await db.admin().query<{ n: string }>('SELECT count(*)::text AS n FROM schema_migration');
    return Number(r.rows[0].n) >= listMigrations().length;
  } catch {
    return false;
  }
}
