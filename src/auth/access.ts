// Resource-server enforcement of SMART scopes (SMART.md §7; scopes-and-launch-context.html): one interaction ->
// allow/deny plus the granular filters, patient compartment and element limits the store must apply. Pure: no I/O.
import { isInPatientCompartment } from '../core/definitions.js';
import { isResourceType } from '../core/definitions.js';
import type { GuardRequest } from '../core/guard.js';
import { roleCeiling, type Role } from './role-matrix.js';
import {
  effectiveScopes,
  hasLetter,
  intersectScopes,
  isResourceScope,
  parseScopes,
  renderScope,
  renderScopes,
  type Letter,
  type ParseOptions,
  type QueryParam,
  type RejectedScope,
  type Scope,
} from './scopes.js';

/** What a verified token carries into enforcement. */
export interface Access {
  /** Effective scopes (requested ∩ client-allowed ∩ role ceiling). */
  scopes: Scope[];
  /** The launch context patient; `patient/` scopes are usable only with it. */
  patientId?: string;
}

/** The interaction kinds and the request shape are the FHIR layer's (src/fhir/guard.ts), which asks the questions. */
export type Interaction = GuardRequest['interaction'];
export type AccessRequest = GuardRequest;

/** One alternative region: a resource is in it when it matches every param (and lies in the compartment, when set). */
export interface FilterSet {
  params: QueryParam[];
  /** Only in the mixed case (some alternatives confined, some not); otherwise see Decision.compartment. */
  compartment?: { patientId: string };
}

export interface Decision {
  allow: boolean;
  /** Why it was refused: `forbidden` -> 403 insufficient_scope; `not-found` -> 404 (outside the patient's compartment). */
  denial?: 'forbidden' | 'not-found';
  reason?: string;
  /**
   * Present when access to the type is restricted by granular scopes: a resource is permitted when it matches ANY
   * one set (union across scopes, SMART §7); for search, AND the sets into the user's query as an OR of conjunctions.
   * For reads and writes the target (and, for create/update, the new content) must match a set.
   */
  searchFilters?: FilterSet[];
  /**
   * Everything is confined to Patient/patientId's compartment (patient/ scopes): the patient itself or a member of
   * its compartment per CompartmentDefinition/patient. Writes must land inside it too.
   */
  compartment?: { patientId: string };
  /** Only these elements may be returned (plus id, meta, resourceType): apply like a forced `_elements`. */
  elements?: string[];
  /** Multi-type interactions (system search/history, $export): which types may be touched; ask accessForType per type for its filters. */
  types?: '*' | string[];
  /** Searches with chains/_has: per chained type, the restriction to AND into the inner query (absent = unrestricted). */
  chained?: Record<string, Pick<Decision, 'searchFilters' | 'compartment'>>;
}

export interface DecideOptions {
  /** Which types belong to the Patient compartment; default: the R4 CompartmentDefinition. */
  isCompartmentType?: (type: string) => boolean;
}

const LETTER_NAMES: Record<Letter, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/**
 * SMART v2 letters: r = read, vread, instance history; s = type search, type/system history, system search;
 * u = update (including update-as-create: "this is allowed by the update scope") and patch.
 */
