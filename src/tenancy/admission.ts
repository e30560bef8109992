// Admission of a FHIR request to its tenant (issue 11), after the token is verified and before any interaction runs:
// the tenant's lifecycle state, its network allow-list, its request budgets, its usage counters. One place, called
// once per request by src/http/fhir-router.ts; each check lives in its own module and may throw a FhirError (the
// request is refused before it touches the database) or add response headers.
import type { Deps } from '../core/deps.js';
import type { Tenant } from '../core/tenant.js';
import { assertAddressAllowed } from './security-policy.js';
import { admitRate } from './rate-limits.js';
import { assertLifecycle } from './lifecycle.js';

export interface AdmissionRequest {
  tenant: Tenant;
  /** GET, HEAD (as GET), POST, PUT, PATCH, DELETE. */
  method: string;
  /** The path segments below the tenant's base (['Patient', '123'], ['$export'], ['metadata']). */
  path: string[];
  /** The client's address (X-Forwarded-For only from trusted proxies), as Express computed it. */
  address: string | undefined;
  /** The address of the TCP peer itself. */
  peer: string | undefined;
  /** Discovery (metadata, smart-configuration): no token, nothing of the tenant's data. */
  discovery: boolean;
  /** The verified token's role, user and client (undefined for discovery). */
  role?: string;
  sub?: string;
  clientId?: string;
}

/** Response headers an admitted request carries (RateLimit-*). */
export type AdmissionHeaders = Record<string, string>;

/** Throws a FhirError when the request may not proceed; returns headers to add otherwise. */
export async function admit(deps: Deps, a: AdmissionRequest): Promise<AdmissionHeaders> {
  const headers: AdmissionHeaders = {};
  // lifecycle (src/tenancy/lifecycle.ts)
  assertLifecycle(a.tenant, deps.clock(), a);
  // ip allow-list (src/tenancy/security-policy.ts); discovery documents describe the server, not the tenant's data
  if (!a.discovery) assertAddressAllowed(a.tenant, a.address);
  // rate limits (src/tenancy/rate-limits.ts)
  Object.assign(headers, await admitRate(deps, a));
  // usage (src/tenancy/usage.ts): requests with a token only (discovery is public: probes are no tenant activity)
  if (!a.discovery) deps.usage.count(a.tenant.id);
  return headers;
}
