// The authorization server's user interactions (SMART app-launch.html steps 4-5): sign-in (password, then TOTP),
// the patient picker of a standalone launch, and the consent page where the user can untick scopes. Each step is a
// server-rendered form; oidc-provider's interaction cookie binds every form to its authorization request.
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { searchType } from '../fhir/interactions/search.js';
import type { FhirContext } from '../fhir/context.js';
import { sessionQuotaRefusal } from '../fhir/quotas.js';
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import type { Tenant } from '../core/tenant.js';
import { clientScopes, tenantOfAudience } from './provider.js';
import type { SmartContext } from './claims.js';
import { accountId, parseAccountId, SMART_GRANT } from './claims.js';
import { accessForType, accessFromToken, grantAccess, R4_TYPES } from './access.js';
import { auditSignIn, recordAuthEvents, userAgent, type AuthEvent } from './audit.js';
import { checkPassword, checkTotp, readTicket, signTicket, type LoginOutcome, type SignInContext } from './login.js';
import { errorBox, esc, page, sendPage } from './pages.js';
import { isRole, type Role } from './role-matrix.js';
import { consentLines, describeScope } from './scope-words.js';
import { isResourceScope, parseScopes, renderScope, type Letter, type ResourceScope, type Scope } from './scopes.js';
import { findUserById, peekLaunch, takeLaunch, type UserRecord } from '../store/auth-users.js';
import { upsertPayload } from '../store/auth-payloads.js';
import { currentVersion } from '../store/resources.js';
import { TenantStore } from '../store/session.js';
import { addressKey, type AddressThrottle } from './sign-in-throttle.js';
import { authRefusal } from './tenant-policy.js';
import { otpauthUri } from './totp.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { TokenGuard } from './verify.js';

