// The invitation page (issue 11): /admin/invite/{tenant}/{token}, opened from the single-use link an administrator
// sent. The invited user sets a password and, when the tenant requires a second factor, adds the TOTP key shown here
// to an authenticator app and proves it with a code before the account is made. An expired, used, foreign or made-up
// link gets a page saying so (410 / 400) and creates nothing.
import type { Request, Response } from 'express';
import { FhirError } from '../core/errors.js';
import { findTenant } from '../store/tenants.js';
import { addressKey } from '../auth/sign-in-throttle.js';
import { newTotpSecret, otpauthUri } from '../auth/totp.js';
import { errorBox, esc, sendConsole, sendProblem } from './console-layout.js';
import { crossSite, field, type ConsoleContext } from './console-session.js';
import { acceptInvitation, invitationPath, openInvitation, tokenHash } from './invitations.js';
import type { InvitationRecord } from '../store/invitations.js';

interface Link {
  tenant: string;
  token: string;
}

const linkOf = (req: Request): Link => ({ tenant: String(req.params.tenant), token: String(req.params.token) });

/** The TOTP key offered on the page travels back signed for this invitation, so the code is checked against it. */
const totpPurpose = (l: Link) => `invite-totp:${l.tenant}:${tokenHash(l.token)}`;

function form(c: ConsoleContext, l: Link, inv: InvitationRecord, tenantName: string, mfa: boolean, o: { secret?: string; message?: string } = {}): string {
  const secret = o.secret ?? newTotpSecret();
  const totp = mfa
    ? `<h2>Second factor</h2><p>${esc(tenantName)} requires a code from an authenticator app at every sign-in. Add this key to your app (or open the link on your phone), then enter the code it shows.</p>
<p>Key: <code id="totp-secret">${esc(secret)}</code></p><p class="note"><a href="${esc(otpauthUri(secret, inv.username, `tenfhir ${l.tenant}`))}">${esc(otpauthUri(secret, inv.username, `tenfhir ${l.tenant}`))}</a></p>
<input type="hidden" name="totp" value="${esc(c.keys.sign(totpPurpose(l), secret))}">
<label for="code">Code from the app</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required>`
    : '';
  return `<p>You are invited to <strong>${esc(tenantName)}</strong> as <strong>${esc(inv.username)}</strong> (${esc(inv.role)}). Choose a password of at least 12 characters.</p>${errorBox(o.message)}
<form method="post" action="${esc(invitationPath(l.tenant, l.token))}">
<input type="text" name="username" value="${esc(inv.username)}" autocomplete="username" readonly hidden>
<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" required>
<label for="confirm">Repeat the password</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required>
${totp}
<button type="submit">Create my account</button></form>`;
}

/** The invitation, or a page saying why the link does not work (undefined). */
async function open(c: ConsoleContext, l: Link, res: Response): Promise<{ inv: InvitationRecord; name: string; mfa: boolean } | undefined> {
  try {
    const inv = await openInvitation(c.deps, l.tenant, l.token);
    const t = await findTenant(c.deps.db, l.tenant);
    if (t && t.status !== 'terminated') return { inv, name: t.name, mfa: t.settings.mfaRequired === true };
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    sendProblem(res, err.status, 'Invitation', err.message);
    return undefined;
  }
  sendProblem(res, 404, 'Invitation', 'This organization does not exist any more.');
  return undefined;
}

/** GET /admin/invite/:tenant/:token */
export async function showInvitation(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  const l = linkOf(req);
  const o = await open(c, l, res);
  if (o) sendConsole(res, 200, { title: 'Set up your account', narrow: true, body: form(c, l, o.inv, o.name, o.mfa) });
}

/** POST /admin/invite/:tenant/:token */
export async function submitInvitation(c: ConsoleContext, req: Request, res: Response): Promise<void> {
  const l = linkOf(req);
  if (crossSite(c.deps, req)) return sendProblem(res, 403, 'Refused', 'This form did not come from this server.');
  const o = await open(c, l, res);
  if (!o) return;
  // the key the page showed (a forged or missing one: a fresh key, and the code cannot match it)
  const secret = o.mfa ? c.keys.open(totpPurpose(l), field(req, 'totp')) : undefined;
  const again = (status: number, message: string) =>
    sendConsole(res, status, { title: 'Set up your account', narrow: true, body: form(c, l, o.inv, o.name, o.mfa, { message, ...(secret ? { secret } : {}) }) });
  const password = field(req, 'password');
  if (password !== field(req, 'confirm')) return again(400, 'The two passwords are not the same.');
  if (o.mfa && !secret) return again(400, 'Add the key below to your authenticator app, then enter its code.');
  try {
    const out = await acceptInvitation(c.deps, l.tenant, l.token, password, { address: addressKey(req.ip), ...(secret ? { totp: { secret, code: field(req, 'code') } } : {}) });
    const next = o.inv.role === 'tenant-admin'
      ? `<p><a href="/admin/login?org=${encodeURIComponent(l.tenant)}">Sign in to the admin console</a> with organization <code>${esc(l.tenant)}</code> and username <code>${esc(out.username)}</code>.</p>`
      : `<p>Sign in from your organization's apps with username <code>${esc(out.username)}</code>.</p>`;
    sendConsole(res, 201, { title: 'Your account is ready', narrow: true, body: `<p class="ok" role="status">Your account at ${esc(o.name)} is set up.</p>${next}` });
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    if (err.code?.startsWith('INVITATION_') && err.code !== 'INVITATION_TOTP_INVALID') return sendProblem(res, err.status, 'Invitation', err.message);
    again(err.status, err.message);
  }
}
