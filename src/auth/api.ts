// The authorization server's own JSON endpoints (launch, introspection, initial access tokens): who calls them (a
// bearer access token of this server) and how their failures answer (RFC 6749 §5.2 / RFC 6750 errors, no stack).
import type { Request, Response } from 'express';
import jwt from 'jsonwebtoken';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { hostOfBaseUrl } from '../tenancy/tenant-hosts.js';
import { tenantOfAudience, tenantOfBase } from './provider.js';
import { bearerToken, type Principal, type TokenVerifier } from './verify.js';

export function oauthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).setHeader('Cache-Control', 'no-store');
  if (status === 401) res.setHeader('WWW-Authenticate', `Bearer error="${error}", error_description="${description.replace(/"/g, '')}"`);
  res.json({ error, error_description: description });
}

/**
 * The caller: a bearer access token of this server, verified for the tenant its aud names (401 otherwise). With
 * `tenants`, a token for a tenant's own host base (host-based tenants) is one too.
 */
export async function caller(deps: Deps, verifier: TokenVerifier, req: Request, tenants?: TenantCache): Promise<Principal> {
  const token = bearerToken(req.headers.authorization);
  // the unverified aud only picks the tenant and base to verify against; verify() then checks everything
  const payload = token ? jwt.decode(token) : undefined;
  const aud = payload && typeof payload === 'object' && typeof payload.aud === 'string' ? payload.aud : undefined;
  const slug = tenants ? await tenantOfAudience(deps.config, tenants, aud) : tenantOfBase(deps.config.publicBaseUrl, aud);
  if (!slug) throw new FhirError('unauthenticated', 'A Bearer access token of this server is required', { code: 'TOKEN_MISSING' });
  const onHost = aud !== undefined && hostOfBaseUrl(deps.config.publicBaseUrl, aud) !== undefined;
  return verifier.verify(req.headers.authorization, onHost ? aud : `${deps.config.publicBaseUrl}/fhir/${slug}`, slug);
}

/** Runs a JSON endpoint: FhirErrors as OAuth errors, a malformed body as invalid_request, anything else a logged 500. */
export function api(deps: Deps, fn: (req: Request, res: Response) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      await fn(req, res);
    } catch (err) {
      if (err instanceof FhirError) {
        const code = err.kind === 'unauthenticated' ? 'invalid_token' : err.kind === 'forbidden' ? 'insufficient_scope' : 'invalid_request';
        return oauthError(res, err.status, code, err.message);
      }
      if (err instanceof SyntaxError) return oauthError(res, 400, 'invalid_request', 'the body is not valid JSON');
      deps.log.error({ err }, 'auth API failed');
      oauthError(res, 500, 'server_error', 'internal error');
    }
  };
}
