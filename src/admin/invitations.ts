// Invitations (issue 11): a single-use link, valid INVITATION_TTL_HOURS, with which a new tenant's first administrator
// (or any invited staff member) sets a password and, when the tenant requires it, enrols TOTP. The link carries 32
// random bytes; the database keeps only their SHA-256 (src/store/invitations.ts). The pages: src/admin/console-invite.ts.
import { createHash, randomBytes } from 'node:crypto';
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { isServing, isTenantSlug, PLATFORM } from '../core/tenant.js';
import { claimInvitation, findInvitation, insertInvitation, releaseInvitation, type InvitationRecord } from '../store/invitations.js';
import { claimTotpStep, findUserByName, updateUser } from '../store/auth-users.js';
import { findTenant } from '../store/tenants.js';
import { tenantPasswordProblem } from '../tenancy/security-policy.js';
import { createUser } from '../auth/admin.js';
import { recordAuthEvents, userAgent } from '../auth/audit.js';
import { matchTotp } from '../auth/totp.js';

/** Roles an invitation may carry: staff of the tenant (a patient account needs its Patient record: the CLI makes those). */
export const INVITABLE_ROLES = ['tenant-admin', 'practitioner', 'receptionist', 'lab-technician'] as const;
export type InvitableRole = (typeof INVITABLE_ROLES)[number];

export interface Invitee {
  username: string;
  role: InvitableRole;
  displayName?: string;
  email?: string;
}

/** The path of an invitation link (below PUBLIC_BASE_URL). */
export const invitationPath = (tenant: string, token: string) => `/admin/invite/${encodeURIComponent(tenant)}/${encodeURIComponent(token)}`;

/** What the database stores of a token. */
export const tokenHash = (token: string) => createHash('sha256').update(token).digest('base64url');

