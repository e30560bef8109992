// The SMART `management_endpoint` (conformance.html: "where an end-user can view which applications currently have
// access to data and can make adjustments to these access rights"): /auth/manage/{tenant}. The user signs in (same
// password, second factor and lockout as an app launch), sees every app they authorized, with what and for which
// patient, and revokes any of them: the grant, its refresh tokens and its launch context go at once (access tokens
// are JWTs and run out within their lifetime, at most an hour).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { isServing, isTenantSlug, type Tenant } from '../core/tenant.js';
import { findClient, listGrantsOf, revokeGrant } from '../store/auth-payloads.js';
import { findUserById, type UserRecord } from '../store/auth-users.js';
import { currentVersion } from '../store/resources.js';
import { auditSignIn, recordAuthEvents, userAgent } from './audit.js';
import { accountId } from './claims.js';
import { refusalPage, refusalStatus, signInContext, type InteractionDeps } from './interactions.js';
import { checkPassword, checkTotp, readTicket, signTicket, type LoginOutcome } from './login.js';
import { errorBox, esc, page, sendPage } from './pages.js';
import { consentLines, describeScope } from './scope-words.js';
import { isResourceScope, parseScopes, renderScope, type Scope } from './scopes.js';
import { addressKey } from './sign-in-throttle.js';
import { authRefusal } from './tenant-policy.js';

const COOKIE = 'tenfhir_manage';

const send = (res: Response, status: number, html: string) => sendPage(res, status, html);

const base = (tenant: string) => `/auth/manage/${encodeURIComponent(tenant)}`;
const uidOf = (tenant: string) => `manage:${tenant}`;

function cookieOf(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/** The signed-in user of this page (a short ticket in an HttpOnly, SameSite=Strict cookie scoped to the page). */
async function signedIn(a: InteractionDeps, req: Request, tenant: string): Promise<{ user: UserRecord; cookie: string } | undefined> {
  const cookie = cookieOf(req);
  const t = cookie ? readTicket(a.ticketKey, cookie, uidOf(tenant), a.deps.clock()) : undefined;
  const user = t ? await findUserById(a.deps.db, t.tenantId, t.userId) : undefined;
  return user && !user.disabled && cookie ? { user, cookie } : undefined;
}

function setSession(a: InteractionDeps, res: Response, tenant: string, user: UserRecord | undefined): void {
  const secure = a.deps.config.publicBaseUrl.startsWith('https:') ? '; Secure' : '';
  const value = user ? encodeURIComponent(signTicket(a.ticketKey, { uid: uidOf(tenant), tenantId: user.tenantId, userId: user.id }, a.deps.clock())) : '';
  res.setHeader('Set-Cookie', `${COOKIE}=${value}; Path=${base(tenant)}; HttpOnly; SameSite=Strict${secure}${user ? '' : '; Max-Age=0'}`);
}

/** A form token bound to the session cookie: a form from anywhere else cannot revoke (on top of SameSite=Strict). */
function csrfToken(a: InteractionDeps, cookie: string): string {
  return createHmac('sha256', a.ticketKey).update(`manage-csrf:${cookie}`).digest('base64url');
}

function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
}

