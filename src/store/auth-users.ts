// Users who sign in (per tenant; platform administrators under the reserved tenant id 'platform'), EHR launch
// contexts and registration (initial access) tokens. Tenant tables under row-level security (migrations/0004).
// TOTP secrets are stored sealed (src/store/auth-sealing.ts, issue 8).
import type { Db } from '../platform/db.js';
import { sealerOf } from './auth-sealing.js';

export interface UserRecord {
  tenantId: string;
  id: string;
  username: string;
  passwordHash: string;
  role: string;
  fhirUser: string | null;
  displayName: string | null;
  totpSecret: string | null;
  totpLastStep: number | null;
  disabled: boolean;
}

/** A user as `user list` shows it: with the account-wide sign-in counter (src/store/auth-signin-counters.ts). */
export interface ListedUser extends UserRecord {
  /** Failed sign-ins from all addresses in the current window. */
  failedLogins: number;
  /** Set while the account is locked for everyone (the account-wide ceiling). */
  lockedUntil: Date | null;
}

type UserRow = {
  tenant_id: string; id: string; username: string; password_hash: string; role: string; fhir_user: string | null; display_name: string | null;
  totp_secret: string | null; totp_last_step: string | null; disabled: boolean;
};

type ListedUserRow = UserRow & { account_failures: number | null; account_locked_until: Date | null };

/** app_user's columns that are still used (app_user.failed_logins/locked_until gave way to signin_counter). */
const USER_COLUMNS = 'u.tenant_id, u.id, u.username, u.password_hash, u.role, u.fhir_user, u.display_name, u.totp_secret, u.totp_last_step, u.disabled';
const SELECT_USER = `SELECT ${USER_COLUMNS} FROM app_user u`;

const totpContext = (tenantId: string, id: string) => `app_user.totp_secret:${tenantId}/${id}`;

function toUser(db: Db, r: UserRow): UserRecord {
  return {
    tenantId: r.tenant_id,
    id: r.id,
    username: r.username,
    passwordHash: r.password_hash,
    role: r.role,
    fhirUser: r.fhir_user,
    displayName: r.display_name,
    totpSecret: r.totp_secret === null ? null : sealerOf(db).open(r.totp_secret, totpContext(r.tenant_id, r.id)),
    totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
    disabled: r.disabled,
  };
}

export async function findUserByName(db: Db, tenantId: string, username: string): Promise<UserRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<UserRow>(`${SELECT_USER} WHERE u.tenant_id = $1 AND lower(u.username) = lower($2)`, [tenantId, username]));
  return r.rows[0] ? toUser(db, r.rows[0]) : undefined;
}

export async function findUserById(db: Db, tenantId: string, id: string): Promise<UserRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<UserRow>(`${SELECT_USER} WHERE u.tenant_id = $1 AND u.id = $2`, [tenantId, id]));
  return r.rows[0] ? toUser(db, r.rows[0]) : undefined;
}

/** The tenant's users with their account-wide sign-in counters (the sign-in path reads those through claimSignInAttempt). */
export async function listUsers(db: Db, tenantId: string): Promise<ListedUser[]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<ListedUserRow>(
      `SELECT ${USER_COLUMNS}, c.failures AS account_failures, CASE WHEN c.locked_until > now() THEN c.locked_until END AS account_locked_until
         FROM app_user u LEFT JOIN signin_counter c ON c.tenant_id = u.tenant_id AND c.user_id = u.id AND c.address = '*' AND c.expires_at > now()
        WHERE u.tenant_id = $1 ORDER BY u.username`,
      [tenantId],
    ),
  );
  return r.rows.map((row) => ({ ...toUser(db, row), failedLogins: row.account_failures ?? 0, lockedUntil: row.account_locked_until }));
}

