// Tenant administration (issue 11): create (with its first administrator's invitation), list, read, update, change
// plan, suspend / reactivate / archive / terminate. Every function authorizes its actor itself (platform admins:
// every tenant; tenant admins: their own tenant's view and its safe fields; another tenant is unknown to them) and
// leaves an audit record (category admin) in the trail of the tenant it concerns, refusals included. Every change
// empties this process's tenant caches at once (others within TENANT_CACHE_TTL_MS, src/tenancy/tenant-cache.ts).
// Used by the JSON API (src/admin/api.ts), the console and the CLI.
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { FhirError, issue } from '../core/errors.js';
import { QUOTA_NAMES, type Plan, type QuotaName } from '../core/plans.js';
import { PLATFORM, type TenantSettings, type TenantStatus } from '../core/tenant.js';
import type { AuditAction, AuditAgent } from '../core/audit.js';
import { applyTransition, findTenantRecord, listTenants, setTenantPlan, transitionTenant, updateTenantFields, withTenantLocked, type TenantRecord } from '../store/tenants.js';
import { upsertPlan } from '../store/plans.js';
import { quotaUsage } from '../store/quotas.js';
import { checkBranding, createTenant, findPlan, trialEnd } from '../tenancy/create-tenant.js';
import { tenantChanged, TenantCache } from '../tenancy/tenant-cache.js';
import { assertLifecycle } from '../tenancy/lifecycle.js';
import { tenantUsage, type TenantUsage } from '../tenancy/usage.js';
import { validateSecurityPolicy } from '../tenancy/security-policy.js';
import { registerClient } from '../auth/admin.js';
import { recordAuthEvents } from '../auth/audit.js';
import { createAuthServer } from '../auth/server.js';
import { scheduleErasure } from './erase.js';
import { createInvitation } from './invitations.js';
import type { AdminActor } from '../core/admin-actor.js';

export interface TenantView {
  slug: string;
  name: string;
  status: string;
  type?: string;
  plan?: string;
  branding: Record<string, unknown>;
  host?: string | null;
  trialEndsAt?: string | null;
  createdAt: string;
  statusChangedAt?: string | null;
  /** A terminated tenant's erasure date. */
  terminateAfter?: string | null;
  settings: TenantSettings;
  usage?: TenantUsage;
}

export interface NewTenantInput {
  slug: string;
  name: string;
  type: string;
  plan: string;
  branding?: Record<string, unknown>;
  admin: { username: string; displayName?: string; email?: string };
}

/** The view of a tenant record (usage added by the callers that show it). */
export function viewOf(r: TenantRecord, usage?: TenantUsage): TenantView {
  return {
    slug: r.id,
    name: r.name,
    status: r.status,
    ...(r.type ? { type: r.type } : {}),
    ...(r.plan ? { plan: r.plan } : {}),
    branding: r.branding,
    host: r.host ?? null,
    trialEndsAt: r.trialEndsAt ?? null,
    createdAt: r.createdAt,
    statusChangedAt: r.statusChangedAt,
    terminateAfter: r.terminateAfter,
    settings: r.settings,
    ...(usage ? { usage } : {}),
  };
}

/** What an action needs: any admin of the tenant (read, update), a platform admin (platform, create). */
type Need = 'read' | 'update' | 'platform' | 'create';

/** The audit agent of an admin actor. */
export function actorAgent(actor: AdminActor): AuditAgent {
  return { userSub: actor.sub, role: actor.kind, ...(actor.clientId ? { clientId: actor.clientId } : {}), ...(actor.address ? { address: actor.address } : {}) };
}

/** One admin audit record in `tenant`'s trail (outcome 4: the action was refused, with why). */
async function audit(deps: Deps, tenant: string, actor: AdminActor, e: { subtype: string; action: AuditAction; detail?: Record<string, unknown>; refused?: string }): Promise<void> {
  await recordAuthEvents(deps, tenant, {
    category: 'admin',
    subtype: e.subtype,
    action: e.action,
    outcome: e.refused ? 4 : 0,
    ...(e.refused ? { outcomeDesc: e.refused } : {}),
    agent: actorAgent(actor),
    ...(tenant !== PLATFORM ? { entities: [{ ref: `Organization/${tenant}` }] } : {}),
    ...(e.detail ? { detail: e.detail } : {}),
  });
}

