// Dynamic client registration (RFC 7591) and its management (RFC 7592), around oidc-provider's registration endpoint:
// initial access tokens that a tenant admin obtains, capped by the admin's own access (issue 8, finding 1: a token
// asking for more than its caller holds once minted clients that could read and delete everything); a registration
// bound to the token's tenant with its scope capped by the token; updates that keep both.
import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { isTenantSlug } from '../core/tenant.js';
import { assertQuotaRoom } from '../fhir/quotas.js';
import { findClient } from '../store/auth-payloads.js';
import { insertRegistrationToken, useRegistrationToken } from '../store/auth-users.js';
import type { Access } from './access.js';
import type { OriginRegistry } from './origins.js';
import { CEILING_PROPERTY, issuerOf, SMART_SCOPE_PROPERTY, splitClientScope, TENANT_PROPERTY } from './provider.js';
import { intersectScopes, isResourceScope, OTHER_SCOPES, parseScopes, renderScopes, type ResourceScope, type Scope, type ScopeContext } from './scopes.js';
import { DEFAULT_REGISTRATION_SCOPE } from './smart-config.js';
import { oauthError } from './api.js';
import { OPERATOR, recordAuthEvents, tokenAgent } from './audit.js';
import { bearerToken, type Principal } from './verify.js';

const OTHER = new Set<string>(OTHER_SCOPES);

/** Launch/identity/refresh scopes and the rendered resource scopes as one scope string, without repeats. */
function joinScopes(other: string[], resource: Scope[]): string {
  const rendered = renderScopes(resource);
  return [...new Set([...other, ...(rendered ? rendered.split(' ') : [])])].join(' ');
}

/** A registration's requested scope capped by a ceiling: resource scopes intersected, others kept if allowed. */
function capScope(requested: string, ceiling: string): string {
  const allowedOther = new Set(ceiling.split(' ').filter((s) => OTHER.has(s)));
  const other = requested.split(' ').filter((s) => OTHER.has(s) && allowedOther.has(s));
  const r = parseScopes(requested).scopes.filter(isResourceScope);
  const c = parseScopes(ceiling).scopes.filter(isResourceScope);
  return joinScopes(other, intersectScopes(r, c));
}

/** Which contexts a caller's scope may hand out: a user's data reach covers the same data for a user, a patient or a system client. */
const HANDS_OUT: Record<ScopeContext, ScopeContext[]> = { user: ['user', 'patient', 'system'], patient: ['patient'], system: [] };

/**
 * The resource scopes a caller may put into an initial access token: its own effective access (token scope ∩ role
 * ceiling) re-expressed in each context it may hand out. A scope carrying an element limit cannot be handed out at
 * all (a client's scope string cannot carry the limit, so the new client would see more).
 */
function callerCeiling(access: Access): ResourceScope[] {
  const out: ResourceScope[] = [];
  for (const s of access.scopes) {
    if (!isResourceScope(s) || s.elements) continue;
    for (const context of HANDS_OUT[s.context]) out.push({ ...s, context, params: [...s.params] });
  }
  return out;
}

