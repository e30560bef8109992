// Break-glass support access (issue 11): a platform administrator's standing ceiling holds no clinical data
// (src/auth/role-matrix.ts). To look at one tenant's records they ask for a grant: one tenant, a stated reason, a
// bounded number of minutes (at most BREAK_GLASS_MAX_MINUTES). The tenant's administrators see every grant, and when
// the tenant's policy says so (settings.breakGlassApproval) one of them must approve it before it starts; either side
// may revoke it; it ends by itself at expires_at (every check compares the clock with it: no job is needed).
//
// While a grant is active the administrator's token on that tenant's FHIR API reads and searches every type
// (`user/*.rs` on top of their ceiling): read-only, because support diagnoses and the tenant's own staff correct
// (a write by someone outside the clinic would be a clinical record no clinician made); every type, because what is
// broken is not known in advance; one request at a time, because bulk export ($export) would copy the tenant out
// rather than look at it. Without a grant, their reads of clinical data answer 403 BREAK_GLASS_REQUIRED saying how
// to ask. Every step is recorded in the tenant's audit trail (category admin, subtype break-glass-*), and every FHIR
// request made under a grant carries purposeOfUse BTG ("break the glass") and the grant (agent.policy
// urn:tenfhir:break-glass:{id}) in its AuditEvent, so the tenant's administrators see who looked at what, and why.
import type { AdminActor } from '../core/admin-actor.js';
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { Guard, GuardDecision, GuardLetter, GuardRequest } from '../core/guard.js';
import { RESERVED_SLUGS, type Tenant } from '../core/tenant.js';
import type { Caller } from '../fhir/subscription-service.js';
import { decideGrant, findGrant, insertGrant, listGrants, openGrants, revokeGrant, type GrantRecord } from '../store/break-glass.js';
import { findTenant } from '../store/tenants.js';
import { findUserById } from '../store/auth-users.js';
import { R4_TYPES } from './access.js';
import { recordAuthEvents } from './audit.js';
import { parseAccountId } from './claims.js';
import { parseScopes } from './scopes.js';
import { TokenGuard } from './verify.js';

/** What an active grant adds to a platform administrator's ceiling on the tenant's FHIR API. */
export const BREAK_GLASS_SCOPE = 'user/*.rs';
/** A reason shorter than this says nothing an auditor could check ("support", "debug"). */
export const REASON_MIN_LENGTH = 20;
const REASON_MAX_LENGTH = 1000;
/** How long this process trusts its answer to "which grant is open for (tenant, administrator)": a revoke or approval
 * made by another process takes effect there within this time; in the process that made it, at once. */
const CACHE_MS = 5000;
/** HL7 v3-ActReason "break the glass": the AuditEvent purposeOfUse of every request made under a grant. */
const BTG = 'BTG';
const POLICY_PREFIX = 'urn:tenfhir:break-glass:';

/** Who acts on grants: a platform administrator (tenant 'platform') or a tenant administrator of `tenant`. */
export type BreakGlassActor = AdminActor;

/** A grant as the admin API shows it. */
export interface GrantView {
  id: string;
  tenant: string;
  /** pending (awaiting approval) | active | expired | denied | revoked, at the time of the answer. */
  state: 'pending' | 'active' | 'expired' | 'denied' | 'revoked';
  /** As stored: pending | approved | denied | revoked (an expired grant stays approved). */
  status: GrantRecord['status'];
  requestedBy: { sub: string; username: string };
  reason: string;
  requestedAt: string;
  minutes: number;
  /** What the grant allows on the tenant's FHIR API. */
  scope: string;
  /** Who approved or denied it; null with `decidedAt` set: the tenant's policy needs no approval. */
  decidedBy: { sub: string; username: string } | null;
  decidedAt: string | null;
  startsAt: string | null;
  expiresAt: string | null;
  revokedBy: { sub: string; username: string } | null;
  revokedAt: string | null;
  revokeReason: string | null;
  /** The AuditEvent search of what the administrator did in the tenant while the grant ran (from its start). */
  accesses: string | null;
}

export interface BreakGlassRequest {
  reason?: unknown;
  minutes?: unknown;
}

// ---- the admin side: request, decide, revoke, list --------------------------------------------------------------

/**
 * A platform administrator asks for access to `slug`. Active at once unless the tenant's policy requires approval;
 * refused while they already hold an open (pending or active) grant there.
 */
