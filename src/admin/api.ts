// The admin JSON API under /admin/api (issue 11; docs/admin-api.md): tenants (create with their first admin, list
// with usage, read, update, plan, suspend / reactivate / archive / terminate, usage) and plans. JSON in and out, a
// small body limit, failures as OperationOutcome (src/http/respond.ts errorHandler), nothing cached. Each route is one
// service call of src/admin/tenants.ts, which authorizes the actor and audits.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { TokenVerifier } from '../auth/verify.js';
import { adminAuth } from './auth.js';
import { breakGlassRouter } from './break-glass-api.js';
import {
  archiveTenant,
  changePlan,
  createTenantWithAdmin,
  getTenantUsage,
  getTenantView,
  listPlans,
  listTenantViews,
  reactivateTenant,
  savePlan,
  suspendTenant,
  terminateTenant,
  updateTenant,
  type NewTenantInput,
  type TenantPatch,
} from './tenants.js';
import type { AdminActor } from '../core/admin-actor.js';

/** The largest request body (a tenant's settings and branding are small). */
const BODY_LIMIT = '64kb';

export interface AdminApiOptions {
  /** The authorization server's bearer-token verifier (src/auth/server.ts AuthServer.verifier). */
  verifier: TokenVerifier;
  /** The running oidc-provider (registers a new tenant's operator client). */
  provider: () => Provider;
}

const LIFECYCLE = { suspend: suspendTenant, reactivate: reactivateTenant, archive: archiveTenant, terminate: terminateTenant } as const;

const actorOf = (res: Response) => res.locals.actor as AdminActor;
const slugOf = (req: Request) => String(req.params.slug);

/** The JSON body as an object ({} when none was sent); anything else 400. */
function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body ?? {};
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new FhirError('invalid', 'The body is a JSON object', { code: 'ADMIN_REQUEST_INVALID' });
  return b as Record<string, unknown>;
}

/** A body that is not JSON is refused before it is read (415); malformed or too large JSON answers 400 / 413. */
function jsonOnly(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    next(new FhirError('unsupported-media', 'The admin API takes application/json bodies', { code: 'ADMIN_MEDIA_TYPE' }));
    return;
  }
  next();
}

function bodyErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  const type = (err as { type?: string })?.type;
  if (type === 'entity.too.large') next(new FhirError('too-large', `The body is larger than ${BODY_LIMIT}`, { code: 'ADMIN_BODY_TOO_LARGE', cause: err }));
  else if (type === 'entity.parse.failed') next(new FhirError('invalid', 'The body is not valid JSON', { code: 'ADMIN_BODY_INVALID', cause: err }));
  else next(err);
}

export function adminApi(deps: Deps, o: AdminApiOptions): Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // the caller first: an anonymous body is never parsed
  router.use(adminAuth(deps, o.verifier));
  router.use(jsonOnly, express.json({ limit: BODY_LIMIT, type: ['application/json', 'application/*+json'] }), bodyErrors);

  router.get('/tenants', async (_req, res) => {
    res.json({ tenants: await listTenantViews(deps, actorOf(res)) });
  });
  router.post('/tenants', async (req, res) => {
    const out = await createTenantWithAdmin(deps, actorOf(res), body(req) as unknown as NewTenantInput, { provider: o.provider() });
    res.status(201).setHeader('Location', `${deps.config.publicBaseUrl}/admin/api/tenants/${out.tenant.slug}`).json(out);
  });
  router.get('/tenants/:slug', async (req, res) => {
    res.json(await getTenantView(deps, actorOf(res), slugOf(req)));
  });
  router.patch('/tenants/:slug', async (req, res) => {
    res.json(await updateTenant(deps, actorOf(res), slugOf(req), body(req) as TenantPatch));
  });
  router.get('/tenants/:slug/usage', async (req, res) => {
    res.json(await getTenantUsage(deps, actorOf(res), slugOf(req)));
  });
  router.post('/tenants/:slug/plan', async (req, res) => {
    res.json(await changePlan(deps, actorOf(res), slugOf(req), body(req).plan as string));
  });
  router.post('/tenants/:slug/:action', async (req, res, next) => {
    const name = String(req.params.action);
    if (!Object.hasOwn(LIFECYCLE, name)) return next();
    res.json(await LIFECYCLE[name as keyof typeof LIFECYCLE](deps, actorOf(res), slugOf(req), body(req).reason as string | undefined));
  });
  router.get('/plans', async (_req, res) => {
    res.json({ plans: await listPlans(deps) });
  });
  router.put('/plans/:id', async (req, res) => {
    res.json(await savePlan(deps, actorOf(res), String(req.params.id), body(req)));
  });
  // break-glass: POST/GET /tenants/:slug/break-glass, .../:id/approve|deny|revoke (src/admin/break-glass-api.ts)
  router.use(breakGlassRouter(deps));
  router.use((req, _res, next) => {
    next(new FhirError('not-found', `Nothing at /admin/api${req.path.slice(0, 200)}`, { code: 'PATH_UNKNOWN' }));
  });
  return router;
}
