// The SMART authorization server: oidc-provider configured for SMART App Launch 2.x and Backend Services
// (SMART.md §8 maps each requirement to the option used here). One issuer for the whole server ($PUBLIC_BASE_URL/auth);
// every client belongs to one tenant, and `aud` (the tenant's FHIR base: /fhir/{tenant}, or its own host's /fhir) binds
// each token to that tenant and that base.
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { peekLaunch, findUserById } from '../store/auth-users.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { hostOfBaseUrl } from '../tenancy/tenant-hosts.js';
import type { Config } from '../config/index.js';
import { guardedFetch } from '../platform/outbound.js';
import { grantAccess } from './access.js';
import { auditProviderRoute } from './audit.js';
import { accessTokenClaims, parseAccountId, TENANT_PROPERTY, type SmartContext } from './claims.js';
import { honourJwksCacheControl, noteJwksCacheControl, resolveAssertionKey } from './client-keys.js';
import type { SigningKeys } from '../core/deps.js';
import { page } from './pages.js';
import { parseScopes } from './scopes.js';
import { storeAdapter } from './provider-adapter.js';
import { fullScope, tokenContext, type SmartCtx } from './token-context.js';
import { isTenantSlug, type Tenant } from '../core/tenant.js';
import { sessionIdleSeconds, tokenLifetime } from '../tenancy/security-policy.js';
import { authRefusal, providerAddress } from './tenant-policy.js';

export { TENANT_PROPERTY };
/**
 * Client metadata property with the SMART resource scopes a client may be granted (oidc-provider's own `scope`
 * property only admits the server's static scopes: openid, launch, offline_access, ...).
 */
export const SMART_SCOPE_PROPERTY = 'smart_scope';
/** Client metadata property: the scope ceiling of the initial access token a dynamically registered client came with. */
export const CEILING_PROPERTY = 'scope_ceiling';

/** Everything a client may ask for: its static scopes and its SMART resource scopes. */
export function clientScopes(metadata: Record<string, unknown>): string {
  return [metadata.scope, metadata[SMART_SCOPE_PROPERTY]].filter((s) => typeof s === 'string').join(' ');
}

