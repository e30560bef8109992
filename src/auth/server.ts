// Everything under /auth: oidc-provider (authorize, token, jwks, revoke, register, logout, discovery) behind this
// server's own pieces: the interaction pages, the EHR launch API, token introspection for JWT access tokens, the
// initial access tokens that guard dynamic registration, and the SMART style document.
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import jwt from 'jsonwebtoken';
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { insertLaunch } from '../store/auth-users.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { abortInteraction, errorPage, showInteraction, submitConsent, submitLogin, submitTotp, type InteractionDeps } from './interactions.js';
import { manageLogin, manageLogout, manageRevoke, manageTotp, showApps } from './manage.js';
import { OriginRegistry } from './origins.js';
import { AddressThrottle } from './sign-in-throttle.js';
import { buildProvider, issuerOf, tenantOfBase } from './provider.js';
import { guardRegistration, guardRegistrationUpdate, initialAccessToken } from './registration.js';
import { bearerToken, TokenVerifier, type Principal } from './verify.js';
import { currentVersion } from '../store/resources.js';

export interface AuthServer {
  router: Router;
  verifier: TokenVerifier;
  origins: OriginRegistry;
  /** The current oidc-provider instance (rebuilt when the signing keys change). */
  provider(): Provider;
  /** Re-reads the signing keys; rebuilds the provider when they changed. */
  refreshKeys(): Promise<boolean>;
  close(): void;
}

/** Roles that may create EHR launch contexts and initial access tokens. */
const LAUNCHERS = new Set(['tenant-admin', 'practitioner', 'receptionist', 'lab-technician', 'system']);

function oauthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).setHeader('Cache-Control', 'no-store');
  if (status === 401) res.setHeader('WWW-Authenticate', `Bearer error="${error}", error_description="${description.replace(/"/g, '')}"`);
  res.json({ error, error_description: description });
}

