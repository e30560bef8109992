// The FhirContext of the server's own subscription work: bound to one tenant, deciding with SYSTEM_GUARD or with a
// subscription owner's guard (matching and delivery judge what the owner may read).
import type { Deps } from '../core/deps.js';
import { SYSTEM_GUARD, type Guard } from '../core/guard.js';
import type { Tenant } from '../core/tenant.js';
import type { FhirContext } from '../fhir/context.js';
import { TenantStore } from '../store/session.js';
import { findTenant } from '../store/tenants.js';

export async function tenantContext(deps: Deps, tenantId: string, requestId: string): Promise<FhirContext | undefined> {
  const tenant: Tenant | undefined = await findTenant(deps.db, tenantId);
  if (!tenant) return undefined;
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${tenantId}`;
  return {
    deps,
    tenant,
    baseUrl,
    store: new TenantStore(deps.db, tenantId, baseUrl, undefined, deps.config.auditTrail ? undefined : null),
    registry: await deps.searchParams.forTenant(tenantId),
    requestId,
    log: deps.log.child({ tenantId, work: requestId }),
    guard: SYSTEM_GUARD,
  };
}

/** The same context deciding as `guard`. */
export function as(ctx: FhirContext, guard: Guard): FhirContext {
  return { ...ctx, guard };
}