/**
 * The tenant an admin names, when the actor may do `need` to it. Unknown (404 TENANT_UNKNOWN): no such tenant, the
 * platform catalog, another tenant for a tenant admin, a terminated tenant for a tenant admin. Forbidden (403
 * ADMIN_FORBIDDEN): a platform admin's action asked by a tenant admin of the tenant. A refusal is audited in the
 * actor's own tenant.
 */
export async function tenantFor(deps: Deps, actor: AdminActor, slug: string, need: Exclude<Need, 'create'>, subtype: string): Promise<TenantRecord> {
  const record = typeof slug === 'string' && slug !== PLATFORM ? await findTenantRecord(deps.db, slug) : undefined;
  await authorize(deps, actor, String(slug), record, need, subtype);
  return record!;
}

async function authorize(deps: Deps, actor: AdminActor, slug: string, record: TenantRecord | undefined, need: Need, subtype: string): Promise<void> {
  if (actor.kind === 'platform-admin') {
    if (need !== 'create' && !record) throw new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
    return;
  }
  let refusal: FhirError | undefined;
  if (need === 'create') refusal = new FhirError('forbidden', 'Only platform administrators create tenants', { code: 'ADMIN_FORBIDDEN' });
  else if (!record || slug !== actor.tenant || record.status === 'terminated') refusal = new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
  else if (need === 'platform') refusal = new FhirError('forbidden', `Only platform administrators may ${subtype.replace(/^tenant-/, '')} a tenant`, { code: 'ADMIN_FORBIDDEN' });
  if (!refusal) return;
  await audit(deps, actor.tenant, actor, { subtype, action: need === 'read' ? 'R' : 'U', refused: refusal.message, detail: { tenant: slug.slice(0, 64) } });
  throw refusal;
}

/**
 * A tenant admin changes their tenant as they would write its data: not while it is suspended or read-only
 * (TENANT_SUSPENDED, TENANT_READ_ONLY, TENANT_TRIAL_EXPIRED). Nobody changes a terminated tenant.
 */
function assertChangeable(deps: Deps, actor: AdminActor, record: TenantRecord): void {
  if (record.status === 'terminated') throw new FhirError('conflict', `Tenant '${record.id}' is terminated: it can no longer change`, { code: 'TENANT_TERMINATED' });
  if (actor.kind === 'tenant-admin') assertLifecycle(record, deps.clock(), { method: 'PATCH', path: [], role: actor.kind });
}

const USERNAME = /^[A-Za-z0-9._@+-]{3,100}$/;

/** A new tenant as the CLI gives it: type, plan and first admin optional. */
export type TenantDraft = Omit<NewTenantInput, 'type' | 'plan' | 'admin'> & { type?: string; plan?: string; admin?: NewTenantInput['admin'] };

/**
 * One call for a new customer: the tenant (type, plan, branding), its root Organization, its operator client
 * `<slug>-cli`, and a single-use invitation for its first tenant admin. Platform admins only. `provider` (the
 * running authorization server's) validates the client; without it one is built for the call.
 */
export async function createTenantWithAdmin(deps: Deps, actor: AdminActor, input: NewTenantInput, o: { provider?: Provider } = {}): Promise<{ tenant: TenantView; invitation: { url: string; expiresAt: string } }> {
  await authorize(deps, actor, String(input?.slug), undefined, 'create', 'tenant-create');
  if (typeof input.type !== 'string') throw new FhirError('invalid', 'type (the kind of organization) is required', { code: 'TENANT_TYPE_UNKNOWN' });
  if (typeof input.plan !== 'string') throw new FhirError('invalid', 'plan (a plan id, GET /admin/api/plans) is required', { code: 'PLAN_UNKNOWN' });
  if (typeof input.admin !== 'object' || input.admin === null) throw new FhirError('invalid', 'admin (the first tenant admin: username, displayName, email) is required', { code: 'USER_NAME_INVALID' });
  const out = await provisionTenant(deps, actor, input, o.provider);
  return { tenant: out.tenant, invitation: out.invitation! };
}

