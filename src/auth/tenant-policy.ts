// What a tenant's lifecycle state and security policy allow on /auth (issue 11): the sign-in pages, the authorization
// endpoint and the token endpoint ask authRefusal before they go on. A terminated tenant lets nobody in; an IP
// allow-list lets everyone in only from inside it (platform administrators included: it is the tenant's network
// policy); a suspended tenant lets in only its administrators and platform administrators, whose reads the FHIR API
// still answers so the data can be taken out (src/tenancy/lifecycle.ts). 'trial', archived and read-only tenants
// sign in as usual: the FHIR API decides what they may still do.
import type { Request } from 'express';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Tenant } from '../core/tenant.js';
import { serviceLevel } from '../tenancy/lifecycle.js';
import { addressAllowed } from '../tenancy/security-policy.js';

/** Roles that may still sign in to a suspended tenant. */
const SUSPENDED_SIGN_IN = new Set(['tenant-admin', 'platform-admin']);

/**
 * Why the tenant refuses this step now, in words for the user, or undefined. `role`: the signed-in user's, or
 * 'system' for a backend client; undefined before anyone has signed in (a suspended tenant's sign-in page still
 * opens, for its administrators).
 */
export function authRefusal(t: Tenant, address: string | undefined, now: Date, role?: string): string | undefined {
  const level = serviceLevel(t, now);
  if (level === 'gone') return `The organization ${t.name} no longer uses this service.`;
  if (!addressAllowed(t, address)) return `The organization ${t.name} does not allow sign-in or tokens from your network address (${address ?? 'unknown'}).`;
  if (level === 'suspended' && role !== undefined && !SUSPENDED_SIGN_IN.has(role)) {
    return `The organization ${t.name} is suspended: only its administrators may sign in, to take its data out.`;
  }
  return undefined;
}

/** The client address of a request oidc-provider answers: Express's req.ip (X-Forwarded-For from trusted proxies only). */
export function providerAddress(ctx: KoaContextWithOIDC): string | undefined {
  return (ctx.req as Request).ip ?? ctx.req.socket.remoteAddress;
}