export interface InteractionDeps {
  deps: Deps;
  tenants: TenantCache;
  provider: () => Provider;
  /** HMAC key for first-factor tickets. */
  ticketKey: string;
  /** Failed sign-ins per client address (this process). */
  throttle: AddressThrottle;
  smartStyleUrl: string;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

interface Flow {
  details: Details;
  tenant: Tenant;
  aud: string;
  clientName: string;
  client: { clientId: string; scope?: string };
}

/** The interaction's authorization request: tenant (from aud), client; undefined when it is gone or foreign. */
async function flowOf(a: InteractionDeps, req: Request, res: Response): Promise<Flow> {
  const details = await a.provider().interactionDetails(req, res);
  if (details.uid !== req.params.uid) throw new Error('interaction mismatch');
  const aud = String(details.params.aud ?? details.params.resource ?? '');
  const slug = await tenantOfAudience(a.deps.config, a.tenants, aud);
  const tenant = slug ? await a.tenants.get(slug) : undefined;
  if (!tenant) throw new Error('interaction without a tenant');
  const client = await a.provider().Client.find(String(details.params.client_id));
  if (!client) throw new Error('interaction without a client');
  return { details, tenant, aud, clientName: client.clientName ?? client.clientId, client: { clientId: client.clientId, scope: clientScopes(client.metadata()) } };
}

/** The sign-in pages' forms end in a redirect back to the app, whatever its origin. */
function send(res: Response, status: number, html: string): void {
  sendPage(res, status, html, "'self' *");
}

const action = (uid: string, step: string) => `/auth/interaction/${encodeURIComponent(uid)}/${step}`;

function loginPage(f: Flow, message?: string, username = ''): string {
  return page({
    title: 'Sign in',
    tenantName: f.tenant.name,
    body: `<p><strong>${esc(f.clientName)}</strong> asks you to sign in to ${esc(f.tenant.name)}.</p>${errorBox(message)}
<form method="post" action="${action(f.details.uid, 'login')}">
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" value="${esc(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>
<form method="post" action="${action(f.details.uid, 'abort')}"><button class="secondary" type="submit">Cancel</button></form>`,
  });
}

function totpPage(f: Flow, ticket: string, enrol: string | undefined, username: string, message?: string): string {
  const enrolment = enrol
    ? `<p>${esc(f.tenant.name)} requires a second factor. Add this key to your authenticator app, then enter the code it shows.</p>
<p>Key: <code>${esc(enrol)}</code></p><p class="note">Or open: <code>${esc(otpauthUri(enrol, username, f.tenant.name))}</code></p>`
    : '<p>Enter the 6-digit code from your authenticator app.</p>';
  return page({
    title: 'Authentication code',
    tenantName: f.tenant.name,
    body: `${enrolment}${errorBox(message)}
<form method="post" action="${action(f.details.uid, 'totp')}"><input type="hidden" name="ticket" value="${esc(ticket)}">
<label for="code">Code</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required autofocus>
<button type="submit">Verify</button></form>`,
  });
}

export function errorPage(message: string, tenantName?: string): string {
  return page({ title: 'Something went wrong', tenantName, body: `${errorBox(message)}<p class="note">Return to the app and start again.</p>` });
}

export function refusalPage(message: string, tenantName?: string): string {
  return page({ title: 'Sign-in refused', tenantName, body: `${errorBox(message)}<p class="note">Nothing was shared with the app. Return to it.</p>` });
}

/**
 * The 403 page, with an audit record, when the tenant refuses this step from this address, or (once known) for this
 * user's role: src/auth/tenant-policy.ts. True when it was sent.
 */
async function refused(a: InteractionDeps, req: Request, res: Response, f: Flow, user?: UserRecord): Promise<boolean> {
  const why = authRefusal(f.tenant, req.ip, a.deps.clock(), user?.role);
  if (!why) return false;
  a.deps.log.info({ tenantId: f.tenant.id, clientId: f.client.clientId, userId: user?.id, outcome: 'refused-by-tenant-policy' }, 'sign-in');
  const agent = { ...(user ? userAgent(user) : {}), clientId: f.client.clientId, address: addressKey(req.ip) };
  await recordAuthEvents(a.deps, f.tenant.id, { category: 'login', subtype: 'login', action: 'E', outcome: 4, outcomeDesc: why, agent, detail: { reason: 'tenant-policy' } });
  send(res, 403, refusalPage(why, f.tenant.name));
  return true;
}

/** The signed-in user of the interaction's session. */
async function sessionUser(a: InteractionDeps, f: Flow): Promise<UserRecord | undefined> {
  const acct = f.details.session?.accountId ? parseAccountId(f.details.session.accountId) : undefined;
  const user = acct ? await findUserById(a.deps.db, acct.tenantId, acct.userId) : undefined;
  return user && !user.disabled && isRole(user.role) ? user : undefined;
}

function patientIdOfUser(user: UserRecord): string | undefined {
  return user.fhirUser?.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
}

/** A FHIR context acting with the user's role ceiling over Patient: the picker shows what the user may read. */
function pickerContext(a: InteractionDeps, f: Flow, role: Role): FhirContext {
  const registry = a.deps.registry;
  return {
    deps: a.deps,
    tenant: f.tenant,
    baseUrl: f.aud,
    store: new TenantStore(a.deps.db, f.tenant.id, f.aud, undefined, a.deps.config.auditTrail ? undefined : null),
    registry,
    requestId: 'patient-picker',
    log: a.deps.log,
    guard: new TokenGuard(accessFromToken({ scope: 'user/Patient.rs', role })),
  };
}

interface PatientSummary {
  id: string;
  label: string;
}

function patientLabel(p: Record<string, any>): string {
  const n = p.name?.[0];
  const name = n ? n.text ?? [...(n.given ?? []), n.family].filter(Boolean).join(' ') : '';
  const born = p.birthDate ? `born ${p.birthDate}` : '';
  return [name || `Patient/${p.id}`, born].filter(Boolean).join(', ');
}

async function findPatients(a: InteractionDeps, f: Flow, role: Role, q: string): Promise<PatientSummary[] | string> {
  const params: [string, string][] = [['_count', '20']];
  if (q.trim()) params.push(['name', q.trim()]);
  try {
    const r = await searchType(pickerContext(a, f, role), 'Patient', params, false);
    const bundle = JSON.parse(r.body as string) as { entry?: { resource: Record<string, unknown>; search?: { mode: string } }[] };
    return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => ({ id: String(e.resource.id), label: patientLabel(e.resource) }));
  } catch {
    return 'Your role may not look up patient records, so this app cannot be given a patient.';
  }
}

