// SMART App Launch 2.x scopes (scopes-and-launch-context.html): parse v1/v2 resource scopes and the context/identity
// scopes, intersect scope sets (requested ∩ client-allowed ∩ role ceiling) and render them back. Pure: no I/O.

export type ScopeContext = 'patient' | 'user' | 'system';
/** SMART v2 interaction letters, always kept in this order. */
const LETTERS = 'cruds';
export type Letter = 'c' | 'r' | 'u' | 'd' | 's';
/** One `name=value` pair of a granular scope's query (`?category=...`); the pairs of one scope are AND-ed. */
export type QueryParam = readonly [name: string, value: string];

export interface ResourceScope {
  kind: 'resource';
  context: ScopeContext;
  /** A resource type, or '*' for every type "now and in the future". */
  resourceType: string;
  /** Non-empty subset of 'cruds', in that order. */
  letters: string;
  /** Granular filter (v2 `?param=value&...`); empty = the whole type. */
  params: QueryParam[];
  /** Requested in v1 syntax (`.read`/`.write`/`.*`): rendered back in v1 form while it still fits (SMART SHOULD). */
  v1?: boolean;
  /**
   * Server-side element restriction (role ceiling only, e.g. lab technician's "minimal Patient data"). Never part of
   * the scope string; the enforcement applies it like a forced `_elements`.
   */
  elements?: string[];
}

export const OTHER_SCOPES = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access'] as const;
export type OtherScopeName = (typeof OTHER_SCOPES)[number];
export interface OtherScope {
  kind: 'other';
  name: OtherScopeName;
}

export type Scope = ResourceScope | OtherScope;

export interface RejectedScope {
  scope: string;
  reason: string;
}

export interface ParsedScopes {
  scopes: Scope[];
  /** Scopes that were ignored (SMART: undefined or out-of-order interactions "MAY be ignored ... or rejected"). */
  rejected: RejectedScope[];
}

export interface ParseOptions {
  /** Validates a resource type name; default: the syntactic form `[A-Z][A-Za-z]+`. Pass `isResourceType` from fhir/definitions for R4 names. */
  isResourceType?: (type: string) => boolean;
}

const V1_TO_LETTERS: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
const LETTERS_TO_V1: Record<string, string> = { rs: 'read', cud: 'write', cruds: '*' };
const SCOPE_RE = /^(patient|user|system)\/([^./?]+)\.([^?]*)(?:\?(.*))?$/;
const defaultIsResourceType = (t: string) => /^[A-Z][A-Za-z]+$/.test(t);

/** Parses one scope; returns the scope or the reason it is ignored. */
export function parseScope(raw: string, opts: ParseOptions = {}): Scope | RejectedScope {
  if ((OTHER_SCOPES as readonly string[]).includes(raw)) return { kind: 'other', name: raw as OtherScopeName };
  const m = SCOPE_RE.exec(raw);
  if (!m) {
    if (/^[^/]+\/[^/]/.test(raw) && !/^(patient|user|system)\//.test(raw) && !raw.startsWith('launch/')) {
      return { scope: raw, reason: `unknown scope context '${raw.split('/')[0]}' (expected patient, user or system)` };
    }
    return { scope: raw, reason: 'not a SMART resource scope, nor a supported context/identity scope' };
  }
  const [, context, resourceType, suffix, query] = m;
  const isType = opts.isResourceType ?? defaultIsResourceType;
  if (resourceType !== '*' && !isType(resourceType)) return { scope: raw, reason: `'${resourceType}' is not a FHIR resource type` };

  let letters: string;
  let v1 = false;
  if (Object.hasOwn(V1_TO_LETTERS, suffix)) {
    letters = V1_TO_LETTERS[suffix];
    v1 = true;
    if (query !== undefined) return { scope: raw, reason: 'v1 scopes (.read/.write/.*) take no query; granular filters need v2 letters' };
  } else {
    const bad = validateLetters(suffix);
    if (bad) return { scope: raw, reason: bad };
    letters = suffix;
  }

  let params: QueryParam[] = [];
  if (query !== undefined) {
    const parsed = parseQuery(query);
    if (typeof parsed === 'string') return { scope: raw, reason: parsed };
    // A filter on '*' would be AND-ed into every type, most of which lack the parameter: refuse rather than guess.
    if (resourceType === '*') return { scope: raw, reason: 'granular filters need a concrete resource type, not *' };
    params = parsed;
  }
  const scope: ResourceScope = { kind: 'resource', context: context as ScopeContext, resourceType, letters, params };
  if (v1) scope.v1 = true;
  return scope;
}

