// Resource-server side of SMART (SMART.md §7): every FHIR request's bearer JWT is verified with jsonwebtoken
// (RS256 only, issuer, audience = this tenant's FHIR base, exp/nbf with a small skew, known kid), then turned into
// the Guard that decides each interaction. Verified tokens are cached until they expire.
import jwt from 'jsonwebtoken';
import { FhirError } from '../core/errors.js';
import type { Guard, GuardDecision, GuardLetter, GuardRequest } from '../core/guard.js';
import { accessForType, accessFromToken, decide, type Access } from './access.js';
import type { AccessClaims } from './claims.js';
import type { SigningKeys } from '../core/deps.js';
import { isRole } from './role-matrix.js';

/** The algorithm allow-list: only what this server signs with (never none, never HMAC). */
const ALGORITHMS: jwt.Algorithm[] = ['RS256'];

export interface Principal {
  claims: AccessClaims;
  guard: TokenGuard;
}

/** Decides interactions for one verified token (memoised per type and letter). */
export class TokenGuard implements Guard {
  private readonly types = new Map<string, GuardDecision>();
  constructor(readonly access: Access) {}

  decide(request: GuardRequest): GuardDecision {
    return decide(this.access, request);
  }

  forType(resourceType: string, letter: GuardLetter): GuardDecision {
    const key = `${resourceType}.${letter}`;
    let d = this.types.get(key);
    if (!d) this.types.set(key, (d = accessForType(this.access, resourceType, letter)));
    return d;
  }
}

function unauthenticated(description: string, code: string, realm: string): FhirError {
  const desc = description.replace(/["\\]/g, '');
  return new FhirError('unauthenticated', `Authorization failed: ${description}`, {
    code,
    headers: { 'WWW-Authenticate': `Bearer realm="${realm}", error="invalid_token", error_description="${desc}"` },
  });
}

/** The Bearer credential of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export class TokenVerifier {
  private readonly cache = new Map<string, Principal>();
  /** The key set the cache was verified against: a rotation or retirement empties it. */
  private cacheKeys = '';

  constructor(
    private readonly keys: SigningKeys,
    private readonly issuer: string,
    private readonly skewSeconds: number,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Verifies `token` for the FHIR base `audience` of `tenant`. Any failure is a 401 with WWW-Authenticate
   * (RFC 6750 invalid_token): missing, malformed, bad signature, unknown key, expired, not yet valid, wrong issuer,
   * another tenant's audience.
   */
  async verify(authorization: string | undefined, audience: string, tenant: string): Promise<Principal> {
    if (!authorization) {
      throw new FhirError('unauthenticated', 'This FHIR endpoint needs an access token (Authorization: Bearer <token>)', {
        code: 'TOKEN_MISSING',
        headers: { 'WWW-Authenticate': `Bearer realm="${audience}"` },
      });
    }
    const token = bearerToken(authorization);
    if (!token) throw unauthenticated('the Authorization header is not "Bearer <token>"', 'TOKEN_MALFORMED', audience);
    const now = Math.floor(this.clock().getTime() / 1000);
    if (this.cacheKeys !== this.keys.fingerprint) {
      this.cache.clear();
      this.cacheKeys = this.keys.fingerprint;
    }
    const hit = this.cache.get(token);
    if (hit) {
      if (hit.claims.exp + this.skewSeconds < now) {
        this.cache.delete(token);
        throw unauthenticated('the access token has expired', 'TOKEN_EXPIRED', audience);
      }
      if (hit.claims.aud !== audience || hit.claims.tenant !== tenant) throw unauthenticated('the access token was issued for another FHIR base', 'TOKEN_AUDIENCE', audience);
      return hit;
    }
    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload === 'string') throw unauthenticated('the access token is not a JWT', 'TOKEN_MALFORMED', audience);
    if (!ALGORITHMS.includes(decoded.header.alg as jwt.Algorithm)) throw unauthenticated(`algorithm ${decoded.header.alg} is not accepted`, 'TOKEN_ALGORITHM', audience);
    const key = await this.keys.publicKey(decoded.header.kid);
    if (!key) throw unauthenticated('the access token was signed with an unknown key', 'TOKEN_KEY_UNKNOWN', audience);
    let claims: AccessClaims;
    try {
      claims = jwt.verify(token, key, { algorithms: ALGORITHMS, issuer: this.issuer, audience, clockTolerance: this.skewSeconds, clockTimestamp: now }) as AccessClaims;
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TokenExpiredError') throw unauthenticated('the access token has expired', 'TOKEN_EXPIRED', audience);
      if (e.name === 'NotBeforeError') throw unauthenticated('the access token is not valid yet', 'TOKEN_NOT_YET_VALID', audience);
      if (/audience/.test(e.message)) throw unauthenticated('the access token was issued for another FHIR base', 'TOKEN_AUDIENCE', audience);
      if (/issuer/.test(e.message)) throw unauthenticated('the access token was issued by another authorization server', 'TOKEN_ISSUER', audience);
      throw unauthenticated('the access token signature is invalid', 'TOKEN_SIGNATURE', audience);
    }
    if (typeof claims.exp !== 'number') throw unauthenticated('the access token has no expiry', 'TOKEN_MALFORMED', audience);
    if (claims.tenant !== tenant || !isRole(String(claims.role)) || typeof claims.scope !== 'string' || typeof claims.client_id !== 'string') {
      throw unauthenticated('the access token lacks this server\'s claims (tenant, role, scope, client_id)', 'TOKEN_CLAIMS', audience);
    }
    const access = accessFromToken({ scope: claims.scope, role: claims.role, ...(claims.patient ? { patientId: claims.patient } : {}) });
    const principal: Principal = { claims, guard: new TokenGuard(access) };
    if (this.cache.size >= 20_000) this.cache.clear();
    this.cache.set(token, principal);
    return principal;
  }
}
