// The authorization server's audit records (issue 12): sign-in and sign-out, tokens issued and refused, consent and
// launch context, client and user administration, each stored in the tenant it concerns (src/fhir/audit.ts renders
// them as AuditEvents). FHIR interactions record themselves (src/fhir/audit.ts).
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditAgent, AuditRecord } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { findUserById, type UserRecord } from '../store/auth-users.js';
import { accountId, parseAccountId, TENANT_PROPERTY } from './claims.js';
import type { LoginOutcome } from './login.js';
import { addressKey } from './sign-in-throttle.js';
import type { SmartCtx } from './token-context.js';
import type { Principal } from './verify.js';

export type AuthEvent = Omit<AuditRecord, 'recorded'>;

/** Who runs the admin functions when no caller is named: the operator's CLI (its initial access tokens say 'cli' too). */
export const OPERATOR: AuditAgent = { userSub: 'cli', role: 'operator' };

/**
 * Stores records of a tenant and resolves once they are committed: callers await it before answering, so a record is
 * not lost when the process dies right after. A failure to store is logged, never thrown: the event has happened,
 * and failing a sign-in or a token request over its audit record would only turn a database fault into an outage.
 */
export async function recordAuthEvents(deps: Deps, tenantId: string, ...events: AuthEvent[]): Promise<void> {
  const recorded = deps.clock().toISOString();
  try {
    await deps.audit.record(tenantId, events.map((e) => ({ recorded, ...e })));
  } catch (err) {
    deps.log.error({ err, tenantId, subtype: events[0]?.subtype }, 'the audit record of an authorization event could not be stored');
  }
}

/** A user as an audit agent: the account as tokens name it (their `sub`), so one `altid` finds sign-ins, tokens and API use. */
export function userAgent(user: UserRecord, more: AuditAgent = {}): AuditAgent {
  return { userSub: accountId(user.tenantId, user.id), ...(user.fhirUser ? { userRef: user.fhirUser } : {}), role: user.role, ...more };
}

/** The caller of one of this server's JSON endpoints, from its verified access token (as the FHIR API names callers). */
export function tokenAgent(who: Principal, address: string): AuditAgent {
  const c = who.claims;
  return {
    ...(c.sub !== c.client_id ? { userSub: c.sub } : {}),
    ...(c.fhirUser ? { userRef: c.fhirUser } : {}),
    clientId: c.client_id,
    role: c.role,
    address,
  };
}

/**
 * Records one sign-in attempt (nothing for a right password with the second factor still to come: that step records
 * the outcome). A refusal says what the page said; the agent is the account when one matched, else the name typed.
 */
export async function auditSignIn(deps: Deps, tenantId: string, out: LoginOutcome, who: UserRecord | string, agent: AuditAgent, detail: Record<string, unknown>): Promise<void> {
  if (!out.ok && out.reason === 'second-factor') return;
  const user = ('user' in out ? out.user : undefined) ?? (typeof who === 'string' ? undefined : who);
  const account = user ? userAgent(user) : who ? { userSub: String(who).slice(0, 200) } : {};
  await recordAuthEvents(deps, tenantId, {
    category: 'login',
    subtype: 'login',
    action: 'E',
    outcome: out.ok ? 0 : 4,
    ...(out.ok ? {} : { outcomeDesc: out.message }),
    agent: { ...account, ...agent },
    detail: { ...detail, ...(out.ok ? { amr: out.amr.join(' ') } : { reason: out.reason }) },
  });
}

/** The client address of a request oidc-provider answers, as the sign-in throttle counts it (Express's req.ip). */
function addressOf(ctx: KoaContextWithOIDC): string {
  return addressKey((ctx.req as { ip?: string }).ip);
}

/** The tenant a client belongs to. */
function clientTenant(ctx: KoaContextWithOIDC): string | undefined {
  const t = ctx.oidc?.client?.metadata()[TENANT_PROPERTY];
  return typeof t === 'string' ? t : undefined;
}

