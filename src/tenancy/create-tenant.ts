// Tenant creation: the tenant row plus its root Organization (ARCHITECTURE.md "Tenancy"), whose id is the slug. The
// platform catalog (docs/catalog.md) is the tenant with the reserved slug `platform`, created by the server itself.
import type { FhirContext } from '../fhir/context.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { prepareUpdate } from '../fhir/interactions/update.js';
import { writeOne } from '../fhir/write.js';
import { TenantStore } from '../store/session.js';
import { SERVER_AGENT } from '../core/audit.js';
import { SYSTEM_GUARD } from '../core/guard.js';
import { isTenantSlug, PLATFORM, RESERVED_SLUGS, type TenantId } from '../core/tenant.js';
import { findTenant, insertTenant } from '../store/tenants.js';

export async function createTenant(deps: Deps, slug: string, name: string): Promise<{ baseUrl: string }> {
  if (!isTenantSlug(slug) || RESERVED_SLUGS.has(slug)) {
    throw new FhirError('invalid', `Tenant slug '${slug}' must be 1-63 characters of a-z, 0-9 and '-', start with a letter or digit, and not be reserved`, { code: 'TENANT_SLUG_INVALID' });
  }
  if (!name.trim()) throw new FhirError('invalid', 'A tenant needs a name', { code: 'TENANT_NAME_MISSING' });
  if (!(await insertTenant(deps.db, slug, name))) throw new FhirError('conflict', `Tenant '${slug}' already exists`, { code: 'TENANT_EXISTS' });
  return setUpTenant(deps, slug, name);
}

/** The platform catalog's name (its tenant row and root Organization). */
export const CATALOG_NAME = 'Platform catalog';

/**
 * Creates the platform catalog tenant when it is missing (every start; idempotent). Race-safe for processes starting
 * together on one database: the tenant row's insert decides which one sets it up. Returns true when this call did.
 */
export async function ensureCatalogTenant(deps: Deps): Promise<boolean> {
  if (await findTenant(deps.db, PLATFORM)) return false;
  if (!(await insertTenant(deps.db, PLATFORM, CATALOG_NAME))) return false;
  await setUpTenant(deps, PLATFORM, CATALOG_NAME);
  return true;
}

/** A new tenant row's root Organization and first audit record. */
async function setUpTenant(deps: Deps, slug: TenantId, name: string): Promise<{ baseUrl: string }> {
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${slug}`;
  const ctx: FhirContext = {
    deps,
    tenant: { id: slug, name, status: 'active', settings: {} },
    baseUrl,
    store: new TenantStore(deps.db, slug, baseUrl, undefined, deps.config.auditTrail ? undefined : null),
    registry: deps.registry,
    requestId: 'tenant-create',
    log: deps.log,
    guard: SYSTEM_GUARD,
  };
  await writeOne(ctx, (s) => prepareUpdate(ctx, s, 'Organization', slug, { resourceType: 'Organization', id: slug, active: true, name }));
  // the tenant's first audit record: its creation (a platform event the platform admins see in the tenant's trail)
  await deps.audit.record(slug, [{
    recorded: deps.clock().toISOString(),
    category: 'admin',
    subtype: 'tenant-create',
    action: 'C',
    outcome: 0,
    agent: SERVER_AGENT,
    entities: [{ ref: `Organization/${slug}`, version: 1 }],
    detail: { name },
  }]);
  return { baseUrl };
}
