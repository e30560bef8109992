// The admin console's organization pages (issue 11): the platform administrators' list of tenants with status, plan
// and usage; a tenant's page (details, usage and quotas, its users and registered apps, an invitation form) with
// suspend / reactivate / plan change for platform administrators. Every read and change goes through
// src/admin/tenants.ts, which authorizes the actor and audits; a tenant administrator sees their own tenant only.
import type { Request, Response } from 'express';
import type { AuditAgent } from '../core/audit.js';
import { FhirError } from '../core/errors.js';
import type { TenantUsage } from '../tenancy/usage.js';
import { listClients } from '../store/auth-payloads.js';
import { listUsers } from '../store/auth-users.js';
import { bytes, count, csrfField, errorBox, esc, okBox, sendConsole, statusBadge } from './console-layout.js';
import type { ConsoleContext, ConsoleSession } from './console-session.js';
import { field } from './console-session.js';
import { createInvitation, INVITABLE_ROLES, type InvitableRole } from './invitations.js';
import { changePlan, getTenantView, listTenantViews, reactivateTenant, suspendTenant, type TenantView } from './tenants.js';
import type { AdminActor } from '../core/admin-actor.js';

const tenantPath = (slug: string) => `/admin/tenants/${encodeURIComponent(slug)}`;

/** The audit agent of a console action. */
export function consoleAgent(a: AdminActor): AuditAgent {
  return { userSub: a.sub, role: a.kind, ...(a.address ? { address: a.address } : {}) };
}

const totalResources = (u: TenantUsage | undefined) => (u ? Object.values(u.resources).reduce((n, v) => n + v, 0) : undefined);

/** GET /admin: the platform administrators' tenant list; a tenant administrator goes to their own tenant's page. */
export async function showTenants(c: ConsoleContext, s: ConsoleSession, _req: Request, res: Response): Promise<void> {
  if (s.actor.kind !== 'platform-admin') return void res.redirect(303, tenantPath(s.actor.tenant));
  const views = await listTenantViews(c.deps, s.actor);
  const rows = views.map((t) => `<tr><td><a href="${tenantPath(t.slug)}">${esc(t.name)}</a><div class="note">${esc(t.slug)}</div></td>
<td>${esc(t.type ?? '—')}</td><td>${statusBadge(t.status)}</td><td>${esc(t.plan ?? '—')}</td>
<td class="num">${count(totalResources(t.usage))}</td><td class="num">${t.usage ? bytes(t.usage.storageBytes) : '—'}</td>
<td class="num">${count(t.usage?.requestsToday)}</td><td>${esc(t.usage?.lastActivity?.slice(0, 16).replace('T', ' ') ?? '—')}</td></tr>`);
  sendConsole(res, 200, {
    title: 'Organizations',
    session: s,
    body: `<p><a href="/admin/new">Onboard a new organization</a></p>
<table><thead><tr><th>Organization</th><th>Type</th><th>Status</th><th>Plan</th><th class="num">Resources</th><th class="num">Storage</th><th class="num">Requests today</th><th>Last activity (UTC)</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="8">No organizations yet.</td></tr>'}</tbody></table>`,
  });
}

function details(t: TenantView): string {
  const colour = typeof t.branding.primaryColor === 'string' && /^#[0-9a-fA-F]{6}$/.test(t.branding.primaryColor) ? t.branding.primaryColor : undefined;
  const logo = typeof t.branding.logoUrl === 'string' ? t.branding.logoUrl : undefined;
  const row = (k: string, v: string) => `<tr><th>${k}</th><td>${v}</td></tr>`;
  return `<table>
${row('Short name', `<code>${esc(t.slug)}</code>`)}${row('Status', statusBadge(t.status))}${row('Type', esc(t.type ?? '—'))}${row('Plan', esc(t.plan ?? '—'))}
${t.trialEndsAt ? row('Trial ends', esc(t.trialEndsAt.slice(0, 10))) : ''}${t.host ? row('Host name', esc(t.host)) : ''}${row('Created', esc(t.createdAt.slice(0, 10)))}
${colour ? row('Brand colour', `<span class="swatch" style="background:${colour}"></span> <code>${esc(colour)}</code>`) : ''}${logo ? row('Logo', `<code>${esc(logo)}</code>`) : ''}
${row('Second factor', t.settings.mfaRequired ? 'required for every user' : 'optional')}
</table>`;
}