export function createAuthServer(deps: Deps, tenants: TenantCache): AuthServer {
  const cfg = deps.config;
  const publicUrl = new URL(cfg.publicBaseUrl);
  const keys = deps.auth.keys;
  const issuer = issuerOf(cfg.publicBaseUrl);
  const verifier = new TokenVerifier(keys, issuer, cfg.authClockSkewSeconds);
  const origins = new OriginRegistry(deps.db);
  const smartStyleUrl = `${issuer}/smart-style.json`;

  const renderError = (ctx: { type: string; body: unknown; status: number }, out: Record<string, string>) => {
    ctx.type = 'html';
    ctx.body = errorPage(`${out.error ?? 'error'}: ${out.error_description ?? 'the request could not be processed'}`);
  };
  const make = () => buildProvider({ deps, keys, tenants, cookieKeys: deps.auth.cookieKeys, renderError: renderError as never });
  let provider = make();
  let keyCheck: NodeJS.Timeout | undefined;
  const refreshKeys = async () => {
    const changed = await keys.refresh();
    if (changed) provider = make();
    return changed;
  };
  // Rotation by the CLI or another process: picked up within 30 s (verification also re-reads on an unknown kid).
  keyCheck = setInterval(() => void refreshKeys().catch((err) => deps.log.warn({ err }, 'signing key refresh failed')), 30_000);
  keyCheck.unref();

  // failed sign-ins per client address: in this process's memory (issue 8; docs/auth-design.md, "Lockout")
  const throttle = new AddressThrottle(cfg.authIpFailures, cfg.authLockoutMinutes * 60_000);
  const ia: InteractionDeps = { deps, tenants, provider: () => provider, ticketKey: deps.auth.cookieKeys[0], smartStyleUrl, throttle };
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '32kb' });
  const json = express.json({ limit: '64kb', type: ['application/json'] });

  // oidc-provider builds every URL from the request; make it PUBLIC_BASE_URL's whatever the Host header says.
  router.use((req, _res, next) => {
    req.headers.host = publicUrl.host;
    req.headers['x-forwarded-proto'] = publicUrl.protocol.slice(0, -1);
    delete req.headers['x-forwarded-host'];
    next();
  });

  const page = (fn: (a: InteractionDeps, req: Request, res: Response) => Promise<void>) => async (req: Request, res: Response) => {
    try {
      await fn(ia, req, res);
    } catch (err) {
      deps.log.info({ err: (err as Error).message }, 'interaction failed');
      if (!res.headersSent) res.status(400).type('html').send(errorPage('This sign-in request has expired or is not valid any more.'));
    }
  };
  // SMART: the authorization endpoint takes GET and POST. A POSTed form becomes the same request as a GET (303).
  router.post('/authorize', form, (req, res) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (typeof v === 'string') params.append(k, v);
    res.redirect(303, `/auth/authorize?${params.toString()}`);
  });
  // oidc-provider drops offline_access unless prompt includes consent (an OIDC Core rule); SMART apps do not send
  // prompt=consent, and every launch here shows the consent page anyway, so it is added for them.
  router.get('/authorize', (req, _res, next) => {
    const q = req.url.indexOf('?');
    const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    const scopes = (params.get('scope') ?? '').split(' ');
    const prompt = (params.get('prompt') ?? '').split(' ').filter(Boolean);
    if (scopes.includes('offline_access') && !prompt.includes('consent') && !prompt.includes('none')) {
      params.set('prompt', [...prompt, 'consent'].join(' '));
      req.url = `/authorize?${params.toString()}`;
    }
    next();
  });
  router.get('/interaction/:uid', page(showInteraction));
  router.post('/interaction/:uid/login', form, page(submitLogin));
  router.post('/interaction/:uid/totp', form, page(submitTotp));
  router.post('/interaction/:uid/consent', form, page(submitConsent));
  router.post('/interaction/:uid/abort', form, page(abortInteraction));

  // SMART management_endpoint: the user's own connected apps, revocable (src/auth/manage.ts)
  const manage = (fn: (a: InteractionDeps) => (req: Request, res: Response) => Promise<void>) => {
    const handler = fn(ia);
    return async (req: Request, res: Response) => {
      try {
        await handler(req, res);
      } catch (err) {
        deps.log.error({ err }, 'connected-apps page failed');
        if (!res.headersSent) res.status(500).type('html').send(errorPage('Something went wrong; try again.'));
      }
    };
  };
  router.get('/manage/:tenant', manage(showApps));
  router.post('/manage/:tenant/login', form, manage(manageLogin));
  router.post('/manage/:tenant/totp', form, manage(manageTotp));
  router.post('/manage/:tenant/revoke', form, manage(manageRevoke));
  router.post('/manage/:tenant/logout', form, manage(manageLogout));

  router.get('/smart-style.json', (_req, res) => {
    res.json({ color_background: '#f4f6f8', color_error: '#8a1c12', color_highlight: '#1f6fc5', color_modal_backdrop: '', color_success: '#2e7d32', color_text: '#1d2733', dim_border_radius: '8px', dim_font_size: '16px', dim_spacing_size: '16px', font_family_body: 'system-ui, sans-serif', font_family_heading: 'system-ui, sans-serif' });
  });

  /** A bearer access token of this server, for the tenant its aud names (401 otherwise). */
  async function caller(req: Request): Promise<Principal> {
    const token = bearerToken(req.headers.authorization);
    // the unverified aud only picks the tenant to verify against; verify() then checks everything
    const payload = token ? jwt.decode(token) : undefined;
    const aud = payload && typeof payload === 'object' ? payload.aud : undefined;
    const slug = tenantOfBase(cfg.publicBaseUrl, typeof aud === 'string' ? aud : undefined);
    if (!slug) throw new FhirError('unauthenticated', 'A Bearer access token of this server is required', { code: 'TOKEN_MISSING' });
    return verifier.verify(req.headers.authorization, `${cfg.publicBaseUrl}/fhir/${slug}`, slug);
  }

  const api = (fn: (req: Request, res: Response) => Promise<void>) => async (req: Request, res: Response) => {
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

  // EHR launch (SMART app-launch.html#launch-app-ehr-launch): an authenticated EHR user or system creates the
  // context; the app receives `launch` and `iss` and presents `launch` at the authorize endpoint.
  router.post(
    '/launch',
    json,
    form,
    api(async (req, res) => {
      const who = await caller(req);
      if (!LAUNCHERS.has(who.claims.role)) throw new FhirError('forbidden', 'This role may not launch apps', { code: 'SCOPE_INSUFFICIENT' });
      const body = (req.body ?? {}) as Record<string, unknown>;
      const patient = typeof body.patient === 'string' ? body.patient.replace(/^Patient\//, '') : undefined;
      const encounter = typeof body.encounter === 'string' ? body.encounter.replace(/^Encounter\//, '') : undefined;
      const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
      if (!patient && !encounter) throw new FhirError('invalid', 'A launch needs a patient (and optionally an encounter)', { code: 'LAUNCH_INVALID' });
      const tenant = who.claims.tenant;
      for (const [type, id] of [['Patient', patient], ['Encounter', encounter]] as const) {
        if (!id) continue;
        // the launcher must be able to read what it puts in context, and it must exist in this tenant
        const d = who.guard.decide({ interaction: 'read', resourceType: type, id });
        if (!d.allow) throw new FhirError('forbidden', `The launcher may not read ${type}/${id}`, { code: 'SCOPE_INSUFFICIENT' });
        const row = await currentVersion(deps.db, tenant, type, id);
        if (!row || row.deleted) throw new FhirError('invalid', `${type}/${id} does not exist in this tenant`, { code: 'LAUNCH_INVALID' });
      }
      const id = randomBytes(18).toString('base64url');
      const ttl = 300;
      await insertLaunch(deps.db, { tenantId: tenant, id, clientId: clientId ?? null, patient: patient ?? null, encounter: encounter ?? null, createdBy: who.claims.sub, expiresAt: new Date(Date.now() + ttl * 1000) });
      res.status(201).setHeader('Cache-Control', 'no-store');
      res.json({ launch: id, iss: who.claims.aud, expires_in: ttl, ...(patient ? { patient } : {}), ...(encounter ? { encounter } : {}) });
    }),
  );

  // RFC 7662 for the JWT access tokens (oidc-provider cannot introspect those): the caller authenticates with its
  // own bearer token (SMART token-introspection.html); only tokens of the caller's tenant are ever reported active.
  router.post(
    '/introspect',
    form,
    api(async (req, res) => {
      const who = await caller(req);
      if (who.claims.role !== 'system' && who.claims.role !== 'tenant-admin') throw new FhirError('forbidden', 'Introspection needs a backend (system) or tenant-admin token', { code: 'SCOPE_INSUFFICIENT' });
      const token = typeof req.body?.token === 'string' ? req.body.token : '';
      if (!token) throw new FhirError('invalid', "the 'token' parameter is required", { code: 'TOKEN_MISSING' });
      res.setHeader('Cache-Control', 'no-store');
      try {
        const p = await verifier.verify(`Bearer ${token}`, who.claims.aud, who.claims.tenant);
        const c = p.claims;
        // SMART: every launch context parameter of the token response (patient, encounter, tenant, banner, style)
        res.json({
          active: true, scope: c.scope, client_id: c.client_id, sub: c.sub, iss: c.iss, aud: c.aud, exp: c.exp, iat: c.iat, token_type: 'Bearer',
          ...(c.patient ? { patient: c.patient } : {}),
          ...(c.encounter ? { encounter: c.encounter } : {}),
          ...(c.fhirUser ? { fhirUser: `${c.aud}/${c.fhirUser}` } : {}),
          ...(c.role !== 'system' ? { tenant: c.tenant } : {}),
          ...(c.need_patient_banner !== undefined ? { need_patient_banner: c.need_patient_banner } : {}),
          ...(c.smart_style_url ? { smart_style_url: c.smart_style_url } : {}),
        });
      } catch {
        res.json({ active: false });
      }
    }),
  );

  // Initial access tokens for RFC 7591 registration: a tenant admin obtains one (single use, 24 h), capped by their own access.
  router.post(
    '/register/initial-access-token',
    json,
    form,
    api(async (req, res) => {
      const out = await initialAccessToken(deps, await caller(req), (req.body ?? {}) as Record<string, unknown>);
      res.status(201).setHeader('Cache-Control', 'no-store');
      res.json(out);
    }),
  );

  // Dynamic registration (RFC 7591) and its management (RFC 7592): the tenant and scope ceiling are set here, everything
  // else is oidc-provider's registration endpoint (which checks the registration access token of reads and updates).
  router.post('/register', json, guardRegistration(deps, origins));
  router.put('/register/:clientId', json, guardRegistrationUpdate(deps, origins));
  router.delete('/register/:clientId', (_req, _res, next) => {
    origins.invalidate();
    next();
  });

  router.use((req, res) => provider.callback()(req, res));

  return {
    router,
    verifier,
    origins,
    provider: () => provider,
    refreshKeys,
    close() {
      if (keyCheck) clearInterval(keyCheck);
      keyCheck = undefined;
    },
  };
}

export { capScope, issueRegistrationToken } from './registration.js';