/**
 * The tenant from a draft: row, root Organization, operator client, and the first admin's invitation when the draft
 * names one (its name is checked before anything is written), all audited with the actor, in one transaction: all of
 * them or, when any step fails, none (issue 16). Platform admins only.
 */
export async function provisionTenant(deps: Deps, actor: AdminActor, input: TenantDraft, provider?: Provider): Promise<{ tenant: TenantView; invitation?: { url: string; expiresAt: string } }> {
  await authorize(deps, actor, String(input?.slug), undefined, 'create', 'tenant-create');
  if (typeof input.slug !== 'string' || typeof input.name !== 'string') throw new FhirError('invalid', 'a tenant needs a slug and a name (strings)', { code: 'ADMIN_REQUEST_INVALID' });
  const admin = input.admin;
  if (admin && (typeof admin.username !== 'string' || !USERNAME.test(admin.username))) {
    throw new FhirError('invalid', "admin.username (the first tenant admin's user name) is 3-100 characters of letters, digits and . _ @ + -", { code: 'USER_NAME_INVALID' });
  }
  const by = actorAgent(actor);
  // an operator client, as the demo tenant has demo-cli: its key is held by no one, tokens come from the CLI
  const client = { tenant: input.slug, kind: 'operator' as const, name: `${input.name} operator (CLI tokens)`, clientId: `${input.slug}-cli`, scope: 'system/*.cruds' };
  let auth: ReturnType<typeof createAuthServer> | undefined;
  let invitation: { url: string; expiresAt: string } | undefined;
  try {
    // the client and the invitation join the tenant's creation transaction: a failure of either leaves no tenant
    await createTenant(deps, input.slug, input.name, {
      ...(input.type !== undefined ? { type: input.type } : {}),
      ...(input.plan !== undefined ? { plan: input.plan } : {}),
      ...(input.branding !== undefined ? { branding: input.branding } : {}),
      by,
      also: async (joined) => {
        // a provider of the server's own deps, when none is given: it only validates the client's metadata
        await registerClient(joined, provider ?? (auth ??= createAuthServer(deps, new TenantCache(deps.db))).provider(), client, by);
        invitation = admin
          ? await createInvitation(joined, input.slug, { username: admin.username, role: 'tenant-admin', ...(admin.displayName ? { displayName: admin.displayName } : {}), ...(admin.email ? { email: admin.email } : {}) }, by)
          : undefined;
      },
    });
  } finally {
    auth?.close();
  }
  return { tenant: viewOf((await findTenantRecord(deps.db, input.slug))!), ...(invitation ? { invitation } : {}) };
}

/** Every tenant with its usage (platform admins); a tenant admin sees their own tenant only. */
export async function listTenantViews(deps: Deps, actor: AdminActor): Promise<TenantView[]> {
  const records = actor.kind === 'platform-admin' ? (await listTenants(deps.db)).filter((t) => t.id !== PLATFORM) : [await tenantFor(deps, actor, actor.tenant, 'read', 'tenant-list')];
  const views: TenantView[] = [];
  for (const r of records) views.push(viewOf(r, await tenantUsage(deps, r.id)));
  await audit(deps, actor.kind === 'platform-admin' ? PLATFORM : actor.tenant, actor, { subtype: 'tenant-list', action: 'R', detail: { tenants: views.length } });
  return views;
}

export async function getTenantView(deps: Deps, actor: AdminActor, slug: string): Promise<TenantView> {
  const record = await tenantFor(deps, actor, slug, 'read', 'tenant-read');
  await audit(deps, slug, actor, { subtype: 'tenant-read', action: 'R' });
  return viewOf(record, await tenantUsage(deps, slug));
}

/** A tenant's usage (GET .../usage). */
export async function getTenantUsage(deps: Deps, actor: AdminActor, slug: string): Promise<TenantUsage> {
  await tenantFor(deps, actor, slug, 'read', 'tenant-usage');
  return tenantUsage(deps, slug);
}

export interface TenantPatch {
  name?: string;
  branding?: Record<string, unknown>;
  host?: string | null;
  settings?: Partial<TenantSettings>;
}

