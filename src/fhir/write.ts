// The write pipeline's shared steps (http.html#create, #update, #patch, #delete), used by the write interactions
// (interactions/create.ts, update.ts, patch.ts, delete.ts and their conditional forms) and by transactions:
//   authorize -> check the body against the URL -> resolve the condition -> stamp id and meta -> validate ->
//   index -> commit (store: resource, history, index rows; the outbox event and audit record join there) ->
//   re-check conditional creates -> check the written content lies in the caller's region.
// All on the caller's transaction (`s`, one connection bound to the tenant).
import type { SearchParameter } from '@medplum/fhirtypes';
import { FhirError } from '../core/errors.js';
import type { GuardDecision, GuardLetter } from '../core/guard.js';
import { customIssues } from '../core/search-registry.js';
import { RetryTransaction } from '../platform/db.js';
import { extractIndexRows } from '../search/extract.js';
import type { SearchPlan } from '../search/plan.js';
import type { ResourceWrite, StoredVersion } from '../store/resources.js';
import type { TenantSession } from '../store/session.js';
import { canonicalCondition } from './conditional.js';
import type { FhirContext } from './context.js';
import { parseETag } from './etag.js';
import { enforceQuotas } from './quotas.js';
import { planUserSearch } from './search-terminology.js';
import { assertInRegion, assertWritable, authorizeSearch } from './guard.js';
import { profileIssues, referenceIssues, structuralIssues, throwIfErrors } from './validation/index.js';

/** What a successful write produced (enough for headers, bundle responses and Prefer). */
export interface WriteOutcome {
  status: 200 | 201 | 204;
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  /** Serialized new version; null for deletes and for "nothing happened" answers. */
  json: string | null;
  resource?: Record<string, unknown>;
  /** Headers of the answer beyond ETag/Location (a new Subscription's signing secret, shown once). */
  headers?: Record<string, string>;
}

export interface WriteOptions {
  ifMatch?: string;
  /** "Type/id" keys created or updated earlier in the same transaction (count as existing references). */
  pending?: Set<string>;
  /** Skip reference existence checks (the bundle checks them once for all entries). */
  skipReferenceCheck?: boolean;
  /** This write creates a resource because `condition` (a conditional create/update) matched nothing. */
  condition?: string;
}

/** A write that has been checked and stamped but not stored yet (bundles store many at once). */
export interface PreparedWrite {
  outcome: WriteOutcome;
  row: ResourceWrite;
  /** The SMART letter that allowed the write: its region is checked on the new content before COMMIT. */
  letter?: GuardLetter;
  /** A create decided by a condition that matched nothing: re-checked under the type's lock before COMMIT. */
  condition?: string;
}

/** A write answered without storing anything (a delete of nothing, a conditional create that matched). */
export type Prepared = PreparedWrite | WriteOutcome;

export function stamp(resource: Record<string, unknown>, id: string, versionId: number, lastUpdated: string): Record<string, unknown> {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  const m = { ...((meta as Record<string, unknown>) ?? {}) };
  delete m.versionId;
  delete m.lastUpdated;
  return { resourceType, id, meta: { ...m, versionId: String(versionId), lastUpdated }, ...rest };
}

/**
 * A stamped resource ready to store, with its index rows. `previous` is the current version it replaces: its index
 * rows, extracted again, let the store rewrite only the index tables whose rows change (issue 14). Only under the
 * official search parameters: a tenant with its own may have added one since `previous` was indexed, whose rows the
 * update must write even where its value did not change.
 */
export function stored(
  ctx: FhirContext,
  method: ResourceWrite['method'],
  resource: Record<string, unknown>,
  versionId: number,
  replaces: boolean,
  status: 200 | 201,
  letter: GuardLetter,
  previous?: StoredVersion,
): PreparedWrite {
  const id = resource.id as string;
  const type = resource.resourceType as string;
  const lastUpdated = (resource.meta as { lastUpdated: string }).lastUpdated;
  const json = JSON.stringify(resource);
  const row: ResourceWrite = { resourceType: type, id, versionId, lastUpdated, method, json, index: extractIndexRows(ctx.registry, resource, ctx.baseUrl), replaces };
  if (previous && !previous.deleted && previous.json !== null && ctx.registry === ctx.deps.searchParams.base) {
    row.previousIndex = extractIndexRows(ctx.registry, JSON.parse(previous.json) as Record<string, unknown>, ctx.baseUrl);
  }
  return { outcome: { status, resourceType: type, id, versionId, lastUpdated, json, resource }, row, letter };
}