function validateLetters(s: string): string | undefined {
  if (!s) return 'no interactions after the dot (expected a subset of cruds, or read/write/*)';
  for (const ch of s) if (!LETTERS.includes(ch)) return `unknown interaction letter '${ch}' (expected a subset of cruds)`;
  let last = -1;
  for (const ch of s) {
    const i = LETTERS.indexOf(ch);
    if (i <= last) return `interaction letters '${s}' must be a subset of 'cruds' in that order, each at most once`;
    last = i;
  }
  return undefined;
}

function parseQuery(q: string): QueryParam[] | string {
  if (!q) return 'empty query after ?';
  const out: QueryParam[] = [];
  for (const part of q.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) return `granular filter '${part}' is not name=value`;
    const pair: QueryParam = [part.slice(0, eq), part.slice(eq + 1)];
    if (!out.some((p) => sameParam(p, pair))) out.push(pair);
  }
  return out;
}

/** Parses a space-separated scope string (token request `scope`, client registration, ...). Duplicates collapse. */
export function parseScopes(input: string | undefined, opts: ParseOptions = {}): ParsedScopes {
  const scopes: Scope[] = [];
  const rejected: RejectedScope[] = [];
  for (const raw of (input ?? '').split(/\s+/).filter(Boolean)) {
    const s = parseScope(raw, opts);
    if ('reason' in s) rejected.push(s);
    else if (!scopes.some((x) => sameScope(x, s))) scopes.push(s);
  }
  return { scopes, rejected };
}

export function isResourceScope(s: Scope): s is ResourceScope {
  return s.kind === 'resource';
}

export function hasLetter(s: ResourceScope, letter: Letter): boolean {
  return s.letters.includes(letter);
}

function sameParam(a: QueryParam, b: QueryParam): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function sameScope(a: Scope, b: Scope): boolean {
  if (a.kind === 'other' || b.kind === 'other') return a.kind === 'other' && b.kind === 'other' && a.name === b.name;
  return renderScope(a) === renderScope(b) && sameElements(a.elements, b.elements) && !!a.v1 === !!b.v1;
}

function sameElements(a?: string[], b?: string[]): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && a.every((e) => b.includes(e));
}

/**
 * patient/ is user/ narrowed to one patient's compartment (the user in the loop must be able to see that data), so
 * patient ∩ user = patient; system/ (no user) meets only system/.
 */
function meetContext(a: ScopeContext, b: ScopeContext): ScopeContext | undefined {
  if (a === b) return a;
  if ((a === 'patient' && b === 'user') || (a === 'user' && b === 'patient')) return 'patient';
  return undefined;
}

/**
 * The intersection of two resource scopes, or undefined when empty. Granular filters are AND-ed (a granular scope ∩ a
 * broader one = the granular one); element restrictions intersect; the left operand's v1 form is kept (call it with
 * the requested scope on the left).
 */
export function intersectScope(a: ResourceScope, b: ResourceScope): ResourceScope | undefined {
  const context = meetContext(a.context, b.context);
  if (!context) return undefined;
  let resourceType: string;
  if (a.resourceType === b.resourceType || b.resourceType === '*') resourceType = a.resourceType;
  else if (a.resourceType === '*') resourceType = b.resourceType;
  else return undefined;
  const letters = [...LETTERS].filter((l) => a.letters.includes(l) && b.letters.includes(l)).join('');
  if (!letters) return undefined;
  const params = [...a.params];
  for (const p of b.params) if (!params.some((q) => sameParam(p, q))) params.push(p);
  const out: ResourceScope = { kind: 'resource', context, resourceType, letters, params };
  if (a.v1) out.v1 = true;
  const elements = a.elements && b.elements ? a.elements.filter((e) => b.elements!.includes(e)) : (a.elements ?? b.elements);
  if (elements) out.elements = [...elements];
  return out;
}

