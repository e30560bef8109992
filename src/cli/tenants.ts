// CLI `tenant`: create (type, plan, first admin's invitation), list (status, plan, usage), show, plan, the lifecycle
// (suspend, reactivate, archive, terminate) and set (per-tenant settings). The same service functions as the admin
// API (src/admin/tenants.ts), run as the operator: a platform administrator named `cli` in the audit trail.
import { parseArgs } from 'node:util';
import type { Deps } from '../core/deps.js';
import { PLATFORM, type TenantSettings } from '../core/tenant.js';
import { validateSecurityPolicy } from '../tenancy/security-policy.js';
import { archiveTenant, changePlan, getTenantView, listTenantViews, provisionTenant, reactivateTenant, suspendTenant, terminateTenant } from '../admin/tenants.js';
import type { AdminActor } from '../core/admin-actor.js';
import { findTenant, updateTenantSettings } from '../store/tenants.js';
import { TENANT_CACHE_TTL_MS, tenantChanged } from '../tenancy/tenant-cache.js';
import { applyProfileOptions } from './required-profiles.js';

export const TENANT_USAGE = `  tenant create <slug> --name "<name>" [--type T] [--plan P] [--admin-username U [--admin-email E] [--admin-name N]]
                                            a tenant, its root Organization and its operator client <slug>-cli; with
                                            --admin-username, prints its first tenant admin's invitation link. Without
                                            --plan the tenant has no plan: no quota applies to it
  tenant list                               tenants: slug, status, plan, type, resources, storage, requests today, last activity, name
  tenant show <slug>                        one tenant as JSON (settings, branding, usage)
  tenant plan <slug> <plan>                 move to another plan (a trial moved to a paid plan becomes active); lists quotas now exceeded
  tenant suspend|reactivate|archive|terminate <slug> [--reason "<why>"]
                                            lifecycle: active -> suspended -> active; trial|active|suspended -> archived
                                            (read-only); any -> terminated (erased after TENANT_ERASURE_GRACE_DAYS)
  tenant set <slug> [--referential-integrity true|false] [--mfa-required true|false] [--audit-retention-days N]
             [--required-bindings true|false] [--require-profile Type=url]... [--clear-required-profiles Type|*]...
                                            every resource of Type must meet the profile on create/update (profiles/README.md)
             [--ip-allow-list <cidr>,...|none] [--idle-timeout-minutes N] [--password-min-length N]
             [--breached-password-check true|false] [--max-token-lifetime-seconds N] [--break-glass-approval true|false]
                                            security policies (docs/security-policies.md)`;

/** The operator at the CLI, as the admin services see them. */
const OPERATOR_ACTOR: AdminActor = { kind: 'platform-admin', tenant: PLATFORM, sub: 'cli' };

/** `tenant set` options of the security policies, each to its setting (checked by validateSecurityPolicy). */
const POLICY_OPTIONS: Record<string, (v: string) => Partial<TenantSettings>> = {
  'ip-allow-list': (v) => ({ ipAllowList: v === 'none' ? [] : v.split(',').map((c) => c.trim()) }),
  'idle-timeout-minutes': (v) => ({ idleTimeoutMinutes: Number(v) }),
  'password-min-length': (v) => ({ passwordMinLength: Number(v) }),
  'breached-password-check': (v) => ({ breachedPasswordCheck: boolOption(v) }),
  'max-token-lifetime-seconds': (v) => ({ maxTokenLifetimeSeconds: Number(v) }),
  'break-glass-approval': (v) => ({ breakGlassApproval: boolOption(v) }),
};

/** 'true' / 'false'; anything else is left for validateSecurityPolicy to name. */
function boolOption(v: string): boolean {
  return v === 'true' ? true : v === 'false' ? false : (v as unknown as boolean);
}

const LIFECYCLE = { suspend: suspendTenant, reactivate: reactivateTenant, archive: archiveTenant, terminate: terminateTenant } as const;

