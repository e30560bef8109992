// The quotas of a tenant's plan (issue 11, docs/plans.md), enforced where things are created: resource writes
// (commitWrites: creates, PUT-as-create, transaction and batch entries, conditional creates), users and clients
// (src/auth/admin.ts, registration.ts) and sign-ins (src/auth/interactions.ts). A counted quota is checked under a
// lock per tenant and quota, in the same transaction as the write it allows, so two parallel creates never both take
// the last slot. Tenants without a plan, and quotas the plan leaves unlimited, cost nothing.
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { Plan, QuotaName } from '../core/plans.js';
import { PLATFORM, type Tenant } from '../core/tenant.js';
import type { Db } from '../platform/db.js';
import { COUNTED_TYPES, countedAmong, countSessions, countUsage, lockQuota, onTransaction, storedBytes, type CountedQuota } from '../store/quotas.js';
import type { TenantSession } from '../store/session.js';
import { findTenant } from '../store/tenants.js';
import type { FhirContext } from './context.js';
import type { Prepared, PreparedWrite } from './write.js';

/** 403 QUOTA_EXCEEDED: the quota, its limit and the usage it was found at. */
export function quotaExceeded(plan: Plan, quota: QuotaName, usage: number): FhirError {
  const limit = plan.quotas[quota];
  return new FhirError('forbidden', `Quota '${quota}' of plan '${plan.id}' exceeded: limit ${limit}, usage ${usage}`, { code: 'QUOTA_EXCEEDED' });
}

async function planOf(deps: Deps, tenant: Pick<Tenant, 'plan'> | undefined): Promise<Plan | undefined> {
  return tenant?.plan === undefined ? undefined : deps.plans.get(tenant.plan);
}

/**
 * Before `prepared` is stored (commitWrites, on the write's transaction): refuses the writes when the tenant's stored
 * size has reached its quota, or when they would take a counted quota (patients, locations and branches,
 * subscriptions) past its limit. What a write adds is what did not count before: a create, a PUT that creates, an
 * update that makes an Organization a branch; updates of what already counts add nothing, so data over a lowered
 * quota stays writable. Deletions are never refused.
 */
export async function enforceQuotas(ctx: FhirContext, s: TenantSession, prepared: Prepared[]): Promise<void> {
  const plan = await planOf(ctx.deps, ctx.tenant);
  if (!plan) return;
  const writes = prepared.filter((p): p is PreparedWrite => 'row' in p && !!p.row && p.row.method !== 'DELETE');
  if (!writes.length) return;
  if (plan.quotas.storageBytes !== null) {
    const bytes = await storedBytes(ctx.deps, s.q, s.tenantId);
    if (bytes >= plan.quotas.storageBytes) throw quotaExceeded(plan, 'storageBytes', bytes);
  }
  const byQuota = new Map<CountedQuota, PreparedWrite[]>();
  for (const p of writes) {
    const counted = COUNTED_TYPES[p.row.resourceType];
    if (!counted || plan.quotas[counted.quota] === null) continue;
    if (p.row.resourceType === 'Organization' && p.outcome.resource?.partOf === undefined) continue;
    byQuota.set(counted.quota, [...(byQuota.get(counted.quota) ?? []), p]);
  }
  // one lock after another in name order: two transactions taking several never wait on each other in a circle
  for (const [quota, group] of [...byQuota].sort(([a], [b]) => a.localeCompare(b))) {
    const added = await addedBy(s, group);
    if (added === 0) continue;
    await lockQuota(s.q, s.tenantId, quota);
    const usage = await countUsage(s.q, s.tenantId, quota);
    if (usage + added > plan.quotas[quota]!) throw quotaExceeded(plan, quota, usage);
  }
}

/** How many of the writes will count that do not count now (a fresh create always; a replacement if its target does not). */
async function addedBy(s: TenantSession, writes: PreparedWrite[]): Promise<number> {
  let added = writes.filter((p) => !p.row.replaces).length;
  const replacing = writes.filter((p) => p.row.replaces);
  for (const type of new Set(replacing.map((p) => p.row.resourceType))) {
    const ids = replacing.filter((p) => p.row.resourceType === type).map((p) => p.row.id);
    added += ids.length - (await countedAmong(s.q, s.tenantId, type, ids));
  }
  return added;
}

/** The limit of `quota` in the tenant's plan (undefined: no plan, or unlimited). */
async function limitingPlan(deps: Deps, tenantId: string, quota: QuotaName): Promise<Plan | undefined> {
  if (tenantId === PLATFORM) return undefined;
  const plan = await planOf(deps, await findTenant(deps.db, tenantId));
  return plan && plan.quotas[quota] !== null ? plan : undefined;
}

/**
 * Runs `write` (the insert of a user or a client, given the database to use) when one more fits in the tenant's
 * `quota`: checked under the quota's lock, in one transaction with the insert. `quota` undefined (a patient's
 * account, which counts against no quota) or a plan without that limit: `write` runs on `deps.db` as it would alone.
 */
export async function withinQuota<T>(deps: Deps, tenantId: string, quota: 'staffUsers' | 'clients' | undefined, write: (db: Db) => Promise<T>): Promise<T> {
  const plan = quota && (await limitingPlan(deps, tenantId, quota));
  if (!quota || !plan) return write(deps.db);
  return deps.db.tx(tenantId, async (q) => {
    await lockQuota(q, tenantId, quota);
    const usage = await countUsage(q, tenantId, quota);
    if (usage >= plan.quotas[quota]!) throw quotaExceeded(plan, quota, usage);
    return write(onTransaction(deps.db, q, tenantId));
  });
}

/**
 * Refuses (403 QUOTA_EXCEEDED) when the tenant's `quota` has no room left, where the row is written by someone
 * else after this check (oidc-provider's dynamic registration): not atomic, so parallel requests may pass together.
 */
export async function assertQuotaRoom(deps: Deps, tenantId: string, quota: 'clients'): Promise<void> {
  const plan = await limitingPlan(deps, tenantId, quota);
  if (!plan) return;
  const usage = await deps.db.withTenant(tenantId, (q) => countUsage(q, tenantId, quota));
  if (usage >= plan.quotas[quota]!) throw quotaExceeded(plan, quota, usage);
}

/**
 * At sign-in, once the user is authenticated: why a new session may not start (the tenant's live sessions have
 * reached its plan's `sessions` quota), or undefined. `accountTenant` is where the user's account lives: a platform
 * admin's session is not the tenant's and is never refused by its quota. `sessionUid` is the browser's current
 * session, which a new sign-in replaces rather than adds to. Not atomic: oidc-provider stores the session after this
 * check.
 */
export async function sessionQuotaRefusal(deps: Deps, tenant: Tenant, accountTenant: string, sessionUid: string | undefined): Promise<string | undefined> {
  if (accountTenant !== tenant.id) return undefined;
  const plan = await planOf(deps, tenant);
  if (!plan || plan.quotas.sessions === null) return undefined;
  const usage = await countSessions(deps.db, tenant.id, sessionUid);
  return usage >= plan.quotas.sessions ? quotaExceeded(plan, 'sessions', usage).message : undefined;
}
