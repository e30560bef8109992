// SMART asymmetric client authentication beyond what oidc-provider checks (client-confidential-asymmetric.html):
// the one registered key that verifies an assertion, and client JWKS URLs cached no longer than they allow.
import { createPublicKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { TENANT_PROPERTY } from './claims.js';

// SMART client-confidential-asymmetric.html#signature-verification and #response, on top of oidc-provider:
// - the key that verifies an assertion is THE single registered key whose kid is the header's kid and whose kty fits
//   the alg ("If no keys match, or more than one key matches, the verification fails"); oidc-provider would try every
//   key of the alg's type when kid is absent, and each of several keys sharing a kid;
// - "The FHIR authorization server SHALL NOT cache a JWKS for longer than the client's cache-control header
//   indicates": oidc-provider keeps a fetched jwks_uri for at least 60 s whatever the header says, and consults the
//   cache's age only when a signature fails. Each JWKS response's Cache-Control/Expires is recorded (the provider's `fetch` option),
//   a client's key store counts as stale once that has passed, and a stale store is re-fetched before the key is
//   resolved, so a key the client removed stops at once and a new one works at once.

/** JWKS URL -> until when (epoch ms) its last response may be cached (undefined: it said nothing), and how often it was fetched. */
const jwksFetches = new Map<string, { until: number | undefined; count: number }>();

function normalUrl(url: string): string {
  return URL.parse(url)?.href ?? url;
}

/** Seconds a response may be cached by its Cache-Control (no-store/no-cache: 0, max-age) or Expires; undefined if silent. */
function cacheLifetimeSeconds(headers: Headers, nowMs = Date.now()): number | undefined {
  const cc = headers.get('cache-control');
  if (cc) {
    if (/(?:^|,)\s*(?:no-store|no-cache)\b/i.test(cc)) return 0;
    const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)/i.exec(cc);
    if (m) return Number(m[1]);
  }
  const expires = headers.get('expires');
  if (expires !== null) {
    const at = Date.parse(expires);
    return Number.isNaN(at) ? 0 : Math.max(0, Math.floor((at - nowMs) / 1000)); // an invalid Expires means expired
  }
  return undefined;
}

export function noteJwksCacheControl(url: string, headers: Headers): void {
  const lifetime = cacheLifetimeSeconds(headers);
  const key = normalUrl(url);
  if (jwksFetches.size >= 10_000) jwksFetches.clear();
  const count = (jwksFetches.get(key)?.count ?? 0) + 1;
  jwksFetches.set(key, { until: lifetime === undefined ? undefined : Date.now() + lifetime * 1000, count });
}

/** The part of oidc-provider's (internal) client key store used here: its keys, and for a JWKS URL its cache state. */
interface ClientKeyStore extends Iterable<Record<string, unknown>> {
  jwksUri?: string;
  fresh?(): boolean;
  refresh?(): Promise<void>;
}

function keyStoreOf(client: unknown): ClientKeyStore | undefined {
  const ks = (client as { asymmetricKeyStore?: ClientKeyStore }).asymmetricKeyStore;
  return ks && typeof ks[Symbol.iterator] === 'function' ? ks : undefined;
}

const patchedStores = new WeakSet<object>();
/** Stores fetched a moment ago: fresh for exactly one more check (ends oidc-provider's verify-refresh-verify retry). */
const justFetched = new WeakSet<object>();

/**
 * Makes oidc-provider's client key stores honour the client's cache headers below its 60 s floor: the store class is
 * internal, so its prototype is reached through a throwaway client that is never saved.
 */
export function honourJwksCacheControl(provider: Provider, deps: Deps): void {
  let proto: { fresh?: (this: ClientKeyStore) => boolean; refresh?: (this: ClientKeyStore) => Promise<void> } | undefined;
  try {
    const ClientClass = provider.Client as unknown as new (metadata: Record<string, unknown>) => unknown;
    const probe = new ClientClass({ client_id: 'jwks-cache-probe', [TENANT_PROPERTY]: 'probe', redirect_uris: ['https://probe.invalid/cb'], token_endpoint_auth_method: 'none' });
    proto = Object.getPrototypeOf(keyStoreOf(probe) ?? {});
  } catch {
    proto = undefined;
  }
  const fresh = proto?.fresh;
  const refresh = proto?.refresh;
  if (!proto || typeof fresh !== 'function' || typeof refresh !== 'function') {
    deps.log.warn('oidc-provider internals changed: client JWKS caching falls back to its 60 s minimum (SMART: no longer than the client allows)');
    return;
  }
  if (patchedStores.has(proto)) return;
  patchedStores.add(proto);
  proto.refresh = async function refreshStore(this: ClientKeyStore): Promise<void> {
    const key = normalUrl(this.jwksUri ?? '');
    const before = jwksFetches.get(key)?.count;
    await refresh.call(this);
    if (this.jwksUri && jwksFetches.get(key)?.count !== before) justFetched.add(this);
  };
  proto.fresh = function freshStore(this: ClientKeyStore): boolean {
    if (!fresh.call(this)) return false;
    if (!this.jwksUri) return true;
    const until = jwksFetches.get(normalUrl(this.jwksUri))?.until;
    if (until === undefined || until > Date.now()) return true;
    // the client allows no more caching: usable only by the check right after its fetch
    return justFetched.delete(this);
  };
}

function ktyOfAlg(alg: unknown): string | undefined {
  if (typeof alg !== 'string') return undefined;
  if (/^(RS|PS)/.test(alg)) return 'RSA';
  if (alg.startsWith('ES')) return 'EC';
  return undefined;
}

/** SMART's key resolution for a client assertion that oidc-provider has verified against its (possibly stale) cache. */
export async function resolveAssertionKey(client: unknown, header: Record<string, unknown>, assertion: string): Promise<void> {
  const kid = header.kid;
  if (typeof kid !== 'string' || !kid) throw new errors.InvalidClientAuth('the client assertion header must carry the kid of a registered key');
  const ks = keyStoreOf(client);
  if (!ks) throw new errors.InvalidClientAuth('the client has no registered keys');
  if (ks.jwksUri && ks.fresh && ks.refresh && !ks.fresh()) {
    try {
      await ks.refresh();
    } catch {
      throw new errors.InvalidClientAuth("the client's JWKS URL could not be fetched");
    }
    justFetched.delete(ks); // this request uses the fetch; the next one must not
  }
  const kty = ktyOfAlg(header.alg);
  const matches = [...ks].filter((k) => k.kid === kid && k.kty === kty);
  if (matches.length !== 1) throw new errors.InvalidClientAuth(matches.length ? `more than one registered key has kid ${kid}` : `no registered key has kid ${kid} for ${String(header.alg)}`);
  try {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = matches[0];
    jwt.verify(assertion, createPublicKey({ key: pub as never, format: 'jwk' }), { algorithms: [header.alg as jwt.Algorithm], ignoreExpiration: true, ignoreNotBefore: true });
  } catch {
    throw new errors.InvalidClientAuth(`the client assertion is not signed by the registered key ${kid}`);
  }
}