/** Splits a registration's `scope` into oidc-provider's static part and the SMART resource part. */
export function splitClientScope(scope: string): { scope?: string; smart_scope?: string } {
  const words = scope.split(' ').filter(Boolean);
  const resource = words.filter((w) => /^(patient|user|system)\//.test(w));
  const statics = words.filter((w) => !/^(patient|user|system)\//.test(w));
  return { ...(statics.length ? { scope: statics.join(' ') } : {}), ...(resource.length ? { [SMART_SCOPE_PROPERTY]: resource.join(' ') } : {}) };
}

export interface ProviderOptions {
  deps: Deps;
  keys: SigningKeys;
  tenants: TenantCache;
  cookieKeys: string[];
  /** Renders the authorization server's error page (HTML, no stack). */
  renderError: (ctx: KoaContextWithOIDC, out: Record<string, string>) => void;
}

export function issuerOf(publicBaseUrl: string): string {
  return `${publicBaseUrl}/auth`;
}

/** The tenant slug of a FHIR base URL of this server, or undefined. */
export function tenantOfBase(publicBaseUrl: string, url: string | undefined): string | undefined {
  if (!url) return undefined;
  const prefix = `${publicBaseUrl}/fhir/`;
  if (!url.startsWith(prefix)) return undefined;
  const slug = url.slice(prefix.length).replace(/\/+$/, '');
  return isTenantSlug(slug) ? slug : undefined;
}

/**
 * The tenant slug of a FHIR base of this server: `/fhir/{tenant}` below PUBLIC_BASE_URL, or (TENANT_HOSTS_ENABLED) a
 * tenant's own host base `<scheme>://<host>/fhir` (src/tenancy/tenant-hosts.ts) while that tenant still has the host.
 */
export async function tenantOfAudience(cfg: Config, tenants: TenantCache, url: string | undefined): Promise<string | undefined> {
  const slug = tenantOfBase(cfg.publicBaseUrl, url);
  if (slug || !url || !cfg.tenantHostsEnabled) return slug;
  const host = hostOfBaseUrl(cfg.publicBaseUrl, url);
  const ofHost = host ? await tenants.hosts.tenantOf(host) : undefined;
  return ofHost && (await tenants.get(ofHost))?.host === host ? ofHost : undefined;
}

/** Resource scope strings of a scope parameter (what oidc-provider calls the resource server's scopes). */
function resourceScopeStrings(...scopes: (string | undefined)[]): string[] {
  const out = new Set<string>();
  for (const s of scopes) for (const raw of (s ?? '').split(' ')) if (/^(patient|user|system)\//.test(raw)) out.add(raw);
  return [...out];
}

/** A request's context with the idle timeout its sign-in session is saved with (set where the account is loaded). */
type PolicyCtx = KoaContextWithOIDC & { sessionIdleSeconds?: number };

export function buildProvider(opts: ProviderOptions): Provider {
  const { deps, keys, tenants } = opts;
  const cfg = deps.config;
  const issuer = issuerOf(cfg.publicBaseUrl);
  const secure = cfg.publicBaseUrl.startsWith('https:');

  /** The tenant of the request's client (every client belongs to one; its tokens name that tenant only). */
  const clientTenant = async (ctx: KoaContextWithOIDC): Promise<Tenant | undefined> => {
    const slug = ctx.oidc?.client?.metadata()[TENANT_PROPERTY];
    return typeof slug === 'string' ? tenants.get(slug) : undefined;
  };
  /** access_denied, saying why, when the tenant's lifecycle state or security policy refuses this step (tenant-policy.ts). */
  const enforceTenantPolicy = (ctx: KoaContextWithOIDC, tenant: Tenant, role?: string): void => {
    const why = authRefusal(tenant, providerAddress(ctx), deps.clock(), role);
    if (why) throw new errors.AccessDenied(why);
  };

  /**
   * The FHIR base an id_token's fhirUser URL is written on: the tenant host's base when the grant was for it (host-based
   * tenants), /fhir/{tenant} otherwise.
   */
  const fhirUserBase = async (ctx: KoaContextWithOIDC, tenantId: string): Promise<string> => {
    const e = ctx.oidc?.entities;
    const resource = e?.AuthorizationCode?.resource ?? e?.RefreshToken?.resource;
    if (typeof resource === 'string' && hostOfBaseUrl(cfg.publicBaseUrl, resource) && (await tenantOfAudience(cfg, tenants, resource)) === tenantId) return resource;
    return `${cfg.publicBaseUrl}/fhir/${tenantId}`;
  };

  const policy = interactionPolicy.base();
  // A browser session belongs to one tenant's user (platform administrators excepted): an app of another tenant
  // makes the user sign in again.
  policy.get('login')!.checks.add(
    new interactionPolicy.Check('tenant_mismatch', 'the signed-in user belongs to another tenant', async (ctx) => {
      const acct = ctx.oidc.session?.accountId ? parseAccountId(ctx.oidc.session.accountId) : undefined;
      if (!acct || acct.tenantId === 'platform') return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const aud = await tenantOfAudience(cfg, tenants, (ctx.oidc.params?.aud ?? ctx.oidc.params?.resource) as string | undefined);
      return aud === acct.tenantId ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );

  const configuration: Configuration = {
    adapter: storeAdapter(deps) as never,
    jwks: { keys: keys.signing() as never },
    cookies: {
      keys: opts.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', secure },
      short: { httpOnly: true, sameSite: 'lax', secure },
      names: { session: 'tenfhir_session', interaction: 'tenfhir_interaction', resume: 'tenfhir_resume' },
    },
    routes: {
      authorization: '/authorize',
      token: '/token',
      jwks: '/jwks',
      revocation: '/revoke',
      registration: '/register',
      end_session: '/logout',
      userinfo: '/userinfo',
      introspection: '/oidc-introspection',
    },
    responseTypes: ['code'],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      // SMART asymmetric client auth: RS384 and ES384 (not enabled by oidc-provider by default)
      clientAuthSigningAlgValues: ['RS384', 'ES384', 'RS256', 'ES256', 'PS384', 'PS256'],
      idTokenSigningAlgValues: ['RS256'],
    },
    clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'RS256' },
    extraClientMetadata: {
      properties: [TENANT_PROPERTY, SMART_SCOPE_PROPERTY, CEILING_PROPERTY],
      validator(_ctx, key, value, metadata) {
        if (key === TENANT_PROPERTY && !isTenantSlug(value)) {
          throw new errors.InvalidClientMetadata('tenant must be a tenant slug');
        }
        // SMART Backend Services are asymmetric only: "this [client secret] profile is not intended for SMART Backend
        // Services clients" (client-confidential-symmetric.html)
        if (key === TENANT_PROPERTY && (metadata.grant_types as string[] | undefined)?.includes('client_credentials') && metadata.token_endpoint_auth_method !== 'private_key_jwt') {
          throw new errors.InvalidClientMetadata('a client_credentials (backend services) client must authenticate with private_key_jwt');
        }
        if (key === CEILING_PROPERTY && value !== undefined && typeof value !== 'string') throw new errors.InvalidClientMetadata(`${CEILING_PROPERTY} must be a scope string`);
        if (key === SMART_SCOPE_PROPERTY && value !== undefined && (typeof value !== 'string' || parseScopes(value).rejected.length)) {
          throw new errors.InvalidClientMetadata(`${SMART_SCOPE_PROPERTY} must be SMART resource scopes`);
        }
      },
    },
    extraParams: {
      // SMART aud: the FHIR base of the client's own tenant. The sign-in pages pick the tenant from aud (resource
      // when aud is absent), so a resource indicator beside it must name the same base: otherwise an app of one
      // tenant could have another tenant's users sign in to it (resource = own base passes the audience check).
      async aud(ctx, value, client) {
        if (value === undefined) return;
        const resource = ctx.oidc.params?.resource;
        if (resource !== undefined && resource !== value) throw new errors.InvalidTarget('resource and aud must name the same FHIR base');
        const slug = await tenantOfAudience(cfg, tenants, String(value));
        if (!slug || slug !== client.metadata()[TENANT_PROPERTY]) throw new errors.InvalidTarget("aud must be the FHIR base URL of this client's tenant");
      },
      // EHR launch: the opaque launch value must name a live context of this tenant (and of this client, if bound)
      async launch(ctx, value, client) {
        if (value === undefined) return;
        const tenant = await tenantOfAudience(cfg, tenants, (ctx.oidc.params?.aud ?? ctx.oidc.params?.resource) as string | undefined);
        const l = tenant ? await peekLaunch(deps.db, tenant, String(value)) : undefined;
        if (!l || (l.clientId && l.clientId !== client.clientId)) throw new errors.InvalidRequest('launch is unknown, expired or issued for another app');
      },
    },
    scopes: ['openid', 'offline_access', 'online_access', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter'],
    claims: { openid: ['sub'], fhirUser: ['fhirUser'], profile: ['name', 'preferred_username'] },
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const acct = parseAccountId(sub);
      if (!acct) return undefined;
      const user = await findUserById(deps.db, acct.tenantId, acct.userId);
      if (!user || user.disabled) return undefined;
      const tenant = await clientTenant(ctx);
      // the token endpoint (authorization code, refresh token) loads the account before a refresh token is used up
      if (ctx.oidc?.route === 'token') {
        if (tenant) enforceTenantPolicy(ctx, tenant, user.role);
      } else (ctx as PolicyCtx).sessionIdleSeconds = sessionIdleSeconds(cfg, tenant);
      return {
        accountId: sub,
        async claims() {
          const fhirUser = user.fhirUser ? `${await fhirUserBase(ctx, user.tenantId)}/${user.fhirUser}` : undefined;
          return { sub, ...(fhirUser ? { fhirUser } : {}), ...(user.displayName ? { name: user.displayName } : {}), preferred_username: user.username };
        },
      };
    },
    // Every SMART launch establishes its own context (patient pick, EHR launch): grants are never silently reused.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    pkce: { required: () => true }, // SMART 2: PKCE S256 for every client (oidc-provider accepts S256 only)
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      userinfo: { enabled: false },
      introspection: { enabled: false }, // JWT access tokens: src/auth/introspect.ts answers RFC 7662
      revocation: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // our own pages (oidc-provider's load web fonts from Google)
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page({ title: 'Sign out?', body: `${form}<p>Do you want to sign out?</p><button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button> <button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>` });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page({ title: 'Signed out', body: '<p>You are signed out. You can close this page.</p>' });
        },
      },
      // guarded in src/auth/registration.ts (initial access tokens, tenant, scope ceiling); RFC 7592 reads, updates and
      // deletes with the registration access token issued here
      registration: { enabled: true, initialAccessToken: false, issueRegistrationAccessToken: true },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf[0] ?? oneOf;
          if (ctx.oidc.route === 'authorization') {
            const aud = ctx.oidc.params?.aud as string | undefined;
            // SMART: "aud" is required and must be the FHIR base the app will call
            if (!aud) throw new errors.InvalidRequest("missing required parameter 'aud' (the FHIR base URL of the tenant)");
            return aud;
          }
          // Backend Services send no aud: the client's own tenant
          return `${cfg.publicBaseUrl}/fhir/${client.metadata()[TENANT_PROPERTY] as string}`;
        },
        useGrantedResource: () => true,
        async getResourceServerInfo(ctx, indicator, client) {
          const slug = await tenantOfAudience(cfg, tenants, indicator);
          const own = client.metadata()[TENANT_PROPERTY];
          if (!slug || slug !== own) throw new errors.InvalidTarget("aud must be the FHIR base URL of this client's tenant");
          const tenant = await tenants.get(slug);
          if (!tenant) throw new errors.InvalidTarget('aud names no tenant of this server');
          const params = ctx.oidc.params ?? {};
          const backend = ctx.oidc.route === 'token' && params.grant_type === 'client_credentials';
          // users are checked again once known (findAccount, the sign-in pages); a backend client acts as 'system'
          enforceTenantPolicy(ctx, tenant, backend ? 'system' : undefined);
          if (backend) {
            // SMART Backend Services: requested ∩ pre-authorized (the client's registered scope) ∩ the system ceiling
            // no scope parameter: the client's whole pre-authorized scope (SMART: "server default scopes")
            const allowed = clientScopes(client.metadata());
            const requested = params.scope ? String(params.scope) : allowed;
            const g = grantAccess({ requested, clientAllowed: allowed, role: 'system' });
            if (!g.access.scopes.length) throw new errors.InvalidScope('none of the requested scopes is allowed for this client', requested);
            (ctx as SmartCtx).smart = { tenant: slug, aud: indicator, role: 'system', scope: g.scope, other: [], needPatientBanner: false };
          }
          const grant = ctx.oidc.entities?.Grant;
          const universe = resourceScopeStrings(params.scope as string | undefined, grant?.getResourceScope(indicator), ctx.oidc.entities?.RefreshToken?.scope);
          return {
            scope: universe.join(' ') || 'system/none.r',
            audience: indicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: tokenLifetime(backend ? cfg.authBackendTokenTtl : cfg.authTokenTtl, tenant),
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // SMART 1.0/2.0 refresh: offline_access (lives on) and online_access (ends with the sign-in session)
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access'));
    },
    async expiresWithSession(_ctx, code) {
      return !code.scopes.has('offline_access');
    },
    rotateRefreshToken: true,
    async extraTokenClaims(ctx, token) {
      const smart = await tokenContext(deps, ctx as SmartCtx, token as never);
      return smart ? { ...accessTokenClaims(smart) } : undefined;
    },
    formats: {
      customizers: {
        // the JWT's scope is the effective grant (requested ∩ client ∩ role ceiling), not oidc-provider's string match
        async jwt(ctx, token, jwt) {
          const smart = await tokenContext(deps, ctx as SmartCtx, token as never);
          if (smart) jwt.payload.scope = fullScope(smart);
        },
      },
    },
    // SMART asymmetric client auth checks oidc-provider leaves to the application (SMART.md §5)
    async assertJwtClientAuthClaimsAndHeader(ctx, claims, header, client) {
      if (claims.sub !== client.clientId) throw new errors.InvalidClientAuth('sub (JWT subject) must be the client_id');
      const now = Math.floor(deps.clock().getTime() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp > now + 300) throw new errors.InvalidClientAuth('exp must be no more than five minutes in the future');
      if (header.typ !== undefined && header.typ !== 'JWT') throw new errors.InvalidClientAuth('typ must be JWT');
      const jku = (header as { jku?: string }).jku;
      if (jku !== undefined && jku !== client.jwksUri) throw new errors.InvalidClientAuth('jku does not match the registered JWKS URL');
      await resolveAssertionKey(client, header, String(ctx.oidc.params?.client_assertion ?? ''));
    },
    // records what each client's JWKS response allows to be cached (see resolveAssertionKey)
    async fetch(input, init) {
      const url = input instanceof Request ? input.url : String(input);
      // client JWKS URLs: no fetching into this server's own networks, no redirects, address pinned against DNS
      // rebinding (AUTH_ALLOW_PRIVATE_JWKS_URLS for development)
      const res = await guardedFetch(cfg.authAllowPrivateJwksUrls)(input, init);
      noteJwksCacheControl(url, res.headers);
      return res;
    },
    clientBasedCORS(_ctx, origin, client) {
      // the token endpoint, for browser apps: only the client's registered origins (its redirect URIs)
      return client.redirectUris?.some((u) => URL.parse(u)?.origin === origin) ?? false;
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? cfg.authTokenTtl,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? cfg.authBackendTokenTtl,
      AuthorizationCode: 60,
      IdToken: cfg.authTokenTtl,
      Interaction: 30 * 60,
      // re-saved on every authorization request, so this is an idle timeout: the tenant's (findAccount), at most the server's
      Session: (ctx) => (ctx as PolicyCtx).sessionIdleSeconds ?? sessionIdleSeconds(cfg, undefined),
      Grant: cfg.authRefreshTokenDays * 86_400,
      // online_access: usable while the sign-in session lives (oidc-provider checks the session); capped at a day
      RefreshToken: (_ctx, token) => (token.expiresWithSession ? 86_400 : cfg.authRefreshTokenDays * 86_400),
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `/auth/interaction/${interaction.uid}`,
    },
    async renderError(ctx, out) {
      opts.renderError(ctx, out as unknown as Record<string, string>);
    },
    // POST at the authorization endpoint is answered in src/auth/authorize.ts (a 303 to the same request as GET), so
    // the session cookie can stay SameSite=Lax and work over plain http in development
    enableHttpPostMethods: false,
    clockTolerance: 5,
  };

  const provider = new Provider(issuer, configuration);
  // URLs are built from PUBLIC_BASE_URL (src/auth/server.ts sets Host and X-Forwarded-Proto from it)
  provider.proxy = true;
  honourJwksCacheControl(provider, deps);

  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token' || route === 'revocation') asInvalidClient(ctx);
    if (route === 'token') smartTokenResponse(ctx as SmartCtx);
    // the response is final but not sent yet: its audit record is stored first (issue 12); a fault there never
    // turns an answer into a 500
    await auditProviderRoute(deps, ctx as SmartCtx).catch((err) => deps.log.error({ err, route }, 'auditing an authorization server response failed'));
  });
  return provider;
}