/** Settings a tenant admin may change: the tenant's security policies. The others are the platform's. */
const TENANT_ADMIN_SETTINGS = new Set(['mfaRequired', 'ipAllowList', 'idleTimeoutMinutes', 'passwordMinLength', 'breachedPasswordCheck', 'maxTokenLifetimeSeconds', 'breakGlassApproval']);
const BOOLEAN_SETTINGS = new Set(['referentialIntegrity', 'mfaRequired', 'requiredBindings', 'breakGlassApproval']);
const PLATFORM_SETTINGS = new Set(['referentialIntegrity', 'auditRetentionDays', 'requiredProfiles', 'requiredBindings']);
const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** Throws 400 naming every problem of a settings patch the actor may not make or that is malformed. */
function checkSettings(actor: AdminActor, settings: unknown): void {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new FhirError('invalid', 'settings is an object', { code: 'TENANT_SETTINGS_INVALID' });
  const s = settings as Record<string, unknown>;
  const problems: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (!TENANT_ADMIN_SETTINGS.has(k) && !PLATFORM_SETTINGS.has(k)) problems.push(`${k} is not a tenant setting`);
    else if (actor.kind !== 'platform-admin' && !TENANT_ADMIN_SETTINGS.has(k)) problems.push(`${k} is set by platform administrators`);
    else if (BOOLEAN_SETTINGS.has(k) && v !== null && typeof v !== 'boolean') problems.push(`${k} must be true or false`);
  }
  if (s.auditRetentionDays !== undefined && s.auditRetentionDays !== null && !(Number.isInteger(s.auditRetentionDays) && (s.auditRetentionDays as number) >= 1)) problems.push('auditRetentionDays must be a whole number of days, at least 1');
  if (s.requiredProfiles !== undefined && s.requiredProfiles !== null && (typeof s.requiredProfiles !== 'object' || Array.isArray(s.requiredProfiles) || !Object.values(s.requiredProfiles).every((l) => Array.isArray(l) && l.every((u) => typeof u === 'string')))) {
    problems.push('requiredProfiles is an object of resource types, each a list of profile URLs');
  }
  problems.push(...validateSecurityPolicy(s as Partial<TenantSettings>));
  if (problems.length) {
    throw new FhirError('invalid', `The settings were not changed: ${problems.join('; ')}`, { code: 'TENANT_SETTINGS_INVALID', issues: problems.map((p) => issue('error', 'invalid', p, { code: 'TENANT_SETTINGS_INVALID' })) });
  }
}

/**
 * Changes a tenant's name, branding, settings (tenant admins: the security policies; platform admins: any) and host
 * (platform admins). Everything is checked first, then written in one statement: a refused patch changes nothing.
 */
export async function updateTenant(deps: Deps, actor: AdminActor, slug: string, patch: TenantPatch): Promise<TenantView> {
  const record = await tenantFor(deps, actor, slug, 'update', 'tenant-update');
  assertChangeable(deps, actor, record);
  if (typeof patch !== 'object' || patch === null) throw new FhirError('invalid', 'The body is a JSON object', { code: 'ADMIN_REQUEST_INVALID' });
  const unknown = Object.keys(patch).filter((k) => !['name', 'branding', 'host', 'settings'].includes(k));
  if (unknown.length) throw new FhirError('invalid', `Unknown field(s): ${unknown.join(', ')} (name, branding, host, settings)`, { code: 'ADMIN_REQUEST_INVALID' });
  if (patch.name !== undefined && (typeof patch.name !== 'string' || !patch.name.trim() || patch.name.length > 200)) throw new FhirError('invalid', 'name is a text of 1-200 characters', { code: 'TENANT_NAME_INVALID' });
  if (patch.branding !== undefined) checkBranding(patch.branding);
  let host = patch.host;
  if (host !== undefined) {
    if (actor.kind !== 'platform-admin') throw new FhirError('forbidden', "A tenant's host name is set by platform administrators", { code: 'ADMIN_FORBIDDEN' });
    if (host !== null && (typeof host !== 'string' || !HOST.test((host = host.toLowerCase())))) throw new FhirError('invalid', 'host is a DNS host name (lakeside.example.org) or null', { code: 'TENANT_HOST_INVALID' });
  }
  if (patch.settings !== undefined) checkSettings(actor, patch.settings);
  const after = await updateTenantFields(deps.db, slug, { ...(patch.name !== undefined ? { name: patch.name.trim() } : {}), ...(patch.branding ? { branding: patch.branding } : {}), ...(host !== undefined ? { host } : {}), ...(patch.settings ? { settings: patch.settings } : {}) });
  tenantChanged(deps.db, slug);
  await audit(deps, slug, actor, { subtype: 'tenant-update', action: 'U', detail: { fields: Object.keys(patch), ...(patch.settings ? { settings: Object.keys(patch.settings) } : {}) } });
  return viewOf(after!);
}