export async function requestBreakGlass(deps: Deps, actor: BreakGlassActor, slug: string, input: BreakGlassRequest): Promise<GrantView> {
  const tenant = await tenantOf(deps, slug);
  return audited(deps, tenant, actor, 'break-glass-request', 'C', undefined, async () => {
    if (actor.kind !== 'platform-admin') {
      if (actor.tenant !== tenant.id) throw unknownTenant(slug);
      throw forbidden("Only platform administrators ask for break-glass access; a tenant's administrators read its data with their own accounts");
    }
    const { reason, minutes } = checkRequest(deps, input);
    const approval = tenant.settings.breakGlassApproval === true;
    const { created, grant } = await insertGrant(deps.db, tenant.id, {
      id: deps.newId(),
      requestedBy: actor.sub,
      requestedName: await usernameOf(deps, actor),
      reason,
      requestedAt: deps.clock(),
      minutes,
      approved: !approval,
    });
    if (!created) {
      throw new FhirError('conflict', `You already hold break-glass grant ${grant.id} on '${tenant.id}' (${stateOf(grant, deps.clock())}); revoke it before asking again`, { code: 'BREAK_GLASS_CONFLICT' });
    }
    forget(deps, tenant.id, actor.sub);
    return { view: viewOf(deps, grant), detail: { reason, minutes, approval: approval ? 'required' : 'not required' } };
  });
}

/** A tenant administrator of `slug` approves a pending grant: it starts now and runs its minutes. */
export function approveBreakGlass(deps: Deps, actor: BreakGlassActor, slug: string, id: string): Promise<GrantView> {
  return decide(deps, actor, slug, id, true);
}

/** A tenant administrator of `slug` denies a pending grant. */
export function denyBreakGlass(deps: Deps, actor: BreakGlassActor, slug: string, id: string): Promise<GrantView> {
  return decide(deps, actor, slug, id, false);
}

async function decide(deps: Deps, actor: BreakGlassActor, slug: string, id: string, approve: boolean): Promise<GrantView> {
  const tenant = await tenantOf(deps, slug);
  return audited(deps, tenant, actor, approve ? 'break-glass-approve' : 'break-glass-deny', 'U', id, async () => {
    if (actor.kind === 'tenant-admin' && actor.tenant !== tenant.id) throw unknownTenant(slug);
    if (actor.kind !== 'tenant-admin') throw forbidden(`Only the administrators of tenant '${tenant.id}' approve or deny its break-glass grants`);
    const grant = await findGrant(deps.db, tenant.id, id);
    if (!grant) throw notFound(id);
    const now = deps.clock();
    const decided = await decideGrant(deps.db, tenant.id, id, approve, { by: actor.sub, name: await usernameOf(deps, actor), at: now });
    if (!decided) throw new FhirError('conflict', `Break-glass grant ${id} is ${stateOf(grant, now)}, not pending: nothing to ${approve ? 'approve' : 'deny'}`, { code: 'BREAK_GLASS_CONFLICT' });
    forget(deps, tenant.id, decided.requestedBy);
    return { view: viewOf(deps, decided), detail: { requestedBy: decided.requestedBy, ...(approve ? { expiresAt: decided.expiresAt?.toISOString() } : {}) } };
  });
}

/** Ends a pending or active grant: a tenant administrator of `slug`, or the platform administrator who asked for it. */
export async function revokeBreakGlass(deps: Deps, actor: BreakGlassActor, slug: string, id: string, reason?: unknown): Promise<GrantView> {
  const tenant = await tenantOf(deps, slug);
  return audited(deps, tenant, actor, 'break-glass-revoke', 'U', id, async () => {
    if (actor.kind === 'tenant-admin' && actor.tenant !== tenant.id) throw unknownTenant(slug);
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > REASON_MAX_LENGTH)) {
      throw invalid(`reason must be a text of at most ${REASON_MAX_LENGTH} characters`, 'reason');
    }
    const why = typeof reason === 'string' && reason.trim() ? reason.trim() : undefined;
    const grant = await findGrant(deps.db, tenant.id, id);
    // a platform administrator sees their own grants only: another one's is not known to them
    if (!grant || (actor.kind === 'platform-admin' && grant.requestedBy !== actor.sub)) throw notFound(id);
    const now = deps.clock();
    const revoked = await revokeGrant(deps.db, tenant.id, id, { by: actor.sub, name: await usernameOf(deps, actor), at: now, ...(why ? { reason: why } : {}) });
    if (!revoked) throw new FhirError('conflict', `Break-glass grant ${id} is ${stateOf(grant, now)}: nothing to revoke`, { code: 'BREAK_GLASS_CONFLICT' });
    forget(deps, tenant.id, revoked.requestedBy);
    return { view: viewOf(deps, revoked), detail: { requestedBy: revoked.requestedBy, ...(why ? { reason: why } : {}) } };
  });
}

