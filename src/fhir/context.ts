// The values every FHIR interaction receives: dependencies, the tenant and its store, and the request's identity.
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import type { Guard } from '../core/guard.js';
import type { SearchParamRegistry } from '../core/search-registry.js';
import type { Tenant } from '../core/tenant.js';
import type { Logger } from '../platform/log.js';
import type { TenantStore } from '../store/session.js';
import type { ExportService } from './export-service.js';
import type { Caller, SubscriptionService } from './subscription-service.js';

export interface FhirContext {
  deps: Deps;
  tenant: Tenant;
  /** The tenant's store: every unit of work of this request runs on a connection bound to this tenant. */
  store: TenantStore;
  /** Absolute FHIR base of the tenant, e.g. https://fhir.example.org/fhir/acme */
  baseUrl: string;
  /** This tenant's search parameters (official + custom). */
  registry: SearchParamRegistry;
  requestId: string;
  log: Logger;
  /** What the caller may do: a verified token's guard, or SYSTEM_GUARD for the server's own work. */
  guard: Guard;
  /** The verified token's identity (absent for the server's own work and discovery). */
  caller?: Caller;
  /** Who acts, as audit records name them (absent: the server itself). */
  agent?: AuditAgent;
  /** Subscriptions (absent where none can be written: tenant creation, maintenance). */
  subscriptions?: SubscriptionService;
  /** Bulk Data export (absent where no export can be started: tenant creation, jobs). */
  exports?: ExportService;
}
