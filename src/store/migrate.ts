// Numbered SQL migrations from migrations/: each applied once, in its own transaction, recorded in schema_migration.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db, Queryable } from '../platform/db.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
const LOCK_KEY = 727_001; // advisory lock: one migrator at a time across processes

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f, sql: readFileSync(`${dir}/${f}`, 'utf8') }));
}

async function ensureTable(q: Queryable): Promise<void> {
  await q.query(`CREATE TABLE IF NOT EXISTS schema_migration (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(db: Db): Promise<string[]> {
  return db.admin().withClient(async (q) => {
    await q.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    try {
      await ensureTable(q);
      const done = new Set((await q.query<{ version: number }>('SELECT version FROM schema_migration')).rows.map((r) => r.version));
      const applied: string[] = [];
      for (const m of listMigrations()) {
        if (done.has(m.version)) continue;
        await q.query('BEGIN');
        try {
          await q.query(m.sql);
          await q.query('INSERT INTO schema_migration (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await q.query('COMMIT');
        } catch (err) {
          await q.query('ROLLBACK');
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.name);
      }
      return applied;
    } finally {
      await q.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
    }
  });
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