function pickerPage(f: Flow, q: string, found: PatientSummary[] | string): string {
  const results =
    typeof found === 'string'
      ? errorBox(found)
      : found.length
        ? `<ul class="patients">${found
            .map((p) => `<li><a href="/auth/interaction/${encodeURIComponent(f.details.uid)}?patient=${encodeURIComponent(p.id)}">${esc(p.label)}</a></li>`)
            .join('')}</ul>`
        : `<p class="note">No patient matches${q ? ` "${esc(q)}"` : ''}.</p>`;
  return page({
    title: 'Choose a patient',
    tenantName: f.tenant.name,
    body: `<p><strong>${esc(f.clientName)}</strong> opens for one patient. Find the patient by name.</p>
<form method="get" action="/auth/interaction/${encodeURIComponent(f.details.uid)}"><label for="q">Patient name</label>
<input id="q" name="q" type="search" value="${esc(q)}" autofocus><button type="submit">Search</button></form>${results}
<form method="post" action="${action(f.details.uid, 'abort')}"><button class="secondary" type="submit">Cancel</button></form>`,
  });
}

interface Offer {
  /** The request's scopes, parsed: the consent page has one line per requested wildcard. */
  requested: Scope[];
  /** Resource scopes the user may grant (requested ∩ client ∩ role ceiling) that the API would honour. */
  resource: ResourceScope[];
  /** Launch/identity/refresh scopes that can be granted. */
  other: string[];
  /** Requested but not grantable, with why. */
  refused: { scope: string; why: string }[];
  patient?: string;
  encounter?: string;
  ehrLaunch: boolean;
  needsPatient: boolean;
}

const requestedScopes = (f: Flow) => String(f.details.params.scope ?? '').split(' ').filter(Boolean);

/** What the consent page offers for this user, client and launch. */
async function offerFor(a: InteractionDeps, f: Flow, user: UserRecord, pickedPatient: string | undefined): Promise<Offer | string> {
  const requested = requestedScopes(f);
  const role = user.role as Role;
  const launchId = f.details.params.launch as string | undefined;
  let patient: string | undefined;
  let encounter: string | undefined;
  if (launchId) {
    const l = await peekLaunch(a.deps.db, f.tenant.id, launchId);
    if (!l) return 'The EHR launch has expired. Launch the app again from the EHR.';
    patient = l.patient ?? undefined;
    encounter = l.encounter ?? undefined;
  }
  if (role === 'patient') patient = patientIdOfUser(user);
  else if (!launchId && pickedPatient) patient = pickedPatient;
  const parsed = parseScopes(requested.join(' '), R4_TYPES);
  const wantsPatient = requested.includes('launch/patient') || parsed.scopes.some((s) => isResourceScope(s) && s.context === 'patient');
  const needsPatient = wantsPatient && !patient && role !== 'patient' && !launchId;
  const g = grantAccess({ requested: requested.join(' '), clientAllowed: f.client.scope ?? '', role, patientId: patient });
  const clientOther = new Set((f.client.scope ?? '').split(' '));
  const other: string[] = [];
  const refused: Offer['refused'] = parsed.rejected.map((r) => ({ scope: r.scope, why: r.reason }));
  for (const s of parsed.scopes) {
    if (s.kind !== 'other') continue;
    let why: string | undefined;
    if (!clientOther.has(s.name)) why = 'this app is not registered for it';
    else if (s.name === 'launch' && !launchId) why = 'the app was not launched from the EHR';
    else if (s.name === 'launch/patient' && !patient) why = 'no patient is selected';
    else if (s.name === 'launch/encounter' && !encounter) why = 'choosing an encounter is not supported in a standalone launch';
    // SMART: "If the EHR cannot represent the user with a FHIR resource, it cannot support the fhirUser scope"
    else if (s.name === 'fhirUser' && !user.fhirUser) why = 'your account is not linked to a FHIR record';
    if (why) refused.push({ scope: s.name, why });
    else other.push(s.name);
  }
  for (const raw of g.notGranted) refused.push({ scope: raw, why: 'neither your role nor this app allows it' });
  const resource: ResourceScope[] = [];
  const named = (s: ResourceScope) => parsed.scopes.some((r) => isResourceScope(r) && r.resourceType === s.resourceType);
  for (const s of g.access.scopes.filter(isResourceScope)) {
    const noPatient = s.context === 'patient' && !patient;
    const why = noPatient ? 'no patient is selected' : apiRefusal(s, patient);
    if (!why) resource.push(s);
    // a type the app named is explained; a wildcard's types that do not apply (the directory under patient/*) just go
    else if (noPatient || named(s)) refused.push({ scope: renderScope(s), why });
  }
  return { requested: parsed.scopes, resource, other, refused, patient, encounter, ehrLaunch: !!launchId, needsPatient };
}

