// search (http.html#search, search.html): type-level GET [type]?... and POST [type]/_search, system-level
// GET [base]?_type=..., Patient compartment search GET Patient/[id]/[type]?..., with _include/_revinclude,
// keyset paging (self/next/previous/first links), _total, _summary and _elements.
import type { Compartment, SearchPlan } from '../../search/plan.js';
import type { SearchRow } from '../../store/search-sql.js';
import type { TenantSession } from '../../store/session.js';
import { factsOf } from '../audit.js';
import { RawJsonBuilder } from '../bundle-json.js';
import { planUserSearch } from '../search-terminology.js';
import { isInPatientCompartment, patientCompartment } from '../compartment.js';
import type { FhirContext } from '../context.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { r4ResourceTypes } from '../../core/definitions.js';
import { FhirError, issue } from '../../core/errors.js';
import type { GuardLetter, GuardRequest } from '../../core/guard.js';
import { authorizeSearch, visibleRows } from '../guard.js';
import { assertId, assertResourceType } from '../ids.js';
import { shapeResource } from '../subset.js';
import { onSession } from './read.js';

export interface SearchTarget {
  /** URL path of the search below the tenant base, for links: "Observation", "", "Patient/1/Observation" */
  path: string;
  types: string[];
  compartment?: Compartment;
  /** system-level search: the _type value applied */
  typeParam?: string;
  /** The interaction as authorization sees it, and the SMART letter its results need ('s' search, 'r' $everything). */
  access: { request: GuardRequest; letter: GuardLetter };
}

function cursorToken(keys: unknown[], backwards: boolean): string {
  return Buffer.from(JSON.stringify(backwards ? { b: keys } : keys)).toString('base64url');
}

function link(ctx: FhirContext, target: SearchTarget, plan: SearchPlan, extra: [string, string][] = []): string {
  const u = new URL(`${ctx.baseUrl}${target.path ? '/' + target.path : ''}`);
  if (target.typeParam) u.searchParams.append('_type', target.typeParam);
  for (const [k, v] of plan.applied) u.searchParams.append(k, v);
  if (!u.searchParams.has('_count')) u.searchParams.set('_count', String(plan.count));
  for (const [k, v] of extra) u.searchParams.set(k, v);
  return u.toString();
}