function usage(u: TenantUsage | undefined): string {
  if (!u) return '<p class="note">No usage figures.</p>';
  const types = Object.entries(u.resources).sort(([a], [b]) => a.localeCompare(b));
  const quotas = u.quotas ? Object.entries(u.quotas) : [];
  return `<table aria-label="Usage"><tbody>
<tr><th>Resources</th><td class="num">${count(totalResources(u))}</td></tr><tr><th>Storage</th><td class="num">${bytes(u.storageBytes)}</td></tr>
<tr><th>Requests today</th><td class="num">${count(u.requestsToday)}</td></tr><tr><th>Requests, last 30 days</th><td class="num">${count(u.requests30d)}</td></tr>
<tr><th>Active sign-in sessions</th><td class="num">${count(u.activeSessions)}</td></tr><tr><th>Last activity (UTC)</th><td class="num">${esc(u.lastActivity?.slice(0, 16).replace('T', ' ') ?? '—')}</td></tr>
</tbody></table>
${types.length ? `<details><summary>Resources by type</summary><table><tbody>${types.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${count(v)}</td></tr>`).join('')}</tbody></table></details>` : ''}
${quotas.length ? `<h3>Plan quotas</h3><table><thead><tr><th>Quota</th><th class="num">In use</th><th class="num">Limit</th></tr></thead><tbody>${quotas
    .map(([k, q]) => `<tr><td>${esc(k)}</td><td class="num">${k === 'storageBytes' ? bytes(q.usage) : count(q.usage)}</td><td class="num">${q.limit === null ? 'unlimited' : k === 'storageBytes' ? bytes(q.limit) : count(q.limit)}</td></tr>`)
    .join('')}</tbody></table>` : ''}`;
}

async function platformActions(c: ConsoleContext, s: ConsoleSession, t: TenantView): Promise<string> {
  if (s.actor.kind !== 'platform-admin') return '';
  const lifecycle = t.status === 'suspended'
    ? `<form method="post" action="${tenantPath(t.slug)}/reactivate">${csrfField(s)}<button type="submit">Reactivate</button></form>`
    : t.status === 'active'
      ? `<form method="post" action="${tenantPath(t.slug)}/suspend">${csrfField(s)}<label for="reason">Reason for suspending</label><input id="reason" name="reason" type="text" maxlength="500">
<button class="danger" type="submit">Suspend</button></form>`
      : '';
  // the plans this tenant may move to: made for its type; a trial plan only restarts a trial
  const plans = (await c.deps.plans.list()).filter((p) => (!p.tenantTypes.length || (t.type && p.tenantTypes.includes(t.type))) && (p.trialDays === null || t.status === 'trial'));
  const options = plans.map((p) => `<option value="${esc(p.id)}"${p.id === t.plan ? ' selected' : ''}>${esc(p.name)}</option>`).join('');
  const plan = options
    ? `<form method="post" action="${tenantPath(t.slug)}/plan">${csrfField(s)}<label for="plan">Plan</label><select id="plan" name="plan">${options}</select>
<button type="submit">Change plan</button></form>`
    : '<p class="note">No plan is made for this kind of organization.</p>';
  return `<h2>Administration</h2><div class="actions">${lifecycle}${plan}</div>`;
}

async function people(c: ConsoleContext, t: TenantView): Promise<string> {
  const users = await listUsers(c.deps.db, t.slug);
  const rows = users.map((u) => `<tr><td>${esc(u.username)}</td><td>${esc(u.displayName ?? '')}</td><td>${esc(u.role)}</td><td>${u.totpSecret ? 'yes' : 'no'}</td>
<td>${u.disabled ? 'disabled' : u.lockedUntil ? `locked until ${esc(u.lockedUntil.toISOString().slice(11, 16))} UTC` : 'active'}</td></tr>`);
  return `<table><thead><tr><th>Username</th><th>Name</th><th>Role</th><th>Second factor</th><th>Status</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="5">No users yet.</td></tr>'}</tbody></table>`;
}

async function apps(c: ConsoleContext, t: TenantView): Promise<string> {
  const clients = await listClients(c.deps.db, t.slug);
  const kind = (m: Record<string, unknown>) =>
    Array.isArray(m.grant_types) && m.grant_types.includes('client_credentials') ? 'backend service' : m.token_endpoint_auth_method === 'none' ? 'app (public)' : 'app (confidential)';
  const rows = clients.map((cl) => `<tr><td>${esc(String(cl.metadata.client_name ?? ''))}</td><td><code>${esc(cl.clientId)}</code></td><td>${kind(cl.metadata)}</td></tr>`);
  return `<table><thead><tr><th>Name</th><th>Client id</th><th>Kind</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="3">No registered apps.</td></tr>'}</tbody></table>`;
}

