// Transaction-scoped advisory locks by name: the name is hashed to PostgreSQL's 64-bit lock key.
import { createHash } from 'node:crypto';
import type { Queryable } from '../platform/db.js';

export async function advisoryXactLock(q: Queryable, name: string): Promise<void> {
  const key = createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
  await q.query('SELECT pg_advisory_xact_lock($1)', [key]);
}

/** Like advisoryXactLock, but answers false at once when another transaction holds the lock. */
export async function tryAdvisoryXactLock(q: Queryable, name: string): Promise<boolean> {
  const key = createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
  const r = await q.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [key]);
  return r.rows[0]?.ok === true;
}
