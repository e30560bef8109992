// Signing in to the admin console (issue 11): organization ('platform' for platform administrators, else a tenant
// slug), username and password, then the TOTP step (enrolment when the tenant requires a second factor and the account
// has none) — the same checks, lockout and address throttle as the authorization server's sign-in (src/auth/login.ts).
// Only platform administrators and the organization's own tenant administrators get in.
import type { Request, Response } from 'express';
import { isServing, isTenantSlug, PLATFORM, type Tenant } from '../core/tenant.js';
import { findUserById, type UserRecord } from '../store/auth-users.js';
import { findTenant } from '../store/tenants.js';
import { auditSignIn, recordAuthEvents, userAgent } from '../auth/audit.js';
import { checkPassword, checkTotp, readTicket, signTicket, type LoginOutcome, type SignInContext } from '../auth/login.js';
import { addressKey } from '../auth/sign-in-throttle.js';
import { authRefusal } from '../auth/tenant-policy.js';
import { otpauthUri } from '../auth/totp.js';
import { errorBox, esc, sendConsole, sendProblem } from './console-layout.js';
import { consoleRole, crossSite, equal, field, type ConsoleContext } from './console-session.js';

const NOT_ADMIN = 'This account may not use the admin console: it is for platform administrators and organization administrators.';

const ticketUid = (org: string) => `admin-console:totp:${org}`;

function signInContext(c: ConsoleContext, req: Request): SignInContext {
  return { deps: c.deps, throttle: c.throttle, address: addressKey(req.ip) };
}

/** 429 with Retry-After for a lock or the address throttle (RFC 6585 §4), 401 for any other refusal. */
function refusalStatus(c: ConsoleContext, res: Response, out: LoginOutcome): number {
  if (out.ok || (out.reason !== 'locked' && out.reason !== 'throttled')) return 401;
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil((out.until.getTime() - c.deps.clock().getTime()) / 1000))));
  return 429;
}

function loginForm(csrf: string, o: { org?: string; username?: string; message?: string } = {}): string {
  return `<p>Platform administrators sign in to <code>platform</code>; an organization's administrators to its short name (as in its FHIR address).</p>${errorBox(o.message)}
<form method="post" action="/admin/login"><input type="hidden" name="csrf" value="${esc(csrf)}">
<label for="org">Organization</label><input id="org" name="org" type="text" value="${esc(o.org ?? '')}" autocomplete="organization" required>
<label for="username">Username</label><input id="username" name="username" type="text" value="${esc(o.username ?? '')}" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`;
}

function sendLogin(c: ConsoleContext, req: Request, res: Response, status: number, o: Parameters<typeof loginForm>[1] = {}): void {
  sendConsole(res, status, { title: 'Admin console sign-in', narrow: true, body: loginForm(c.sessions.loginToken(req, res), o) });
}

function totpForm(c: ConsoleContext, user: UserRecord, csrf: string, org: string, ticket: string, enrol: string | undefined, message?: string): string {
  const setup = enrol
    ? `<p>Your organization requires a second factor. Add this account to your authenticator app, then enter the code it shows.</p>
<p>Key: <code>${esc(enrol)}</code></p><p class="note">Or open: <code>${esc(otpauthUri(enrol, user.username, `tenfhir ${org}`))}</code></p>`
    : '<p>Enter the 6-digit code from your authenticator app.</p>';
  return `${setup}${errorBox(message)}
<form method="post" action="/admin/login/totp"><input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="org" value="${esc(org)}"><input type="hidden" name="ticket" value="${esc(ticket)}">
<label for="code">Code</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Verify</button></form>`;
}

/** GET /admin/login */
export async function showLogin(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  if (await c.sessions.current(req, res)) return void res.redirect(303, '/admin');
  const org = typeof req.query.org === 'string' ? req.query.org.slice(0, 63) : '';
  sendLogin(c, req, res, 200, { org });
}

/** The organization signed in to: 'platform' or a tenant that is not terminated. */
async function organization(c: ConsoleContext, org: string): Promise<{ id: string; mfaRequired: boolean; tenant?: Tenant } | undefined> {
  if (org === PLATFORM) return { id: PLATFORM, mfaRequired: false };
  const t = isTenantSlug(org) ? await findTenant(c.deps.db, org) : undefined;
  return isServing(t) ? { id: t.id, mfaRequired: t.settings.mfaRequired === true, tenant: t } : undefined;
}

/** Why the organization refuses this sign-in (its IP allow-list; once the user is known, a suspension), as the /auth pages do. */
function refusal(c: ConsoleContext, req: Request, org: { tenant?: Tenant }, role?: string): string | undefined {
  return org.tenant ? authRefusal(org.tenant, req.ip, c.deps.clock(), role) : undefined;
}

