// The Express application: request ids and logging, CORS, operations endpoints, /fhir, errors.
import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import type { Deps } from '../fhir/context.js';
import { FhirError } from '../fhir/errors.js';
import { isMigrated } from '../store/migrate.js';
import { TenantCache } from '../store/tenants.js';
import { fhirRouter } from './fhir-router.js';
import { errorHandler } from './respond.js';

export const SOFTWARE = { name: 'tenfhir', version: '0.1.0' };

export interface AppHandle {
  app: Express;
  tenants: TenantCache;
}

export function createApp(deps: Deps): AppHandle {
  const app = express();
  const tenants = new TenantCache(deps.db);
  const startedAt = deps.clock().toISOString();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w\-.:]{1,128}$/.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.locals.log = deps.log.child({ requestId });
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
      // Path only: query strings carry PHI.
      (res.locals.log as typeof deps.log).info({ method: req.method, path: req.path, status: res.statusCode, durationMs: Math.round(durationMs * 100) / 100 }, 'request');
    });
    // CORS for browser apps (tightened per client once authorization lands).
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Location, ETag, Last-Modified, Content-Location, X-Request-Id');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, If-Modified-Since');
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
    }
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

  app.use('/fhir', fhirRouter({ deps, tenants, software: SOFTWARE, startedAt }));
  app.use((req, _res, next) => {
    next(new FhirError('not-found', `Nothing at ${req.path.slice(0, 200)}; FHIR bases live under /fhir/{tenant}`, { code: 'PATH_UNKNOWN' }));
  });
  app.use(errorHandler(deps.log));
  return { app, tenants };
}
