// Failed sign-in counters (issue 8, migrations/0005_secrets.sql): one row per (account, client address) and one
// account-wide row (address '*'), tenant-first under row-level security like app_user. A lock on an address row
// shuts that address out of the account; a lock on the '*' row shuts everyone out (docs/auth-design.md, "Lockout").
import type { Db } from '../platform/db.js';

/** The address of the account-wide row (no client address can be written so). */
const ACCOUNT_WIDE = '*';

export interface SignInLimits {
  /** Failures from one address that lock that address out (AUTH_LOCKOUT_ATTEMPTS). */
  perAddress: number;
  /** Failures from all addresses that lock the account for everyone (AUTH_LOCKOUT_ACCOUNT_ATTEMPTS). */
  perAccount: number;
  /** Lock length, and how long a failure keeps counting after the last one (AUTH_LOCKOUT_MINUTES). */
  minutes: number;
}

/** The locks one claimed attempt set (a right answer to it lifts them again). */
export interface LocksSet {
  address: boolean;
  account: boolean;
}

export type Claim = { allowed: false; lockedUntil: Date } | { allowed: true; lockedUntil: Date | null; set: LocksSet };

/**
 * Counts one sign-in attempt from `address` BEFORE its password or code is checked, on both rows at once: parallel
 * guesses can never all be checked against a stale "not locked" (each must win a slot under both limits first; the
 * two rows are locked in one order, so concurrent claims queue instead of deadlocking). Refused (nothing counted)
 * while either row is locked. A row whose window has passed starts again from zero; a row that was locked keeps its
 * count for one more window after the lock, so the next failure there locks again at once (as before issue 8).
 */
export async function claimSignInAttempt(db: Db, tenantId: string, userId: string, address: string, limits: SignInLimits): Promise<Claim> {
  return db.tx(tenantId, async (q) => {
    await q.query(
      `INSERT INTO signin_counter (tenant_id, user_id, address, expires_at) VALUES ($1, $2, '${ACCOUNT_WIDE}', now()), ($1, $2, $3, now())
       ON CONFLICT DO NOTHING`,
      [tenantId, userId, address],
    );
    // the database's clock, read once: the UPDATE below gets it as parameters, since Citus refuses now() inside
    // CASE or COALESCE in a write, and timestamptz + interval over a column (issue 16)
    const cur = await q.query<{ locked_until: Date | null; now: Date }>(
      `SELECT CASE WHEN locked_until > now() THEN locked_until END AS locked_until, now() AS now FROM signin_counter
        WHERE tenant_id = $1 AND user_id = $2 AND address IN ('${ACCOUNT_WIDE}', $3)
        ORDER BY address = '${ACCOUNT_WIDE}' DESC FOR UPDATE`,
      [tenantId, userId, address],
    );
    const blocked = latest(cur.rows.map((r) => r.locked_until));
    if (blocked) return { allowed: false, lockedUntil: blocked };
    const now = cur.rows[0]?.now ?? new Date();
    const window = limits.minutes * 60_000;
    const lockEnd = new Date(now.getTime() + window);
    const r = await q.query<{ address: string; locked_until: Date | null }>(
      `WITH n AS (
         SELECT address, CASE WHEN expires_at > $6::timestamptz THEN failures ELSE 0 END + 1 AS failures
           FROM signin_counter WHERE tenant_id = $1 AND user_id = $2 AND address IN ('${ACCOUNT_WIDE}', $3)
       ), l AS (
         SELECT address, failures, failures >= CASE WHEN address = '${ACCOUNT_WIDE}' THEN $5::int ELSE $4::int END AS locks FROM n
       )
       UPDATE signin_counter c SET failures = l.failures,
              locked_until = CASE WHEN l.locks THEN $7::timestamptz END,
              expires_at = CASE WHEN l.locks THEN $8::timestamptz ELSE $7::timestamptz END
         FROM l WHERE c.tenant_id = $1 AND c.user_id = $2 AND c.address = l.address
       RETURNING c.address, c.locked_until`,
      [tenantId, userId, address, limits.perAddress, limits.perAccount, now, lockEnd, new Date(lockEnd.getTime() + window)],
    );
    const set = { address: r.rows.some((x) => x.address !== ACCOUNT_WIDE && x.locked_until), account: r.rows.some((x) => x.address === ACCOUNT_WIDE && x.locked_until) };
    return { allowed: true, lockedUntil: latest(r.rows.map((x) => x.locked_until)), set };
  });
}

function latest(dates: (Date | null)[]): Date | null {
  return dates.reduce<Date | null>((a, d) => (d && (!a || d > a) ? d : a), null);
}

/**
 * Gives back an attempt whose first factor was right but whose second factor is still to come (neither a failure
 * nor yet a success). A lock this very attempt set is lifted (no other attempt can have changed a locked row since).
 */
export async function refundSignInAttempt(db: Db, tenantId: string, userId: string, address: string, set: LocksSet): Promise<void> {
  await db.withTenant(tenantId, (q) =>
    q.query(
      `UPDATE signin_counter SET failures = GREATEST(failures - 1, 0),
              locked_until = CASE WHEN (address = '${ACCOUNT_WIDE}' AND $4::boolean) OR (address <> '${ACCOUNT_WIDE}' AND $5::boolean) THEN NULL ELSE locked_until END
        WHERE tenant_id = $1 AND user_id = $2 AND address IN ('${ACCOUNT_WIDE}', $3)`,
      [tenantId, userId, address, set.account, set.address],
    ),
  );
}

/**
 * A successful sign-in from `address` clears that address's counter and takes its failures (this attempt's claim
 * among them) back out of the account-wide count: they were the user's own typos. Other addresses' failures stay.
 */
export async function recordSignInSuccess(db: Db, tenantId: string, userId: string, address: string, set: LocksSet): Promise<void> {
  await db.withTenant(tenantId, (q) =>
    q.query(
      `WITH gone AS (DELETE FROM signin_counter WHERE tenant_id = $1 AND user_id = $2 AND address = $3 RETURNING failures)
       UPDATE signin_counter SET failures = GREATEST(failures - coalesce((SELECT failures FROM gone), 1), 0),
              locked_until = CASE WHEN $4::boolean THEN NULL ELSE locked_until END
        WHERE tenant_id = $1 AND user_id = $2 AND address = '${ACCOUNT_WIDE}'`,
      [tenantId, userId, address, set.account],
    ),
  );
}

/** Removes the tenant's counters whose window (and lock) has passed. Returns how many. */
export async function purgeExpiredSignInCounters(db: Db, tenantId: string): Promise<number> {
  const r = await db.withTenant(tenantId, (q) => q.query('DELETE FROM signin_counter WHERE tenant_id = $1 AND expires_at < now()', [tenantId]));
  return r.rowCount ?? 0;
}
