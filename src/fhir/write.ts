// The write pipeline shared by single interactions and bundles (http.html#create, #update, #delete, #patch):
// check the URL/body rules -> validate -> resolve conditions -> stamp id/meta -> index -> store, all on the
// caller's transaction. Each step is a small named function; `q` is always the one transaction's connection.
import { createHash } from 'node:crypto';
import { RetryTransaction, type Queryable } from '../platform/db.js';
import { extractIndexRows } from '../search/extract.js';
import { planSearch, type SearchPlan } from '../search/plan.js';
import { readCurrent, writeVersions, type ResourceWrite, type StoredVersion } from '../store/resources.js';
import { searchIds } from '../store/search-sql.js';
import type { FhirContext } from './context.js';
import type { SearchParameter } from '@medplum/fhirtypes';
import { customIssues } from '../search/tenant-registry.js';
import { FhirError } from './errors.js';
import { assertInRegion, assertWritable, authorize, authorizeSearch, readableKeys, readsWholeType, type GuardDecision, type GuardLetter } from './guard.js';
import { parseETag } from './etag.js';
import { assertId } from './ids.js';
import { applyJsonPatch } from './json-patch.js';
import { checkBodyAgainstUrl, referenceIssues, structuralIssues, throwIfErrors } from './validation/index.js';

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

function stamp(resource: Record<string, unknown>, id: string, versionId: number, lastUpdated: string): Record<string, unknown> {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  const m = { ...((meta as Record<string, unknown>) ?? {}) };
  delete m.versionId;
  delete m.lastUpdated;
  return { resourceType, id, meta: { ...m, versionId: String(versionId), lastUpdated }, ...rest };
}

function stored(ctx: FhirContext, method: ResourceWrite['method'], resource: Record<string, unknown>, versionId: number, replaces: boolean, status: 200 | 201, letter: GuardLetter): PreparedWrite {
  const id = resource.id as string;
  const type = resource.resourceType as string;
  const lastUpdated = (resource.meta as { lastUpdated: string }).lastUpdated;
  const json = JSON.stringify(resource);
  return {
    outcome: { status, resourceType: type, id, versionId, lastUpdated, json, resource },
    row: { resourceType: type, id, versionId, lastUpdated, method, json, index: extractIndexRows(ctx.registry, resource, ctx.baseUrl), replaces },
    letter,
  };
}

function now(ctx: FhirContext): string {
  return ctx.deps.clock().toISOString();
}

async function validateForWrite(ctx: FhirContext, q: Queryable, resource: Record<string, unknown>, opts: WriteOptions): Promise<void> {
  const issues = structuralIssues(resource);
  throwIfErrors(issues);
  // A tenant's own SearchParameter must be usable before it is stored (search.html#custom).
  if (resource.resourceType === 'SearchParameter' && resource.status !== 'retired') throwIfErrors(customIssues(ctx.deps.registry, resource as unknown as SearchParameter));
  if (!opts.skipReferenceCheck) throwIfErrors(await referenceIssues(ctx, q, [{ resource }], opts.pending));
}

function checkIfMatch(current: StoredVersion | undefined, ifMatch: string | undefined, key: string): void {
  if (ifMatch === undefined) return;
  const wanted = parseETag(ifMatch);
  if (!current || current.versionId !== wanted) {
    throw new FhirError('precondition-failed', `If-Match ${ifMatch} does not match the current version of ${key}${current ? ` (W/"${current.versionId}")` : ' (it does not exist)'}`, {
      code: 'VERSION_CONFLICT',
    });
  }
}

/**
 * Serialises conditional writes on the same condition (no duplicate conditional creates under concurrency). The key
 * is the decoded, sorted parameter list, so "a=x|1" and "a=x%7C1" (If-None-Exist vs a re-encoded URL) share a lock.
 */
async function lockCondition(ctx: FhirContext, q: Queryable, type: string, params: [string, string][]): Promise<void> {
  const canonical = JSON.stringify([...params].sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0)));
  const h = createHash('sha256').update(`${ctx.tenant.id}\0${type}\0${canonical}`).digest();
  await q.query('SELECT pg_advisory_xact_lock($1)', [h.readBigInt64BE(0).toString()]);
}

/**
 * The criteria of a conditional request as a search plan, authorized as a search by the caller: the server searches
 * on the caller's behalf and the outcome (200/201/412, or a reference resolved or not) reveals matches, so 's' is
 * needed, only what the caller could find by searching counts as a match, and hidden elements may not be probed.
 */