export function withCondition(p: PreparedWrite, condition: string | undefined): PreparedWrite {
  return condition === undefined ? p : { ...p, condition };
}

export function now(ctx: FhirContext): string {
  return ctx.deps.clock().toISOString();
}

export async function validateForWrite(ctx: FhirContext, s: TenantSession, resource: Record<string, unknown>, opts: WriteOptions): Promise<void> {
  const issues = structuralIssues(resource);
  throwIfErrors(issues);
  throwIfErrors(await profileIssues(ctx, s, resource));
  // A tenant's own SearchParameter must be usable before it is stored (search.html#custom).
  if (resource.resourceType === 'SearchParameter' && resource.status !== 'retired') throwIfErrors(customIssues(ctx.deps.registry, resource as unknown as SearchParameter));
  if (resource.resourceType === 'Subscription') {
    if (!ctx.subscriptions) throw new FhirError('unsupported', 'Subscriptions cannot be written here', { code: 'SUBSCRIPTION_UNSUPPORTED' });
    await ctx.subscriptions.prepare(ctx, s, resource);
  }
  if (!opts.skipReferenceCheck) throwIfErrors(await referenceIssues(ctx, s, [{ resource }], opts.pending));
}

export function checkIfMatch(current: StoredVersion | undefined, ifMatch: string | undefined, key: string): void {
  if (ifMatch === undefined) return;
  const wanted = parseETag(ifMatch);
  if (!current || current.versionId !== wanted) {
    throw new FhirError('precondition-failed', `If-Match ${ifMatch} does not match the current version of ${key}${current ? ` (W/"${current.versionId}")` : ' (it does not exist)'}`, {
      code: 'VERSION_CONFLICT',
    });
  }
}

/** The current version an update/patch/delete replaces must lie inside the caller's region (else 404). */
export async function checkTarget(ctx: FhirContext, s: TenantSession, type: string, current: StoredVersion | undefined, d: GuardDecision): Promise<void> {
  if (current && !current.deleted && (d.compartment || d.searchFilters)) await assertInRegion(ctx, s, type, current.id, d);
}

/**
 * The criteria of a conditional request as a search plan, authorized as a search by the caller: the server searches
 * on the caller's behalf and the outcome (200/201/412, or a reference resolved or not) reveals matches, so 's' is
 * needed, only what the caller could find by searching counts as a match, and hidden elements may not be probed.
 */
async function conditionPlan(ctx: FhirContext, s: TenantSession, type: string, query: string): Promise<{ plan: SearchPlan; params: [string, string][] }> {
  // planned and authorized once per request: a conditional create's re-check after its insert asks again
  const key = `${type}\0${query}`;
  let plans = conditionPlans.get(ctx);
  const known = plans?.get(key);
  if (known) return known;
  const planned = await planCondition(ctx, s, type, query);
  if (!plans) conditionPlans.set(ctx, (plans = new Map()));
  plans.set(key, planned);
  return planned;
}

const conditionPlans = new WeakMap<FhirContext, Map<string, { plan: SearchPlan; params: [string, string][] }>>();

async function planCondition(ctx: FhirContext, s: TenantSession, type: string, query: string): Promise<{ plan: SearchPlan; params: [string, string][] }> {
  const params = [...new URLSearchParams(query)] as [string, string][];
  if (params.length === 0) throw new FhirError('invalid', `A conditional request on ${type} needs search criteria`, { code: 'CONDITION_EMPTY' });
  // token :in / :not-in / :below / :above resolved by the terminology service (search-terminology.ts)
  const plan = await planUserSearch(ctx, s, type, { strict: true, params, maxParams: ctx.deps.config.maxSearchParams, now: ctx.deps.clock() });
  if (plan.criteria.length === 0) throw new FhirError('invalid', `The condition '${query}' has no search criteria`, { code: 'CONDITION_EMPTY' });
  authorizeSearch(ctx, plan, { interaction: 'search-type', resourceType: type }, 's');
  return { plan, params };
}