/**
 * Why the FHIR API would refuse a scope on its own, asked of the decision function it enforces with (accessForType),
 * so the page never offers what a token then cannot use: a `patient/` scope on a type outside the patient
 * compartment (patient/Practitioner.rs under a staff ceiling) answered 403 on every read. A wildcard is asked about
 * Patient, which every context's `*` reaches.
 */
function apiRefusal(s: ResourceScope, patient: string | undefined): string | undefined {
  const type = s.resourceType === '*' ? 'Patient' : s.resourceType;
  for (const letter of s.letters as Iterable<Letter>) {
    const d = accessForType({ scopes: [s], ...(patient ? { patientId: patient } : {}) }, type, letter);
    if (!d.allow) return `the FHIR API would refuse it: ${d.reason}`;
  }
  return undefined;
}

async function patientName(a: InteractionDeps, tenantId: string, id: string): Promise<string | undefined> {
  const row = await currentVersion(a.deps.db, tenantId, 'Patient', id);
  return row?.json && !row.deleted ? patientLabel(JSON.parse(row.json)) : undefined;
}

function consentPage(f: Flow, user: UserRecord, o: Offer, patientLabelText: string | undefined, message?: string): string {
  const item = (value: string, words: string, details?: string[]) =>
    `<li><label><input type="checkbox" name="scope" value="${esc(value)}" checked> ${esc(words)}</label> <span class="note"><code>${esc(value)}</code></span>${
      details ? `<details class="note"><summary>Which kinds</summary>${esc(details.join(', '))}</details>` : ''
    }</li>`;
  const resource = consentLines(o.requested, o.resource, patientLabelText).map((l) => item(l.value, l.words, l.details)).join('');
  const other = o.other.map((name) => item(name, describeScope({ kind: 'other', name } as Scope))).join('');
  const refused = o.refused.length
    ? `<p class="note">Not available:</p><ul class="scopes">${o.refused.map((r) => `<li class="note"><code>${esc(r.scope)}</code>: ${esc(r.why)}</li>`).join('')}</ul>`
    : '';
  const patientLine = o.patient
    ? `<p>Patient: <strong>${esc(patientLabelText ?? `Patient/${o.patient}`)}</strong>${!o.ehrLaunch && user.role !== 'patient' ? ` (<a href="/auth/interaction/${encodeURIComponent(f.details.uid)}?pick=1">choose another</a>)` : ''}</p>`
    : '';
  return page({
    title: 'Allow access?',
    tenantName: f.tenant.name,
    body: `<p><strong>${esc(f.clientName)}</strong> asks for access to ${esc(f.tenant.name)} as <strong>${esc(user.displayName ?? user.username)}</strong> (${esc(user.role)}).</p>
${patientLine}${errorBox(message)}
<form method="post" action="${action(f.details.uid, 'consent')}">
${o.patient ? `<input type="hidden" name="patient" value="${esc(o.patient)}">` : ''}
<p>Untick anything you do not want to allow:</p><ul class="scopes">${other}${resource}</ul>${refused}
<button type="submit" name="decision" value="allow">Allow</button>
<button class="secondary" type="submit" name="decision" value="deny">Deny</button></form>`,
  });
}

