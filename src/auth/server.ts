// Everything under /auth, put together: oidc-provider (authorize, token, jwks, revoke, register, logout, discovery)
// behind this server's own endpoints, one file each: authorize.ts (GET/POST), interactions.ts (sign-in, patient
// picker, consent), manage.ts (connected apps), launch.ts (EHR launch), introspect.ts, registration.ts (initial access
// tokens, RFC 7591/7592), smart-config.ts (the style document).
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { api, caller, oauthError } from './api.js';
import { authorizeGet, authorizePost } from './authorize.js';
import { abortInteraction, errorPage, showInteraction, submitConsent, submitLogin, submitTotp, type InteractionDeps } from './interactions.js';
import { introspect } from './introspect.js';
import { createLaunch } from './launch.js';
import { manageLogin, manageLogout, manageRevoke, manageTotp, showApps } from './manage.js';
import { OriginRegistry } from './origins.js';
import { buildProvider, issuerOf } from './provider.js';
import { guardRegistration, guardRegistrationUpdate, initialAccessToken } from './registration.js';
import { AddressThrottle, addressKey } from './sign-in-throttle.js';
import { SMART_STYLE } from './smart-config.js';
import { TokenVerifier } from './verify.js';

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

export function createAuthServer(deps: Deps, tenants: TenantCache): AuthServer {
  const cfg = deps.config;
  const publicUrl = new URL(cfg.publicBaseUrl);
  const keys = deps.auth.keys;
  const issuer = issuerOf(cfg.publicBaseUrl);
  const verifier = new TokenVerifier(keys, issuer, cfg.authClockSkewSeconds, () => deps.clock());
  const origins = new OriginRegistry(deps.db, () => deps.clock());

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
  const throttle = new AddressThrottle(cfg.authIpFailures, cfg.authLockoutMinutes * 60_000, () => deps.clock().getTime());
  const ia: InteractionDeps = { deps, tenants, provider: () => provider, ticketKey: deps.auth.cookieKeys[0], smartStyleUrl: `${issuer}/smart-style.json`, throttle };
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

  // Requests per client address to the token endpoint and the sign-in pages (issue 11, docs/rate-limits.md): 429 as
  // those endpoints answer, OAuth JSON from the token endpoint, a page from the others.
  const perAddress = (json: boolean) => async (req: Request, res: Response, next: NextFunction) => {
    if (!cfg.rateLimitEnabled) return next();
    const v = await deps.rateLimits.take([{ key: `ip:${addressKey(req.ip)}`, limit: cfg.rateLimitAuthIpPerMinute }]);
    if (v.allowed) return next();
    const retry = Math.max(1, v.resetSeconds);
    res.setHeader('Retry-After', String(retry));
    const message = `Too many requests from this address; retry in ${retry} s.`;
    if (json) return oauthError(res, 429, 'temporarily_unavailable', message);
    res.status(429).type('html').send(errorPage(message));
  };
  router.use('/token', perAddress(true));
  router.use(['/authorize', '/interaction', '/manage/:tenant/login', '/manage/:tenant/totp'], perAddress(false));

  /** A server-rendered page: a failure is a page too (the flow expired or is not valid), never a stack. */
  const page = (fn: (a: InteractionDeps, req: Request, res: Response) => Promise<void>, failure: string, status = 400) => async (req: Request, res: Response) => {
    try {
      await fn(ia, req, res);
    } catch (err) {
      deps.log.info({ err: (err as Error).message }, 'auth page failed');
      if (!res.headersSent) res.status(status).type('html').send(errorPage(failure));
    }
  };
  const expired = 'This sign-in request has expired or is not valid any more.';
  const who = (req: Request) => caller(deps, verifier, req, tenants);

  router.post('/authorize', form, authorizePost);
  router.get('/authorize', authorizeGet);
  router.get('/interaction/:uid', page(showInteraction, expired));
  router.post('/interaction/:uid/login', form, page(submitLogin, expired));
  router.post('/interaction/:uid/totp', form, page(submitTotp, expired));
  router.post('/interaction/:uid/consent', form, page(submitConsent, expired));
  router.post('/interaction/:uid/abort', form, page(abortInteraction, expired));

  // SMART management_endpoint: the user's own connected apps, revocable
  const manage = (fn: (a: InteractionDeps, req: Request, res: Response) => Promise<void>) => page(fn, 'Something went wrong; try again.', 500);
  router.get('/manage/:tenant', manage(showApps));
  router.post('/manage/:tenant/login', form, manage(manageLogin));
  router.post('/manage/:tenant/totp', form, manage(manageTotp));
  router.post('/manage/:tenant/revoke', form, manage(manageRevoke));
  router.post('/manage/:tenant/logout', form, manage(manageLogout));

  router.get('/smart-style.json', (_req, res) => void res.json(SMART_STYLE));
  router.post('/launch', json, form, api(deps, async (req, res) => createLaunch(deps, await who(req), req, res)));
  router.post('/introspect', form, api(deps, async (req, res) => introspect(verifier, await who(req), req, res)));
  router.post(
    '/register/initial-access-token',
    json,
    form,
    api(deps, async (req, res) => {
      const out = await initialAccessToken(deps, await who(req), (req.body ?? {}) as Record<string, unknown>, addressKey(req.ip));
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
