// Who calls the admin JSON API (issue 11): a bearer access token of this server's authorization server, verified for
// the FHIR base its audience names (`${PUBLIC_BASE_URL}/fhir/${tenant}`, as every token of this server), whose user is
// a platform administrator (an account of the `platform` pseudo-tenant; a token for any tenant's base will do) or a
// tenant administrator (of the token's own tenant). Anyone else: 403 ADMIN_ROLE_REQUIRED. The actor is left on
// res.locals.actor for the routes (src/admin/api.ts) and sub-routers.
import type { RequestHandler } from 'express';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { PLATFORM } from '../core/tenant.js';
import { caller } from '../auth/api.js';
import { parseAccountId } from '../auth/claims.js';
import type { TokenVerifier } from '../auth/verify.js';
import type { AdminActor } from '../core/admin-actor.js';

/** The actor of a verified admin token, or undefined when its user administers nothing. */
export function actorOf(claims: { sub: string; role: string; tenant: string; client_id: string }, address: string | undefined): AdminActor | undefined {
  const account = parseAccountId(claims.sub);
  const base = { sub: claims.sub, clientId: claims.client_id, ...(address ? { address } : {}) };
  if (claims.role === 'platform-admin' && account?.tenantId === PLATFORM) return { kind: 'platform-admin', tenant: PLATFORM, ...base };
  if (claims.role === 'tenant-admin' && account?.tenantId === claims.tenant) return { kind: 'tenant-admin', tenant: claims.tenant, ...base };
  return undefined;
}

/** Express middleware: 401 without a valid token of this server, 403 for a role other than the two admin roles. */
export function adminAuth(deps: Deps, verifier: TokenVerifier): RequestHandler {
  return async (req, res, next) => {
    try {
      const who = await caller(deps, verifier, req);
      const actor = actorOf(who.claims, req.ip);
      if (!actor) throw new FhirError('forbidden', 'The admin API is for platform administrators and tenant administrators', { code: 'ADMIN_ROLE_REQUIRED' });
      res.locals.actor = actor;
      next();
    } catch (err) {
      next(err);
    }
  };
}