/** GET /auth/interaction/:uid — whichever step the authorization request is at. */
export async function showInteraction(a: InteractionDeps, req: Request, res: Response): Promise<void> {
  const f = await flowOf(a, req, res);
  if (await refused(a, req, res, f)) return;
  if (f.details.prompt.name === 'login') return send(res, 200, loginPage(f));
  const user = await sessionUser(a, f);
  if (!user) return send(res, 200, loginPage(f, 'Please sign in again.'));
  if (await refused(a, req, res, f, user)) return;
  const picked = typeof req.query.patient === 'string' ? req.query.patient : undefined;
  const canPick = !f.details.params.launch && user.role !== 'patient';
  if (picked && canPick && !(await mayReadPatient(a, f, user, picked))) return send(res, 200, pickerPage(f, '', 'That patient cannot be chosen.'));
  const offer = await offerFor(a, f, user, canPick ? picked : undefined);
  if (typeof offer === 'string') return send(res, 400, errorPage(offer, f.tenant.name));
  if (canPick && !picked && (offer.needsPatient || req.query.pick !== undefined || typeof req.query.q === 'string')) {
    const q = typeof req.query.q === 'string' ? req.query.q.slice(0, 200) : '';
    return send(res, 200, pickerPage(f, q, await findPatients(a, f, user.role as Role, q)));
  }
  const label = offer.patient ? await patientName(a, f.tenant.id, offer.patient) : undefined;
  send(res, 200, consentPage(f, user, offer, label));
}

/** The patient must exist and be readable with the user's role (the picker's own search decides). */
async function mayReadPatient(a: InteractionDeps, f: Flow, user: UserRecord, id: string): Promise<boolean> {
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) return false;
  try {
    const r = await searchType(pickerContext(a, f, user.role as Role), 'Patient', [['_id', id]], false);
    return (JSON.parse(r.body as string).entry ?? []).some((e: { search?: { mode: string } }) => e.search?.mode === 'match');
  } catch {
    return false;
  }
}

function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0] ?? '') : '';
}

function fields(req: Request, name: string): string[] {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? [v] : Array.isArray(v) ? v.map(String) : [];
}

async function finishLogin(a: InteractionDeps, req: Request, res: Response, f: Flow, user: UserRecord, amr: string[]): Promise<void> {
  const full = await sessionQuotaRefusal(a.deps, f.tenant, user.tenantId, f.details.session?.uid); // the plan's sessions quota (issue 11): src/fhir/quotas.ts
  if (full) return send(res, 403, refusalPage(full, f.tenant.name));
  await a.provider().interactionFinished(req, res, { login: { accountId: accountId(user.tenantId, user.id), amr } }, { mergeWithLastSubmission: false });
}

/** The sign-in's client address: req.ip honours X-Forwarded-For only from trusted proxies (TRUSTED_PROXIES, TRUST_PROXY). */
export function signInContext(a: InteractionDeps, req: Request): SignInContext {
  return { deps: a.deps, throttle: a.throttle, address: addressKey(req.ip) };
}

/** 429 for a lock or the address throttle, with when to come back (RFC 6585 §4). */
export function refusalStatus(a: InteractionDeps, res: Response, out: LoginOutcome): number {
  if (out.ok || (out.reason !== 'locked' && out.reason !== 'throttled')) return 401;
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil((out.until.getTime() - a.deps.clock().getTime()) / 1000))));
  return 429;
}

