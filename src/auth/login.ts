// Signing in: password (argon2id) with lockout after repeated failures, then the TOTP second factor when the user
// has one or the tenant requires it (enrolment at first sign-in). A short signed ticket carries the first factor's
// success to the second-factor form, so nothing is stored between the two steps.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Deps } from '../fhir/context.js';
import { claimLoginAttempt, claimTotpStep, findUserByName, recordLoginSuccess, refundLoginAttempt, updateUser, type UserRecord } from '../store/auth-users.js';
import { dummyHash, verifyPassword } from './passwords.js';
import { matchTotp, newTotpSecret } from './totp.js';

export type LoginOutcome =
  | { ok: true; user: UserRecord; amr: string[] }
  | { ok: false; reason: 'invalid' | 'locked'; message: string }
  | { ok: false; reason: 'second-factor'; user: UserRecord; enrol?: string };

/** The platform administrators' pseudo-tenant (a reserved slug no tenant can take). */
export const PLATFORM = 'platform';

const INVALID = 'The username or password is not correct.';

/** Looks the user up in the tenant, then among platform administrators (who may sign in to any tenant). */
async function findSigner(deps: Deps, tenantId: string, username: string): Promise<UserRecord | undefined> {
  return (await findUserByName(deps.db, tenantId, username)) ?? (await findUserByName(deps.db, PLATFORM, username));
}

function lockedMessage(until: Date): string {
  const minutes = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 60_000));
  return `Too many failed sign-ins: this account is locked for ${minutes} more minute${minutes === 1 ? '' : 's'}.`;
}

/**
 * First factor. Every failure looks the same to the caller (no user enumeration), except an active lock. The attempt
 * is counted before the password is checked (claimLoginAttempt), so parallel guesses cannot get past the threshold.
 */
export async function checkPassword(deps: Deps, tenantId: string, mfaRequired: boolean, username: string, password: string): Promise<LoginOutcome> {
  const user = username ? await findSigner(deps, tenantId, username) : undefined;
  if (!user || user.disabled) {
    await verifyPassword(await dummyHash(), password); // same cost as a real check
    return { ok: false, reason: 'invalid', message: INVALID };
  }
  const attempt = await claimAttempt(deps, user);
  if (!attempt.allowed) return attempt.outcome;
  if (!(await verifyPassword(user.passwordHash, password))) return attempt.failure;
  if (user.totpSecret || mfaRequired) {
    // right password, second factor to come: this attempt counts neither way
    await refundLoginAttempt(deps.db, user.tenantId, user.id, attempt.lockedByThis);
    return user.totpSecret ? { ok: false, reason: 'second-factor', user } : { ok: false, reason: 'second-factor', user, enrol: newTotpSecret() };
  }
  await recordLoginSuccess(deps.db, user.tenantId, user.id);
  return { ok: true, user, amr: ['pwd'] };
}

type Attempt = { allowed: false; outcome: LoginOutcome } | { allowed: true; lockedByThis: boolean; failure: LoginOutcome };

/** Claims one attempt: refused while locked; otherwise what a wrong answer to it means (invalid, or now locked). */
async function claimAttempt(deps: Deps, user: UserRecord): Promise<Attempt> {
  const c = await claimLoginAttempt(deps.db, user.tenantId, user.id, deps.config.authLockoutAttempts, deps.config.authLockoutMinutes);
  if (!c.allowed) return { allowed: false, outcome: { ok: false, reason: 'locked', message: lockedMessage(c.lockedUntil ?? new Date(Date.now() + deps.config.authLockoutMinutes * 60_000)) } };
  const failure: LoginOutcome = c.lockedUntil ? { ok: false, reason: 'locked', message: lockedMessage(c.lockedUntil) } : { ok: false, reason: 'invalid', message: INVALID };
  return { allowed: true, lockedByThis: c.lockedUntil !== null, failure };
}

/** Second factor (or enrolment: `enrol` is the new secret shown to the user, stored once a code from it works). */
export async function checkTotp(deps: Deps, user: UserRecord, code: string, enrol?: string): Promise<LoginOutcome> {
  const attempt = await claimAttempt(deps, user);
  if (!attempt.allowed) return attempt.outcome;
  const secret = enrol ?? user.totpSecret;
  const step = secret ? matchTotp(secret, code.replace(/\s/g, '')) : undefined;
  // each code is accepted once (RFC 6238 §5.2)
  if (step === undefined || !(await claimTotpStep(deps.db, user.tenantId, user.id, step))) {
    const out = attempt.failure;
    return out.ok || out.reason !== 'invalid' ? out : { ok: false, reason: 'invalid', message: 'The authentication code is not correct.' };
  }
  if (enrol) await updateUser(deps.db, user.tenantId, user.id, { totpSecret: enrol });
  await recordLoginSuccess(deps.db, user.tenantId, user.id);
  return { ok: true, user, amr: ['pwd', 'otp'] };
}

export interface Ticket {
  uid: string;
  tenantId: string;
  userId: string;
  exp: number;
  enrol?: string;
}

/** A first-factor ticket, valid for 5 minutes and for one interaction only. */
export function signTicket(key: string, t: Omit<Ticket, 'exp'>): string {
  const body = Buffer.from(JSON.stringify({ ...t, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

export function readTicket(key: string, value: string, uid: string): Ticket | undefined {
  const [body, mac] = value.split('.');
  if (!body || !mac) return undefined;
  const expected = createHmac('sha256', key).update(body).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const t = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Ticket;
    return t.uid === uid && t.exp > Date.now() / 1000 ? t : undefined;
  } catch {
    return undefined;
  }
}