/** The grants of `slug`: all of them for its tenant administrators, their own for a platform administrator. Newest first. */
export async function listBreakGlass(deps: Deps, actor: BreakGlassActor, slug: string): Promise<GrantView[]> {
  const tenant = await tenantOf(deps, slug);
  if (actor.kind === 'platform-admin') return (await listGrants(deps.db, tenant.id, { requestedBy: actor.sub })).map((g) => viewOf(deps, g));
  if (actor.tenant !== tenant.id) throw unknownTenant(slug);
  return (await listGrants(deps.db, tenant.id)).map((g) => viewOf(deps, g));
}

/**
 * The tenant a grant concerns (404 for an unknown, terminated or reserved one: nobody looks into those). Another
 * tenant is unknown to a tenant administrator too (unknownTenant), as in the rest of the admin API.
 */
async function tenantOf(deps: Deps, slug: string): Promise<Tenant> {
  const tenant = RESERVED_SLUGS.has(slug) ? undefined : await findTenant(deps.db, slug);
  if (!tenant || tenant.status === 'terminated') throw unknownTenant(slug);
  return tenant;
}

function unknownTenant(slug: string): FhirError {
  return new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
}

function checkRequest(deps: Deps, input: BreakGlassRequest): { reason: string; minutes: number } {
  const max = deps.config.breakGlassMaxMinutes;
  const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
  if (reason.length < REASON_MIN_LENGTH || reason.length > REASON_MAX_LENGTH) {
    throw invalid(`reason must say why access is needed, in ${REASON_MIN_LENGTH} to ${REASON_MAX_LENGTH} characters (the tenant's administrators read it)`, 'reason');
  }
  const minutes = input.minutes;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > max) {
    throw invalid(`minutes must be a whole number of minutes from 1 to ${max} (BREAK_GLASS_MAX_MINUTES)`, 'minutes');
  }
  return { reason, minutes };
}

/** The actor's username for the grant row: the one the admin layer gave, else the account's. */
async function usernameOf(deps: Deps, actor: BreakGlassActor): Promise<string> {
  if (actor.username) return actor.username;
  const acct = parseAccountId(actor.sub);
  const user = acct ? await findUserById(deps.db, acct.tenantId, acct.userId) : undefined;
  return user?.username ?? actor.sub;
}

function stateOf(g: GrantRecord, now: Date): GrantView['state'] {
  if (g.status !== 'approved') return g.status;
  return g.expiresAt && g.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
}

function viewOf(deps: Deps, g: GrantRecord): GrantView {
  const who = (sub: string | null, name: string | null) => (sub ? { sub, username: name ?? sub } : null);
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: g.id,
    tenant: g.tenantId,
    state: stateOf(g, deps.clock()),
    status: g.status,
    requestedBy: { sub: g.requestedBy, username: g.requestedName },
    reason: g.reason,
    requestedAt: g.requestedAt.toISOString(),
    minutes: g.minutes,
    scope: BREAK_GLASS_SCOPE,
    decidedBy: who(g.decidedBy, g.decidedName),
    decidedAt: iso(g.decidedAt),
    startsAt: iso(g.startsAt),
    expiresAt: iso(g.expiresAt),
    revokedBy: who(g.revokedBy, g.revokedName),
    revokedAt: iso(g.revokedAt),
    revokeReason: g.revokeReason,
    accesses: g.startsAt
      ? `${deps.config.publicBaseUrl}/fhir/${g.tenantId}/AuditEvent?altid=${encodeURIComponent(g.requestedBy)}&date=${encodeURIComponent(`ge${g.startsAt.toISOString()}`)}`
      : null,
  };
}