export interface OverQuota {
  quota: QuotaName;
  limit: number;
  usage: number;
}

/**
 * Moves a tenant to another plan (platform admins). Nothing is deleted when the new quotas are below what the tenant
 * uses: the answer lists each such quota with its limit and usage, and creations beyond it are refused (QUOTA_EXCEEDED).
 * A trial tenant moved to a paid plan becomes active (trial -> active); a trial plan may only restart a trial.
 */
export async function changePlan(deps: Deps, actor: AdminActor, slug: string, planId: string): Promise<{ tenant: TenantView; overQuota: OverQuota[] }> {
  await tenantFor(deps, actor, slug, 'platform', 'tenant-plan');
  if (typeof planId !== 'string') throw new FhirError('invalid', 'plan is a plan id (GET /admin/api/plans)', { code: 'PLAN_UNKNOWN' });
  const plan = await findPlan(deps, planId);
  const changed = await withTenantLocked(deps.db, slug, async (q, current) => {
    if (plan.tenantTypes.length && !(current.type && plan.tenantTypes.includes(current.type))) {
      throw new FhirError('invalid', `Plan '${plan.id}' is for ${plan.tenantTypes.join(', ')} tenants, not ${current.type ?? 'a tenant without a type'}`, { code: 'PLAN_TYPE_MISMATCH' });
    }
    const ends = trialEnd(plan, deps.clock());
    if (ends && current.status !== 'trial') throw transitionError(slug, current.status, 'trial');
    if (current.status === 'terminated') throw transitionError(slug, current.status, current.status);
    let record = (await setTenantPlan(q, slug, plan.id, ends))!;
    if (!ends && current.status === 'trial') record = (await applyTransition(q, slug, { to: 'active', from: ['trial'], clearTrial: true }))!;
    return { from: current, record };
  });
  tenantChanged(deps.db, slug);
  const { from, record } = changed!;
  const usage = await quotaUsage(deps, slug);
  const overQuota: OverQuota[] = [];
  for (const quota of QUOTA_NAMES) {
    const limit = plan.quotas[quota];
    if (limit !== null && limit !== undefined && usage[quota] > limit) overQuota.push({ quota, limit, usage: usage[quota] });
  }
  await audit(deps, slug, actor, { subtype: 'tenant-plan', action: 'U', detail: { from: from.plan ?? null, to: plan.id, ...(from.status !== record.status ? { status: `${from.status} -> ${record.status}` } : {}), ...(overQuota.length ? { overQuota: overQuota.map((o) => o.quota) } : {}) } });
  return { tenant: viewOf(record), overQuota };
}

/** 409 TENANT_TRANSITION_INVALID: a lifecycle change the tenant's state does not allow. */
export function transitionError(slug: string, from: string, to: string): FhirError {
  return new FhirError('conflict', `Tenant '${slug}' cannot go from ${from} to ${to}`, { code: 'TENANT_TRANSITION_INVALID' });
}

/** The lifecycle actions: where each leads and from which states (anything else: 409 TENANT_TRANSITION_INVALID). */
const TRANSITIONS = {
  suspend: { to: 'suspended', from: ['active'] },
  reactivate: { to: 'active', from: ['suspended'] },
  archive: { to: 'archived', from: ['trial', 'active', 'suspended'] },
  terminate: { to: 'terminated', from: ['trial', 'active', 'suspended', 'archived'] },
} as const satisfies Record<string, { to: TenantStatus; from: readonly TenantStatus[] }>;

export type LifecycleAction = keyof typeof TRANSITIONS;

