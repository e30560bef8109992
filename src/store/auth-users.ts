// Users who sign in (per tenant; platform administrators under the reserved tenant id 'platform'), EHR launch
// contexts and registration (initial access) tokens. Tenant tables under row-level security (migrations/0004).
import type { Db } from '../platform/db.js';

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
  failedLogins: number;
  lockedUntil: Date | null;
  disabled: boolean;
}

type UserRow = {
  tenant_id: string; id: string; username: string; password_hash: string; role: string; fhir_user: string | null; display_name: string | null;
  totp_secret: string | null; totp_last_step: string | null; failed_logins: number; locked_until: Date | null; disabled: boolean;
};

const toUser = (r: UserRow): UserRecord => ({
  tenantId: r.tenant_id,
  id: r.id,
  username: r.username,
  passwordHash: r.password_hash,
  role: r.role,
  fhirUser: r.fhir_user,
  displayName: r.display_name,
  totpSecret: r.totp_secret,
  totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
  failedLogins: r.failed_logins,
  lockedUntil: r.locked_until,
  disabled: r.disabled,
});

export async function findUserByName(db: Db, tenantId: string, username: string): Promise<UserRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<UserRow>('SELECT * FROM app_user WHERE tenant_id = $1 AND lower(username) = lower($2)', [tenantId, username]));
  return r.rows[0] ? toUser(r.rows[0]) : undefined;
}

export async function findUserById(db: Db, tenantId: string, id: string): Promise<UserRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<UserRow>('SELECT * FROM app_user WHERE tenant_id = $1 AND id = $2', [tenantId, id]));
  return r.rows[0] ? toUser(r.rows[0]) : undefined;
}

export async function listUsers(db: Db, tenantId: string): Promise<UserRecord[]> {
  const r = await db.withTenant(tenantId, (q) => q.query<UserRow>('SELECT * FROM app_user WHERE tenant_id = $1 ORDER BY username', [tenantId]));
  return r.rows.map(toUser);
}

/** Inserts a user; false when the username is taken in that tenant. */
export async function insertUser(db: Db, u: Omit<UserRecord, 'failedLogins' | 'lockedUntil' | 'disabled' | 'totpLastStep'>): Promise<boolean> {
  const r = await db.withTenant(u.tenantId, (q) =>
    q.query(
      `INSERT INTO app_user (tenant_id, id, username, password_hash, role, fhir_user, display_name, totp_secret)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [u.tenantId, u.id, u.username, u.passwordHash, u.role, u.fhirUser, u.displayName, u.totpSecret],
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

/** Updates fields of a user (a new password also clears the lockout). Returns false when the user is unknown. */
export async function updateUser(db: Db, tenantId: string, id: string, change: UserChange): Promise<boolean> {
  const sets: string[] = [];
  const params: unknown[] = [tenantId, id];
  for (const [k, v] of Object.entries(change) as [keyof UserChange, unknown][]) {
    params.push(v);
    sets.push(`${COLUMN[k]} = $${params.length}`);
  }
  if (change.passwordHash) sets.push('failed_logins = 0, locked_until = NULL');
  if (!sets.length) return true;
  const r = await db.withTenant(tenantId, (q) => q.query(`UPDATE app_user SET ${sets.join(', ')}, updated_at = now() WHERE tenant_id = $1 AND id = $2`, params));
  return (r.rowCount ?? 0) > 0;
}

/**
 * Counts one sign-in attempt BEFORE its password or code is checked, in one atomic statement: parallel guesses can
 * never all be checked against a stale "not locked" (each must win a slot under the threshold first). Refused
 * (`allowed: false`, nothing counted) while the account is locked; `lockedUntil` is set when this very attempt
 * reached the threshold (a correct answer then clears it through recordLoginSuccess or refundLoginAttempt).
 */
export async function claimLoginAttempt(db: Db, tenantId: string, id: string, threshold: number, lockMinutes: number): Promise<{ allowed: boolean; lockedUntil: Date | null }> {
  return db.withTenant(tenantId, async (q) => {
    const r = await q.query<{ locked_until: Date | null }>(
      `UPDATE app_user SET failed_logins = failed_logins + 1,
              locked_until = CASE WHEN failed_logins + 1 >= $3 THEN now() + make_interval(mins => $4::int) ELSE locked_until END
        WHERE tenant_id = $1 AND id = $2 AND (locked_until IS NULL OR locked_until <= now())
        RETURNING CASE WHEN locked_until > now() THEN locked_until END AS locked_until`,
      [tenantId, id, threshold, lockMinutes],
    );
    if (r.rows[0]) return { allowed: true, lockedUntil: r.rows[0].locked_until };
    const cur = await q.query<{ locked_until: Date | null }>('SELECT locked_until FROM app_user WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
    return { allowed: false, lockedUntil: cur.rows[0]?.locked_until ?? null };
  });
}

/**
 * Gives back an attempt claimed by claimLoginAttempt whose first factor was right but whose second factor is still
 * to come (neither a failure nor yet a success). `clearLock`: that attempt set the lock (no other attempt can have
 * changed it since), so it is lifted again.
 */
export async function refundLoginAttempt(db: Db, tenantId: string, id: string, clearLock: boolean): Promise<void> {
  await db.withTenant(tenantId, (q) =>
    q.query(
      `UPDATE app_user SET failed_logins = GREATEST(failed_logins - 1, 0), locked_until = CASE WHEN $3::boolean THEN NULL ELSE locked_until END
        WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id, clearLock],
    ),
  );
}

/** Accepts a TOTP step once: false when this step (or a later one) was already used. */
export async function claimTotpStep(db: Db, tenantId: string, id: string, step: number): Promise<boolean> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query('UPDATE app_user SET totp_last_step = $3 WHERE tenant_id = $1 AND id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)', [tenantId, id, step]),
  );
  return (r.rowCount ?? 0) > 0;
}

/** A successful sign-in resets the failure count (a lock that has run out is cleared too). */
export async function recordLoginSuccess(db: Db, tenantId: string, id: string): Promise<void> {
  await db.withTenant(tenantId, (q) => q.query('UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE tenant_id = $1 AND id = $2 AND (failed_logins > 0 OR locked_until IS NOT NULL)', [tenantId, id]));
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
