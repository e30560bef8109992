// Break-glass grants in the JSON admin API (issue 11; the rules are src/auth/break-glass.ts's): a sub-router of
// src/admin/api.ts, which authenticates the caller (res.locals.actor), parses JSON bodies and renders failures as
// OperationOutcome JSON.
//   POST /admin/api/tenants/:slug/break-glass              {reason, minutes}  a platform admin asks (201)
//   GET  /admin/api/tenants/:slug/break-glass                                 the tenant's grants (tenant admins: all;
//                                                                             platform admins: their own)
//   POST /admin/api/tenants/:slug/break-glass/:id/approve                     a tenant admin of :slug
//   POST /admin/api/tenants/:slug/break-glass/:id/deny                        a tenant admin of :slug
//   POST /admin/api/tenants/:slug/break-glass/:id/revoke   {reason?}          either side
import express, { type Request, type Response, type Router } from 'express';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { approveBreakGlass, denyBreakGlass, listBreakGlass, requestBreakGlass, revokeBreakGlass } from '../auth/break-glass.js';
import type { AdminActor } from '../core/admin-actor.js';

const actorOf = (res: Response) => res.locals.actor as AdminActor;

/** A path parameter (one segment: never a list here). */
function param(req: Request, name: 'slug' | 'id'): string {
  return String(req.params[name]);
}

/** The JSON body as an object ({} when none was sent); anything else 400. */
function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body ?? {};
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new FhirError('invalid', 'The body is a JSON object', { code: 'ADMIN_REQUEST_INVALID' });
  return b as Record<string, unknown>;
}

export function breakGlassRouter(deps: Deps): Router {
  const router = express.Router();
  const base = '/tenants/:slug/break-glass';
  router.post(base, async (req, res) => {
    const b = body(req);
    res.status(201).json(await requestBreakGlass(deps, actorOf(res), param(req, 'slug'), { reason: b.reason, minutes: b.minutes }));
  });
  router.get(base, async (req, res) => {
    res.json({ grants: await listBreakGlass(deps, actorOf(res), param(req, 'slug')) });
  });
  router.post(`${base}/:id/approve`, async (req, res) => {
    res.json(await approveBreakGlass(deps, actorOf(res), param(req, 'slug'), param(req, 'id')));
  });
  router.post(`${base}/:id/deny`, async (req, res) => {
    res.json(await denyBreakGlass(deps, actorOf(res), param(req, 'slug'), param(req, 'id')));
  });
  router.post(`${base}/:id/revoke`, async (req, res) => {
    res.json(await revokeBreakGlass(deps, actorOf(res), param(req, 'slug'), param(req, 'id'), body(req).reason));
  });
  return router;
}
