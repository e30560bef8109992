// Authorization as the FHIR layer sees it: a Guard (built by src/auth from the verified token) decides each
// interaction; this file turns its decisions into 403/404 answers, SQL restrictions for the store, and element
// limits on what is returned (SMART.md §7). Requests without a guard are the server's own work (tenant creation,
// jobs) and are not restricted.
import { extractIndexRows, type IndexRows } from '../search/extract.js';
import { chainedTypes, planSearch, type Compartment, type Criterion, type ParsedValue, type Restriction, type SearchPlan } from '../search/plan.js';
import type { SearchParamRegistry } from '../core/search-registry.js';
import type { TenantSession } from '../store/session.js';
import { patientCompartment } from './compartment.js';
import type { FhirContext } from './context.js';
import { r4ResourceTypes } from '../core/definitions.js';
import { FhirError } from '../core/errors.js';

import type { Guard, GuardDecision, GuardLetter, GuardRequest } from '../core/guard.js';

const AUDIT_WRITES = new Set<GuardRequest['interaction']>(['create', 'update', 'patch', 'delete']);

/** Any write of an AuditEvent, whoever asks: the audit trail is the server's (fhir/interactions/audit-event.ts too). */
export function auditImmutable(interaction: string): FhirError {
  return new FhirError('not-allowed', `AuditEvent ${interaction} is not allowed: the audit trail is written by the server only and cannot be changed or deleted`, {
    code: 'AUDIT_IMMUTABLE',
    headers: { Allow: 'GET, HEAD' },
  });
}

