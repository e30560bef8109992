// The admin console's session and form protection (issue 11). The session is a signed value in an HttpOnly,
// SameSite=Strict cookie scoped to /admin (Secure on https), renewed on every page and ended by AUTH_SESSION_IDLE_MINUTES
// of idleness (or the tenant's shorter idle timeout), 12 hours after sign-in, a password change, or the account losing
// its administrator role. Every form carries a token bound to the session (the sign-in form: to a pre-session cookie),
// and a POST from another origin is refused outright.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { PLATFORM, type Tenant } from '../core/tenant.js';
import { findUserById, type UserRecord } from '../store/auth-users.js';
import { findTenant } from '../store/tenants.js';
import { sessionIdleSeconds } from '../tenancy/security-policy.js';
import { accountId } from '../auth/claims.js';
import { authRefusal } from '../auth/tenant-policy.js';
import { addressKey, type AddressThrottle } from '../auth/sign-in-throttle.js';
import type { AdminActor } from '../core/admin-actor.js';

const SESSION_COOKIE = 'tenfhir_admin';
const LOGIN_COOKIE = 'tenfhir_admin_login';
const MAX_AGE_MS = 12 * 3_600_000;

interface SessionBody {
  /** Session id: what form tokens are bound to (stable while the cookie is renewed). */
  sid: string;
  kind: AdminActor['kind'];
  /** The tenant administered ('platform' for platform administrators). */
  tenant: string;
  /** The account: its tenant ('platform' for platform administrators) and id. */
  userTenant: string;
  userId: string;
  /** A fingerprint of the password hash: a new password ends every session. */
  pw: string;
  /** Signed in at / expires at (ms since the epoch). */
  iat: number;
  exp: number;
}

/** The signed-in administrator of a console request. */
export interface ConsoleSession {
  actor: AdminActor;
  user: UserRecord;
  /** The form token of this session (the `csrf` field of every form). */
  csrf: string;
}

/** Signing of the console's own values, under a key of its own derived from the server's cookie key. */
export class ConsoleKeys {
  private readonly key: Buffer;

  constructor(cookieKey: string) {
    this.key = createHmac('sha256', cookieKey).update('tenfhir admin console').digest();
  }

  mac(purpose: string, value: string): string {
    return createHmac('sha256', this.key).update(`${purpose}\0${value}`).digest('base64url');
  }

  /** `value` signed for `purpose`, to carry through a browser. */
  sign(purpose: string, value: string): string {
    const body = Buffer.from(value).toString('base64url');
    return `${body}.${this.mac(purpose, body)}`;
  }

  /** The value `sign(purpose, ...)` made, or undefined when this is not one. */
  open(purpose: string, signed: string): string | undefined {
    const [body, mac] = signed.split('.');
    if (!body || !mac || !equal(mac, this.mac(purpose, body))) return undefined;
    return Buffer.from(body, 'base64url').toString('utf8');
  }
}

export function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

function setCookie(deps: Deps, res: Response, name: string, value: string | undefined): void {
  const secure = deps.config.publicBaseUrl.startsWith('https:') ? '; Secure' : '';
  const cookie = `${name}=${value ? encodeURIComponent(value) : ''}; Path=/admin; HttpOnly; SameSite=Strict${secure}${value ? '' : '; Max-Age=0'}`;
  const prior = res.getHeader('Set-Cookie');
  res.setHeader('Set-Cookie', [...(Array.isArray(prior) ? prior : prior ? [String(prior)] : []), cookie]);
}

export function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
}

/** The account may use the console as `kind` of `tenant`. */
function admits(user: UserRecord, kind: AdminActor['kind'], tenant: string): boolean {
  if (user.disabled) return false;
  if (kind === 'platform-admin') return user.role === 'platform-admin' && user.tenantId === PLATFORM;
  return user.role === 'tenant-admin' && user.tenantId === tenant;
}

/** What a signed-in account is in the console, or undefined when it may not use it. */
export function consoleRole(user: UserRecord, org: string): { kind: AdminActor['kind']; tenant: string } | undefined {
  if (admits(user, 'platform-admin', PLATFORM)) return { kind: 'platform-admin', tenant: PLATFORM };
  if (admits(user, 'tenant-admin', org)) return { kind: 'tenant-admin', tenant: org };
  return undefined;
}

export class ConsoleSessions {
  constructor(
    private readonly deps: Deps,
    private readonly keys: ConsoleKeys,
  ) {}