const REGISTRATION: Record<string, string> = { registration: 'client-register', client_update: 'client-update', client_delete: 'client-delete' };

/**
 * Records what an oidc-provider endpoint did, once its response is final and before it is sent (a koa middleware runs
 * around every route): tokens issued and refused, sign-out, RFC 7591/7592 registrations. Requests of no known client
 * have no tenant to record them in.
 */
export async function auditProviderRoute(deps: Deps, ctx: SmartCtx): Promise<void> {
  const route = ctx.oidc?.route;
  if (route === 'token') return auditToken(deps, ctx);
  if (route === 'end_session_confirm') return auditSignOut(deps, ctx);
  const subtype = route ? REGISTRATION[route] : undefined;
  const tenant = clientTenant(ctx);
  if (!subtype || !tenant || ctx.status >= 400) return;
  const client = ctx.oidc.client!;
  const action = subtype === 'client-register' ? 'C' : subtype === 'client-update' ? 'U' : 'D';
  await recordAuthEvents(deps, tenant, {
    category: 'admin',
    subtype,
    action,
    outcome: 0,
    // RFC 7591: the client software registers (or manages) itself, with an initial (registration) access token
    agent: { clientId: client.clientId, address: addressOf(ctx) },
    detail: { client_id: client.clientId, ...(client.clientName ? { client_name: client.clientName } : {}), via: 'registration endpoint' },
  });
}

/** A token response: what was granted to whom (never the token), or why it was refused. */
async function auditToken(deps: Deps, ctx: SmartCtx): Promise<void> {
  const smart = ctx.smart;
  const tenant = smart?.tenant ?? clientTenant(ctx);
  if (!tenant) return;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  const ok = ctx.status === 200 && typeof body.access_token === 'string';
  const grantType = String(ctx.oidc.params?.grant_type ?? '').slice(0, 100);
  const sub = ctx.oidc.entities?.Grant?.accountId;
  const agent: AuditAgent = {
    ...(sub ? { userSub: sub } : {}),
    ...(smart?.fhirUser ? { userRef: smart.fhirUser } : {}),
    ...(ctx.oidc.client ? { clientId: ctx.oidc.client.clientId } : {}),
    ...(smart ? { role: smart.role } : {}),
    address: addressOf(ctx),
  };
  const patients = ok && smart?.patient ? [smart.patient] : [];
  await recordAuthEvents(deps, tenant, {
    category: 'token',
    subtype: 'token-issue',
    action: 'E',
    outcome: ok ? 0 : ctx.status >= 500 ? 8 : 4,
    ...(ok ? {} : { outcomeDesc: `${String(body.error ?? 'refused')}: ${String(body.error_description ?? '')}`.slice(0, 500) }),
    agent,
    ...(patients.length ? { patients, entities: [{ ref: `Patient/${patients[0]}` }] } : {}),
    detail: { grant_type: grantType, ...(ok ? { scope: String(body.scope ?? '') } : {}), ...(ok && typeof body.refresh_token === 'string' ? { refresh_token: 'issued' } : {}) },
  });
}

/** Sign-out at the end_session endpoint ("Yes, sign me out"); "stay signed in" only forgets the app. */
async function auditSignOut(deps: Deps, ctx: KoaContextWithOIDC): Promise<void> {
  const sub = ctx.oidc.session?.accountId;
  const acct = sub ? parseAccountId(sub) : undefined;
  if (!acct || !ctx.oidc.params?.logout || ctx.status >= 400) return;
  const user = await findUserById(deps.db, acct.tenantId, acct.userId).catch(() => undefined);
  const agent = { ...(user ? userAgent(user) : { userSub: sub }), ...(ctx.oidc.client ? { clientId: ctx.oidc.client.clientId } : {}), address: addressOf(ctx) };
  // the app's tenant (a platform administrator's session is the platform's)
  await recordAuthEvents(deps, clientTenant(ctx) ?? acct.tenantId, { category: 'logout', subtype: 'logout', action: 'E', outcome: 0, agent });
}