/** POST /auth/interaction/:uid/login */
export async function submitLogin(a: InteractionDeps, req: Request, res: Response): Promise<void> {
  const f = await flowOf(a, req, res);
  if (await refused(a, req, res, f)) return;
  const username = field(req, 'username').trim().slice(0, 200);
  const c = signInContext(a, req);
  const out = await checkPassword(c, f.tenant.id, f.tenant.settings.mfaRequired === true, username, field(req, 'password'));
  if ((out.ok || out.reason === 'second-factor') && (await refused(a, req, res, f, out.user))) return;
  // a log line per sign-in attempt: the user id when known, never the username typed or the password
  a.deps.log.info({ tenantId: f.tenant.id, clientId: f.client.clientId, userId: 'user' in out ? out.user?.id : undefined, outcome: out.ok ? 'signed-in' : out.reason }, 'sign-in');
  await auditSignIn(a.deps, f.tenant.id, out, username, { clientId: f.client.clientId, address: c.address }, { factor: 'password' });
  if (out.ok) return finishLogin(a, req, res, f, out.user, out.amr);
  if (out.reason === 'second-factor') {
    const ticket = signTicket(a.ticketKey, { uid: f.details.uid, tenantId: out.user.tenantId, userId: out.user.id, ...(out.enrol ? { enrol: out.enrol } : {}) }, a.deps.clock());
    return send(res, 200, totpPage(f, ticket, out.enrol, out.user.username));
  }
  send(res, refusalStatus(a, res, out), loginPage(f, out.message, username));
}

/** POST /auth/interaction/:uid/totp */
export async function submitTotp(a: InteractionDeps, req: Request, res: Response): Promise<void> {
  const f = await flowOf(a, req, res);
  const ticketText = field(req, 'ticket');
  const ticket = readTicket(a.ticketKey, ticketText, f.details.uid, a.deps.clock());
  const user = ticket ? await findUserById(a.deps.db, ticket.tenantId, ticket.userId) : undefined;
  if (!ticket || !user || user.disabled) return send(res, 401, loginPage(f, 'Your sign-in expired; sign in again.'));
  if (await refused(a, req, res, f, user)) return;
  const c = signInContext(a, req);
  const out = await checkTotp(c, user, field(req, 'code'), ticket.enrol);
  a.deps.log.info({ tenantId: f.tenant.id, clientId: f.client.clientId, userId: user.id, outcome: out.ok ? 'signed-in' : out.reason, factor: 'totp' }, 'sign-in');
  await auditSignIn(a.deps, f.tenant.id, out, user, { clientId: f.client.clientId, address: c.address }, { factor: 'totp' });
  if (out.ok) return finishLogin(a, req, res, f, out.user, out.amr);
  if (out.reason === 'locked' || out.reason === 'throttled') return send(res, refusalStatus(a, res, out), loginPage(f, out.message, user.username));
  send(res, 401, totpPage(f, ticketText, ticket.enrol, user.username, out.reason === 'invalid' ? out.message : undefined));
}

/** POST /auth/interaction/:uid/abort — the user cancels: the app gets access_denied. */
export async function abortInteraction(a: InteractionDeps, req: Request, res: Response): Promise<void> {
  await a.provider().interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled the request' }, { mergeWithLastSubmission: false });
}

/** The audit records of an allowed consent: what was granted, and the launch context (patient, encounter) it carries. */
function consentEvents(agent: AuditAgent, requested: string[], smart: SmartContext, ehrLaunch: boolean): AuthEvent[] {
  const granted = [smart.scope, ...smart.other].filter(Boolean).join(' ');
  const events: AuthEvent[] = [{ category: 'authorization', subtype: 'consent', action: 'E', outcome: 0, agent, detail: { scope: granted, requested: requested.join(' ') } }];
  if (!smart.patient && !smart.encounter) return events;
  const entities = [...(smart.patient ? [{ ref: `Patient/${smart.patient}` }] : []), ...(smart.encounter ? [{ ref: `Encounter/${smart.encounter}` }] : [])];
  events.push({
    category: 'authorization',
    subtype: 'launch',
    action: 'E',
    outcome: 0,
    agent,
    entities,
    patients: smart.patient ? [smart.patient] : [],
    detail: { launch: ehrLaunch ? 'ehr' : 'standalone' },
  });
  return events;
}