/** requested ∩ what the caller may hand out; launch, identity and refresh scopes pass (they grant no data). */
function capToCaller(requested: string, access: Access): string {
  const other = requested.split(' ').filter((s) => OTHER.has(s));
  return joinScopes(other, intersectScopes(parseScopes(requested).scopes.filter(isResourceScope), callerCeiling(access)));
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Creates an initial access token for `tenant` (CLI and API); only its SHA-256 is stored. `by`: who asked, for the audit trail. */
export async function issueRegistrationToken(deps: Deps, tenant: string, scope: string, createdBy: string, ttlSeconds: number, by: AuditAgent = OPERATOR): Promise<{ initial_access_token: string; expires_in: number; scope: string; registration_endpoint: string }> {
  const token = `${tenant}.${randomBytes(24).toString('base64url')}`;
  await insertRegistrationToken(deps.db, tenant, sha256(token), scope, createdBy, new Date(deps.clock().getTime() + ttlSeconds * 1000));
  await recordAuthEvents(deps, tenant, { category: 'admin', subtype: 'registration-token-issue', action: 'C', outcome: 0, agent: by, detail: { scope, expires_in: ttlSeconds } });
  return { initial_access_token: token, expires_in: ttlSeconds, scope, registration_endpoint: `${issuerOf(deps.config.publicBaseUrl)}/register` };
}

/**
 * POST /auth/register/initial-access-token: for tenant administrators only. Backend (system) clients may not obtain
 * one: a machine credential must not be able to mint further credentials (a stolen or over-scoped one would become
 * a factory of new clients); registering is an accountable act of a person, or of the operator's CLI.
 */
export async function initialAccessToken(deps: Deps, who: Principal, body: Record<string, unknown>, address: string): Promise<Record<string, unknown>> {
  if (who.claims.role !== 'tenant-admin') {
    throw new FhirError('forbidden', 'Only tenant administrators obtain initial access tokens (backend clients cannot register further clients)', { code: 'SCOPE_INSUFFICIENT' });
  }
  const requested = typeof body.scope === 'string' && body.scope.trim() ? body.scope.trim() : DEFAULT_REGISTRATION_SCOPE;
  const scope = capToCaller(requested, who.guard.access);
  if (parseScopes(requested).scopes.some(isResourceScope) && !parseScopes(scope).scopes.some(isResourceScope)) {
    throw new FhirError('forbidden', `None of the requested resource scopes lies within your own access (${requested.slice(0, 300)})`, { code: 'SCOPE_INSUFFICIENT' });
  }
  return issueRegistrationToken(deps, who.claims.tenant, scope, who.claims.sub, 24 * 3600, tokenAgent(who, address));
}

function scopeOf(body: Record<string, unknown>): string | undefined {
  const parts = [body.scope, body[SMART_SCOPE_PROPERTY]].filter((s): s is string => typeof s === 'string');
  return parts.length ? parts.join(' ') : undefined;
}

/** Sets the client's tenant, ceiling and capped scope on a registration body, whatever the body said. */
function bindToCeiling(body: Record<string, unknown>, tenant: string, ceiling: string, requested: string | undefined): Record<string, unknown> {
  const out = { ...body };
  out[TENANT_PROPERTY] = tenant;
  out[CEILING_PROPERTY] = ceiling;
  delete out[SMART_SCOPE_PROPERTY];
  delete out.scope;
  return Object.assign(out, splitClientScope(capScope(requested ?? ceiling, ceiling)));
}

/**
 * POST /auth/register (RFC 7591), before oidc-provider: a valid, unused initial access token binds the new client to
 * its tenant and caps its scope (the token is spent here).
 */
export function guardRegistration(deps: Deps, origins: OriginRegistry) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const iat = bearerToken(req.headers.authorization);
      const tenant = iat?.split('.')[0];
      const ceiling = iat && isTenantSlug(tenant) ? await useRegistrationToken(deps.db, tenant, sha256(iat)) : undefined;
      if (!ceiling || !tenant) return oauthError(res, 401, 'invalid_token', 'registration needs a valid, unused initial access token (Authorization: Bearer)');
      await assertQuotaRoom(deps, tenant, 'clients'); // the plan's clients quota (issue 11): src/fhir/quotas.ts
      const body = (req.body ?? {}) as Record<string, unknown>;
      req.body = bindToCeiling(body, tenant, ceiling.scope, scopeOf(body));
      delete req.headers.authorization;
      origins.invalidate();
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * PUT /auth/register/:clientId (RFC 7592 §2.2), before oidc-provider (which checks the registration access token): the
 * client keeps its tenant and its registration's scope ceiling, whatever the new metadata says.
 */
export function guardRegistrationUpdate(deps: Deps, origins: OriginRegistry) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    try {
      const stored = await findClient(deps.db, String(req.params.clientId));
      const ceiling = stored?.metadata[CEILING_PROPERTY];
      if (stored && typeof ceiling === 'string') {
        const body = (req.body ?? {}) as Record<string, unknown>;
        req.body = bindToCeiling(body, stored.tenantId, ceiling, scopeOf(body));
      } else if (stored) {
        // registered by the CLI (no registration access token exists for it): oidc-provider refuses the update
        req.body = { ...(req.body as Record<string, unknown>), [TENANT_PROPERTY]: stored.tenantId };
      }
      origins.invalidate();
      next();
    } catch (err) {
      next(err);
    }
  };
}