function inviteForm(s: ConsoleSession, t: TenantView, message?: string): string {
  return `${errorBox(message)}<form method="post" action="${tenantPath(t.slug)}/invite">${csrfField(s)}
<label for="i-username">Username</label><input id="i-username" name="username" type="text" required>
<label for="i-name">Display name</label><input id="i-name" name="displayName" type="text">
<label for="i-email">Email</label><input id="i-email" name="email" type="email">
<label for="i-role">Role</label><select id="i-role" name="role">${INVITABLE_ROLES.map((r) => `<option>${r}</option>`).join('')}</select>
<button type="submit">Create invitation link</button></form>`;
}

/** Fixed messages after a change (the redirect names one; nothing from the request is echoed). */
const DONE: Record<string, string> = {
  suspended: 'The organization is suspended: its API and sign-in refuse everything but its administrators\' reads.',
  reactivated: 'The organization is active again.',
  plan: 'The plan was changed.',
};

export interface TenantPageExtras {
  message?: string;
  error?: string;
  /** Shown above everything (an invitation link, a plan change's over-quota report): already HTML. */
  notice?: string;
}

async function renderTenant(c: ConsoleContext, s: ConsoleSession, res: Response, t: TenantView, status: number, x: TenantPageExtras = {}): Promise<void> {
  sendConsole(res, status, {
    title: t.name,
    session: s,
    body: `${okBox(x.message)}${x.notice ?? ''}${details(t)}
<h2>Usage</h2>${usage(t.usage)}
${await platformActions(c, s, t)}
<h2>Users</h2>${await people(c, t)}
<h3>Invite a user</h3>${inviteForm(s, t, x.error)}
<h2>Registered apps</h2>${await apps(c, t)}`,
  });
}

/** GET /admin/tenants/:slug */
export async function showTenant(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  const t = await getTenantView(c.deps, s.actor, String(req.params.slug));
  const done = typeof req.query.done === 'string' ? DONE[req.query.done] : undefined;
  await renderTenant(c, s, res, t, 200, { message: done });
}

/** POST /admin/tenants/:slug/suspend */
export async function submitSuspend(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  const t = await suspendTenant(c.deps, s.actor, String(req.params.slug), field(req, 'reason').trim().slice(0, 500) || undefined);
  res.redirect(303, `${tenantPath(t.slug)}?done=suspended`);
}

/** POST /admin/tenants/:slug/reactivate */
export async function submitReactivate(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  const t = await reactivateTenant(c.deps, s.actor, String(req.params.slug));
  res.redirect(303, `${tenantPath(t.slug)}?done=reactivated`);
}

/** POST /admin/tenants/:slug/plan: a plan whose quotas the tenant already exceeds is applied and the excess reported. */
export async function submitPlan(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  const out = await changePlan(c.deps, s.actor, String(req.params.slug), field(req, 'plan'));
  if (!out.overQuota.length) return void res.redirect(303, `${tenantPath(out.tenant.slug)}?done=plan`);
  const items = out.overQuota.map((o) => `<li>${esc(o.quota)}: ${count(o.usage)} in use, the plan allows ${count(o.limit)}</li>`).join('');
  const notice = `<div class="error" role="alert">The organization already uses more than the new plan allows. Nothing was removed; new ${out.overQuota.length === 1 ? 'use of this quota is' : 'use of these quotas is'} refused until it is back under the limit:<ul>${items}</ul></div>`;
  await renderTenant(c, s, res, out.tenant, 200, { message: DONE.plan, notice });
}

/** POST /admin/tenants/:slug/invite: a single-use link for a new user of the tenant. */
export async function submitInvite(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  const t = await getTenantView(c.deps, s.actor, String(req.params.slug)); // authorizes: own tenant, or a platform admin
  const role = field(req, 'role') as InvitableRole;
  const displayName = field(req, 'displayName').trim();
  const email = field(req, 'email').trim();
  try {
    const inv = await createInvitation(c.deps, t.slug, { username: field(req, 'username').trim(), role, ...(displayName ? { displayName } : {}), ...(email ? { email } : {}) }, consoleAgent(s.actor));
    await renderTenant(c, s, res, t, 201, { notice: invitationNotice(inv) });
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    await renderTenant(c, s, res, t, err.status, { error: err.message });
  }
}

/** The invitation link as the inviting administrator is shown it (once: only its hash is stored). */
export function invitationNotice(inv: { url: string; expiresAt: string }): string {
  return `<div class="ok" role="status"><p>Send this invitation link to the new user. It works once, until ${esc(inv.expiresAt.slice(0, 16).replace('T', ' '))} UTC, and is not shown again:</p>
<p><a id="invitation-link" href="${esc(inv.url)}">${esc(inv.url)}</a></p></div>`;
}
