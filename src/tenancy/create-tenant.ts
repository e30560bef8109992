// Tenant creation: the tenant row plus its root Organization (ARCHITECTURE.md "Tenancy"), whose id is the slug. The
// platform catalog (docs/catalog.md) is the tenant with the reserved slug `platform`, created by the server itself.
// Issue 16: one transaction writes the row, the Organization (with its history, index, outbox and audit rows), the
// creation's audit record and whatever the caller adds (operator client, first invitation): all of them or none.
// Issue 11: a tenant may be created with a type, a plan (a trial plan starts the tenant in 'trial', ending after the
// plan's days) and branding. A tenant made without a plan has none: no quota applies to it (tenants made before plans
// existed, and `tenant create` without --plan, keep working as they did).
import type { FhirContext } from '../fhir/context.js';
import type { AuditAgent, AuditSink } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { Plan } from '../core/plans.js';
import { prepareUpdate } from '../fhir/interactions/update.js';
import { writeOne } from '../fhir/write.js';
import { TenantStore } from '../store/session.js';
import { SERVER_AGENT } from '../core/audit.js';
import { SYSTEM_GUARD } from '../core/guard.js';
import { isTenantSlug, PLATFORM, RESERVED_SLUGS, type Tenant, type TenantId } from '../core/tenant.js';
import type { Queryable } from '../platform/db.js';
import { onTransaction } from '../store/quotas.js';
import { tenantChanged } from './tenant-cache.js';
import { findTenant, insertTenantWith, type NewTenantRow } from '../store/tenants.js';

/** The kinds of organization the platform serves (issue 11); a plan may be sold to some of them only. */
export const TENANT_TYPES = ['solo-practice', 'multi-branch', 'diagnostic-centre', 'hospital-group', 'lab'] as const;

/** What a tenant is created with beside its slug and name. */
export interface TenantOptions {
  type?: string;
  /** A plan id (the `plan` table); none: no quotas. */
  plan?: string;
  /** Names, colours and logo URLs the console and sign-in pages may show: string values only. */
  branding?: Record<string, unknown>;
  /** Who creates it (the tenant's first audit record names them); default: the server itself. */
  by?: AuditAgent;
  /**
   * The tenant's further first rows (its operator client, its first administrator's invitation), written after the
   * root Organization in the creation's transaction: `deps` is bound to it (its database and audit sink), and a throw
   * leaves no trace of the tenant.
   */
  also?: (deps: Deps) => Promise<void>;
}

/** Throws 400 TENANT_SLUG_INVALID unless `slug` is a well-formed tenant id that no path of this server reserves. */
export function checkSlug(slug: string): asserts slug is TenantId {
  if (!isTenantSlug(slug) || RESERVED_SLUGS.has(slug)) {
    throw new FhirError('invalid', `Tenant slug '${slug.slice(0, 80)}' must be 1-63 characters of a-z, 0-9 and '-', start with a letter or digit, and not be reserved`, { code: 'TENANT_SLUG_INVALID' });
  }
}

/** Throws 400 TENANT_BRANDING_INVALID unless branding is a small object of short strings. */
export function checkBranding(branding: unknown): asserts branding is Record<string, string> {
  const ok =
    typeof branding === 'object' && branding !== null && !Array.isArray(branding) &&
    Object.keys(branding).length <= 20 &&
    Object.entries(branding).every(([k, v]) => /^[A-Za-z][A-Za-z0-9]{0,39}$/.test(k) && typeof v === 'string' && v.length <= 500);
  if (!ok) throw new FhirError('invalid', 'branding is an object of at most 20 entries, each a name (letters and digits) and a text of at most 500 characters', { code: 'TENANT_BRANDING_INVALID' });
}

/** The plan `id` names: 400 PLAN_UNKNOWN when there is no such plan. */
export async function findPlan(deps: Deps, id: string): Promise<Plan> {
  const plan = await deps.plans.get(id);
  if (!plan) throw new FhirError('invalid', `Unknown plan '${id.slice(0, 80)}'`, { code: 'PLAN_UNKNOWN' });
  return plan;
}

/** A trial plan's end, counted from `now`; null for a paid plan. */
export function trialEnd(plan: Plan, now: Date): Date | null {
  return plan.trialDays === null ? null : new Date(now.getTime() + plan.trialDays * 86_400_000);
}