function signInPage(tenant: string, tenantName: string, message?: string): string {
  return page({
    title: 'Your connected apps',
    tenantName,
    body: `<p>Sign in to see which apps can access your data at ${esc(tenantName)}, and to take that access away.</p>${errorBox(message)}
<form method="post" action="${base(tenant)}/login">
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  });
}

function totpPage(tenant: string, tenantName: string, ticket: string, message?: string): string {
  return page({
    title: 'Authentication code',
    tenantName,
    body: `<p>Enter the 6-digit code from your authenticator app.</p>${errorBox(message)}
<form method="post" action="${base(tenant)}/totp"><input type="hidden" name="ticket" value="${esc(ticket)}">
<label for="code">Code</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Verify</button></form>`,
  });
}

async function patientLabel(a: InteractionDeps, tenant: string, id: string): Promise<string> {
  const row = await currentVersion(a.deps.db, tenant, 'Patient', id).catch(() => undefined);
  const p = row?.json && !row.deleted ? (JSON.parse(row.json) as { name?: { text?: string; given?: string[]; family?: string }[] }) : undefined;
  const n = p?.name?.[0];
  return (n ? n.text ?? [...(n.given ?? []), n.family].filter(Boolean).join(' ') : '') || `Patient/${id}`;
}

/**
 * What a grant allows, in the consent page's words: a role ceiling stores `patient/*.rs` as one scope per type, so
 * the types that share a context and letters are one line again, with the kinds of records on demand.
 */
function grantLines(scopes: Scope[], patient: string | undefined): string[] {
  const resource = scopes.filter(isResourceScope);
  const wildcards = parseScopes([...new Set(resource.filter((s) => !s.params.length).map((s) => renderScope({ ...s, resourceType: '*', v1: false })))].join(' ')).scopes;
  const lines = consentLines(wildcards, resource, patient).map(
    (l) => `<li>${esc(l.words)}${l.details ? `<details class="note"><summary>Which kinds</summary>${esc(l.details.join(', '))}</details>` : ''}</li>`,
  );
  return [...lines, ...scopes.filter((s) => !isResourceScope(s)).map((s) => `<li>${esc(describeScope(s, patient))}</li>`)];
}

async function appsPage(a: InteractionDeps, tenant: string, tenantName: string, user: UserRecord, cookie: string, message?: string): Promise<string> {
  const grants = (await listGrantsOf(a.deps.db, accountId(user.tenantId, user.id))).filter((g) => g.smart.tenant === tenant);
  const csrf = csrfToken(a, cookie);
  const items: string[] = [];
  const clients = new Map<string, ReturnType<typeof findClient>>(); // one lookup per app, however many grants it holds
  for (const g of grants) {
    if (!clients.has(g.clientId)) clients.set(g.clientId, findClient(a.deps.db, g.clientId));
    const client = await clients.get(g.clientId);
    const name = String(client?.metadata.client_name ?? g.clientId);
    const patient = typeof g.smart.patient === 'string' ? await patientLabel(a, tenant, g.smart.patient) : undefined;
    const scopes = parseScopes([g.smart.scope, ...((g.smart.other as string[] | undefined) ?? [])].filter(Boolean).join(' ')).scopes;
    const what = grantLines(scopes, patient).join('');
    items.push(`<li><strong>${esc(name)}</strong>${patient ? ` for ${esc(patient)}` : ''}${g.expiresAt ? ` <span class="note">until ${esc(g.expiresAt.toISOString().slice(0, 10))}</span>` : ''}
<ul class="scopes">${what}</ul>
<form method="post" action="${base(tenant)}/revoke"><input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="grant" value="${esc(String(g.smart.grantId))}">
<button class="secondary" type="submit">Revoke access</button></form></li>`);
  }
  const list = items.length ? `<ul class="patients">${items.join('')}</ul>` : '<p class="note">No app has access to your data.</p>';
  return page({
    title: 'Your connected apps',
    tenantName,
    body: `<p>Signed in as <strong>${esc(user.displayName ?? user.username)}</strong>.</p>${message ? `<p class="note" role="status">${esc(message)}</p>` : ''}${list}
<p class="note">Revoking ends the app's refresh tokens at once; an access token it already holds stops working when it expires (within an hour).</p>
<form method="post" action="${base(tenant)}/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button class="secondary" type="submit">Sign out</button></form>`,
  });
}

type Handler = (a: InteractionDeps, req: Request, res: Response, tenant: Tenant) => Promise<void>;

/** The 403 page when the tenant refuses this address, or (once known) this user's role (tenant-policy.ts); true when sent. */
function refused(a: InteractionDeps, req: Request, res: Response, t: Tenant, user?: UserRecord): boolean {
  const why = authRefusal(t, req.ip, a.deps.clock(), user?.role);
  if (why) send(res, 403, refusalPage(why, t.name));
  return why !== undefined;
}

/** Resolves the tenant of the URL (404 page when unknown or terminated), applies its network policy and runs `fn`. */
function managePage(fn: Handler) {
  return async (a: InteractionDeps, req: Request, res: Response): Promise<void> => {
    const slug = String(req.params.tenant);
    const tenant = isTenantSlug(slug) ? await a.tenants.get(slug) : undefined;
    if (!isServing(tenant)) return send(res, 404, page({ title: 'Not found', body: errorBox('There is no such organization.') }));
    if (refused(a, req, res, tenant)) return;
    await fn(a, req, res, tenant);
  };
}

/** GET /auth/manage/:tenant */
export const showApps = managePage(async (a, req, res, t) => {
  const s = await signedIn(a, req, t.id);
  if (!s) return send(res, 200, signInPage(t.id, t.name));
  if (refused(a, req, res, t, s.user)) return;
  send(res, 200, await appsPage(a, t.id, t.name, s.user, s.cookie));
});

/** POST /auth/manage/:tenant/login */
export const manageLogin = managePage(async (a, req, res, t) => {
  const c = signInContext(a, req);
  const username = field(req, 'username').trim().slice(0, 200);
  const out = await checkPassword(c, t.id, t.settings.mfaRequired === true, username, field(req, 'password'));
  if ((out.ok || out.reason === 'second-factor') && refused(a, req, res, t, out.user)) return;
  a.deps.log.info({ tenantId: t.id, userId: 'user' in out ? out.user?.id : undefined, outcome: out.ok ? 'signed-in' : out.reason, page: 'manage' }, 'sign-in');
  await auditSignIn(a.deps, t.id, out, username, { address: c.address }, { factor: 'password', page: 'manage' });
  if (out.ok) {
    setSession(a, res, t.id, out.user);
    return void res.redirect(303, base(t.id));
  }
  if (out.reason === 'second-factor') {
    if (out.enrol) return send(res, 403, signInPage(t.id, t.name, 'Set up your authenticator app by signing in to an app first.'));
    return send(res, 200, totpPage(t.id, t.name, signTicket(a.ticketKey, { uid: `${uidOf(t.id)}:totp`, tenantId: out.user.tenantId, userId: out.user.id }, a.deps.clock())));
  }
  send(res, refusalStatus(a, res, out), signInPage(t.id, t.name, out.message));
});

/** POST /auth/manage/:tenant/totp */
export const manageTotp = managePage(async (a, req, res, t) => {
  const ticket = readTicket(a.ticketKey, field(req, 'ticket'), `${uidOf(t.id)}:totp`, a.deps.clock());
  const user = ticket ? await findUserById(a.deps.db, ticket.tenantId, ticket.userId) : undefined;
  if (!ticket || !user || user.disabled) return send(res, 401, signInPage(t.id, t.name, 'Your sign-in expired; sign in again.'));
  if (refused(a, req, res, t, user)) return;
  const c = signInContext(a, req);
  const out = await checkTotp(c, user, field(req, 'code'));
  await auditSignIn(a.deps, t.id, out, user, { address: c.address }, { factor: 'totp', page: 'manage' });
  if (out.ok) {
    setSession(a, res, t.id, out.user);
    return void res.redirect(303, base(t.id));
  }
  if (out.reason === 'locked' || out.reason === 'throttled') return send(res, refusalStatus(a, res, out), signInPage(t.id, t.name, out.message));
  send(res, 401, totpPage(t.id, t.name, field(req, 'ticket'), 'The authentication code is not correct.'));
});

function csrfOk(a: InteractionDeps, req: Request, cookie: string): boolean {
  const given = Buffer.from(field(req, 'csrf'));
  const expected = Buffer.from(csrfToken(a, cookie));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** POST /auth/manage/:tenant/revoke — one of the user's own grants, nobody else's. */
export const manageRevoke = managePage(async (a, req, res, t) => {
  const s = await signedIn(a, req, t.id);
  if (!s) return send(res, 401, signInPage(t.id, t.name, 'Please sign in again.'));
  if (refused(a, req, res, t, s.user)) return;
  if (!csrfOk(a, req, s.cookie)) return send(res, 403, page({ title: 'Refused', tenantName: t.name, body: errorBox('This form did not come from this page.') }));
  const grantId = field(req, 'grant');
  const own = (await listGrantsOf(a.deps.db, accountId(s.user.tenantId, s.user.id))).find((g) => g.smart.grantId === grantId && g.smart.tenant === t.id);
  if (!own) return send(res, 404, await appsPage(a, t.id, t.name, s.user, s.cookie, 'That access was not found (already revoked?).'));
  const grant = await a.provider().Grant.find(grantId);
  await grant?.destroy();
  await revokeGrant(a.deps.db, grantId);
  a.deps.log.info({ tenantId: t.id, userId: s.user.id, clientId: own.clientId }, 'grant revoked by its user');
  const patient = typeof own.smart.patient === 'string' ? own.smart.patient : undefined;
  await recordAuthEvents(a.deps, t.id, {
    category: 'authorization',
    subtype: 'grant-revoke',
    action: 'D',
    outcome: 0,
    agent: userAgent(s.user, { address: addressKey(req.ip) }),
    ...(patient ? { patients: [patient] } : {}),
    detail: { client_id: own.clientId, page: 'manage' },
  });
  const client = await findClient(a.deps.db, own.clientId);
  send(res, 200, await appsPage(a, t.id, t.name, s.user, s.cookie, `Access for ${String(client?.metadata.client_name ?? own.clientId)} revoked.`));
});

/** POST /auth/manage/:tenant/logout */
export const manageLogout = managePage(async (a, req, res, t) => {
  const s = await signedIn(a, req, t.id);
  if (s && csrfOk(a, req, s.cookie)) {
    setSession(a, res, t.id, undefined);
    await recordAuthEvents(a.deps, t.id, { category: 'logout', subtype: 'logout', action: 'E', outcome: 0, agent: userAgent(s.user, { address: addressKey(req.ip) }), detail: { page: 'manage' } });
  }
  res.redirect(303, base(t.id));
});
