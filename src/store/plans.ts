// Plans (issue 11, docs/plans.md): the `plan` platform table (migrations/0011) as every process reads it, through a
// cache that never makes a caller wait once it holds the plans (a write checks its tenant's quotas inside its own
// transaction, where the embedded database has no second connection to wait for), and upsertPlan, the one way a
// plan is written.
import type { Deps } from '../core/deps.js';
import { FhirError, issue } from '../core/errors.js';
import { QUOTA_NAMES, type Plan, type PlanLookup, type Quotas } from '../core/plans.js';
import { TENANT_SLUG } from '../core/tenant.js';
import type { Db, Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';

/** How long the catalog answers from its copy before it reads the table again (in the background). */
export const PLAN_CACHE_TTL_MS = 5000;

type Row = { id: string; name: string; description: string; trial_days: number | null; tenant_types: string[]; quotas: Partial<Quotas> };

function planOf(r: Row): Plan {
  const quotas = Object.fromEntries(QUOTA_NAMES.map((q) => [q, r.quotas[q] ?? null])) as unknown as Quotas;
  return { id: r.id, name: r.name, description: r.description, trialDays: r.trial_days, tenantTypes: r.tenant_types, quotas };
}

/** Every plan, by id. */
async function readPlans(q: Queryable): Promise<Map<string, Plan>> {
  const r = await q.query<Row>('SELECT id, name, description, trial_days, tenant_types, quotas FROM plan ORDER BY id');
  return new Map(r.rows.map((row) => [row.id, planOf(row)]));
}

/**
 * The plans, cached for PLAN_CACHE_TTL_MS (core/plans.ts PlanLookup). Built loaded (PlanCatalog.load); afterwards a
 * copy older than the TTL is still answered at once while a fresh one is read behind it, so no lookup ever waits for
 * a connection: another process's plan change is seen within the TTL plus one lookup. reload() (upsertPlan) makes
 * this process's copy current before it returns.
 */
export class PlanCatalog implements PlanLookup {
  private readAt = 0;
  private refreshing: Promise<void> | undefined;
  /** Reads started / the latest one applied: a read that started before another one finished never replaces it. */
  private started = 0;
  private applied = 0;

  private constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly clock: () => Date,
    private plans: Map<string, Plan>,
    private readonly ttlMs: number,
  ) {
    this.readAt = clock().getTime();
  }

  static async load(db: Db, log: Logger, clock: () => Date, ttlMs = PLAN_CACHE_TTL_MS): Promise<PlanCatalog> {
    return new PlanCatalog(db, log, clock, await db.platform(readPlans), ttlMs);
  }

  get(id: string): Promise<Plan | undefined> {
    return Promise.resolve(this.current().get(id));
  }

  list(): Promise<Plan[]> {
    return Promise.resolve([...this.current().values()]);
  }

  /** Reads the table again in the background (this process changed a plan; reload() to wait for it). */
  invalidate(): void {
    this.readAt = 0;
    this.current();
  }

  /** Reads the table again now. */
  async reload(): Promise<void> {
    const n = ++this.started;
    const startedAt = this.clock().getTime();
    const plans = await this.db.platform(readPlans);
    if (n < this.applied) return;
    this.applied = n;
    this.plans = plans;
    this.readAt = startedAt;
  }

  private current(): Map<string, Plan> {
    if (this.clock().getTime() - this.readAt >= this.ttlMs && !this.refreshing) {
      this.refreshing = this.reload()
        .catch((err: unknown) => this.log.warn({ err }, 'plans could not be read again; using the previous copy'))
        .finally(() => (this.refreshing = undefined));
    }
    return this.plans;
  }
}

const PLAN_ID = TENANT_SLUG;
const MAX_NAME = 200;
const MAX_DESCRIPTION = 2000;
const MAX_TRIAL_DAYS = 3650;
const MAX_TENANT_TYPES = 20;