function conditionPlan(ctx: FhirContext, type: string, query: string): { plan: SearchPlan; params: [string, string][] } {
  const params = [...new URLSearchParams(query)] as [string, string][];
  if (params.length === 0) throw new FhirError('invalid', `A conditional request on ${type} needs search criteria`, { code: 'CONDITION_EMPTY' });
  const plan = planSearch(ctx.registry, type, { strict: true, params, maxParams: ctx.deps.config.maxSearchParams });
  if (plan.criteria.length === 0) throw new FhirError('invalid', `The condition '${query}' has no search criteria`, { code: 'CONDITION_EMPTY' });
  authorizeSearch(ctx, plan, { interaction: 'search-type', resourceType: type }, 's');
  return { plan, params };
}

/** Ids matching a conditional URL's query (at most `limit`). Malformed criteria -> 400; none at all -> 400. */
export async function matchCondition(ctx: FhirContext, q: Queryable, type: string, query: string, limit = 2): Promise<string[]> {
  const { plan, params } = conditionPlan(ctx, type, query);
  await lockCondition(ctx, q, type, params);
  return searchIds(q, ctx.tenant.id, ctx.baseUrl, plan, limit);
}

/**
 * Conditional creates are safe whatever their criteria (issue 8, fault 3): two creates of the same new patient, one
 * conditioned on `identifier`, the other on `family` and `birthdate`, hold different condition locks and both see
 * "no match". So after its insert each re-runs its condition under one lock per tenant and type, held to COMMIT:
 * the second to get the lock sees the first's committed resource and its transaction runs again (then matching it).
 * Only conditional creates pay for this, and only the re-check and COMMIT are serialised.
 */
async function recheckConditions(ctx: FhirContext, q: Queryable, created: PreparedWrite[]): Promise<void> {
  const types = [...new Set(created.map((p) => p.row.resourceType))].sort();
  for (const type of types) {
    const h = createHash('sha256').update(`${ctx.tenant.id}\0${type}\0conditional-create`).digest();
    await q.query('SELECT pg_advisory_xact_lock($1)', [h.readBigInt64BE(0).toString()]);
  }
  for (const p of created) {
    const { plan } = conditionPlan(ctx, p.row.resourceType, p.condition!);
    const ids = await searchIds(q, ctx.tenant.id, ctx.baseUrl, plan, 3);
    if (ids.some((id) => id !== p.row.id)) throw new RetryTransaction(`a concurrent request created a ${p.row.resourceType} matching ${p.condition}`);
  }
}

