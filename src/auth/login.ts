// Signing in: password (argon2id), then the TOTP second factor when the user has one or the tenant requires it
// (enrolment at first sign-in). A short signed ticket carries the first factor's success to the second-factor form,
// so nothing is stored between the two steps. Guessing is limited three ways (issue 8, docs/auth-design.md
// "Lockout"): per client address over all accounts, per (account, address), and per account over all addresses.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Deps } from '../core/deps.js';
import { claimSignInAttempt, recordSignInSuccess, refundSignInAttempt, type LocksSet } from '../store/auth-signin-counters.js';
import { claimTotpStep, findUserByName, updateUser, type UserRecord } from '../store/auth-users.js';
import { dummyHash, verifyPassword } from './passwords.js';
import type { AddressThrottle, Slot } from './sign-in-throttle.js';
import { matchTotp, newTotpSecret } from './totp.js';
import { PLATFORM } from '../core/tenant.js';

/** A refusal's `user`: the account the attempt was against, when one matched (for the audit trail, never shown). */
export type LoginOutcome =
  | { ok: true; user: UserRecord; amr: string[] }
  | { ok: false; reason: 'invalid'; message: string; user?: UserRecord }
  | { ok: false; reason: 'locked' | 'throttled'; message: string; until: Date; user?: UserRecord }
  | { ok: false; reason: 'second-factor'; user: UserRecord; enrol?: string };

/** Who is signing in from where: the process's address throttle and the client address (addressKey(req.ip)). */
export interface SignInContext {
  deps: Deps;
  throttle: AddressThrottle;
  address: string;
}

const INVALID = 'The username or password is not correct.';

/** Looks the user up in the tenant, then among platform administrators (who may sign in to any tenant). */
async function findSigner(deps: Deps, tenantId: string, username: string): Promise<UserRecord | undefined> {
  return (await findUserByName(deps.db, tenantId, username)) ?? (await findUserByName(deps.db, PLATFORM, username));
}

const minutesUntil = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 60_000));
const plural = (n: number) => `${n} more minute${n === 1 ? '' : 's'}`;

function locked(until: Date, now: Date, user: UserRecord): LoginOutcome {
  return { ok: false, reason: 'locked', until, user, message: `Too many failed sign-ins: this account is locked for ${plural(minutesUntil(until, now))}.` };
}

function throttled(until: Date, now: Date): LoginOutcome {
  return { ok: false, reason: 'throttled', until, message: `Too many failed sign-ins from your network address: signing in from it is blocked for ${plural(minutesUntil(until, now))}.` };
}

/**
 * Runs one attempt under the address throttle: a slot is claimed before anything touches an account, and given back
 * unless the attempt failed (wrong password, unknown user, wrong code).
 */
async function underThrottle(c: SignInContext, attempt: (slot: Extract<Slot, { ok: true }>) => Promise<LoginOutcome>): Promise<LoginOutcome> {
  const slot = c.throttle.claim(c.address);
  if (!slot.ok) return throttled(slot.until, c.deps.clock());
  try {
    const out = await attempt(slot);
    if (out.ok || out.reason === 'second-factor') slot.release();
    return out;
  } catch (err) {
    slot.release(); // a fault is not a guess
    throw err;
  }
}

/**
 * First factor. Every failure looks the same to the caller (no user enumeration), except an active lock. The attempt
 * is counted before the password is checked (claimAttempt), so parallel guesses cannot get past the limits.
 */