/** Every problem of a plan as a platform admin sent it (empty: fine), each with the FHIRPath-like place it is at. */
function planProblems(input: unknown): { at: string; problem: string }[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return [{ at: 'plan', problem: 'a plan is a JSON object' }];
  const p = input as Record<string, unknown>;
  const out: { at: string; problem: string }[] = [];
  const known = new Set(['id', 'name', 'description', 'trialDays', 'tenantTypes', 'quotas']);
  for (const k of Object.keys(p)) if (!known.has(k)) out.push({ at: k, problem: `unknown field '${k.slice(0, 40)}' (fields: ${[...known].join(', ')})` });
  if (typeof p.id !== 'string' || !PLAN_ID.test(p.id)) out.push({ at: 'id', problem: "id: 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit" });
  if (typeof p.name !== 'string' || !p.name.trim() || p.name.length > MAX_NAME) out.push({ at: 'name', problem: `name: a non-empty text of at most ${MAX_NAME} characters` });
  if (p.description !== undefined && (typeof p.description !== 'string' || p.description.length > MAX_DESCRIPTION)) {
    out.push({ at: 'description', problem: `description: a text of at most ${MAX_DESCRIPTION} characters` });
  }
  if (p.trialDays !== undefined && p.trialDays !== null && !(Number.isInteger(p.trialDays) && (p.trialDays as number) >= 1 && (p.trialDays as number) <= MAX_TRIAL_DAYS)) {
    out.push({ at: 'trialDays', problem: `trialDays: null (a paid plan) or a whole number of days from 1 to ${MAX_TRIAL_DAYS}` });
  }
  if (p.tenantTypes !== undefined && !(Array.isArray(p.tenantTypes) && p.tenantTypes.length <= MAX_TENANT_TYPES && p.tenantTypes.every((t) => typeof t === 'string' && TENANT_SLUG.test(t)))) {
    out.push({ at: 'tenantTypes', problem: `tenantTypes: at most ${MAX_TENANT_TYPES} tenant types, each lowercase letters, digits and '-'` });
  }
  if (typeof p.quotas !== 'object' || p.quotas === null || Array.isArray(p.quotas)) {
    out.push({ at: 'quotas', problem: `quotas: an object with ${QUOTA_NAMES.join(', ')}` });
    return out;
  }
  const quotas = p.quotas as Record<string, unknown>;
  for (const k of Object.keys(quotas)) if (!(QUOTA_NAMES as readonly string[]).includes(k)) out.push({ at: `quotas.${k.slice(0, 40)}`, problem: `unknown quota '${k.slice(0, 40)}' (quotas: ${QUOTA_NAMES.join(', ')})` });
  for (const q of QUOTA_NAMES) {
    const v = quotas[q];
    if (v !== null && !(Number.isSafeInteger(v) && (v as number) >= 0)) out.push({ at: `quotas.${q}`, problem: `quotas.${q}: null (unlimited) or a non-negative whole number` });
  }
  return out;
}

/**
 * Creates or replaces a plan (platform admins; the caller authorizes and audits). Every field is checked first and
 * all problems answered at once (400 PLAN_INVALID); every quota must be given, null meaning unlimited. Tenants on the
 * plan get the new quotas at once in this process, within PLAN_CACHE_TTL_MS in the others; data already over a
 * lowered quota stays, only what would add to it is refused.
 */
export async function upsertPlan(deps: Pick<Deps, 'db' | 'plans'>, plan: Plan): Promise<Plan> {
  const problems = planProblems(plan);
  if (problems.length) {
    throw new FhirError('invalid', `Invalid plan: ${problems.map((p) => p.problem).join('; ')}`, {
      code: 'PLAN_INVALID',
      issues: problems.map((p) => issue('error', 'invalid', p.problem, { code: 'PLAN_INVALID', expression: [p.at] })),
    });
  }
  const quotas = Object.fromEntries(QUOTA_NAMES.map((q) => [q, plan.quotas[q]]));
  await deps.db.admin().query(
    // the time goes in VALUES: Citus refuses now() in DO UPDATE SET, on reference tables too (issue 16)
    `INSERT INTO plan (id, name, description, trial_days, tenant_types, quotas, updated_at) VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, trial_days = EXCLUDED.trial_days,
       tenant_types = EXCLUDED.tenant_types, quotas = EXCLUDED.quotas, updated_at = EXCLUDED.updated_at`,
    [plan.id, plan.name.trim(), plan.description ?? '', plan.trialDays ?? null, plan.tenantTypes ?? [], JSON.stringify(quotas)],
  );
  if (deps.plans instanceof PlanCatalog) await deps.plans.reload();
  else deps.plans.invalidate();
  return planOf({ id: plan.id, name: plan.name.trim(), description: plan.description ?? '', trial_days: plan.trialDays ?? null, tenant_types: plan.tenantTypes ?? [], quotas });
}