/** POST /auth/interaction/:uid/consent — records exactly what the user allowed, with the SMART launch context. */
export async function submitConsent(a: InteractionDeps, req: Request, res: Response): Promise<void> {
  const f = await flowOf(a, req, res);
  const user = await sessionUser(a, f);
  if (await refused(a, req, res, f, user)) return;
  const agent = { ...(user ? userAgent(user) : {}), clientId: f.client.clientId, address: addressKey(req.ip) };
  const requested = requestedScopes(f);
  if (field(req, 'decision') !== 'allow') {
    await recordAuthEvents(a.deps, f.tenant.id, { category: 'authorization', subtype: 'consent', action: 'E', outcome: 4, outcomeDesc: 'The user denied access', agent, detail: { requested: requested.join(' ') } });
    await a.provider().interactionFinished(req, res, { error: 'access_denied', error_description: 'The user denied access' }, { mergeWithLastSubmission: true });
    return;
  }
  if (!user || f.details.prompt.name !== 'consent') return send(res, 401, loginPage(f, 'Please sign in again.'));
  const pickedPatient = field(req, 'patient') || undefined;
  if (pickedPatient && user.role !== 'patient' && !f.details.params.launch && !(await mayReadPatient(a, f, user, pickedPatient))) {
    return send(res, 400, errorPage('That patient cannot be chosen.', f.tenant.name));
  }
  const offer = await offerFor(a, f, user, pickedPatient);
  if (typeof offer === 'string') return send(res, 400, errorPage(offer, f.tenant.name));
  const chosen = new Set(fields(req, 'scope'));
  // what the user ticked (a wildcard's line stands for all its types), re-intersected server-side: a tampered form
  // cannot add anything
  const resourceChosen = consentLines(offer.requested, offer.resource).filter((l) => chosen.has(l.value)).flatMap((l) => l.scopes.map(renderScope));
  const g = grantAccess({ requested: resourceChosen.join(' '), clientAllowed: resourceChosen.join(' '), role: user.role as Role, patientId: offer.patient });
  const other = offer.other.filter((s) => chosen.has(s));
  const requestedOther = requested.filter((s) => !/^(patient|user|system)\//.test(s));
  const requestedResource = requested.filter((s) => /^(patient|user|system)\//.test(s));

  // One authorization per EHR launch, decided atomically before any grant exists: of several sign-ins racing for one
  // launch (two tabs, a replayed form), exactly one gets its context (issue 8).
  const launchId = f.details.params.launch as string | undefined;
  if (launchId && !(await takeLaunch(a.deps.db, f.tenant.id, launchId))) {
    await recordAuthEvents(a.deps, f.tenant.id, { category: 'authorization', subtype: 'launch', action: 'E', outcome: 4, outcomeDesc: 'The EHR launch was already used or has expired', agent, detail: { launch: 'ehr' } });
    return send(res, 400, errorPage('This EHR launch has already been used or has expired. Launch the app again from the EHR.', f.tenant.name));
  }

  const provider = a.provider();
  const grant = new provider.Grant({ accountId: f.details.session!.accountId, clientId: f.client.clientId });
  if (other.length) grant.addOIDCScope(other.join(' '));
  const rejectedOther = requestedOther.filter((s) => !other.includes(s));
  if (rejectedOther.length) grant.rejectOIDCScope(rejectedOther.join(' '));
  // oidc-provider's bookkeeping of the request's resource scopes; the effective scopes are the SmartGrant's
  if (g.access.scopes.length && requestedResource.length) grant.addResourceScope(f.aud, requestedResource.join(' '));
  else if (requestedResource.length) grant.rejectResourceScope(f.aud, requestedResource.join(' '));
  const grantId = await grant.save();

  const smart: SmartContext = {
    tenant: f.tenant.id,
    aud: f.aud,
    role: user.role as Role,
    scope: g.scope,
    other,
    ...(offer.patient ? { patient: offer.patient } : {}),
    ...(offer.encounter ? { encounter: offer.encounter } : {}),
    ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}),
    needPatientBanner: !offer.ehrLaunch,
    smartStyleUrl: a.smartStyleUrl,
    grantId,
  };
  await upsertPayload(a.deps.db, SMART_GRANT, grantId, smart as unknown as Record<string, unknown>, a.deps.config.authRefreshTokenDays * 86_400);
  await recordAuthEvents(a.deps, f.tenant.id, ...consentEvents(agent, requested, smart, offer.ehrLaunch));
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