/** A ∩ B for scope sets (each a union of its scopes): pairwise resource intersections; other scopes kept if in both. */
export function intersectScopes(a: Scope[], b: Scope[]): Scope[] {
  const out: Scope[] = [];
  for (const x of a) {
    if (x.kind === 'other') {
      if (b.some((y) => y.kind === 'other' && y.name === x.name)) out.push(x);
      continue;
    }
    const zs: ResourceScope[] = [];
    for (const y of b) {
      if (y.kind !== 'resource') continue;
      const z = intersectScope(x, y);
      if (z) zs.push(z);
    }
    // user/X meets patient/* as patient/X; when user/X also survives in its own context, that narrower copy is noise
    // (a scope the app never asked for). It stays when it is all that is left (a patient user asking user/*.rs).
    const same = zs.filter((z) => z.context === x.context);
    out.push(...(same.length ? same : zs));
  }
  return normalizeScopes(out);
}

/** requested ∩ client-allowed ∩ role ceiling (left to right, so the requested form is what gets rendered). */
export function effectiveScopes(requested: Scope[], ...limits: Scope[][]): Scope[] {
  return limits.reduce((acc, lim) => intersectScopes(acc, lim), requested);
}

/** Is `a` entirely inside `b` (same context; b's type covers a's; b's letters ⊇ a's; b's filters and element limits are weaker)? */
function subsumes(b: ResourceScope, a: ResourceScope): boolean {
  if (a.context !== b.context) return false;
  if (b.resourceType !== '*' && b.resourceType !== a.resourceType) return false;
  if (![...a.letters].every((l) => b.letters.includes(l))) return false;
  if (!b.params.every((p) => a.params.some((q) => sameParam(p, q)))) return false;
  if (b.elements && (!a.elements || !a.elements.every((e) => b.elements!.includes(e)))) return false;
  return true;
}

/**
 * Merges scopes that differ only in letters (`Encounter.rs` + `Encounter.cu` -> `Encounter.crus`), then drops scopes
 * covered by another of the same context. Order of first appearance is kept.
 */
export function normalizeScopes(scopes: Scope[]): Scope[] {
  const merged: Scope[] = [];
  for (const s of scopes) {
    if (s.kind === 'other') {
      if (!merged.some((m) => m.kind === 'other' && m.name === s.name)) merged.push(s);
      continue;
    }
    const twin = merged.find(
      (m): m is ResourceScope =>
        m.kind === 'resource' && m.context === s.context && m.resourceType === s.resourceType && m.params.length === s.params.length &&
        m.params.every((p) => s.params.some((q) => sameParam(p, q))) && sameElements(m.elements, s.elements),
    );
    if (twin) {
      twin.letters = [...LETTERS].filter((l) => twin.letters.includes(l) || s.letters.includes(l)).join('');
      if (!s.v1) delete twin.v1;
    } else merged.push({ ...s, params: [...s.params], ...(s.elements ? { elements: [...s.elements] } : {}) });
  }
  return merged.filter((s, i) => s.kind === 'other' || !merged.some((o, j) => j !== i && o.kind === 'resource' && subsumes(o, s) && (!subsumes(s, o) || j < i)));
}

/** One scope as SMART text: v1 form (`.read`, `.write`, `.*`) when it was requested so and still fits exactly, else v2. */
export function renderScope(s: Scope): string {
  if (s.kind === 'other') return s.name;
  const base = `${s.context}/${s.resourceType}.`;
  if (s.v1 && !s.params.length && Object.hasOwn(LETTERS_TO_V1, s.letters)) return base + LETTERS_TO_V1[s.letters];
  return base + s.letters + (s.params.length ? '?' + s.params.map(([k, v]) => `${k}=${v}`).join('&') : '');
}

/** The space-separated `scope` value of a token response. */
export function renderScopes(scopes: Scope[]): string {
  return [...new Set(scopes.map(renderScope))].join(' ');
}