/** POST /admin/login */
export async function submitLogin(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  if (crossSite(c.deps, req) || !c.sessions.loginTokenOk(req)) return sendLogin(c, req, res, 403, { message: 'This sign-in form did not come from this page (are cookies enabled?). Try again.' });
  const orgName = field(req, 'org').trim().toLowerCase().slice(0, 63);
  const username = field(req, 'username').trim().slice(0, 200);
  const org = await organization(c, orgName);
  if (!org) return sendLogin(c, req, res, 401, { org: orgName, username, message: `There is no organization '${orgName}'.` });
  const before = refusal(c, req, org);
  if (before) return sendLogin(c, req, res, 403, { org: orgName, username, message: before });
  const s = signInContext(c, req);
  let out = await checkPassword(s, org.id, org.mfaRequired, username, field(req, 'password'));
  // the right password of an account that may not come in here (not an administrator, or refused by the tenant)
  const refused = out.ok || out.reason === 'second-factor' ? (consoleRole(out.user, org.id) ? refusal(c, req, org, out.user.role) : NOT_ADMIN) : undefined;
  if (refused) out = { ok: false, reason: 'invalid', message: refused, user: out.user };
  c.deps.log.info({ tenantId: org.id, userId: 'user' in out ? out.user?.id : undefined, outcome: out.ok ? 'signed-in' : out.reason, page: 'admin-console' }, 'sign-in');
  await auditSignIn(c.deps, org.id, out, username, { address: s.address }, { factor: 'password', page: 'admin-console' });
  if (out.ok) return finish(c, res, out.user, org.id);
  if (out.reason === 'second-factor') {
    const ticket = signTicket(c.ticketKey, { uid: ticketUid(org.id), tenantId: out.user.tenantId, userId: out.user.id, ...(out.enrol ? { enrol: out.enrol } : {}) }, c.deps.clock());
    return sendConsole(res, 200, { title: 'Authentication code', narrow: true, body: totpForm(c, out.user, field(req, 'csrf'), org.id, ticket, out.enrol) });
  }
  sendLogin(c, req, res, refused ? 403 : refusalStatus(c, res, out), { org: orgName, username, message: out.message });
}

/** POST /admin/login/totp */
export async function submitTotp(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  if (crossSite(c.deps, req) || !c.sessions.loginTokenOk(req)) return sendLogin(c, req, res, 403, { message: 'This sign-in form did not come from this page. Sign in again.' });
  const org = await organization(c, field(req, 'org'));
  const ticket = org ? readTicket(c.ticketKey, field(req, 'ticket'), ticketUid(org.id), c.deps.clock()) : undefined;
  const user = ticket ? await findUserById(c.deps.db, ticket.tenantId, ticket.userId) : undefined;
  if (!org || !ticket || !user || !consoleRole(user, org.id)) return sendLogin(c, req, res, 401, { message: 'Your sign-in expired; sign in again.' });
  const why = refusal(c, req, org, user.role);
  if (why) return sendLogin(c, req, res, 403, { message: why });
  const s = signInContext(c, req);
  const out = await checkTotp(s, user, field(req, 'code'), ticket.enrol);
  await auditSignIn(c.deps, org.id, out, user, { address: s.address }, { factor: 'totp', page: 'admin-console' });
  if (out.ok) return finish(c, res, out.user, org.id);
  if (out.reason === 'locked' || out.reason === 'throttled') return sendLogin(c, req, res, refusalStatus(c, res, out), { message: out.message });
  sendConsole(res, 401, { title: 'Authentication code', narrow: true, body: totpForm(c, user, field(req, 'csrf'), org.id, field(req, 'ticket'), ticket.enrol, 'The authentication code is not correct.') });
}

async function finish(c: ConsoleContext, res: Response, user: UserRecord, org: string): Promise<void> {
  const role = consoleRole(user, org)!;
  await c.sessions.start(res, user, role);
  res.redirect(303, role.kind === 'platform-admin' ? '/admin' : `/admin/tenants/${encodeURIComponent(role.tenant)}`);
}

/** POST /admin/logout (with the session's form token; a forged one changes nothing). */
export async function submitLogout(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  const s = await c.sessions.current(req, res);
  if (s && (crossSite(c.deps, req) || !equal(field(req, 'csrf'), s.csrf))) return sendProblem(res, 403, 'Refused', 'This form did not come from this console.', s);
  if (s) {
    c.sessions.end(res);
    await recordAuthEvents(c.deps, s.actor.tenant, { category: 'logout', subtype: 'logout', action: 'E', outcome: 0, agent: userAgent(s.user, { address: s.actor.address }), detail: { page: 'admin-console' } });
  }
  res.redirect(303, '/admin/login');
}
