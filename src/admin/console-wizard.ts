// The onboarding wizard of the admin console (issue 11), for platform administrators: 1 the organization (short
// name, name, type, branding), 2 its first administrator, 3 its plan; then one createTenantWithAdmin call and the
// invitation link. What earlier steps gathered travels in a hidden field, signed and bound to the session, so the
// wizard keeps no server state and works without JavaScript; every step is checked again before anything is created.
import type { Request, Response } from 'express';
import { FhirError } from '../core/errors.js';
import type { Plan } from '../core/plans.js';
import { isTenantSlug, RESERVED_SLUGS } from '../core/tenant.js';
import { findTenant } from '../store/tenants.js';
import { TENANT_TYPES } from '../tenancy/create-tenant.js';
import { count, csrfField, errorBox, esc, sendConsole, sendProblem } from './console-layout.js';
import { field, type ConsoleContext, type ConsoleSession } from './console-session.js';
import { invitationNotice } from './console-tenants.js';
import { EMAIL, USERNAME } from './invitations.js';
import { createTenantWithAdmin } from './tenants.js';

/** The kinds of organization (src/tenancy/create-tenant.ts TENANT_TYPES) as the wizard names them. */
const TYPE_NAMES: Record<(typeof TENANT_TYPES)[number], string> = {
  'solo-practice': 'Solo practice',
  'multi-branch': 'Multi-branch clinic',
  'diagnostic-centre': 'Diagnostic centre',
  'hospital-group': 'Hospital group',
  lab: 'Laboratory',
};

interface Draft {
  slug?: string;
  name?: string;
  type?: string;
  primaryColor?: string;
  logoUrl?: string;
  username?: string;
  displayName?: string;
  email?: string;
  plan?: string;
}

type Step = 1 | 2 | 3;

const STEP_FIELDS: Record<Step, (keyof Draft)[]> = {
  1: ['slug', 'name', 'type', 'primaryColor', 'logoUrl'],
  2: ['username', 'displayName', 'email'],
  3: ['plan'],
};

const STEP_NAMES: Record<Step, string> = { 1: 'Organization', 2: 'First administrator', 3: 'Plan' };

const purpose = (s: ConsoleSession) => `wizard-draft:${s.csrf}`;

function readDraft(c: ConsoleContext, s: ConsoleSession, req: Request): Draft | undefined {
  const raw = field(req, 'draft');
  if (!raw) return {};
  const text = c.keys.open(purpose(s), raw);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as Draft);
  } catch {
    return undefined;
  }
}