const INTERACTION_LETTER: Record<Exclude<Interaction, 'operation' | 'search-system' | 'history-system'>, Letter> = {
  read: 'r',
  vread: 'r',
  'history-instance': 'r',
  'search-type': 's',
  'history-type': 's',
  'search-compartment': 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

const ALLOW: Decision = { allow: true };

function deny(denial: 'forbidden' | 'not-found', reason: string): Decision {
  return { allow: false, denial, reason };
}

interface Region {
  patientId?: string;
  params: QueryParam[];
  elements?: string[];
}

/** What the scopes allow for one letter on one type: allow/deny with its filters, compartment and element limits. */
export function accessForType(access: Access, resourceType: string, letter: Letter, opts: DecideOptions = {}): Decision {
  const inCompartment = opts.isCompartmentType ?? isInPatientCompartment;
  const covering = access.scopes.filter(isResourceScope).filter((s) => (s.resourceType === resourceType || s.resourceType === '*') && hasLetter(s, letter));
  if (!covering.length) return deny('forbidden', `no granted scope allows ${LETTER_NAMES[letter]} ('${letter}') on ${resourceType}`);
  const regions: Region[] = [];
  const why: string[] = [];
  for (const s of covering) {
    if (s.context !== 'patient') {
      regions.push({ params: s.params, elements: s.elements });
      continue;
    }
    const pid = access.patientId;
    if (!pid) why.push(`${renderScope(s)} needs a patient in context (launch/patient)`);
    else if (resourceType !== 'Patient' && !inCompartment(resourceType)) why.push(`${resourceType} is outside the patient compartment that ${renderScope(s)} is confined to`);
    // Patient itself: only the launch patient; Patient.link (linked records) is not followed.
    else regions.push({ patientId: pid, params: resourceType === 'Patient' ? [['_id', pid], ...s.params] : s.params, elements: s.elements });
  }
  if (!regions.length) return deny('forbidden', why.join('; '));
  return combineRegions(regions);
}

function combineRegions(regions: Region[]): Decision {
  const out: Decision = { allow: true };
  // Union across alternatives: any unrestricted one lifts the limit (permissive when filters differ; see docs).
  if (regions.every((r) => r.elements)) out.elements = [...new Set(regions.flatMap((r) => r.elements!))];
  if (regions.some((r) => !r.patientId && !r.params.length)) return out;
  const pid = regions.find((r) => r.patientId)?.patientId;
  if (pid && regions.every((r) => r.patientId)) {
    out.compartment = { patientId: pid };
    // A compartment-only region covers every filtered one.
    if (!regions.some((r) => !r.params.length)) out.searchFilters = dedupeSets(regions.map((r) => ({ params: r.params })));
    return out;
  }
  out.searchFilters = dedupeSets(regions.map((r) => (r.patientId ? { params: r.params, compartment: { patientId: r.patientId } } : { params: r.params })));
  return out;
}

function dedupeSets(sets: FilterSet[]): FilterSet[] {
  const seen = new Set<string>();
  return sets.filter((s) => {
    const key = JSON.stringify([s.params, s.compartment?.patientId]);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/** Decides one FHIR interaction (batch/transaction: call once per entry, SMART "validated based on the actual requests"). */
export function decide(access: Access, request: AccessRequest, opts: DecideOptions = {}): Decision {
  const { interaction } = request;
  if (interaction === 'operation') return decideOperation(access, request, opts);
  if (interaction === 'search-system' || interaction === 'history-system') {
    const d = decideTypes(access, 's', request.types, opts);
    return d.allow && request.chainedTypes?.length ? withChains(access, d, request.chainedTypes, opts) : d;
  }
  const type = request.resourceType;
  if (!type) return deny('forbidden', `${interaction} needs a resource type`);
  const d = accessForType(access, type, INTERACTION_LETTER[interaction], opts);
  if (!d.allow) return d;
  if (request.conditional && (interaction === 'create' || interaction === 'update' || interaction === 'patch' || interaction === 'delete')) {
    // The server runs the condition as a search on the client's behalf and its outcome reveals matches.
    const s = accessForType(access, type, 's', opts);
    if (!s.allow) return deny('forbidden', `conditional ${interaction} searches ${type}: ${s.reason}`);
  }
  const outside = outsideCompartment(d, type, request);
  if (outside) return outside;
  return request.chainedTypes?.length ? withChains(access, d, request.chainedTypes, opts) : d;
}

/**
 * A chain or `_has` searches the chained type on the client's behalf: it needs 's' there (else 403, like searching
 * that type directly), its inner query is restricted like a search of that type, and a type with an element limit
 * cannot be a chain target at all (its hidden elements could be probed through the chain).
 */
function withChains(access: Access, d: Decision, types: string[], opts: DecideOptions): Decision {
  const chained: NonNullable<Decision['chained']> = {};
  for (const t of new Set(types)) {
    const c = accessForType(access, t, 's', opts);
    if (!c.allow) return deny('forbidden', `chained search through ${t}: ${c.reason}`);
    if (c.elements) return deny('forbidden', `chained search through ${t}: only some of its elements may be seen`);
    if (c.searchFilters || c.compartment) {
      chained[t] = {};
      if (c.searchFilters) chained[t].searchFilters = c.searchFilters;
      if (c.compartment) chained[t].compartment = c.compartment;
    }
  }
  return Object.keys(chained).length ? { ...d, chained } : d;
}

/** Instance or compartment requests that name another patient than the launch patient: 404, never revealing existence. */
function outsideCompartment(d: Decision, type: string, request: AccessRequest): Decision | undefined {
  const pid = d.compartment?.patientId;
  if (!pid) return undefined;
  if (type === 'Patient' && request.id !== undefined && request.interaction !== 'create' && request.id !== pid) {
    return deny('not-found', `Patient/${request.id} is not the patient in context`);
  }
  if (request.interaction === 'search-compartment' && request.compartmentId !== pid) {
    return deny('not-found', `Patient/${request.compartmentId ?? ''} is not the patient in context`);
  }
  return undefined;
}

/** Multi-type interactions: every named type must be allowed; with none named, the types any usable scope reaches. */
function decideTypes(access: Access, letter: Letter, types: string[] | undefined, opts: DecideOptions): Decision {
  if (types?.length) {
    const decisions = types.map((t) => ({ t, d: accessForType(access, t, letter, opts) }));
    const refused = decisions.find((x) => !x.d.allow);
    if (refused) return deny('forbidden', `_type includes ${refused.t}: ${refused.d.reason}`);
    const out: Decision = { allow: true, types: [...types] };
    const pids = decisions.map((x) => x.d.compartment?.patientId);
    if (pids.every((p) => p && p === pids[0])) out.compartment = { patientId: pids[0]! };
    return out;
  }
  const usable = access.scopes.filter(isResourceScope).filter((s) => hasLetter(s, letter) && (s.context !== 'patient' || access.patientId));
  const reachable = usable.filter((s) => s.resourceType === '*' || accessForType(access, s.resourceType, letter, opts).allow);
  if (!reachable.length) return deny('forbidden', `no granted scope allows ${LETTER_NAMES[letter]} ('${letter}') on any type`);
  const out: Decision = { allow: true };
  out.types = reachable.some((s) => s.resourceType === '*') ? '*' : [...new Set(reachable.map((s) => s.resourceType))];
  if (reachable.every((s) => s.context === 'patient')) out.compartment = { patientId: access.patientId! };
  return out;
}

type OperationRule = (access: Access, request: AccessRequest, opts: DecideOptions) => Decision;

/** Operations have no SMART letter of their own: each is mapped to the interactions it performs. Unknown -> deny. */
const OPERATIONS: Record<string, OperationRule> = {
  // Patient/[id]/$everything reads the patient; every returned resource then goes through filterIncluded.
  $everything: (access, req, opts) => {
    if (req.resourceType !== 'Patient' || !req.id) return deny('forbidden', '$everything is a Patient instance operation');
    return decide(access, { interaction: 'read', resourceType: 'Patient', id: req.id }, opts);
  },
  // Bulk export: search on every exported type (SMART §7: scopes covering every type); Group export also reads the Group.
  $export: (access, req, opts) => {
    if (req.resourceType === 'Group') {
      const g = decide(access, { interaction: 'read', resourceType: 'Group', id: req.id }, opts);
      if (!g.allow) return g;
    }
    return decideTypes(access, 's', req.types, opts);
  },
  // $validate stores nothing: allowed to whoever may create or update the type.
  $validate: (access, req, opts) => {
    if (!req.resourceType) return deny('forbidden', '$validate needs a resource type');
    const c = accessForType(access, req.resourceType, 'c', opts);
    const u = c.allow ? c : accessForType(access, req.resourceType, 'u', opts);
    return u.allow ? ALLOW : deny('forbidden', `$validate needs create or update on ${req.resourceType}: ${c.reason}`);
  },
  // $reindex rewrites derived index rows of every resource of the types: unrestricted update on each, never patient-confined.
  $reindex: (access, req, opts) => {
    const types = req.resourceType ? [req.resourceType] : (req.types ?? ['*']);
    for (const t of types) {
      const d = t === '*' ? wildcardUpdate(access) : accessForType(access, t, 'u', opts);
      if (!d.allow) return deny('forbidden', `$reindex needs unrestricted update on ${t === '*' ? 'every type' : t}: ${d.reason}`);
      if (d.compartment || d.searchFilters) return deny('forbidden', `$reindex needs unrestricted update on ${t}, not a filtered or patient-confined one`);
    }
    return ALLOW;
  },
};

function wildcardUpdate(access: Access): Decision {
  const ok = access.scopes.some((s) => isResourceScope(s) && s.resourceType === '*' && s.context !== 'patient' && hasLetter(s, 'u'));
  return ok ? ALLOW : deny('forbidden', "no granted scope allows update ('u') on *");
}

function decideOperation(access: Access, request: AccessRequest, opts: DecideOptions): Decision {
  const op = request.operation ?? '';
  const rule = Object.hasOwn(OPERATIONS, op) ? OPERATIONS[op] : undefined;
  return rule ? rule(access, request, opts) : deny('forbidden', `no authorization rule for operation '${op}'`);
}

/** Content checks the store supplies (search-parameter evaluation); without them, filtered resources are dropped (fail closed). */
export interface ContentChecks {
  /** Does the resource match every name=value pair (search semantics)? */
  matches?: (resource: FhirResourceLike, params: QueryParam[]) => boolean;
  /** Is the resource a member of Patient/patientId's compartment? */
  inCompartment?: (resource: FhirResourceLike, patientId: string) => boolean;
}

export interface FhirResourceLike {
  resourceType: string;
  id?: string;
}

export interface IncludedResult<T> {
  kept: { resource: T; elements?: string[] }[];
  dropped: { resource: T; reason: string }[];
}

/**
 * Which `_include`/`_revinclude` (and $everything) results may be returned: each needs read ('r') on its type, and,
 * under granular or patient/ scopes, must match a permitted region. Dropped silently (SMART §7), reasons for the log.
 */
export function filterIncluded<T extends FhirResourceLike>(access: Access, resources: T[], checks: ContentChecks = {}, opts: DecideOptions = {}): IncludedResult<T> {
  const out: IncludedResult<T> = { kept: [], dropped: [] };
  for (const resource of resources) {
    const d = accessForType(access, resource.resourceType, 'r', opts);
    if (!d.allow) {
      out.dropped.push({ resource, reason: d.reason ?? 'not permitted' });
      continue;
    }
    const verdict = regionVerdict(resource, d, checks);
    if (verdict === true) out.kept.push(d.elements ? { resource, elements: d.elements } : { resource });
    else out.dropped.push({ resource, reason: verdict });
  }
  return out;
}

function regionVerdict(resource: FhirResourceLike, d: Decision, checks: ContentChecks): true | string {
  if (!d.compartment && !d.searchFilters) return true;
  const sets = d.searchFilters ?? [{ params: [] }];
  let unchecked = false;
  for (const set of sets) {
    const pid = set.compartment?.patientId ?? d.compartment?.patientId;
    const results: (boolean | undefined)[] = [];
    if (pid) results.push(resource.resourceType === 'Patient' ? resource.id === pid : checks.inCompartment?.(resource, pid));
    const idParams = set.params.filter(([k]) => k === '_id');
    const others = set.params.filter(([k]) => k !== '_id');
    for (const [, v] of idParams) results.push(v.split(',').includes(resource.id ?? ''));
    if (others.length) results.push(checks.matches?.(resource, others));
    if (results.every((r) => r === true)) return true;
    if (results.some((r) => r === undefined) && !results.some((r) => r === false)) unchecked = true;
  }
  return unchecked ? 'granted only under a filter or compartment that no content check was supplied for' : 'outside the granted filters or patient compartment';
}

/** Scopes name R4 resource types (patient/Foo.rs is not a scope). */
export const R4_TYPES: ParseOptions = { isResourceType };

export interface GrantInput {
  /** The `scope` the client asked for. */
  requested: string;
  /** The scopes registered for the client. */
  clientAllowed: string;
  role: Role;
  patientId?: string;
  parseOptions?: ParseOptions;
}

export interface Grant {
  access: Access;
  /** The token response's `scope` (v1 form where v1 was requested and still fits). */
  scope: string;
  /** Requested scopes that did not parse (ignored, SMART "MAY be ignored"). */
  rejected: RejectedScope[];
  /** Requested scopes of which nothing survived the intersection. */
  notGranted: string[];
}

/** Effective access = requested ∩ client-allowed ∩ role ceiling (ARCHITECTURE.md "Auth"). */
export function grantAccess(input: GrantInput): Grant {
  const opts = input.parseOptions ?? R4_TYPES;
  const requested = parseScopes(input.requested, opts);
  const client = parseScopes(input.clientAllowed, opts);
  const scopes = effectiveScopes(requested.scopes, client.scopes, roleCeiling(input.role));
  const notGranted = requested.scopes.filter((s) => !intersectScopes([s], scopes).length).map(renderScope);
  const access: Access = { scopes };
  if (input.patientId !== undefined) access.patientId = input.patientId;
  return { access, scope: renderScopes(scopes), rejected: requested.rejected, notGranted };
}

/**
 * The resource server's view of a verified token: its `scope` claim re-intersected with the role ceiling, so element
 * limits (never in the scope string) come back and a tightened ceiling applies to tokens already issued.
 */
export function accessFromToken(token: { scope: string; role: Role; patientId?: string }, parseOptions: ParseOptions = R4_TYPES): Access {
  const scopes = effectiveScopes(parseScopes(token.scope, parseOptions).scopes, roleCeiling(token.role));
  return token.patientId !== undefined ? { scopes, patientId: token.patientId } : { scopes };
}