/**
 * One lifecycle step (platform admins), with its reason in the audit record. The tenant's row changes in one guarded
 * statement (src/store/tenants.ts transitionTenant): a concurrent step cannot be skipped. Requests already running
 * finish as admitted (a transaction commits or rolls back whole); every request admitted after sees the new state.
 */
async function transition(deps: Deps, actor: AdminActor, slug: string, action: LifecycleAction, reason: unknown): Promise<TenantView> {
  const subtype = `tenant-${action}`;
  await tenantFor(deps, actor, slug, 'platform', subtype);
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500)) throw new FhirError('invalid', 'reason is a text of at most 500 characters', { code: 'ADMIN_REQUEST_INVALID' });
  const t = TRANSITIONS[action];
  const terminateAfter = action === 'terminate' ? new Date(deps.clock().getTime() + deps.config.tenantErasureGraceDays * 86_400_000) : undefined;
  const out = (await transitionTenant(deps.db, slug, { ...t, ...(terminateAfter ? { terminateAfter } : {}) }))!;
  if (!out.changed) {
    const refusal = transitionError(slug, out.previous, t.to);
    await audit(deps, slug, actor, { subtype, action: 'U', refused: refusal.message, detail: { from: out.previous, to: t.to } });
    throw refusal;
  }
  tenantChanged(deps.db, slug);
  if (terminateAfter) await scheduleErasure(deps, slug, terminateAfter, actor.sub);
  await audit(deps, slug, actor, { subtype, action: 'U', detail: { from: out.previous, to: t.to, ...(reason ? { reason } : {}), ...(terminateAfter ? { erasureAfter: terminateAfter.toISOString() } : {}) } });
  return viewOf(out.record);
}

/** active -> suspended: the tenant's API closes at once (tokens already issued included), but for its admins' reads. */
export function suspendTenant(deps: Deps, actor: AdminActor, slug: string, reason?: string): Promise<TenantView> {
  return transition(deps, actor, slug, 'suspend', reason);
}

/** suspended -> active. */
export function reactivateTenant(deps: Deps, actor: AdminActor, slug: string, reason?: string): Promise<TenantView> {
  return transition(deps, actor, slug, 'reactivate', reason);
}

/** trial | active | suspended -> archived: read-only. */
export function archiveTenant(deps: Deps, actor: AdminActor, slug: string, reason?: string): Promise<TenantView> {
  return transition(deps, actor, slug, 'archive', reason);
}

/** any -> terminated: unknown at once; every row erased after TENANT_ERASURE_GRACE_DAYS (src/admin/erase.ts). */
export function terminateTenant(deps: Deps, actor: AdminActor, slug: string, reason?: string): Promise<TenantView> {
  return transition(deps, actor, slug, 'terminate', reason);
}

/** The plans on sale (any admin: a tenant admin sees what their tenant could move to). */
export async function listPlans(deps: Deps): Promise<Plan[]> {
  return deps.plans.list();
}

/** Creates or replaces a plan (platform admins), audited in the platform's trail; 400 PLAN_INVALID names each problem. */
export async function savePlan(deps: Deps, actor: AdminActor, id: string, plan: unknown): Promise<Plan> {
  if (actor.kind !== 'platform-admin') {
    const refusal = new FhirError('forbidden', 'Only platform administrators change plans', { code: 'ADMIN_FORBIDDEN' });
    await audit(deps, actor.tenant, actor, { subtype: 'plan-update', action: 'U', refused: refusal.message, detail: { plan: String(id).slice(0, 64) } });
    throw refusal;
  }
  const given = typeof plan === 'object' && plan !== null && !Array.isArray(plan) ? (plan as Record<string, unknown>) : undefined;
  if (given?.id !== undefined && given.id !== id) throw new FhirError('invalid', `The body's id '${String(given.id).slice(0, 64)}' is not the URL's '${id.slice(0, 64)}'`, { code: 'PLAN_INVALID' });
  const saved = await upsertPlan(deps, { ...(given ?? {}), id } as Plan);
  await audit(deps, PLATFORM, actor, { subtype: 'plan-update', action: 'U', detail: { plan: saved.id, quotas: saved.quotas } });
  return saved;
}
