// The admin console (issue 11): server-rendered pages under /admin for platform administrators (organizations,
// onboarding, plans, suspension) and tenant administrators (their organization, users, apps, usage), plus the
// invitation pages. /admin/api is the JSON admin API (src/admin/api.ts), mounted before this router and never
// matched here. Every POST needs the session's form token and must not come from another origin.
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { AddressThrottle } from '../auth/sign-in-throttle.js';
import { sendProblem } from './console-layout.js';
import { showInvitation, submitInvitation } from './console-invite.js';
import { showLogin, submitLogin, submitLogout, submitTotp } from './console-login.js';
import { ConsoleKeys, ConsoleSessions, crossSite, equal, field, type ConsoleContext, type ConsoleSession } from './console-session.js';
import { showTenant, showTenants, submitInvite, submitPlan, submitReactivate, submitSuspend } from './console-tenants.js';
import { showWizard, submitWizard } from './console-wizard.js';

type Page = (c: ConsoleContext, req: Request, res: Response) => Promise<void>;
type SignedInPage = (c: ConsoleContext, s: ConsoleSession, req: Request, res: Response) => Promise<void>;

/** The console's router, to mount at /admin; `provider`: the app's authorization server. */
export function adminConsole(deps: Deps, provider: () => Provider): Router {
  const keys = new ConsoleKeys(deps.auth.cookieKeys[0]);
  const c: ConsoleContext = {
    deps,
    keys,
    sessions: new ConsoleSessions(deps, keys),
    ticketKey: deps.auth.cookieKeys[0],
    provider,
    // failed console sign-ins per client address, like the authorization server's own (in this process)
    throttle: new AddressThrottle(deps.config.authIpFailures, deps.config.authLockoutMinutes * 60_000, () => deps.clock().getTime()),
  };
  const form = express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 50 });
  const router = express.Router();

  /** A failure is a page too: a FhirError says what is wrong with its status; anything else is a generic 500. */
  const run = (fn: Page) => async (req: Request, res: Response) => {
    try {
      await fn(c, req, res);
    } catch (err) {
      if (res.headersSent) return;
      if (err instanceof FhirError) return sendProblem(res, err.status, err.status === 404 ? 'Not found' : 'Refused', err.message);
      deps.log.error({ err }, 'admin console page failed');
      sendProblem(res, 500, 'Something went wrong', 'The page could not be shown; try again.');
    }
  };

  /** A page for signed-in administrators: others go to the sign-in page; a POST needs the form token. */
  const signedIn = (fn: SignedInPage) =>
    run(async (_c, req, res) => {
      const s = await c.sessions.current(req, res);
      if (!s) {
        if (req.method === 'GET') return void res.redirect(303, '/admin/login');
        return sendProblem(res, 401, 'Signed out', 'Your session ended; sign in again.');
      }
      if (req.method === 'POST' && (crossSite(deps, req) || !equal(field(req, 'csrf'), s.csrf))) {
        return sendProblem(res, 403, 'Refused', 'This form did not come from this console (or your session changed): reload the page and try again.', s);
      }
      try {
        await fn(c, s, req, res);
      } catch (err) {
        if (!(err instanceof FhirError) || res.headersSent) throw err;
        sendProblem(res, err.status, err.status === 404 ? 'Not found' : 'Refused', err.message, s);
      }
    });

  /** A tenant administrator's pages of another tenant are not there for them (as an unknown tenant). */
  const ownTenant = (fn: SignedInPage): SignedInPage => async (cc, s, req, res) => {
    if (s.actor.kind === 'tenant-admin' && req.params.slug !== s.actor.tenant) return sendProblem(res, 404, 'Not found', 'There is no such organization.', s);
    await fn(cc, s, req, res);
  };

  router.get('/login', run(showLogin));
  router.post('/login', form, run(submitLogin));
  router.post('/login/totp', form, run(submitTotp));
  router.post('/logout', form, run(submitLogout));
  router.get('/invite/:tenant/:token', run(showInvitation));
  router.post('/invite/:tenant/:token', form, run(submitInvitation));

  router.get('/', signedIn(showTenants));
  router.get('/new', signedIn(showWizard));
  router.post('/new', form, signedIn(submitWizard));
  router.get('/tenants/:slug', signedIn(ownTenant(showTenant)));
  router.post('/tenants/:slug/suspend', form, signedIn(ownTenant(submitSuspend)));
  router.post('/tenants/:slug/reactivate', form, signedIn(ownTenant(submitReactivate)));
  router.post('/tenants/:slug/plan', form, signedIn(ownTenant(submitPlan)));
  router.post('/tenants/:slug/invite', form, signedIn(ownTenant(submitInvite)));
  return router;
}