/** Inserts a user; false when the username is taken in that tenant. */
export async function insertUser(db: Db, u: Omit<UserRecord, 'disabled' | 'totpLastStep'>): Promise<boolean> {
  const r = await db.withTenant(u.tenantId, (q) =>
    q.query(
      `INSERT INTO app_user (tenant_id, id, username, password_hash, role, fhir_user, display_name, totp_secret)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [u.tenantId, u.id, u.username, u.passwordHash, u.role, u.fhirUser, u.displayName, u.totpSecret === null ? null : sealerOf(db).seal(u.totpSecret, totpContext(u.tenantId, u.id))],
    ),
  );
  return (r.rowCount ?? 0) > 0;
}

export type UserChange = Partial<Pick<UserRecord, 'passwordHash' | 'role' | 'fhirUser' | 'displayName' | 'totpSecret' | 'disabled'>>;

const COLUMN: Record<keyof UserChange, string> = {
  passwordHash: 'password_hash',
  role: 'role',
  fhirUser: 'fhir_user',
  displayName: 'display_name',
  totpSecret: 'totp_secret',
  disabled: 'disabled',
};

/**
 * Updates fields of a user (a TOTP secret is sealed; a new password also clears every sign-in counter and lock of the
 * account, from every address). Returns false when the user is unknown.
 */
export async function updateUser(db: Db, tenantId: string, id: string, change: UserChange): Promise<boolean> {
  const sets: string[] = [];
  const params: unknown[] = [tenantId, id];
  for (const [k, v] of Object.entries(change) as [keyof UserChange, unknown][]) {
    params.push(k === 'totpSecret' && typeof v === 'string' ? sealerOf(db).seal(v, totpContext(tenantId, id)) : v);
    sets.push(`${COLUMN[k]} = $${params.length}`);
  }
  if (!sets.length) return true;
  return db.tx(tenantId, async (q) => {
    const r = await q.query(`UPDATE app_user SET ${sets.join(', ')}, updated_at = now() WHERE tenant_id = $1 AND id = $2`, params);
    if (change.passwordHash) await q.query('DELETE FROM signin_counter WHERE tenant_id = $1 AND user_id = $2', [tenantId, id]);
    return (r.rowCount ?? 0) > 0;
  });
}

/** Seals the tenant's TOTP secrets still stored in clear (written before encryption at rest). Returns how many. */
export async function sealStoredTotpSecrets(db: Db, tenantId: string): Promise<number> {
  const s = sealerOf(db);
  return db.withTenant(tenantId, async (q) => {
    const r = await q.query<{ id: string; totp_secret: string }>('SELECT id, totp_secret FROM app_user WHERE tenant_id = $1 AND totp_secret IS NOT NULL', [tenantId]);
    let sealed = 0;
    for (const u of r.rows.filter((row) => !s.isSealed(row.totp_secret))) {
      const w = await q.query('UPDATE app_user SET totp_secret = $3 WHERE tenant_id = $1 AND id = $2 AND totp_secret = $4', [tenantId, u.id, s.seal(u.totp_secret, totpContext(tenantId, u.id)), u.totp_secret]);
      sealed += w.rowCount ?? 0;
    }
    return sealed;
  });
}

/** Accepts a TOTP step once: false when this step (or a later one) was already used. */
export async function claimTotpStep(db: Db, tenantId: string, id: string, step: number): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query('UPDATE app_user SET totp_last_step = $3 WHERE tenant_id = $1 AND id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)', [tenantId, id, step]),
  );
  return (r.rowCount ?? 0) > 0;
}

// --- EHR launch contexts --------------------------------------------------------------------------------------

export interface LaunchRecord {
  tenantId: string;
  id: string;
  clientId: string | null;
  patient: string | null;
  encounter: string | null;
  createdBy: string;
  expiresAt: Date;
}

export async function insertLaunch(db: Db, l: LaunchRecord): Promise<void> {
  await db.withTenant(l.tenantId, (q) =>
    q.query('INSERT INTO launch_context (tenant_id, id, client_id, patient, encounter, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      l.tenantId, l.id, l.clientId, l.patient, l.encounter, l.createdBy, l.expiresAt,
    ]),
  );
}

type LaunchRow = { tenant_id: string; id: string; client_id: string | null; patient: string | null; encounter: string | null; created_by: string; expires_at: Date };

/** The live (unexpired) launch context `id`; with `consume`, it is deleted too (a launch serves one authorization). */
async function liveLaunch(db: Db, tenantId: string, id: string, consume: boolean): Promise<LaunchRecord | undefined> {
  const sql = consume
    ? 'DELETE FROM launch_context WHERE tenant_id = $1 AND id = $2 AND expires_at > now() RETURNING *'
    : 'SELECT * FROM launch_context WHERE tenant_id = $1 AND id = $2 AND expires_at > now()';
  const row = (await db.withTenant(tenantId, (q) => q.query<LaunchRow>(sql, [tenantId, id]))).rows[0];
  return row ? { tenantId: row.tenant_id, id: row.id, clientId: row.client_id, patient: row.patient, encounter: row.encounter, createdBy: row.created_by, expiresAt: row.expires_at } : undefined;
}

/** Takes (uses up) a live launch context. */
export function takeLaunch(db: Db, tenantId: string, id: string): Promise<LaunchRecord | undefined> {
  return liveLaunch(db, tenantId, id, true);
}

/** Reads a live launch context without using it up. */
export function peekLaunch(db: Db, tenantId: string, id: string): Promise<LaunchRecord | undefined> {
  return liveLaunch(db, tenantId, id, false);
}

// --- registration (initial access) tokens ---------------------------------------------------------------------

export async function insertRegistrationToken(db: Db, tenantId: string, tokenHash: string, scope: string, createdBy: string, expiresAt: Date): Promise<void> {
  await db.withTenant(tenantId, (q) =>
    q.query('INSERT INTO registration_token (tenant_id, token_hash, scope, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)', [tenantId, tokenHash, scope, createdBy, expiresAt]),
  );
}

/** Marks an unexpired, unused initial access token used and returns its scope ceiling (single use). */
export async function useRegistrationToken(db: Db, tenantId: string, tokenHash: string): Promise<{ scope: string } | undefined> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ scope: string }>(
      'UPDATE registration_token SET used_at = now() WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > now() RETURNING scope',
      [tenantId, tokenHash],
    ),
  );
  return r.rows[0];
}

// --- upkeep ----------------------------------------------------------------------------------------------------

/**
 * Removes the tenant's launch contexts once expired (they name patients and are useless after their 5 minutes) and
 * registration tokens a day after they expired or were used. Returns how many rows went.
 */
export async function purgeExpiredLaunchesAndTokens(db: Db, tenantId: string): Promise<number> {
  return db.withTenant(tenantId, async (q) => {
    const l = await q.query('DELETE FROM launch_context WHERE tenant_id = $1 AND expires_at < now()', [tenantId]);
    const t = await q.query("DELETE FROM registration_token WHERE tenant_id = $1 AND (expires_at < now() - interval '1 day' OR used_at < now() - interval '1 day')", [tenantId]);
    return (l.rowCount ?? 0) + (t.rowCount ?? 0);
  });
}