/** The SMART parts of a token response: the effective scope and the launch context. */
function smartTokenResponse(ctx: SmartCtx): void {
  // SMART: token responses carry Cache-Control: no-store AND Pragma: no-cache
  ctx.set('Pragma', 'no-cache');
  const body = ctx.body as Record<string, unknown> | undefined;
  const smart = ctx.smart;
  if (ctx.status === 200 && body?.access_token && smart) {
    body.scope = fullScope(smart);
    if (smart.patient) body.patient = smart.patient;
    if (smart.encounter) body.encounter = smart.encounter;
    if (smart.role !== 'system') {
      // SMART launch context: the organization (tenant) that launched the app, the banner and style hints
      body.tenant = smart.tenant;
      body.need_patient_banner = smart.needPatientBanner;
      if (smart.smartStyleUrl) body.smart_style_url = smart.smartStyleUrl;
    }
  }
}

/**
 * oidc-provider answers some failures of client authentication with `invalid_request` (a client_assertion that is not a
 * JWT, one whose subject is not the client_id sent beside it, a wrong client_assertion_type, no credentials at all).
 * SMART (client-confidential-asymmetric.html#response, SHALL) and RFC 6749 §5.2 make every authentication failure
 * `invalid_client`, 401.
 */
const CLIENT_AUTH_FAILURE = /client_assertion|client authentication|client_id mismatch|client_secret|authorization header|OAuth-Client-Attestation/i;

function asInvalidClient(ctx: { status: number; body: unknown }): void {
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (ctx.status !== 400 || body?.error !== 'invalid_request' || !CLIENT_AUTH_FAILURE.test(body.error_description ?? '')) return;
  ctx.status = 401;
  ctx.body = { ...body, error: 'invalid_client' };
}
