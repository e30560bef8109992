// Per-tenant security policies (issue 11): the network allow-list (CIDR blocks, IPv4 and IPv6) that every sign-in,
// token and API call of a tenant must come from, the trusted proxies whose X-Forwarded-For names the client, the
// password policy (the server's rules, the tenant's minimum length, the breached-password list), and the checks a
// tenant's security settings must pass before they are stored. src/auth/tenant-policy.ts applies them on /auth.
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config/index.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { Tenant, TenantSettings } from '../core/tenant.js';
import { findTenant } from '../store/tenants.js';
import { isBreachedPassword } from './breached-passwords.js';

/** The server's own password minimum: a tenant may ask for more (settings.passwordMinLength), never for less. */
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 256;
/** Most CIDR blocks one tenant's allow-list may hold. */
const MAX_ALLOW_LIST = 500;

type Family = 'ipv4' | 'ipv6';
interface Cidr {
  address: string;
  prefix: number;
  family: Family;
}

/**
 * A CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104`) or a single address (a /32 or /128), or why
 * it is not one. Zone ids (`fe80::1%eth0`) and leading zeros (`010.0.0.1`) are refused: they are ambiguous.
 */
function parseCidr(entry: unknown): Cidr | string {
  if (typeof entry !== 'string') return 'is not a string';
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(entry);
  const kind = m && !m[1].includes('%') ? isIP(m[1]) : 0;
  if (!m || !kind) return 'is not an IPv4 or IPv6 address or CIDR block (e.g. 203.0.113.0/24, 2001:db8::/32)';
  const family: Family = kind === 4 ? 'ipv4' : 'ipv6';
  const max = kind === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return `has prefix /${prefix}: an ${kind === 4 ? 'IPv4' : 'IPv6'} prefix is /0 to /${max}`;
  return { address: m[1], prefix, family };
}

/** Why each entry of a CIDR list is malformed, naming the entry (`label[i]`). */
function cidrProblems(label: string, list: unknown): string[] {
  if (!Array.isArray(list)) return [`${label} must be a list of CIDR blocks`];
  if (list.length > MAX_ALLOW_LIST) return [`${label} may hold at most ${MAX_ALLOW_LIST} CIDR blocks (it has ${list.length})`];
  return list.flatMap((entry, i) => {
    const c = parseCidr(entry);
    return typeof c === 'string' ? [`${label}[${i}] "${String(entry).slice(0, 100)}" ${c}`] : [];
  });
}

/** A BlockList of well-formed CIDR blocks (IPv4-mapped IPv6 addresses match the IPv4 blocks, and back). */
function blockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const c = parseCidr(entry);
    if (typeof c === 'string') throw new Error(`CIDR "${entry}" ${c}`);
    list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