/**
 * Ids matching a conditional URL's query (at most `limit`). Malformed criteria -> 400; none at all -> 400. Conditional
 * writes on the same condition are serialised (its canonical spelling is the lock's name), so two of them never both
 * see "no match".
 */
export async function matchCondition(ctx: FhirContext, s: TenantSession, type: string, query: string, limit = 2): Promise<string[]> {
  const { plan, params } = await conditionPlan(ctx, s, type, query);
  await s.lock(`${type}\0${canonicalCondition(params)}`);
  return s.searchIds(plan, limit);
}

/**
 * Conditional creates are safe whatever their criteria (issue 8, fault 3): two creates of the same new patient, one
 * conditioned on `identifier`, the other on `family` and `birthdate`, hold different condition locks and both see
 * "no match". So after its insert each re-runs its condition under one lock per tenant and type, held to COMMIT:
 * the second to get the lock sees the first's committed resource and its transaction runs again (then matching it).
 * Only conditional creates pay for this, and only the re-check and COMMIT are serialised.
 */
async function recheckConditions(ctx: FhirContext, s: TenantSession, created: PreparedWrite[]): Promise<void> {
  for (const type of [...new Set(created.map((p) => p.row.resourceType))].sort()) await s.lock(`${type}\0conditional-create`);
  for (const p of created) {
    const { plan } = await conditionPlan(ctx, s, p.row.resourceType, p.condition!);
    const ids = await s.searchIds(plan, 3);
    if (ids.some((id) => id !== p.row.id)) throw new RetryTransaction(`a concurrent request created a ${p.row.resourceType} matching ${p.condition}`);
  }
}

/** Stores prepared writes (one statement per table for all of them) and returns their outcomes. */
export async function commitWrites(ctx: FhirContext, s: TenantSession, prepared: Prepared[]): Promise<WriteOutcome[]> {
  const rows = prepared.flatMap((p) => ('row' in p && p.row ? [p.row] : []));
  if (rows.some((r) => r.resourceType === 'SearchParameter')) ctx.deps.searchParams.invalidate(ctx.tenant.id);
  // the plan's quotas (issue 11), under their locks to COMMIT; nothing to do for a tenant without a plan
  if (ctx.tenant.plan !== undefined) await enforceQuotas(ctx, s, prepared);
  await s.commit(rows);
  for (const p of prepared) {
    if (!('row' in p) || !p.row || p.row.resourceType !== 'Subscription') continue;
    if (!ctx.subscriptions) throw new FhirError('unsupported', 'Subscriptions cannot be written here', { code: 'SUBSCRIPTION_UNSUPPORTED' });
    const secret = await ctx.subscriptions.record(ctx, s, p.row.id, p.row.json);
    if (secret) p.outcome.headers = { ...p.outcome.headers, 'X-Subscription-Secret': secret };
  }
  const conditional = prepared.filter((p): p is PreparedWrite => 'row' in p && !!p.row && p.condition !== undefined);
  if (conditional.length) await recheckConditions(ctx, s, conditional);
  // SMART §7: writes must land inside the region of the scope that allowed them (patient compartment, granular filter)
  for (const p of prepared) if ('row' in p && p.row && p.letter) await assertWritable(ctx, s, p.row.resourceType, p.row.id, p.letter);
  return prepared.map((p) => ('outcome' in p ? p.outcome : p));
}

/** Runs one prepared write on its own transaction. */
export async function writeOne(ctx: FhirContext, prepare: (s: TenantSession) => Promise<Prepared>): Promise<WriteOutcome> {
  const out = await ctx.store.tx(async (s) => (await commitWrites(ctx, s, [await prepare(s)]))[0]);
  if (out.versionId > 0) ctx.subscriptions?.committed(ctx.tenant.id);
  // again after COMMIT, so no request reloads the registry from the pre-commit state and keeps it
  if (out.resourceType === 'SearchParameter') ctx.deps.searchParams.invalidate(ctx.tenant.id);
  return out;
}