/** The actor as the audit trail names them. */
function actorAgent(actor: BreakGlassActor): AuditAgent {
  return { userSub: actor.sub, role: actor.kind, ...(actor.clientId ? { clientId: actor.clientId } : {}), ...(actor.address ? { address: actor.address } : {}) };
}

/**
 * Runs one step and records it in the tenant's audit trail, whatever its outcome: done (with `detail`), refused (4,
 * with the reason) or failed (8). The tenant's administrators read these records as AuditEvents.
 */
async function audited(
  deps: Deps,
  tenant: Tenant,
  actor: BreakGlassActor,
  subtype: string,
  action: 'C' | 'U',
  id: string | undefined,
  step: () => Promise<{ view: GrantView; detail: Record<string, unknown> }>,
): Promise<GrantView> {
  try {
    const { view, detail } = await step();
    await recordAuthEvents(deps, tenant.id, { category: 'admin', subtype, action, outcome: 0, agent: actorAgent(actor), detail: { grant: view.id, ...detail } });
    return view;
  } catch (err) {
    const refused = err instanceof FhirError && err.status < 500;
    await recordAuthEvents(deps, tenant.id, {
      category: 'admin',
      subtype,
      action,
      outcome: refused ? 4 : 8,
      outcomeDesc: refused ? err.message : 'internal error',
      agent: actorAgent(actor),
      ...(id ? { detail: { grant: id.slice(0, 100) } } : {}),
    });
    throw err;
  }
}

function forbidden(message: string): FhirError {
  return new FhirError('forbidden', message, { code: 'ADMIN_FORBIDDEN' });
}

function invalid(message: string, field: string): FhirError {
  return new FhirError('invalid', message, { code: 'BREAK_GLASS_INVALID', expression: [field] });
}

function notFound(id: string): FhirError {
  return new FhirError('not-found', `Break-glass grant '${id.slice(0, 100)}' is not known`, { code: 'BREAK_GLASS_NOT_FOUND' });
}

// ---- the FHIR side: which grant is open, and the guard it gives ------------------------------------------------

/** What the FHIR API needs to know per (tenant, administrator): the active grant, and whether one awaits approval. */
interface OpenGrants {
  active?: { id: string; startsAt: number; expiresAt: number };
  pending?: string;
}

class GrantCache {
  private readonly entries = new Map<string, { open: OpenGrants; until: number }>();

  get(key: string, now: number): OpenGrants | undefined {
    const hit = this.entries.get(key);
    return hit && hit.until > now ? hit.open : undefined;
  }