  /** A fingerprint of the account's password hash (keyed: it tells nothing about the hash itself). */
  private fingerprint(user: UserRecord): string {
    return this.keys.mac('password', user.passwordHash).slice(0, 16);
  }

  private now(): number {
    return this.deps.clock().getTime();
  }

  /** Renews the cookie: idleness (the server's, or the tenant's shorter idle timeout) or the 12 hours end it. */
  private issue(res: Response, body: Omit<SessionBody, 'exp'>, tenant: Tenant | undefined): void {
    const exp = Math.min(this.now() + sessionIdleSeconds(this.deps.config, tenant) * 1000, body.iat + MAX_AGE_MS);
    setCookie(this.deps, res, SESSION_COOKIE, this.keys.sign('session', JSON.stringify({ ...body, exp })));
  }

  /** Starts a session for `user` (signed in with every factor it needs). */
  async start(res: Response, user: UserRecord, role: { kind: AdminActor['kind']; tenant: string }): Promise<void> {
    const tenant = role.tenant === PLATFORM ? undefined : await findTenant(this.deps.db, role.tenant);
    this.issue(res, { sid: randomBytes(16).toString('base64url'), ...role, userTenant: user.tenantId, userId: user.id, pw: this.fingerprint(user), iat: this.now() }, tenant);
  }

  end(res: Response): void {
    setCookie(this.deps, res, SESSION_COOKIE, undefined);
  }

  /** The request's session (renewing its cookie), or undefined when there is none that is still good. */
  async current(req: Request, res: Response): Promise<ConsoleSession | undefined> {
    const raw = cookieOf(req, SESSION_COOKIE);
    const text = raw ? this.keys.open('session', raw) : undefined;
    let s: SessionBody;
    try {
      s = JSON.parse(text ?? 'null') as SessionBody;
    } catch {
      return undefined;
    }
    if (!s || s.exp <= this.now() || s.iat + MAX_AGE_MS <= this.now()) return undefined;
    const user = await findUserById(this.deps.db, s.userTenant, s.userId);
    if (!user || !admits(user, s.kind, s.tenant) || this.fingerprint(user) !== s.pw) return undefined;
    // a tenant administrator's session obeys the tenant as its sign-in did: its IP allow-list, its end
    const tenant = s.tenant === PLATFORM ? undefined : await findTenant(this.deps.db, s.tenant);
    if (s.tenant !== PLATFORM && (!tenant || authRefusal(tenant, req.ip, this.deps.clock(), user.role))) return undefined;
    this.issue(res, { sid: s.sid, kind: s.kind, tenant: s.tenant, userTenant: s.userTenant, userId: s.userId, pw: s.pw, iat: s.iat }, tenant);
    const actor: AdminActor = { kind: s.kind, tenant: s.tenant, sub: accountId(user.tenantId, user.id), username: user.username, address: addressKey(req.ip) };
    return { actor, user, csrf: this.keys.mac('csrf', s.sid) };
  }

  /** The sign-in form's token, bound to a pre-session cookie (set here when missing): no sign-in from another site's form. */
  loginToken(req: Request, res: Response): string {
    let value = cookieOf(req, LOGIN_COOKIE);
    if (!value || !/^[A-Za-z0-9_-]{22}$/.test(value)) {
      value = randomBytes(16).toString('base64url');
      setCookie(this.deps, res, LOGIN_COOKIE, value);
    }
    return this.keys.mac('login-csrf', value);
  }

  loginTokenOk(req: Request): boolean {
    const value = cookieOf(req, LOGIN_COOKIE);
    return !!value && equal(field(req, 'csrf'), this.keys.mac('login-csrf', value));
  }
}

/**
 * A state-changing request from another site: its Origin (or Sec-Fetch-Site) says so. Checked before any form token,
 * on top of SameSite=Strict.
 */
export function crossSite(deps: Deps, req: Request): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== new URL(deps.config.publicBaseUrl).origin) return true;
  const site = req.headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}

/** What every console page handler gets. */
export interface ConsoleContext {
  deps: Deps;
  keys: ConsoleKeys;
  sessions: ConsoleSessions;
  /** The sign-in pages' first-factor ticket key (src/auth/login.ts signTicket). */
  ticketKey: string;
  /** Failed console sign-ins per client address (this process). */
  throttle: AddressThrottle;
  /** The running authorization server (validates a new tenant's operator client). */
  provider: () => Provider;
}