function refuse(d: GuardDecision, what: string): FhirError {
  if (d.denial === 'not-found') return new FhirError('not-found', `${what} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  return new FhirError('forbidden', `Insufficient scope: ${d.reason ?? 'not permitted'}`, { code: 'SCOPE_INSUFFICIENT', headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' } });
}

/** Decides one interaction; throws 403 (scope) or 404 (outside the patient in context). */
export function authorize(ctx: FhirContext, request: GuardRequest): GuardDecision {
  // The audit trail is written by the server alone: no token, however broad, may write it (every write form comes here).
  if (request.resourceType === 'AuditEvent' && AUDIT_WRITES.has(request.interaction)) throw auditImmutable(request.interaction);
  const d = ctx.guard.decide(request);
  if (!d.allow) throw refuse(d, request.resourceType && request.id ? `${request.resourceType}/${request.id}` : 'The resource');
  return d;
}


function compartmentFor(type: string, patientId: string): Compartment {
  return { ...patientCompartment(patientId, [type]), includeSelf: type === 'Patient' };
}

const cache = new WeakMap<Guard, Map<string, Restriction | undefined>>();

/** The SQL restriction a decision implies for `type` (undefined = the whole type). */
function restrictionOf(ctx: FhirContext, type: string, d: GuardDecision): Restriction | undefined {
  if (!d.compartment && !d.searchFilters) return undefined;
  const r: Restriction = {};
  if (d.compartment) r.compartment = compartmentFor(type, d.compartment.patientId);
  if (d.searchFilters) {
    r.anyOf = [];
    for (const set of d.searchFilters) {
      let criteria;
      try {
        criteria = planSearch(ctx.registry, type, { strict: true, params: set.params.map(([k, v]) => [k, v]), now: ctx.deps.clock() }).criteria;
      } catch {
        continue; // a filter this type cannot evaluate matches nothing (fail closed)
      }
      r.anyOf.push(set.compartment ? { criteria, compartment: compartmentFor(type, set.compartment.patientId) } : { criteria });
    }
  }
  return r;
}

/** restrictionOf(forType(type, letter)), memoised per request. */
function restrictionFor(ctx: FhirContext, type: string, letter: GuardLetter): Restriction | undefined {
  let m = cache.get(ctx.guard);
  if (!m) cache.set(ctx.guard, (m = new Map()));
  const key = `${type}.${letter}`;
  if (!m.has(key)) m.set(key, restrictionOf(ctx, type, ctx.guard.forType(type, letter)));
  return m.get(key);
}

/**
 * For a multi-type read (system search, $everything, system history): the types the caller may touch with `letter`,
 * and the restriction of each. Types it may not touch are left out silently.
 */
function typeRestrictions(ctx: FhirContext, types: string[], letter: GuardLetter): { types: string[]; restrictions?: Record<string, Restriction> } {
  const allowed: string[] = [];
  const restrictions: Record<string, Restriction> = {};
  for (const t of types) {
    const d = ctx.guard.forType(t, letter);
    if (!d.allow) continue;
    allowed.push(t);
    const r = restrictionFor(ctx, t, letter);
    if (r) restrictions[t] = r;
  }
  return { types: allowed, ...(Object.keys(restrictions).length ? { restrictions } : {}) };
}

/** The restrictions of `types` for `letter` (for SearchPlan.restrictions), or undefined when none applies. */
function restrictionsOf(ctx: FhirContext, types: Iterable<string>, letter: GuardLetter): Record<string, Restriction> | undefined {
  const out: Record<string, Restriction> = {};
  for (const t of types) {
    const r = restrictionFor(ctx, t, letter);
    if (r) out[t] = r;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Authorization of a planned search, for searches and for every search the server runs on the caller's behalf
 * (conditional create/update/patch/delete, conditional references): the interaction must be allowed (403/404
 * otherwise); types the caller may not touch drop out of a multi-type search; every remaining and chained type gets
 * its restriction; element-limited types may be searched by the parameters over their visible elements only (hidden
 * elements must not be probed by right and wrong guesses). Returns each type's element limit.
 */
export function authorizeSearch(ctx: FhirContext, plan: SearchPlan, request: GuardRequest, letter: GuardLetter): Map<string, string[]> {
  const elements = new Map<string, string[]>();
  const chained = chainedTypes(plan.criteria);
  authorize(ctx, { ...request, ...(chained.size ? { chainedTypes: [...chained] } : {}) });
  const { types, restrictions } = typeRestrictions(ctx, plan.resourceTypes, letter);
  if (!types.length) throw new FhirError('forbidden', 'Insufficient scope: no granted scope allows searching any of these types', { code: 'SCOPE_INSUFFICIENT' });
  plan.resourceTypes = types;
  plan.restrictions = { ...restrictionsOf(ctx, chained, 's'), ...restrictions };
  // Every element-limited type, also inside a multi-type (system) search: `?_type=Patient&address-city=x` or
  // `?_content=x` would otherwise probe the hidden elements through which resources match.
  const names = [...plan.criteria.filter((c) => c.kind !== 'has').map((c) => c.name), ...plan.sort.map((k) => k.code)];
  for (const t of types) {
    const limit = ctx.guard.forType(t, letter).elements;
    if (!limit) continue;
    elements.set(t, limit);
    assertSearchableElements(ctx, t, limit, names);
  }
  assertIncludable(ctx, plan);
  return elements;
}

/**
 * Which rows the caller may see with `letter` (included resources: 'r'; history entries: the history's letter),
 * each with the element limit of its type. Rows outside the region are dropped silently (SMART §7).
 */
export async function visibleRows<T extends { resourceType: string; id: string }>(ctx: FhirContext, s: TenantSession, rows: T[], letter: GuardLetter): Promise<{ row: T; elements?: string[] }[]> {
  if (!rows.length) return [];
  const byType = new Map<string, T[]>();
  for (const r of rows) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
  const keep = new Map<string, string[] | undefined>();
  for (const [type, list] of byType) {
    const d = ctx.guard.forType(type, letter);
    if (!d.allow) continue;
    const restriction = restrictionFor(ctx, type, letter);
    const ids = restriction ? await s.permittedIds(type, [...new Set(list.map((r) => r.id))], restriction) : undefined;
    for (const r of list) if (!ids || ids.has(r.id)) keep.set(`${type}/${r.id}`, d.elements);
  }
  return rows.filter((r) => keep.has(`${r.resourceType}/${r.id}`)).map((row) => {
    const elements = keep.get(`${row.resourceType}/${row.id}`);
    return elements ? { row, elements } : { row };
  });
}

/**
 * The resource an instance interaction targets must lie inside the caller's region for it (patient compartment,
 * granular filter): 404 otherwise, as if it did not exist. No-op without restriction.
 */
export async function assertInRegion(ctx: FhirContext, s: TenantSession, type: string, id: string, d: GuardDecision): Promise<void> {
  const restriction = restrictionOf(ctx, type, d);
  if (!restriction) return;
  const ok = await s.permittedIds(type, [id], restriction);
  if (!ok.has(id)) throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
}

/** Does the caller read every resource of `type` (so nothing an answer says about existence is news to it)? */
export function readsWholeType(ctx: FhirContext, type: string): boolean {
  const r = ctx.guard.forType(type, 'r');
  return r.allow && !r.compartment && !r.searchFilters;
}

/**
 * Of `keys` ("Type/id" of resources that exist), those the caller may read: 'r' on the type, inside its region.
 * Answers about the others are given as if they did not exist (issue 8, finding 4: existence oracles).
 */
export async function readableKeys(ctx: FhirContext, s: TenantSession, keys: Iterable<string>): Promise<Set<string>> {
  const rows = [...keys].map((key) => {
    const [resourceType, id] = key.split('/');
    return { resourceType, id, key };
  });
  return new Set((await visibleRows(ctx, s, rows, 'r')).map((v) => v.row.key));
}

/**
 * After a create/update is written (inside its transaction, before COMMIT): the new content must lie inside the
 * region of the scope that allowed it, else 403 and the transaction rolls back.
 */
export async function assertWritable(ctx: FhirContext, s: TenantSession, type: string, id: string, letter: GuardLetter): Promise<void> {
  const restriction = restrictionFor(ctx, type, letter);
  if (!restriction) return;
  const ok = await s.permittedIds(type, [id], restriction);
  if (!ok.has(id)) {
    const why = restriction.compartment ? "outside the in-context patient's compartment" : "outside the granted scope's filter (e.g. another category)";
    throw new FhirError('forbidden', `Insufficient scope: this ${type} would be ${why}`, { code: 'SCOPE_CONTENT_FORBIDDEN' });
  }
}

/**
 * Whether one stored version lies in the region, judged on that version's own content (vread and history must not
 * show an old version that was outside the region, even when the current one is inside). Evaluated in memory on
 * the version's index values: compartment references, token, reference and _id criteria; any other kind of
 * criterion fails closed.
 */
export function versionInRegion(ctx: FhirContext, type: string, json: string | null, d: GuardDecision): boolean {
  const r = restrictionOf(ctx, type, d);
  if (!r) return true;
  if (json === null) return false;
  const resource = JSON.parse(json) as Record<string, unknown>;
  const rows = extractIndexRows(ctx.registry, resource, ctx.baseUrl);
  const inCompartment = (c: Compartment) =>
    (c.includeSelf === true && type === 'Patient' && resource.id === c.id) ||
    rows.reference.some(([code, targetType, targetId]) => targetType === 'Patient' && targetId === c.id && c.params.includes(`${type}:${code}`));
  if (r.compartment && !inCompartment(r.compartment)) return false;
  if (!r.anyOf) return true;
  return r.anyOf.some((alt) => (!alt.compartment || inCompartment(alt.compartment)) && alt.criteria.every((c) => criterionHolds(c, resource, rows)));
}

function tokenHolds(v: ParsedValue, system: string | null, value: string | null): boolean {
  if (v.system === undefined) return value === v.value;
  if (v.system === null) return system === null && value === v.value;
  if (v.value === '') return system === v.system;
  return system === v.system && value === v.value;
}

function criterionHolds(c: Criterion, resource: Record<string, unknown>, rows: IndexRows): boolean {
  if (c.kind !== 'param' || c.modifier !== undefined) return false;
  if (c.def.code === '_id') return c.values.some((v) => v.value === resource.id);
  if (c.def.type === 'token') return rows.token.some(([code, system, value]) => code === c.def.code && c.values.some((v) => tokenHolds(v, system, value)));
  if (c.def.type === 'reference') {
    return rows.reference.some(([code, targetType, targetId]) => code === c.def.code && c.values.some((v) => v.value === `${targetType}/${targetId}` || v.value === targetId));
  }
  return false;
}

/** History entries the caller may see: each judged on its own version (deletions, which carry none, only when unrestricted). */
export function visibleVersions<T extends { resourceType: string; json: string | null }>(ctx: FhirContext, rows: T[], letter: GuardLetter): { row: T; elements?: string[] }[] {
  const out: { row: T; elements?: string[] }[] = [];
  for (const row of rows) {
    const d = ctx.guard.forType(row.resourceType, letter);
    if (!d.allow || !versionInRegion(ctx, row.resourceType, row.json, d)) continue;
    out.push(d.elements ? { row, elements: d.elements } : { row });
  }
  return out;
}

/** Elements every resource shows whatever the limit (they carry no clinical data). */
const ALWAYS_VISIBLE = new Set(['id', 'meta']);

const visibleCache = new WeakMap<SearchParamRegistry, Map<string, Set<string>>>();

/**
 * The search parameters of `type` that read nothing but the visible `elements`: every element path the parameter's
 * FHIRPath expression starts from (`Patient.name.family` -> name) must be visible. Derived from the definitions, so a
 * tenant's own SearchParameter over a hidden element is hidden too; an expression with no plain path is hidden.
 */
function visibleParamCodes(registry: SearchParamRegistry, type: string, elements: string[]): Set<string> {
  let byKey = visibleCache.get(registry);
  if (!byKey) visibleCache.set(registry, (byKey = new Map()));
  const key = `${type}|${[...elements].sort().join(',')}`;
  let out = byKey.get(key);
  if (out) return out;
  out = new Set<string>();
  const visible = new Set([...ALWAYS_VISIBLE, ...elements]);
  const root = new RegExp(`\\b${type}\\.([A-Za-z][A-Za-z0-9]*)`, 'g');
  for (const def of registry.paramsFor(type).values()) {
    const roots = [...def.expression.matchAll(root)].map((m) => m[1]);
    if (roots.length && roots.every((r) => visible.has(r))) out.add(def.code);
  }
  out.add('_id');
  out.add('_lastUpdated');
  byKey.set(key, out);
  return out;
}

function hiddenElementsError(type: string, what: string, visible: Set<string>): FhirError {
  return new FhirError('forbidden', `Insufficient scope: only some elements of ${type} may be seen, and ${what} reads others (allowed: ${[...visible].sort().join(', ')})`, {
    code: 'SCOPE_INSUFFICIENT',
  });
}

/** With an element limit, only parameters over those elements may be searched (else hidden data could be probed). */
function assertSearchableElements(ctx: FhirContext, type: string, elements: string[] | undefined, params: string[]): void {
  if (!elements) return;
  const visible = visibleParamCodes(ctx.registry, type, elements);
  for (const p of params) {
    const code = p.split(/[:.]/)[0];
    if (!visible.has(code)) throw hiddenElementsError(type, `the search parameter '${code}'`, visible);
  }
}

/** Every resource type whose reads are element-limited for the caller, with its limit. */
function limitedTypes(ctx: FhirContext): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of r4ResourceTypes()) {
    const d = ctx.guard.forType(t, 'r');
    if (d.allow && d.elements) out.set(t, d.elements);
  }
  return out;
}

/**
 * `_include`/`_revinclude` through a reference held in a hidden element (`Patient:general-practitioner` for a role that
 * sees only a Patient's identifier, name, birthDate and gender) would reveal that element: refused (403). Wildcards
 * (`*`, also the one $everything uses) silently skip those references: `plan.blockedIncludes` lists them
 * ("Type:code") for the store.
 */
function assertIncludable(ctx: FhirContext, plan: SearchPlan): void {
  if (!plan.include.length) return;
  const limited = limitedTypes(ctx);
  if (!limited.size) return;
  const blocked: string[] = [];
  for (const [type, elements] of limited) {
    const visible = visibleParamCodes(ctx.registry, type, elements);
    for (const def of ctx.registry.paramsFor(type).values()) if (def.type === 'reference' && !visible.has(def.code)) blocked.push(`${type}:${def.code}`);
  }
  for (const spec of plan.include) {
    if (spec.sourceType === '*' || spec.code === '*') continue;
    if (blocked.includes(`${spec.sourceType}:${spec.code}`)) {
      throw hiddenElementsError(spec.sourceType, `${spec.reverse ? '_revinclude' : '_include'}=${spec.sourceType}:${spec.code}`, visibleParamCodes(ctx.registry, spec.sourceType, limited.get(spec.sourceType)!));
    }
  }
  if (blocked.length) plan.blockedIncludes = blocked;
}
