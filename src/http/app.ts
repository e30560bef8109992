// The Express application: request ids and logging, CORS, operations endpoints, /fhir, errors.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { isMigrated } from '../store/migrate.js';
import { TenantCache } from '../tenancy/tenant-cache.js';
import { proxyTrust } from '../tenancy/security-policy.js';
import { createAuthServer, type AuthServer } from '../auth/server.js';
import { capabilitySecurity } from '../auth/smart-config.js';
import { breakGlassAccess } from '../auth/break-glass.js';
import { dispatcher } from '../fhir/interactions/index.js';
import { Subscriptions } from '../subscriptions/service.js';
import { Exports } from '../export/service.js';
import { localExportStorage } from '../export/worker.js';
import { adminConsole } from '../admin/console.js';
import { adminApi } from '../admin/api.js';
import { fhirRouter, type RequestVerifier } from './fhir-router.js';
import { InFlightRequests } from './inflight.js';
import { errorHandler } from './respond.js';

const SOFTWARE = { name: 'tenfhir', version: '0.1.0' };

export interface AppHandle {
  app: Express;
  tenants: TenantCache;
  auth: AuthServer;
  /** Requests in flight (graceful shutdown cuts them at its deadline). */
  inflight: InFlightRequests;
  /** The subscription service of this app (its writes wake this process's dispatcher once workers run). */
  subscriptions: Subscriptions;
  /** Bulk Data export (its worker: src/export/worker.ts startExportWorker). */
  exports: Exports;
}

export interface AppOptions {
  /**
   * Who is asking, on /fhir. Default: the authorization server's bearer-token verifier (the shipped server always
   * uses it). bench/server-without-auth.ts injects one that skips verification, to measure what verification costs.
   */
  verifier?: RequestVerifier;
}

export function createApp(deps: Deps, opts: AppOptions = {}): AppHandle {
  const app = express();
  const tenants = new TenantCache(deps.db, () => deps.clock());
  const startedAt = deps.clock().toISOString();
  const inflight = new InFlightRequests();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // trusted proxies (src/tenancy/security-policy.ts): whose X-Forwarded-For names the client (req.ip)
  app.set('trust proxy', proxyTrust(deps.config));
  const auth = createAuthServer(deps, tenants);

  app.use((req, res, next) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w\-.:]{1,128}$/.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    // no response is ever to be sniffed into another media type (HTML pages, FHIR JSON, OAuth JSON alike)
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.locals.signal = inflight.track(req, res);
    res.locals.log = deps.log.child({ requestId });
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
      deps.metrics.observeRequest(req.method, res.statusCode, durationMs / 1000);
      // Path only: query strings carry PHI.
      (res.locals.log as typeof deps.log).info({ method: req.method, path: req.path, status: res.statusCode, durationMs: Math.round(durationMs * 100) / 100 }, 'request');
    });
    // CORS: /fhir answers per SMART (src/http/fhir-router.ts), /auth's endpoints per client (oidc-provider).
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.db.ping();
      if (!(await isMigrated(deps.db))) {
        res.status(503).json({ status: 'migrations pending' });
        return;
      }
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'database unreachable' });
    }
  });

  if (deps.config.metricsEnabled) app.get('/metrics', metricsEndpoint(deps));

  app.use('/auth', auth.router);
  const tokens: RequestVerifier = {
    async verify(authorization, audience, tenantId) {
      const p = await auth.verifier.verify(authorization, audience, tenantId);
      const c = p.claims;
      const caller = { clientId: c.client_id, sub: c.sub, role: c.role, scope: c.scope, ...(c.patient ? { patient: c.patient } : {}), ...(c.fhirUser ? { fhirUser: c.fhirUser } : {}) };
      // break-glass (src/auth/break-glass.ts) widens a platform admin's guard while a grant is active
      if (c.role === 'platform-admin') return breakGlassAccess(deps, tenantId, p.guard, caller);
      return { guard: p.guard, clientId: c.client_id, caller };
    },
  };
  const subscriptions = new Subscriptions(deps);
  const exports = new Exports(deps, localExportStorage(deps));
  const dispatch = dispatcher({ software: SOFTWARE, startedAt, security: capabilitySecurity(deps.config.publicBaseUrl) });
  app.use('/fhir', fhirRouter({ deps, tenants, verifier: opts.verifier ?? tokens, origins: auth.origins, dispatch, subscriptions, exports }));
  // admin API (src/admin/api.ts), JSON under /admin/api
  app.use('/admin/api', adminApi(deps, { verifier: auth.verifier, provider: () => auth.provider() }));
  // admin console (src/admin/console.ts), HTML pages under /admin
  app.use('/admin', adminConsole(deps, auth.provider));
  app.use((req, _res, next) => {
    next(new FhirError('not-found', `Nothing at ${req.path.slice(0, 200)}; FHIR bases live under /fhir/{tenant}`, { code: 'PATH_UNKNOWN' }));
  });
  app.use(errorHandler(deps.log));
  return { app, tenants, auth, inflight, subscriptions, exports };
}

/**
 * GET /metrics: the Prometheus text format. With METRICS_TOKEN set, only `Authorization: Bearer <token>` may read it
 * (compared in constant time, over digests so the token's length does not leak either).
 */
function metricsEndpoint(deps: Deps): RequestHandler {
  const token = deps.config.metricsToken;
  const expected = token ? createHash('sha256').update(token).digest() : undefined;
  return async (req, res, next) => {
    if (expected) {
      const given = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      // rendered like every failure: 401 with `WWW-Authenticate: Bearer` (src/http/respond.ts)
      if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
        next(new FhirError('unauthenticated', '/metrics needs Authorization: Bearer <METRICS_TOKEN>'));
        return;
      }
    }
    try {
      const { contentType, body } = await deps.metrics.render();
      res.set({ 'Content-Type': contentType, 'Cache-Control': 'no-store' }).send(body);
    } catch (err) {
      next(err);
    }
  };
}