export async function checkPassword(c: SignInContext, tenantId: string, mfaRequired: boolean, username: string, password: string): Promise<LoginOutcome> {
  return underThrottle(c, async (slot) => {
    const user = username ? await findSigner(c.deps, tenantId, username) : undefined;
    if (!user || user.disabled) {
      await verifyPassword(await dummyHash(), password); // same cost as a real check
      return { ok: false, reason: 'invalid', message: INVALID, ...(user ? { user } : {}) };
    }
    const attempt = await claimAttempt(c, user);
    if (!attempt.allowed) {
      slot.release(); // refused unchecked: not a guess
      return attempt.outcome;
    }
    if (!(await verifyPassword(user.passwordHash, password))) return attempt.failure;
    if (user.totpSecret || mfaRequired) {
      // right password, second factor to come: this attempt counts neither way
      await refundSignInAttempt(c.deps.db, user.tenantId, user.id, c.address, attempt.set);
      return user.totpSecret ? { ok: false, reason: 'second-factor', user } : { ok: false, reason: 'second-factor', user, enrol: newTotpSecret() };
    }
    await recordSignInSuccess(c.deps.db, user.tenantId, user.id, c.address, attempt.set);
    return { ok: true, user, amr: ['pwd'] };
  });
}

type Attempt = { allowed: false; outcome: LoginOutcome } | { allowed: true; set: LocksSet; failure: LoginOutcome };

/** Claims one attempt on the account from this address: refused while locked; otherwise what a wrong answer means. */
async function claimAttempt(c: SignInContext, user: UserRecord): Promise<Attempt> {
  const cfg = c.deps.config;
  const limits = { perAddress: cfg.authLockoutAttempts, perAccount: cfg.authLockoutAccountAttempts, minutes: cfg.authLockoutMinutes };
  const claim = await claimSignInAttempt(c.deps.db, user.tenantId, user.id, c.address, limits);
  if (!claim.allowed) return { allowed: false, outcome: locked(claim.lockedUntil, c.deps.clock(), user) };
  const failure: LoginOutcome = claim.lockedUntil ? locked(claim.lockedUntil, c.deps.clock(), user) : { ok: false, reason: 'invalid', message: INVALID, user };
  return { allowed: true, set: claim.set, failure };
}

/** Second factor (or enrolment: `enrol` is the new secret shown to the user, stored once a code from it works). */
export async function checkTotp(c: SignInContext, user: UserRecord, code: string, enrol?: string): Promise<LoginOutcome> {
  return underThrottle(c, async (slot) => {
    const attempt = await claimAttempt(c, user);
    if (!attempt.allowed) {
      slot.release();
      return attempt.outcome;
    }
    const secret = enrol ?? user.totpSecret;
    const step = secret ? matchTotp(secret, code.replace(/\s/g, ''), c.deps.clock().getTime()) : undefined;
    // each code is accepted once (RFC 6238 §5.2)
    if (step === undefined || !(await claimTotpStep(c.deps.db, user.tenantId, user.id, step))) {
      const out = attempt.failure;
      return out.ok || out.reason !== 'invalid' ? out : { ok: false, reason: 'invalid', message: 'The authentication code is not correct.', user };
    }
    if (enrol) await updateUser(c.deps.db, user.tenantId, user.id, { totpSecret: enrol });
    await recordSignInSuccess(c.deps.db, user.tenantId, user.id, c.address, attempt.set);
    return { ok: true, user, amr: ['pwd', 'otp'] };
  });
}

export interface Ticket {
  uid: string;
  tenantId: string;
  userId: string;
  exp: number;
  enrol?: string;
}

/** A first-factor ticket, valid for 5 minutes and for one interaction only. */
export function signTicket(key: string, t: Omit<Ticket, 'exp'>, now: Date): string {
  const body = Buffer.from(JSON.stringify({ ...t, exp: Math.floor(now.getTime() / 1000) + 300 })).toString('base64url');
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

export function readTicket(key: string, value: string, uid: string, now: Date): Ticket | undefined {
  const [body, mac] = value.split('.');
  if (!body || !mac) return undefined;
  const expected = createHmac('sha256', key).update(body).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const t = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Ticket;
    return t.uid === uid && t.exp > now.getTime() / 1000 ? t : undefined;
  } catch {
    return undefined;
  }
}