export async function createTenant(deps: Deps, slug: string, name: string, o: TenantOptions = {}): Promise<{ baseUrl: string; tenant: Tenant }> {
  checkSlug(slug);
  if (!name.trim()) throw new FhirError('invalid', 'A tenant needs a name', { code: 'TENANT_NAME_MISSING' });
  if (name.length > 200) throw new FhirError('invalid', 'A tenant name has at most 200 characters', { code: 'TENANT_NAME_INVALID' });
  if (o.type !== undefined && !(TENANT_TYPES as readonly string[]).includes(o.type)) {
    throw new FhirError('invalid', `Unknown tenant type '${o.type.slice(0, 80)}': one of ${TENANT_TYPES.join(', ')}`, { code: 'TENANT_TYPE_UNKNOWN' });
  }
  if (o.branding !== undefined) checkBranding(o.branding);
  const plan = o.plan !== undefined ? await findPlan(deps, o.plan) : undefined;
  if (plan && plan.tenantTypes.length && !(o.type && plan.tenantTypes.includes(o.type))) {
    throw new FhirError('invalid', `Plan '${plan.id}' is for ${plan.tenantTypes.join(', ')} tenants, not ${o.type ?? 'a tenant without a type'}`, { code: 'PLAN_TYPE_MISMATCH' });
  }
  const trialEndsAt = plan ? trialEnd(plan, deps.clock()) : null;
  const row = {
    status: trialEndsAt ? ('trial' as const) : ('active' as const),
    ...(plan ? { plan: plan.id } : {}),
    ...(o.type ? { type: o.type } : {}),
    ...(o.branding ? { branding: o.branding } : {}),
    ...(trialEndsAt ? { trialEndsAt } : {}),
  };
  const tenant: Tenant = { id: slug, name, status: row.status, settings: {}, ...(row.plan ? { plan: row.plan } : {}), ...(row.type ? { type: row.type } : {}), host: null, trialEndsAt: trialEndsAt?.toISOString() ?? null };
  const made = await setUpTenant(deps, tenant, row, o.by ?? SERVER_AGENT, o.also);
  if (!made) throw new FhirError('conflict', `Tenant '${slug}' already exists`, { code: 'TENANT_EXISTS' });
  return { ...made, tenant };
}

/** The platform catalog's name (its tenant row and root Organization). */
export const CATALOG_NAME = 'Platform catalog';

/**
 * Creates the platform catalog tenant when it is missing (every start; idempotent). Race-safe for processes starting
 * together on one database: the tenant row's insert decides which one sets it up (the others wait for its commit).
 * Returns true when this call did.
 */
export async function ensureCatalogTenant(deps: Deps): Promise<boolean> {
  if (await findTenant(deps.db, PLATFORM)) return false;
  return !!(await setUpTenant(deps, { id: PLATFORM, name: CATALOG_NAME, status: 'active', settings: {} }, {}, SERVER_AGENT));
}

/**
 * The tenant row, its root Organization, its first audit record and `also`'s rows, in one transaction (undefined,
 * nothing written, when the slug is taken). The Organization goes through the write path every write takes
 * (writeOne, TenantStore), on a store whose units of work all join that transaction.
 */
async function setUpTenant(deps: Deps, tenant: Tenant, row: NewTenantRow, by: AuditAgent, also?: (deps: Deps) => Promise<void>): Promise<{ baseUrl: string } | undefined> {
  const slug = tenant.id;
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${slug}`;
  const made = await insertTenantWith(deps.db, slug, tenant.name, row, async (q) => {
    const joined = joinedDeps(deps, slug, q);
    const ctx: FhirContext = {
      deps: joined,
      tenant,
      baseUrl,
      store: new TenantStore(joined.db, slug, baseUrl, undefined, deps.config.auditTrail ? undefined : null),
      registry: deps.registry,
      requestId: 'tenant-create',
      log: deps.log,
      guard: SYSTEM_GUARD,
    };
    await writeOne(ctx, (s) => prepareUpdate(ctx, s, 'Organization', slug, { resourceType: 'Organization', id: slug, active: true, name: tenant.name }));
    // the tenant's first audit record: its creation (a platform event the platform admins see in the tenant's trail)
    await joined.audit.record(slug, [{
      recorded: deps.clock().toISOString(),
      category: 'admin',
      subtype: 'tenant-create',
      action: 'C',
      outcome: 0,
      agent: by,
      entities: [{ ref: `Organization/${slug}`, version: 1 }],
      detail: { name: tenant.name, ...(tenant.plan ? { plan: tenant.plan } : {}), ...(tenant.type ? { type: tenant.type } : {}), status: tenant.status },
    }]);
    if (also) await also(joined);
  });
  // a lookup of the slug made before the commit may be cached as "no such tenant": forget it in this process
  if (made) tenantChanged(deps.db, slug);
  return made && { baseUrl };
}

/**
 * `deps` inside the creation's transaction `q` (bound to `slug`): the store functions given its database run on `q`,
 * and its audit sink stores the records on `q` (not in the spool, which would keep them after a rollback). Anything
 * that reaches for another tenant, or for the admin connection, fails instead of escaping the transaction.
 */
function joinedDeps(deps: Deps, slug: TenantId, q: Queryable): Deps {
  const audit: AuditSink = {
    record: (tenantId, records) => (tenantId === slug ? deps.audit.record(tenantId, records, q) : Promise.reject(new Error(`tenant ${slug}'s creation wrote an audit record of tenant ${tenantId}`))),
    settle: () => deps.audit.settle(),
    close: () => Promise.resolve(),
  };
  return { ...deps, db: onTransaction(deps.db, q, slug), audit };
}
