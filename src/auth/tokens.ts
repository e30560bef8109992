// Access tokens minted outside the OAuth flows (the `token` CLI for operators, scripts and benchmarks): the same
// claims, key and algorithm as the tokens oidc-provider issues, so the resource server cannot tell them apart.
import { createPrivateKey, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { findClient } from '../store/auth-payloads.js';
import { findUserByName } from '../store/auth-users.js';
import { findTenant } from '../store/tenants.js';
import { tokenLifetime } from '../tenancy/security-policy.js';
import { hostBaseUrl } from '../tenancy/tenant-hosts.js';
import { grantAccess } from './access.js';
import { OPERATOR, recordAuthEvents } from './audit.js';
import { PLATFORM } from '../core/tenant.js';
import { accountId, type AccessClaims } from './claims.js';
import type { SigningKeys } from '../core/deps.js';
import { clientScopes, issuerOf } from './provider.js';
import { isRole, type Role } from './role-matrix.js';

export interface MintRequest {
  tenant: string;
  clientId: string;
  scope: string;
  /** Acting user (username); absent = the client itself (a backend token, role 'system'). */
  username?: string;
  /** Launch patient for patient/ scopes (a patient user's own record is used when absent). */
  patient?: string;
  /** Asked-for lifetime; the tenant's maxTokenLifetimeSeconds shortens it. */
  ttlSeconds: number;
  /** For the tenant's own host base (host-based tenants: `<scheme>://<host>/fhir`) instead of /fhir/{tenant}. */
  onHost?: boolean;
}

export interface MintedToken {
  accessToken: string;
  scope: string;
  expiresIn: number;
  claims: AccessClaims;
}

export function signAccessToken(keys: SigningKeys, claims: AccessClaims): string {
  const jwk = keys.activePrivateJwk();
  const kid = keys.activeKid();
  if (!jwk || !kid) throw new Error('no signing key (start the server once, or run: npm run cli -- keys rotate)');
  return jwt.sign(claims, createPrivateKey({ key: jwk as never, format: 'jwk' }), { algorithm: 'RS256', keyid: kid, header: { alg: 'RS256', typ: 'at+jwt', kid } });
}

/** requested ∩ client's registered scope ∩ role ceiling, signed: exactly what the token endpoint would grant. */
export async function mintAccessToken(deps: Deps, keys: SigningKeys, req: MintRequest): Promise<MintedToken> {
  const client = await findClient(deps.db, req.clientId);
  if (!client || client.tenantId !== req.tenant) throw new FhirError('not-found', `No client '${req.clientId}' in tenant '${req.tenant}'`, { code: 'CLIENT_UNKNOWN' });
  let role: Role = 'system';
  let sub = req.clientId;
  let fhirUser: string | undefined;
  let patient = req.patient;
  if (req.username) {
    // platform administrators sign in to any tenant (src/auth/login.ts); so do their tokens
    const user = (await findUserByName(deps.db, req.tenant, req.username)) ?? (await findUserByName(deps.db, PLATFORM, req.username));
    if (!user || user.disabled || !isRole(user.role)) throw new FhirError('not-found', `No active user '${req.username}' in tenant '${req.tenant}'`, { code: 'USER_UNKNOWN' });
    role = user.role;
    sub = accountId(user.tenantId, user.id);
    fhirUser = user.fhirUser ?? undefined;
    if (role === 'patient') patient = user.fhirUser?.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
  }
  const g = grantAccess({ requested: req.scope, clientAllowed: clientScopes(client.metadata), role, patientId: patient });
  if (!g.access.scopes.some((s) => s.kind === 'resource')) {
    throw new FhirError('forbidden', `None of the requested scopes is allowed (client and role ceiling): ${req.scope}`, { code: 'SCOPE_NOT_GRANTED' });
  }
  const now = Math.floor(deps.clock().getTime() / 1000);
  const tenant = await findTenant(deps.db, req.tenant);
  const ttl = tokenLifetime(req.ttlSeconds, tenant);
  if (req.onHost && !tenant?.host) throw new FhirError('invalid', `Tenant '${req.tenant}' has no host name of its own`, { code: 'TENANT_HOST_NONE' });
  const base = req.onHost ? hostBaseUrl(deps.config.publicBaseUrl, tenant!.host!) : `${deps.config.publicBaseUrl}/fhir/${req.tenant}`;
  const claims: AccessClaims = {
    iss: issuerOf(deps.config.publicBaseUrl),
    aud: base,
    sub,
    client_id: req.clientId,
    scope: g.scope,
    iat: now,
    exp: now + ttl,
    jti: randomBytes(16).toString('base64url'),
    tenant: req.tenant,
    role,
    ...(patient ? { patient } : {}),
    ...(fhirUser ? { fhirUser } : {}),
  };
  const accessToken = signAccessToken(keys, claims);
  // minted by the operator, not asked for at the token endpoint: the record says so (the holder is the agent, as there)
  await recordAuthEvents(deps, req.tenant, {
    category: 'token',
    subtype: 'token-issue',
    action: 'E',
    outcome: 0,
    agent: { ...(sub !== req.clientId ? { userSub: sub } : {}), ...(fhirUser ? { userRef: fhirUser } : {}), clientId: req.clientId, role },
    ...(patient ? { patients: [patient], entities: [{ ref: `Patient/${patient}` }] } : {}),
    detail: { grant_type: 'operator-mint', scope: g.scope, issued_by: OPERATOR.userSub },
  });
  return { accessToken, scope: g.scope, expiresIn: ttl, claims };
}