/** How long a change takes to reach running servers (this process has no cache they share). */
const PICKED_UP = `servers pick it up within ${TENANT_CACHE_TTL_MS / 1000} s`;

/** Runs `tenant <sub> ...`; undefined when `sub` is not a tenant command. */
export async function tenantCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number | undefined> {
  if (sub === 'create') return create(deps, rest);
  if (sub === 'list') return list(deps);
  if (sub === 'set') return set(deps, rest);
  const { values, positionals } = parseArgs({ args: rest, options: { reason: { type: 'string' } }, allowPositionals: true });
  const slug = positionals[0];
  if (sub === 'show' && slug) {
    console.log(JSON.stringify(await getTenantView(deps, OPERATOR_ACTOR, slug), null, 2));
    return 0;
  }
  if (sub === 'plan' && slug && positionals[1]) {
    const out = await changePlan(deps, OPERATOR_ACTOR, slug, positionals[1]);
    console.log(`tenant ${slug}: plan ${out.tenant.plan}, status ${out.tenant.status} (${PICKED_UP})`);
    for (const o of out.overQuota) console.log(`  over quota: ${o.quota} uses ${o.usage}, the plan allows ${o.limit} (nothing is deleted; new ones are refused)`);
    return 0;
  }
  if (sub && Object.hasOwn(LIFECYCLE, sub) && slug) {
    const t = await LIFECYCLE[sub as keyof typeof LIFECYCLE](deps, OPERATOR_ACTOR, slug, values.reason);
    const erasure = t.terminateAfter ? `; its data is erased after ${t.terminateAfter}` : '';
    console.log(`tenant ${slug} is now ${t.status}${erasure} (${PICKED_UP})`);
    return 0;
  }
  if (['show', 'plan', ...Object.keys(LIFECYCLE)].includes(sub ?? '')) {
    console.error(`usage:\n${TENANT_USAGE}`);
    return 2;
  }
  return undefined;
}

async function create(deps: Deps, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: { name: { type: 'string' }, type: { type: 'string' }, plan: { type: 'string' }, 'admin-username': { type: 'string' }, 'admin-email': { type: 'string' }, 'admin-name': { type: 'string' } },
    allowPositionals: true,
  });
  const slug = positionals[0];
  if (!slug || !values.name || ((values['admin-email'] || values['admin-name']) && !values['admin-username'])) {
    console.error('usage: tenant create <slug> --name "<name>" [--type T] [--plan P] [--admin-username U [--admin-email E] [--admin-name N]]');
    return 2;
  }
  const username = values['admin-username'];
  const admin = username ? { username, ...(values['admin-email'] ? { email: values['admin-email'] } : {}), ...(values['admin-name'] ? { displayName: values['admin-name'] } : {}) } : undefined;
  const out = await provisionTenant(deps, OPERATOR_ACTOR, {
    slug,
    name: values.name,
    ...(values.type ? { type: values.type } : {}),
    ...(values.plan ? { plan: values.plan } : {}),
    ...(admin ? { admin } : {}),
  });
  const t = out.tenant;
  console.log(`created tenant ${slug}: FHIR base ${deps.config.publicBaseUrl}/fhir/${slug}`);
  console.log(`  status ${t.status}${t.trialEndsAt ? ` (trial ends ${t.trialEndsAt})` : ''}, plan ${t.plan ?? '(none: no quotas)'}${t.type ? `, type ${t.type}` : ''}`);
  const clientId = `${slug}-cli`;
  console.log(`operator client ${clientId} registered; get an access token with:`);
  console.log(`  npm run -s cli -- token ${slug} --client ${clientId} --scope 'system/*.cruds'`);
  if (out.invitation) {
    console.log(`invitation for ${username} (tenant admin), single use, expires ${out.invitation.expiresAt}:`);
    console.log(`  ${out.invitation.url}`);
  }
  return 0;
}