/** Problems with one step's answers (field -> message); empty when the step is complete. */
async function problems(c: ConsoleContext, d: Draft, step: Step, plans: Plan[]): Promise<Record<string, string>> {
  const p: Record<string, string> = {};
  if (step === 1) {
    if (!d.slug || !isTenantSlug(d.slug) || RESERVED_SLUGS.has(d.slug)) p.slug = "A short name is 1-63 lowercase letters, digits and '-', starting with a letter or digit (and not a reserved word such as admin or fhir).";
    else if (await findTenant(c.deps.db, d.slug)) p.slug = `The short name '${d.slug}' is taken.`;
    if (!d.name || [...d.name].length > 200) p.name = 'The name is required (at most 200 characters).';
    if (!d.type || !(d.type in TYPE_NAMES)) p.type = 'Choose the kind of organization.';
    if (d.primaryColor && !/^#[0-9a-fA-F]{6}$/.test(d.primaryColor)) p.primaryColor = 'A colour is written #rrggbb, e.g. #1f6fc5.';
    if (d.logoUrl && (URL.parse(d.logoUrl)?.protocol !== 'https:' || d.logoUrl.length > 500)) p.logoUrl = 'A logo address is an https:// URL (at most 500 characters).';
  } else if (step === 2) {
    if (!d.username || !USERNAME.test(d.username)) p.username = 'A username is 3-100 characters of letters, digits and . _ @ + -';
    if (d.displayName && [...d.displayName].length > 200) p.displayName = 'At most 200 characters.';
    if (d.email && !EMAIL.test(d.email)) p.email = 'This is not an email address.';
  } else if (!d.plan || !plans.some((x) => x.id === d.plan)) p.plan = 'Choose a plan.';
  return p;
}

const limit = (n: number | null) => (n === null ? 'unlimited' : count(n));

function input(d: Draft, errors: Record<string, string>, name: keyof Draft, label: string, type = 'text', required = false, hint = ''): string {
  const error = errors[name] ? `<div class="error" id="${name}-error">${esc(errors[name])}</div>` : '';
  return `<label for="${name}">${label}</label>${hint ? `<div class="note">${hint}</div>` : ''}<input id="${name}" name="${name}" type="${type}" value="${esc(d[name] ?? '')}"${required ? ' required' : ''}${errors[name] ? ` aria-describedby="${name}-error"` : ''}>${error}`;
}

function stepFields(d: Draft, step: Step, errors: Record<string, string>, plans: Plan[]): string {
  if (step === 1) {
    const types = Object.entries(TYPE_NAMES).map(([k, v]) => `<option value="${k}"${d.type === k ? ' selected' : ''}>${v}</option>`).join('');
    return `${input(d, errors, 'slug', 'Short name', 'text', true, 'Lowercase, part of its addresses: /fhir/<em>short-name</em>')}
${input(d, errors, 'name', 'Name', 'text', true)}
<label for="type">Kind of organization</label><select id="type" name="type"><option value="">—</option>${types}</select>${errors.type ? `<div class="error">${esc(errors.type)}</div>` : ''}
${input(d, errors, 'primaryColor', 'Brand colour (optional)', 'text', false, '#rrggbb')}
${input(d, errors, 'logoUrl', 'Logo address (optional)', 'url', false, 'https://…')}`;
  }
  if (step === 2) {
    return `<p class="note">This person gets a single-use invitation link to set their password (and a second factor if required).</p>
${input(d, errors, 'username', 'Username', 'text', true)}${input(d, errors, 'displayName', 'Display name')}${input(d, errors, 'email', 'Email', 'email')}`;
  }
  const fitting = plans.filter((p) => !p.tenantTypes.length || (d.type && p.tenantTypes.includes(d.type)));
  const options = fitting.map((p) => {
    const q = p.quotas;
    const limits = `${limit(q.staffUsers)} staff · ${limit(q.patients)} patients · ${limit(q.locations)} locations${p.trialDays ? ` · ${p.trialDays}-day trial` : ''}`;
    return `<li><label><input type="radio" name="plan" value="${esc(p.id)}"${d.plan === p.id ? ' checked' : ''} required> ${esc(p.name)}</label><div class="note">${esc(p.description)} — ${esc(limits)}</div></li>`;
  });
  return `${errors.plan ? errorBox(errors.plan) : ''}<ul class="plans">${options.join('')}</ul>`;
}

async function render(c: ConsoleContext, s: ConsoleSession, res: Response, d: Draft, step: Step, status = 200, errors: Record<string, string> = {}, message?: string): Promise<void> {
  const plans = step === 3 ? await c.deps.plans.list() : [];
  // the hidden draft carries the other steps' answers; this step's come from its inputs
  const carried = Object.fromEntries(Object.entries(d).filter(([k]) => !STEP_FIELDS[step].includes(k as keyof Draft)));
  const soFar = step > 1 ? `<p class="note">Organization: <strong>${esc(d.name)}</strong> (<code>${esc(d.slug)}</code>, ${esc(TYPE_NAMES[d.type as keyof typeof TYPE_NAMES] ?? d.type)})${step > 2 ? ` · first administrator <strong>${esc(d.username)}</strong>` : ''}</p>` : '';
  const steps = ([1, 2, 3] as Step[]).map((n) => `<li${n === step ? ' class="now" aria-current="step"' : ''}>${n}. ${STEP_NAMES[n]}</li>`).join('');
  sendConsole(res, status, {
    title: `New organization: ${STEP_NAMES[step].toLowerCase()}`,
    session: s,
    body: `<ol class="steps">${steps}</ol>${soFar}${errorBox(message)}
<form method="post" action="/admin/new">${csrfField(s)}<input type="hidden" name="step" value="${step}"><input type="hidden" name="draft" value="${esc(c.keys.sign(purpose(s), JSON.stringify(carried)))}">
${stepFields(d, step, errors, plans)}
<div class="actions">${step > 1 ? '<button class="secondary" type="submit" name="back" value="1" formnovalidate>Back</button>' : ''}<button type="submit">${step < 3 ? 'Next' : 'Create organization'}</button></div></form>`,
  });
}

/** GET /admin/new */
export async function showWizard(c: ConsoleContext, s: ConsoleSession, _req: Request, res: Response): Promise<void> {
  if (s.actor.kind !== 'platform-admin') return sendProblem(res, 403, 'Refused', 'Only platform administrators onboard organizations.', s);
  await render(c, s, res, {}, 1);
}

/** POST /admin/new: one step's answers in, the next step (or the same one, with what is wrong) out. */
export async function submitWizard(c: ConsoleContext, s: ConsoleSession, req: Request, res: Response): Promise<void> {
  if (s.actor.kind !== 'platform-admin') return sendProblem(res, 403, 'Refused', 'Only platform administrators onboard organizations.', s);
  const step = Number(field(req, 'step')) as Step;
  const carried = readDraft(c, s, req);
  if (!carried || !STEP_FIELDS[step]) return sendProblem(res, 400, 'Start again', 'This form is not valid any more (it belongs to another sign-in). Start the onboarding again.', s);
  const d: Draft = { ...carried };
  for (const k of STEP_FIELDS[step]) {
    const v = field(req, k).trim();
    if (v) d[k] = k === 'slug' ? v.toLowerCase() : v;
    else delete d[k];
  }
  if (field(req, 'back')) return render(c, s, res, d, (step - 1) as Step);
  const plans = await c.deps.plans.list();
  for (const n of [1, 2, 3] as Step[]) {
    if (n > step) break;
    const p = await problems(c, d, n, plans);
    if (Object.keys(p).length) return render(c, s, res, d, n, 400, p);
  }
  if (step < 3) return render(c, s, res, d, (step + 1) as Step);
  try {
    const out = await createTenantWithAdmin(c.deps, s.actor, {
      slug: d.slug!,
      name: d.name!,
      type: d.type!,
      plan: d.plan!,
      branding: { ...(d.primaryColor ? { primaryColor: d.primaryColor } : {}), ...(d.logoUrl ? { logoUrl: d.logoUrl } : {}) },
      admin: { username: d.username!, ...(d.displayName ? { displayName: d.displayName } : {}), ...(d.email ? { email: d.email } : {}) },
    }, { provider: c.provider() });
    sendConsole(res, 201, {
      title: 'Organization created',
      session: s,
      body: `<p><strong>${esc(out.tenant.name)}</strong> (<code>${esc(out.tenant.slug)}</code>) is ready, on the ${esc(out.tenant.plan ?? '')} plan. Its first administrator, ${esc(d.username)}, has no password yet.</p>
${invitationNotice(out.invitation)}
<p><a href="/admin/tenants/${encodeURIComponent(out.tenant.slug)}">Open the organization's page</a></p>`,
    });
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    await render(c, s, res, d, 3, err.status, {}, err.message);
  }
}