  set(key: string, open: OpenGrants, now: number): void {
    if (this.entries.size >= 10_000) this.entries.clear();
    this.entries.set(key, { open, until: now + CACHE_MS });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** One cache per server (its Deps): the FHIR API's lookups and this process's admin steps share it. */
const caches = new WeakMap<Deps, GrantCache>();

function cacheOf(deps: Deps): GrantCache {
  let c = caches.get(deps);
  if (!c) caches.set(deps, (c = new GrantCache()));
  return c;
}

const cacheKey = (tenant: string, sub: string) => `${tenant}\u0000${sub}`;

/** A step changed the administrator's grants in the tenant: this process asks the database again. */
function forget(deps: Deps, tenant: string, sub: string): void {
  cacheOf(deps).delete(cacheKey(tenant, sub));
}

/**
 * The grant under which the platform administrator `sub` may read `tenant` now (and the one pending, if any).
 * Cached for a few seconds; the expiry itself is checked against the clock at every call, so a grant ends on time.
 */
async function openBreakGlass(deps: Deps, tenant: string, sub: string): Promise<OpenGrants> {
  const cache = cacheOf(deps);
  const now = deps.clock().getTime();
  const key = cacheKey(tenant, sub);
  let open = cache.get(key, now);
  if (!open) {
    const found = await openGrants(deps.db, tenant, sub, new Date(now));
    open = {
      ...(found.active ? { active: { id: found.active.id, startsAt: found.active.startsAt!.getTime(), expiresAt: found.active.expiresAt!.getTime() } } : {}),
      ...(found.pending ? { pending: found.pending.id } : {}),
    };
    cache.set(key, open, now);
  }
  const active = open.active && open.active.startsAt <= now && now < open.active.expiresAt ? open.active : undefined;
  return { ...(active ? { active } : {}), ...(open.pending ? { pending: open.pending } : {}) };
}

/** The caller of a request made under a grant (src/http/app.ts builds it, fhir-router's agentOf reads it). */
export interface BreakGlassCaller extends Caller {
  breakGlassGrant: string;
}

/**
 * A platform administrator's verified token on `tenant`'s FHIR API: with an active grant, the guard widened to read
 * every type and the caller naming the grant; without one, a guard whose refusals of reads say how to ask for one.
 */
export async function breakGlassAccess(deps: Deps, tenant: string, standing: TokenGuard, caller: Caller): Promise<{ guard: Guard; clientId: string; caller: Caller }> {
  const open = await openBreakGlass(deps, tenant, caller.sub);
  if (open.active) {
    const withGrant: BreakGlassCaller = { ...caller, breakGlassGrant: open.active.id };
    return { guard: new GrantGuard(standing), clientId: caller.clientId, caller: withGrant };
  }
  return { guard: new NoGrantGuard(standing, `${deps.config.publicBaseUrl}/admin/api/tenants/${tenant}/break-glass`, open.pending), clientId: caller.clientId, caller };
}

/** The grant a request is made under (undefined: none). */
export function breakGlassGrantOf(caller: Caller | undefined): string | undefined {
  return caller && 'breakGlassGrant' in caller && typeof caller.breakGlassGrant === 'string' ? caller.breakGlassGrant : undefined;
}

/**
 * The AuditEvent agent.purposeOfUse of a request under grant `id`: BTG, and the grant as a policy URI (stored with
 * the purposes; src/fhir/audit.ts renders a URI among them as agent.policy).
 */
export function breakGlassPurpose(id: string): string[] {
  return [BTG, `${POLICY_PREFIX}${id}`];
}

const WIDENING = parseScopes(BREAK_GLASS_SCOPE, R4_TYPES).scopes;

const BULK_EXPORT_REFUSED: GuardDecision = {
  allow: false,
  denial: 'forbidden',
  reason: 'break-glass access reads records one request at a time; bulk export ($export) is not part of it',
};

/** Under an active grant: the standing ceiling plus read and search of every type; no bulk export, no new writes. */
class GrantGuard implements Guard {
  private readonly wide: TokenGuard;

  constructor(standing: TokenGuard) {
    this.wide = new TokenGuard({ ...standing.access, scopes: [...standing.access.scopes, ...WIDENING] });
  }

  decide(request: GuardRequest): GuardDecision {
    if (request.interaction === 'operation' && request.operation === '$export') return BULK_EXPORT_REFUSED;
    return this.wide.decide(request);
  }

  forType(resourceType: string, letter: GuardLetter): GuardDecision {
    return this.wide.forType(resourceType, letter);
  }
}

/** Reads (what a grant would allow): their refusal names break-glass. Writes and bulk export stay plain refusals. */
const READS = new Set<GuardRequest['interaction']>(['read', 'vread', 'history-instance', 'history-type', 'history-system', 'search-type', 'search-system', 'search-compartment']);

/**
 * Without an active grant: the standing ceiling, and a refused read answers 403 BREAK_GLASS_REQUIRED (thrown here,
 * where the refusal is decided: src/fhir/guard.ts authorize() would word it as a plain scope refusal).
 */
class NoGrantGuard implements Guard {
  constructor(
    private readonly standing: TokenGuard,
    private readonly requestUrl: string,
    private readonly pending: string | undefined,
  ) {}

  decide(request: GuardRequest): GuardDecision {
    const d = this.standing.decide(request);
    const read = READS.has(request.interaction) || (request.interaction === 'operation' && request.operation === '$everything');
    if (d.allow || d.denial !== 'forbidden' || !read) return d;
    const how = this.pending
      ? `Your request (grant ${this.pending}) awaits approval by the tenant's administrators.`
      : `Ask for time-limited access with POST ${this.requestUrl} {"reason": "...", "minutes": n}; the tenant's administrators see it (and may have to approve it).`;
    throw new FhirError('forbidden', `Platform administrators read a tenant's clinical data only under a break-glass grant (${d.reason ?? 'not in the standing ceiling'}). ${how}`, {
      code: 'BREAK_GLASS_REQUIRED',
      headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' },
    });
  }

  forType(resourceType: string, letter: GuardLetter): GuardDecision {
    return this.standing.forType(resourceType, letter);
  }
}