/** create (http.html#create), with If-None-Exist (conditional create). */
export async function prepareCreate(ctx: FhirContext, q: Queryable, type: string, body: unknown, opts: WriteOptions & { ifNoneExist?: string; id?: string } = {}): Promise<PreparedWrite> {
  authorize(ctx, { interaction: 'create', resourceType: type, conditional: opts.ifNoneExist !== undefined });
  const resource = checkBodyAgainstUrl(body, type, undefined, false);
  if (opts.ifNoneExist !== undefined) {
    // If-None-Exist is "[search parameters]"; tolerate a leading "Type?" or "?", but not a '?' inside a value.
    const ids = await matchCondition(ctx, q, type, opts.ifNoneExist.replace(/^[^?=&]*\?/, ''));
    if (ids.length > 1) throw new FhirError('precondition-failed', `If-None-Exist matched ${ids.length}+ ${type} resources`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
    if (ids.length === 1) {
      const current = (await readCurrent(q, ctx.tenant.id, type, ids[0]))!;
      return {
        outcome: { status: 200, resourceType: type, id: current.id, versionId: current.versionId, lastUpdated: current.lastUpdated.toISOString(), json: current.json },
        row: null as unknown as ResourceWrite,
      };
    }
  }
  // "If an id is provided, the server SHALL ignore it" — validate the body as it will be stored.
  const stampedRes = stamp(resource, opts.id ?? ctx.deps.newId(), 1, now(ctx));
  await validateForWrite(ctx, q, stampedRes, opts);
  return withCondition(stored(ctx, 'POST', stampedRes, 1, false, 201, 'c'), opts.ifNoneExist?.replace(/^[^?=&]*\?/, '') ?? opts.condition);
}

function withCondition(p: PreparedWrite, condition: string | undefined): PreparedWrite {
  return condition === undefined ? p : { ...p, condition };
}

/** The current version an update/patch/delete replaces must lie inside the caller's region (else 404). */
async function checkTarget(ctx: FhirContext, q: Queryable, type: string, current: StoredVersion | undefined, d: GuardDecision | undefined): Promise<void> {
  if (current && !current.deleted && (d?.compartment || d?.searchFilters)) await assertInRegion(ctx, q, type, current.id, d);
}

/** update (http.html#update), including update-as-create with a client id. */
export async function prepareUpdate(ctx: FhirContext, q: Queryable, type: string, id: string, body: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'update', resourceType: type, id });
  const resource = checkBodyAgainstUrl(body, type, id, true);
  const current = await readCurrent(q, ctx.tenant.id, type, id, true);
  await checkTarget(ctx, q, type, current, d);
  // A writer confined to a region who cannot read the whole type would learn from 201 (free) vs 404 (taken, outside
  // its region) whether an id exists: for it, an id that is free is "not known" too, as a taken one is.
  if ((!current || current.deleted) && (d?.compartment || d?.searchFilters) && !readsWholeType(ctx, type)) {
    throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  const versionId = (current?.versionId ?? 0) + 1;
  const stampedRes = stamp(resource, id, versionId, now(ctx));
  await validateForWrite(ctx, q, stampedRes, opts);
  const created = !current || current.deleted;
  // update-as-create is allowed by the update scope (SMART 2.x)
  const p = stored(ctx, 'PUT', stampedRes, versionId, current !== undefined, created ? 201 : 200, 'u');
  return created ? withCondition(p, opts.condition) : p;
}

/**
 * The id a conditional update (http.html#cond-update) writes: the single match, else the body's id (update as
 * create), else undefined (create with a new id). 1 match with another body id -> 400; several -> 412; no match
 * but the body id names a live resource that does not match -> 409, as R5 settles it: the condition said
 * "not this one", so it is not silently overwritten.
 */
export async function conditionalUpdateTarget(ctx: FhirContext, q: Queryable, type: string, query: string, bodyId: string | undefined): Promise<{ id: string | undefined; matched: boolean }> {
  const ids = await matchCondition(ctx, q, type, query);
  if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
  if (ids.length === 1) {
    if (bodyId !== undefined && bodyId !== ids[0]) {
      throw new FhirError('invalid', `Body id '${bodyId}' differs from the matched ${type}/${ids[0]}`, { code: 'RESOURCE_ID_MISMATCH', expression: [`${type}.id`] });
    }
    return { id: ids[0], matched: true };
  }
  if (bodyId === undefined) return { id: undefined, matched: false };
  assertId(bodyId);
  // R4: no match -> a create. The body's id is honoured (R5's update-as-create, 409 when taken) only for callers who
  // read the whole type: for others, "taken" would reveal a resource they may not see (issue 8, finding 4).
  if (!readsWholeType(ctx, type)) return { id: undefined, matched: false };
  const current = await readCurrent(q, ctx.tenant.id, type, bodyId);
  if (current && !current.deleted) {
    throw new FhirError('conflict', `No ${type} matches the condition, but ${type}/${bodyId} exists; a conditional update does not overwrite a resource outside its condition`, {
      code: 'CONDITION_ID_CONFLICT',
      expression: [`${type}.id`],
    });
  }
  return { id: bodyId, matched: false };
}

/** Conditional update (http.html#cond-update): PUT [type]?[search]. */
export async function prepareConditionalUpdate(ctx: FhirContext, q: Queryable, type: string, query: string, body: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  const resource = checkBodyAgainstUrl(body, type, undefined, false);
  const bodyId = typeof resource.id === 'string' ? resource.id : undefined;
  const { id, matched } = await conditionalUpdateTarget(ctx, q, type, query, bodyId);
  if (matched) return prepareUpdate(ctx, q, type, id!, { ...resource, id }, opts);
  // a create (with the body's id, or a new one) because nothing matched: re-checked before COMMIT like If-None-Exist
  if (id !== undefined) return prepareUpdate(ctx, q, type, id, { ...resource, id }, { ...opts, condition: query });
  return prepareCreate(ctx, q, type, resource, { ...opts, condition: query });
}