/** A username (as createUser takes it) and an email address, as an invitation takes them. */
export const USERNAME = /^[A-Za-z0-9._@+-]{3,100}$/;
export const EMAIL = /^[^\s@<>"']{1,64}@[^\s@<>"']{1,190}$/;

async function servingTenant(deps: Deps, tenant: string) {
  const t = isTenantSlug(tenant) && tenant !== PLATFORM ? await findTenant(deps.db, tenant) : undefined;
  if (!isServing(t)) throw new FhirError('not-found', `Unknown tenant '${tenant}'`, { code: 'TENANT_UNKNOWN' });
  return t;
}

/**
 * Invites `who` into `tenant`: returns the link (PUBLIC_BASE_URL + /admin/invite/{tenant}/{token}) and when it stops
 * working. The caller has authorized `by` to add users to the tenant (src/admin/tenants.ts, the console).
 */
export async function createInvitation(deps: Deps, tenant: string, who: Invitee, by: AuditAgent): Promise<{ url: string; expiresAt: string }> {
  await servingTenant(deps, tenant);
  if (!(INVITABLE_ROLES as readonly string[]).includes(who.role)) throw new FhirError('invalid', `an invitation's role is one of ${INVITABLE_ROLES.join(', ')}`, { code: 'USER_ROLE_INVALID' });
  if (!USERNAME.test(who.username)) throw new FhirError('invalid', 'a username is 3-100 characters of letters, digits and . _ @ + -', { code: 'USER_NAME_INVALID' });
  if (who.email !== undefined && !EMAIL.test(who.email)) throw new FhirError('invalid', `'${who.email.slice(0, 100)}' is not an email address`, { code: 'USER_EMAIL_INVALID' });
  if (who.displayName !== undefined && [...who.displayName].length > 200) throw new FhirError('invalid', 'a display name has at most 200 characters', { code: 'USER_NAME_INVALID' });
  if (await findUserByName(deps.db, tenant, who.username)) throw new FhirError('conflict', `User '${who.username}' already exists in '${tenant}'`, { code: 'USER_EXISTS' });
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(deps.clock().getTime() + deps.config.invitationTtlHours * 3_600_000);
  await insertInvitation(deps.db, {
    tenantId: tenant,
    tokenHash: tokenHash(token),
    username: who.username,
    role: who.role,
    displayName: who.displayName?.trim() || null,
    email: who.email ?? null,
    createdBy: by.userSub ?? by.clientId ?? 'unknown',
    expiresAt,
  });
  await recordAuthEvents(deps, tenant, {
    category: 'admin',
    subtype: 'invitation-create',
    action: 'C',
    outcome: 0,
    agent: by,
    detail: { username: who.username, role: who.role, expires: expiresAt.toISOString() },
  });
  return { url: `${deps.config.publicBaseUrl}${invitationPath(tenant, token)}`, expiresAt: expiresAt.toISOString() };
}

/**
 * The invitation a link names, while it can still be accepted: a link of another tenant, a made-up one, a used or an
 * expired one is refused (400 INVITATION_INVALID, 410 INVITATION_USED / INVITATION_EXPIRED).
 */
export async function openInvitation(deps: Deps, tenant: string, token: string): Promise<InvitationRecord> {
  const found = isTenantSlug(tenant) && /^[A-Za-z0-9_-]{43}$/.test(token) ? await findInvitation(deps.db, tenant, tokenHash(token)) : undefined;
  if (!found) throw new FhirError('invalid', 'This invitation link is not valid: check that it was copied whole.', { code: 'INVITATION_INVALID' });
  if (found.usedAt) throw new FhirError('gone', 'This invitation link has already been used: sign in with the password set then, or ask for a new invitation.', { code: 'INVITATION_USED' });
  if (found.expiresAt.getTime() <= deps.clock().getTime()) throw new FhirError('gone', 'This invitation link has expired: ask your administrator for a new one.', { code: 'INVITATION_EXPIRED' });
  return found;
}

export interface AcceptOptions {
  /** TOTP enrolment on the invitation page: the secret shown there and a code from it (checked before anything is created). */
  totp?: { secret: string; code: string };
  /** The accepting browser's address, for the audit trail. */
  address?: string;
}

/**
 * Accepts an invitation once: creates the user with `password` (checked against the tenant's password policy first,
 * so a refused password leaves the link usable), and enrols `opts.totp` when given. `totpRequired`: the tenant requires a
 * second factor and none was enrolled here (the user enrols at their first sign-in).
 */
export async function acceptInvitation(deps: Deps, tenant: string, token: string, password: string, opts: AcceptOptions = {}): Promise<{ username: string; totpRequired: boolean }> {
  const t = await servingTenant(deps, tenant);
  const inv = await openInvitation(deps, tenant, token);
  const problem = await tenantPasswordProblem(deps, tenant, password, inv.username);
  if (problem) throw new FhirError('invalid', problem, { code: 'PASSWORD_POLICY' });
  const step = opts.totp ? matchTotp(opts.totp.secret, opts.totp.code.replace(/\s/g, ''), deps.clock().getTime()) : undefined;
  if (opts.totp && step === undefined) throw new FhirError('invalid', 'The authentication code is not correct: enter the current code from your authenticator app.', { code: 'INVITATION_TOTP_INVALID' });
  // single use, also under parallel submissions: one claim wins; the others see a used link
  if (!(await claimInvitation(deps.db, tenant, inv.tokenHash, deps.clock()))) {
    await openInvitation(deps, tenant, token); // says why: used or expired meanwhile
    throw new FhirError('gone', 'This invitation link has already been used.', { code: 'INVITATION_USED' });
  }
  const invitee: AuditAgent = { userSub: `invitation:${inv.username}`, role: inv.role, ...(opts.address ? { address: opts.address } : {}) };
  let user;
  try {
    user = await createUser(deps, { tenant, username: inv.username, password, role: inv.role, ...(inv.displayName ? { displayName: inv.displayName } : {}) }, invitee);
  } catch (err) {
    await releaseInvitation(deps.db, tenant, inv.tokenHash);
    throw err;
  }
  if (opts.totp && step !== undefined) {
    await updateUser(deps.db, tenant, user.id, { totpSecret: opts.totp.secret });
    await claimTotpStep(deps.db, tenant, user.id, step); // the code just shown cannot sign in as well
  }
  await recordAuthEvents(deps, tenant, {
    category: 'admin',
    subtype: 'invitation-accept',
    action: 'U',
    outcome: 0,
    agent: userAgent(user, opts.address ? { address: opts.address } : {}),
    detail: { username: user.username, role: user.role, totp: !!opts.totp },
  });
  return { username: user.username, totpRequired: t.settings.mfaRequired === true && !opts.totp };
}