async function list(deps: Deps): Promise<number> {
  const mb = (n: number) => `${(n / 1_048_576).toFixed(1)} MB`;
  console.log(['slug', 'status', 'plan', 'type', 'resources', 'storage', 'requests-today', 'last-activity', 'name'].join('\t'));
  for (const t of await listTenantViews(deps, OPERATOR_ACTOR)) {
    const u = t.usage;
    const resources = u ? Object.values(u.resources).reduce((a, b) => a + b, 0) : 0;
    console.log([t.slug, t.status, t.plan ?? '-', t.type ?? '-', resources, mb(u?.storageBytes ?? 0), u?.requestsToday ?? 0, u?.lastActivity ?? '-', t.name].join('\t'));
  }
  return 0;
}

async function set(deps: Deps, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      'referential-integrity': { type: 'string' },
      'mfa-required': { type: 'string' },
      'audit-retention-days': { type: 'string' },
      'required-bindings': { type: 'string' },
      'require-profile': { type: 'string', multiple: true },
      'clear-required-profiles': { type: 'string', multiple: true },
      ...Object.fromEntries(Object.keys(POLICY_OPTIONS).map((k) => [k, { type: 'string' as const }])),
    },
    allowPositionals: true,
  });
  const policy: Record<string, unknown> = {};
  for (const [option, parse] of Object.entries(POLICY_OPTIONS)) {
    const v = (values as Record<string, string | undefined>)[option];
    if (v !== undefined) Object.assign(policy, parse(v));
  }
  const policyProblems = validateSecurityPolicy(policy as Partial<TenantSettings>);
  if (policyProblems.length) {
    console.error(`error: ${policyProblems.join('; ')}`);
    return 2;
  }
  const ri = values['referential-integrity'];
  const mfa = values['mfa-required'];
  const days = values['audit-retention-days'];
  const bindings = values['required-bindings'];
  const requireProfile = values['require-profile'] ?? [];
  const clearProfiles = values['clear-required-profiles'] ?? [];
  const profilesChanged = requireProfile.length > 0 || clearProfiles.length > 0;
  const ok = (v: string | undefined) => v === undefined || v === 'true' || v === 'false';
  const okDays = days === undefined || (/^\d{1,6}$/.test(days) && Number(days) >= 1);
  const policyChanged = Object.keys(policy).length > 0;
  if (!positionals[0] || (ri === undefined && mfa === undefined && days === undefined && bindings === undefined && !profilesChanged && !policyChanged) || !ok(ri) || !ok(mfa) || !ok(bindings) || !okDays) {
    console.error(`usage:\n${TENANT_USAGE.slice(TENANT_USAGE.indexOf('  tenant set'))}`);
    return 2;
  }
  const tenant = await findTenant(deps.db, positionals[0]);
  if (!tenant) {
    console.error(`error: unknown tenant '${positionals[0]}'`);
    return 1;
  }
  const requiredProfiles = profilesChanged ? applyProfileOptions(tenant.settings.requiredProfiles, requireProfile, clearProfiles) : undefined;
  if (typeof requiredProfiles === 'string') {
    console.error(`error: ${requiredProfiles}`);
    return 2;
  }
  const settings = {
    ...(ri !== undefined ? { referentialIntegrity: ri === 'true' } : {}),
    ...(mfa !== undefined ? { mfaRequired: mfa === 'true' } : {}),
    ...(days !== undefined ? { auditRetentionDays: Number(days) } : {}),
    ...(bindings !== undefined ? { requiredBindings: bindings === 'true' } : {}),
    ...(requiredProfiles !== undefined ? { requiredProfiles } : {}),
    ...policy,
  };
  await updateTenantSettings(deps.db, positionals[0], settings);
  tenantChanged(deps.db, positionals[0]);
  const shown = Object.entries(settings).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`);
  console.log(`tenant ${positionals[0]}: ${shown.join(', ')} (${PICKED_UP})`);
  return 0;
}