/** Runs a search and renders the searchset Bundle. */
export async function runSearch(ctx: FhirContext, target: SearchTarget, params: [string, string][], strict: boolean, conn?: TenantSession): Promise<FhirResult> {
  // token :in / :not-in / :below / :above are resolved by the terminology service first (search-terminology.ts)
  const plan = await planUserSearch(ctx, conn, target.types, { strict, params, compartment: target.compartment, maxParams: ctx.deps.config.maxSearchParams, now: ctx.deps.clock() });
  // a system search over every type is the tenant's own data; the platform catalog joins when types are named
  if (target.path === '' && !target.typeParam) plan.ownOnly = true;
  const limits = authorizeSearch(ctx, plan, target.access.request, target.access.letter);
  const backwards = plan.backwards === true;
  // _count=0 asks for no entries (search.html#count): answer like _summary=count, so no `next` link can loop forever.
  const countOnly = plan.summary === 'count' || plan.count === 0;
  const { page, total, included } = await onSession(ctx, conn, async (s) => {
    const page = countOnly ? { rows: [] as SearchRow[], more: false } : await s.searchPage(plan, backwards);
    let total: number | undefined;
    if (countOnly || plan.total === 'accurate') total = await s.searchCount(plan);
    else if (plan.total === 'estimate') total = await s.searchEstimate(plan);
    else if (!page.more && !plan.cursor && !plan.offset) total = page.rows.length;
    const loaded = plan.include.length && page.rows.length ? await s.loadIncludes(plan.include, page.rows, plan.blockedIncludes) : [];
    // included resources are reads on the caller's behalf: each needs 'r' on its type and its region (SMART §7)
    const included = await visibleRows(ctx, s, loaded, 'r');
    return { page, total, included };
  });
  const b = new RawJsonBuilder();
  const links = [{ relation: 'self', url: link(ctx, target, plan, plan.cursor ? [['_cursor', params.find(([k]) => k === '_cursor')![1]]] : []) }];
  const first = page.rows[0];
  const last = page.rows[page.rows.length - 1];
  const hasNext = backwards ? !!plan.cursor : page.more;
  const hasPrev = backwards ? page.more : !!plan.cursor || plan.offset > 0;
  if (plan.cursor || plan.offset) links.push({ relation: 'first', url: link(ctx, target, plan) });
  if (hasNext && last) links.push({ relation: 'next', url: link(ctx, target, plan, [['_cursor', cursorToken(last.keys, false)]]) });
  if (hasPrev && first) links.push({ relation: 'previous', url: link(ctx, target, plan, [['_cursor', cursorToken(first.keys, true)]]) });
  const subsetting = (plan.summary && plan.summary !== 'false') || plan.elements?.length;
  const render = (type: string, json: string, limit = limits.get(type)) => {
    if (!subsetting && !limit) return b.raw(json);
    return shapeResource(JSON.parse(json), plan.summary, plan.elements, limit);
  };
  const entries: unknown[] = page.rows.map((r) => ({ fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`, resource: render(r.resourceType, r.json!), search: { mode: 'match' } }));
  for (const { row: r, elements } of included) {
    entries.push({ fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`, resource: render(r.resourceType, r.json!, elements), search: { mode: 'include' } });
  }
  if (plan.ignored.length) {
    entries.push({
      resource: {
        resourceType: 'OperationOutcome',
        issue: plan.ignored.map((p) => issue('warning', 'not-supported', `Search parameter '${p}' is not supported here and was ignored`)),
      },
      search: { mode: 'outcome' },
    });
  }
  const bundle = { resourceType: 'Bundle', type: 'searchset', ...(total !== undefined ? { total } : {}), link: links, ...(entries.length ? { entry: entries } : {}) };
  const audit = factsOf([...page.rows, ...included.map((x) => x.row)]);
  // a search within one patient's compartment is about that patient, whatever it returned
  if (target.compartment?.type === 'Patient' && !audit.patients.includes(target.compartment.id)) audit.patients.push(target.compartment.id);
  return { status: 200, body: b.stringify(bundle), audit };
}

/** GET [base]/[type]?... */
export function searchType(ctx: FhirContext, type: string, params: [string, string][], strict: boolean, conn?: TenantSession): Promise<FhirResult> {
  return runSearch(ctx, { path: type, types: [type], access: { request: { interaction: 'search-type', resourceType: type }, letter: 's' } }, params, strict, conn);
}

/** GET [base]?_type=A,B&... — only parameters common to every listed type (all types when _type is absent). */
export function searchSystem(ctx: FhirContext, params: [string, string][], strict: boolean): Promise<FhirResult> {
  const typeParam = params.filter(([k]) => k === '_type').map(([, v]) => v).join(',');
  const types = typeParam ? [...new Set(typeParam.split(',').map((t) => t.trim()).filter(Boolean))] : [...r4ResourceTypes()];
  for (const t of types) assertResourceType(t);
  const request: GuardRequest = { interaction: 'search-system', ...(typeParam ? { types } : {}) };
  return runSearch(ctx, { path: '', types, typeParam: typeParam || undefined, access: { request, letter: 's' } }, params, strict);
}

/** GET [base]/Patient/[id]/[type]?... (or /* for every type in the compartment). */
export function searchCompartment(ctx: FhirContext, patientId: string, type: string, params: [string, string][], strict: boolean): Promise<FhirResult> {
  assertId(patientId, 'URL');
  let types: string[];
  if (type === '*') types = [...r4ResourceTypes()].filter(isInPatientCompartment);
  else {
    assertResourceType(type);
    if (!isInPatientCompartment(type)) throw new FhirError('not-found', `${type} is not in the Patient compartment`, { code: 'COMPARTMENT_TYPE_INVALID' });
    types = [type];
  }
  const request: GuardRequest =
    type === '*' ? { interaction: 'search-system', compartmentId: patientId } : { interaction: 'search-compartment', resourceType: type, compartmentId: patientId };
  return runSearch(ctx, { path: `Patient/${patientId}/${type}`, types, compartment: patientCompartment(patientId, types), access: { request, letter: 's' } }, params, strict);
}