/** patch (http.html#patch) with JSON Patch; the result is validated and stored as an update. */
export async function preparePatch(ctx: FhirContext, q: Queryable, type: string, id: string, patch: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'patch', resourceType: type, id });
  const current = await readCurrent(q, ctx.tenant.id, type, id, true);
  await checkTarget(ctx, q, type, current, d);
  if (!current || current.deleted || current.json === null) {
    throw new FhirError(current?.deleted ? 'gone' : 'not-found', `${type}/${id} ${current?.deleted ? 'is deleted' : 'is not known'}`, { code: current?.deleted ? 'RESOURCE_DELETED' : 'RESOURCE_NOT_FOUND' });
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  const patched = applyJsonPatch(JSON.parse(current.json) as Record<string, unknown>, patch);
  if (patched.resourceType !== type || patched.id !== id) {
    throw new FhirError('invalid', 'A patch may not change resourceType or id', { code: 'PATCH_CHANGES_IDENTITY', expression: ['resourceType', 'id'] });
  }
  const versionId = current.versionId + 1;
  const stampedRes = stamp(patched, id, versionId, now(ctx));
  await validateForWrite(ctx, q, stampedRes, opts);
  return stored(ctx, 'PUT', stampedRes, versionId, true, 200, 'u');
}

/** delete (http.html#delete): a deletion version; deleting a missing or deleted resource has no effect. */
export async function prepareDelete(ctx: FhirContext, q: Queryable, type: string, id: string, opts: WriteOptions = {}): Promise<PreparedWrite | WriteOutcome> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'delete', resourceType: type, id });
  const current = await readCurrent(q, ctx.tenant.id, type, id, true);
  try {
    await checkTarget(ctx, q, type, current, d);
  } catch (err) {
    // outside the delete region: a resource the caller cannot even read is deleted "as if absent" (204, nothing
    // happens), as a missing one is; one it can read keeps the 404
    if (err instanceof FhirError && err.kind === 'not-found' && (await readableKeys(ctx, q, [`${type}/${id}`])).size === 0) {
      return { status: 204, resourceType: type, id, versionId: 0, lastUpdated: now(ctx), json: null };
    }
    throw err;
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  if (!current || current.deleted) {
    return { status: 204, resourceType: type, id, versionId: current?.versionId ?? 0, lastUpdated: current?.lastUpdated.toISOString() ?? now(ctx), json: null };
  }
  const versionId = current.versionId + 1;
  const lastUpdated = now(ctx);
  return {
    outcome: { status: 204, resourceType: type, id, versionId, lastUpdated, json: null },
    row: { resourceType: type, id, versionId, lastUpdated, method: 'DELETE', json: null, index: null, replaces: true },
  };
}

/** Stores prepared writes (one statement per table for all of them) and returns their outcomes. */
export async function commitWrites(ctx: FhirContext, q: Queryable, prepared: (PreparedWrite | WriteOutcome)[]): Promise<WriteOutcome[]> {
  const rows = prepared.flatMap((p) => ('row' in p && p.row ? [p.row] : []));
  if (rows.some((r) => r.resourceType === 'SearchParameter')) ctx.deps.searchParams.invalidate(ctx.tenant.id);
  await writeVersions(q, ctx.tenant.id, rows);
  const conditional = prepared.filter((p): p is PreparedWrite => 'row' in p && !!p.row && p.condition !== undefined);
  if (conditional.length) await recheckConditions(ctx, q, conditional);
  // SMART §7: writes must land inside the region of the scope that allowed them (patient compartment, granular filter)
  if (ctx.guard) for (const p of prepared) if ('row' in p && p.row && p.letter) await assertWritable(ctx, q, p.row.resourceType, p.row.id, p.letter);
  return prepared.map((p) => ('outcome' in p ? p.outcome : p));
}

/** Runs one prepared write on its own transaction. */
export async function writeOne(ctx: FhirContext, prepare: (q: Queryable) => Promise<PreparedWrite | WriteOutcome>): Promise<WriteOutcome> {
  const out = await ctx.deps.db.tx(ctx.tenant.id, async (q) => (await commitWrites(ctx, q, [await prepare(q)]))[0], { signal: ctx.signal });
  // again after COMMIT, so no request reloads the registry from the pre-commit state and keeps it
  if (out.resourceType === 'SearchParameter') ctx.deps.searchParams.invalidate(ctx.tenant.id);
  return out;
}