/** Whether a list holds an address ([::1] and zone ids accepted; anything that is not an address: never). */
function listHolds(list: BlockList, address: string | undefined): boolean {
  const bare = address?.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const kind = bare ? isIP(bare) : 0;
  return kind !== 0 && list.check(bare!, kind === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Problems with the security fields of a settings patch (empty: fine), each naming the field and, for the
 * allow-list, the entry. `null` clears a field. LIFE's updateTenant refuses the patch when any is returned.
 */
export function validateSecurityPolicy(settings: Partial<TenantSettings>): string[] {
  const s = settings as Record<string, unknown>;
  const problems: string[] = [];
  const given = (key: string) => s[key] !== undefined && s[key] !== null;
  if (given('ipAllowList')) problems.push(...cidrProblems('ipAllowList', s.ipAllowList));
  const idle = s.idleTimeoutMinutes;
  if (given('idleTimeoutMinutes') && !(typeof idle === 'number' && Number.isFinite(idle) && idle > 0)) {
    problems.push('idleTimeoutMinutes must be a positive number of minutes (the server caps it at AUTH_SESSION_IDLE_MINUTES)');
  }
  const min = s.passwordMinLength;
  if (given('passwordMinLength') && !(Number.isInteger(min) && (min as number) >= MIN_PASSWORD_LENGTH && (min as number) <= MAX_PASSWORD_LENGTH)) {
    problems.push(`passwordMinLength must be a whole number from ${MIN_PASSWORD_LENGTH} (the server's minimum) to ${MAX_PASSWORD_LENGTH}`);
  }
  if (given('breachedPasswordCheck') && typeof s.breachedPasswordCheck !== 'boolean') problems.push('breachedPasswordCheck must be true or false');
  if (given('breakGlassApproval') && typeof s.breakGlassApproval !== 'boolean') problems.push('breakGlassApproval must be true or false');
  const ttl = s.maxTokenLifetimeSeconds;
  if (given('maxTokenLifetimeSeconds') && !(Number.isInteger(ttl) && (ttl as number) >= 30)) {
    problems.push('maxTokenLifetimeSeconds must be a whole number of seconds, at least 30 (the server caps it at its own token lifetimes)');
  }
  return problems;
}

/** Compiled allow-lists, per settings value (a tenant's cache entry is replaced when its settings change). */
const compiled = new WeakMap<readonly string[], BlockList | null>();

/**
 * Whether the tenant lets this client address in: true when it has no allow-list (unset or empty); otherwise only
 * an address inside one of its blocks (an unknown address never). A list that is somehow malformed (written around
 * validateSecurityPolicy) lets nobody in.
 */
export function addressAllowed(t: Tenant, address: string | undefined): boolean {
  const entries = t.settings.ipAllowList;
  if (!Array.isArray(entries) || !entries.length) return true;
  let list = compiled.get(entries);
  if (list === undefined) {
    list = cidrProblems('ipAllowList', entries).length ? null : blockList(entries);
    compiled.set(entries, list);
  }
  return list !== null && listHolds(list, address);
}

/** The admission check (src/tenancy/admission.ts): 403 IP_NOT_ALLOWED for an address outside the allow-list. */
export function assertAddressAllowed(t: Tenant, address: string | undefined): void {
  if (addressAllowed(t, address)) return;
  throw new FhirError('forbidden', `Tenant '${t.id}' does not accept requests from your network address (${address ?? 'unknown'}): it is not in the tenant's IP allow-list`, {
    code: 'IP_NOT_ALLOWED',
  });
}

/**
 * Express's `trust proxy` setting: TRUSTED_PROXIES (a function trusting exactly those blocks: X-Forwarded-For is
 * read only as far back as the hops are trusted proxies), else TRUST_PROXY (every peer trusted, as before; only safe
 * when nothing but the proxy can reach the server), else none (the TCP peer is the client). A malformed
 * TRUSTED_PROXIES entry stops the server at start.
 */
export function proxyTrust(config: Pick<Config, 'trustedProxies' | 'trustProxy'>): ((address: string) => boolean) | boolean {
  if (config.trustedProxies.length) {
    const problems = cidrProblems('TRUSTED_PROXIES', config.trustedProxies);
    if (problems.length) throw new Error(`config: ${problems.join('; ')}`);
    const list = blockList(config.trustedProxies);
    return (address) => listHolds(list, address);
  }
  return config.trustProxy;
}

/** The server's own rules, with a minimum length (the server's, or a tenant's longer one). */
export function passwordProblem(password: string, username?: string, minLength = MIN_PASSWORD_LENGTH): string | undefined {
  const length = [...password].length;
  if (length < minLength) return `a password needs at least ${minLength} characters`;
  if (length > MAX_PASSWORD_LENGTH) return `a password may have at most ${MAX_PASSWORD_LENGTH} characters`;
  if (username && password.toLowerCase().includes(username.toLowerCase())) return 'a password may not contain the username';
  if (/^(.)\1+$/.test(password)) return 'a password may not be one repeated character';
  return undefined;
}

/**
 * Why a password is refused for a user of `tenant` (a slug; 'platform' for platform administrators), or undefined:
 * the server's rules, the tenant's passwordMinLength, and, when the tenant sets breachedPasswordCheck and
 * BREACHED_PASSWORDS_FILE is configured, the breached-password list. Used wherever a password is set.
 */
export async function tenantPasswordProblem(deps: Deps, tenant: string, password: string, username: string): Promise<string | undefined> {
  const settings = (await findTenant(deps.db, tenant))?.settings ?? {};
  const min = Number.isInteger(settings.passwordMinLength) ? Math.max(MIN_PASSWORD_LENGTH, settings.passwordMinLength!) : MIN_PASSWORD_LENGTH;
  const problem = passwordProblem(password, username, min);
  if (problem) return problem;
  const file = deps.config.breachedPasswordsFile;
  if (settings.breachedPasswordCheck === true && file && (await isBreachedPassword(file, password))) {
    return 'this password appears in a list of passwords exposed in data breaches: choose another one';
  }
  return undefined;
}

/** Seconds a sign-in session may sit unused: the tenant's idleTimeoutMinutes, never more than the server's. */
export function sessionIdleSeconds(config: Pick<Config, 'authSessionIdleMinutes'>, t: Tenant | undefined): number {
  const server = config.authSessionIdleMinutes;
  const own = t?.settings.idleTimeoutMinutes;
  const minutes = typeof own === 'number' && own > 0 ? Math.min(own, server) : server;
  return Math.max(1, Math.round(minutes * 60));
}

/** An access token's lifetime for the tenant: `serverTtl`, shortened to the tenant's maxTokenLifetimeSeconds. */
export function tokenLifetime(serverTtl: number, t: Tenant | undefined): number {
  const own = t?.settings.maxTokenLifetimeSeconds;
  return typeof own === 'number' && own > 0 ? Math.min(serverTtl, Math.floor(own)) : serverTtl;
}
