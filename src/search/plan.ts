// Query string -> SearchPlan (pure): parameter names, modifiers, prefixes and OR-lists per search.html.
// Unknown parameters are reported (lenient: ignored with a warning; strict: 400 naming them).
import { FhirError } from '../core/errors.js';
import { canonicalQuantity, parseUcum, UCUM_SYSTEM } from '../terminology/ucum.js';
import { dateRange } from './date-range.js';
import { UCUM_CANONICAL_SYSTEM } from './extract.js';
import type { ParamType, SearchParamDef, SearchParamRegistry } from '../core/search-registry.js';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
const PREFIXES = new Set<Prefix>(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

export interface ParsedValue {
  raw: string;
  prefix?: Prefix;
  /** token/quantity: system part; reference: resource type */
  system?: string | null;
  /** token code / string / reference id / uri / number text */
  value: string;
  /** date: searched range */
  low?: string;
  high?: string;
  /** quantity unit code */
  unit?: string;
  /** composite: the parsed components */
  parts?: ParsedValue[];
  /** date with prefix 'ap': the "approximately" range around [low, high], fixed when the search is planned */
  near?: { low: string; high: string };
  /** number/quantity: implied-precision bounds */
  num?: number;
  numLow?: number;
  numHigh?: number;
  /**
   * quantity in a UCUM unit (and composites ending in one): the same value in canonical units, matched against the
   * canonical index rows (src/search/extract.ts), so 100 mg/dL finds 1 g/L.
   */
  canonical?: ParsedValue;
}

export type ParamDef = SearchParamDef | { code: '_id' | '_lastUpdated'; type: ParamType };

export interface ParamCriterion {
  kind: 'param';
  name: string;
  modifier?: string;
  def: ParamDef;
  values: ParsedValue[];
}

/** One search criterion (AND-ed with the others); its values are OR-ed. */
export type Criterion =
  | ParamCriterion
  /** subject:Patient.name=x — the reference must point at a resource (of one of targetTypes) matching `next` */
  | { kind: 'chain'; name: string; def: SearchParamDef; targetTypes: string[]; next: Criterion }
  /** _has:Observation:patient:code=x — some Observation whose `patient` points here matches `next` */
  | { kind: 'has'; name: string; sourceType: string; refCode: string; next: Criterion }
  /** _text / _content: PostgreSQL full-text search over the narrative / the whole resource */
  | { kind: 'fulltext'; name: '_text' | '_content'; values: string[] };

export interface SortKey {
  code: string;
  type: ParamType;
  descending: boolean;
}

export interface IncludeSpec {
  /** _include (false) or _revinclude (true) */
  reverse: boolean;
  iterate: boolean;
  /** the resource type holding the reference; '*' = any */
  sourceType: string;
  /** the reference parameter code; '*' = every reference parameter */
  code: string;
  targetType?: string;
}

export interface Compartment {
  type: 'Patient';
  id: string;
  /** "ResourceType:paramCode" pairs that put a resource in the compartment */
  params: string[];
  /** the compartment's own resource (Patient/id) matches too ($everything) */
  includeSelf?: boolean;
}

/**
 * An authorization restriction on one resource type (SMART patient/ scopes and granular scopes): the resource must lie
 * in `compartment` (when set) and match at least one of `anyOf` (when set). Compiled into every query over the type,
 * including chained and `_has` inner queries.
 */
export interface Restriction {
  compartment?: Compartment;
  anyOf?: { criteria: Criterion[]; compartment?: Compartment }[];
}

export interface SearchPlan {
  /** One type for type-level search; several (or all) for system-level search */
  resourceTypes: string[];
  criteria: Criterion[];
  sort: SortKey[];
  count: number;
  offset: number;
  /** keyset position: the sort values and id of the row to continue after (or, backwards, to end before) */
  cursor?: unknown[];
  backwards?: boolean;
  total: 'none' | 'estimate' | 'accurate';
  summary?: string;
  elements?: string[];
  include: IncludeSpec[];
  /** "Type:code" references that includes must not follow (held in elements the caller may not see). */
  blockedIncludes?: string[];
  compartment?: Compartment;
  /** Authorization: per resource type, the region the caller may see (absent type = unrestricted). */
  restrictions?: Record<string, Restriction>;
  /** Parameters ignored (lenient handling). */
  ignored: string[];
  /** The parameters actually applied, for the self link. */
  applied: [string, string][];
  /** The tenant's own rows only: a system search without _type does not read the platform catalog (docs/catalog.md). */
  ownOnly?: boolean;
}

/** The types a search reaches through chains and _has (each is searched on the caller's behalf). */
export function chainedTypes(criteria: Criterion[], out = new Set<string>()): Set<string> {
  for (const c of criteria) {
    if (c.kind === 'chain') {
      c.targetTypes.forEach((t) => out.add(t));
      chainedTypes([c.next], out);
    } else if (c.kind === 'has') {
      out.add(c.sourceType);
      chainedTypes([c.next], out);
    }
  }
  return out;
}

const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

const RESULT_PARAMS = new Set(['_count', '_offset', '_cursor', '_sort', '_total', '_summary', '_elements', '_format', '_pretty', '_include', '_revinclude', '_type']);

/** Splits an OR-list on unescaped commas and unescapes \, \$ \| \\. */
export function splitOr(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      cur += c + value[++i];
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Splits on every unescaped `ch`, keeping the escapes in the parts (they are removed per part later). */
function splitEscaped(value: string, ch: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === ch) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/** Splits on the first unescaped `|`, returning [before, after] or [value] when absent. */
function splitPipe(value: string): [string, string] | [string] {
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '|') return [value.slice(0, i), value.slice(i + 1)];
  }
  return [value];
}

function unescape(v: string): string {
  return v.replace(/\\([,$|\\])/g, '$1');
}

function bad(name: string, value: string, why: string): FhirError {
  return new FhirError('invalid', `Invalid value ${JSON.stringify(value)} for search parameter '${name}': ${why}`, {
    code: 'SEARCH_PARAM_INVALID',
    issueType: 'invalid',
  });
}

function takePrefix(name: string, raw: string, type: ParamType): { prefix?: Prefix; rest: string } {
  const m = /^([a-z]{2})(.*)$/.exec(raw);
  if (m && PREFIXES.has(m[1] as Prefix)) return { prefix: m[1] as Prefix, rest: m[2] };
  if (m && /^[a-z]{2}[-+0-9.]/.test(raw)) throw bad(name, raw, `unknown prefix '${m[1]}' for a ${type} parameter`);
  return { rest: raw };
}

function parseNumber(name: string, raw: string, text: string): Pick<ParsedValue, 'num' | 'numLow' | 'numHigh'> {
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw bad(name, raw, 'not a number');
  const num = Number(text);
  // Implied precision (search.html#number): "100" = [99.5, 100.5), "1e2" = [95, 105), "100.00" = [99.995, 100.005)
  const [mantissa, exp] = text.toLowerCase().split('e');
  const decimals = mantissa.includes('.') ? mantissa.split('.')[1].length : 0;
  // with an exponent the precision is one digit below the last significant one: 1e2 -> +-5, 1.5e2 -> +-0.5
  const half = exp === undefined ? 0.5 * Math.pow(10, -decimals) : 0.5 * Math.pow(10, Number(exp) - decimals - 1);
  return { num, numLow: num - half, numHigh: num + half };
}

/**
 * A quantity searched in a UCUM unit (`|http://unitsofmeasure.org|unit`, or `||unit` when the unit is a UCUM
 * expression) in canonical units, with its precision range converted too (100 mg/dL = [99.5, 100.5) mg/dL =
 * [995, 1005) g.m-3). Undefined for any other unit, which searches as written. Offset scales (Cel, [degF]) convert by
 * value; their `ap` (10% of the value) has no canonical equivalent, so it searches as written.
 */
function canonicalQuantityValue(v: ParsedValue): ParsedValue | undefined {
  if (!v.unit || (v.system !== undefined && v.system !== UCUM_SYSTEM) || v.num === undefined) return undefined;
  const unit = parseUcum(v.unit);
  if (!unit || (unit.special && v.prefix === 'ap')) return undefined;
  const mid = canonicalQuantity(v.num, v.unit);
  const low = canonicalQuantity(v.numLow ?? v.num, v.unit);
  const high = canonicalQuantity(v.numHigh ?? v.num, v.unit);
  if (!mid || !low || !high || ![mid.value, low.value, high.value].every(Number.isFinite)) return undefined;
  return { raw: v.raw, prefix: v.prefix, value: v.value, num: mid.value, numLow: low.value, numHigh: high.value, system: UCUM_CANONICAL_SYSTEM, unit: mid.unit };
}

function parseValue(name: string, def: { type: ParamType } & Partial<SearchParamDef>, modifier: string | undefined, raw: string, registry: SearchParamRegistry): ParsedValue {
  const type = def.type;
  switch (type) {
    case 'composite': {
      // components joined with $, each parsed as its own type (search.html#composite)
      const parts = splitEscaped(raw, '$');
      const comps = def.components ?? [];
      if (parts.length !== comps.length) throw bad(name, raw, `expected ${comps.length} components joined with '$'`);
      const parsed = parts.map((p, i) => parseValue(name, { type: comps[i].type }, undefined, p, registry));
      const last = parsed[parsed.length - 1];
      if (!last?.canonical) return { raw, value: raw, parts: parsed };
      return { raw, value: raw, parts: parsed, canonical: { raw, value: raw, parts: [...parsed.slice(0, -1), last.canonical] } };
    }
    case 'date': {
      const { prefix, rest } = takePrefix(name, raw, type);
      const r = dateRange(rest);
      if (!r) throw bad(name, raw, 'expected a FHIR date, dateTime or instant (e.g. 2024-01-31 or 2024-01-31T10:00:00Z)');
      return { raw, prefix: prefix ?? 'eq', value: rest, low: r.low, high: r.high };
    }
    case 'number': {
      const { prefix, rest } = takePrefix(name, raw, type);
      return { raw, prefix: prefix ?? 'eq', value: rest, ...parseNumber(name, raw, rest) };
    }
    case 'quantity': {
      const { prefix, rest } = takePrefix(name, raw, type);
      const parts = splitEscaped(rest, '|');
      if (parts.length !== 1 && parts.length !== 3) throw bad(name, raw, 'expected number or number|system|code');
      const v: ParsedValue = {
        raw,
        prefix: prefix ?? 'eq',
        value: parts[0],
        ...parseNumber(name, raw, parts[0]),
        system: parts.length === 3 && parts[1] ? unescape(parts[1]) : undefined,
        unit: parts.length === 3 && parts[2] ? unescape(parts[2]) : undefined,
      };
      const canonical = canonicalQuantityValue(v);
      return canonical ? { ...v, canonical } : v;
    }
    case 'token': {
      if (modifier === 'text') return { raw, value: unescape(raw) };
      if (modifier === 'of-type') {
        // type-system|type-code|value (search.html#token, Identifier)
        const parts = splitEscaped(raw, '|');
        if (parts.length !== 3 || !parts[1] || !parts[2]) throw bad(name, raw, ':of-type expects type-system|type-code|value');
        return { raw, system: unescape(parts[0]), value: `${unescape(parts[1])}|${unescape(parts[2])}` };
      }
      const pipe = splitPipe(raw);
      if (pipe.length === 2) return { raw, system: unescape(pipe[0]) === '' ? null : unescape(pipe[0]), value: unescape(pipe[1]) };
      return { raw, system: undefined, value: unescape(raw) };
    }
    case 'reference':
      if (modifier === 'identifier') return parseValue(name, { type: 'token' }, undefined, raw, registry);
      return { raw, value: unescape(raw) };
    case 'string':
    case 'uri':
    default:
      return { raw, value: unescape(raw) };
  }
}

const MODIFIERS: Record<string, Set<string>> = {
  string: new Set(['exact', 'contains', 'missing']),
  token: new Set(['not', 'missing', 'text', 'of-type', 'in', 'not-in', 'below', 'above']),
  reference: new Set(['missing', 'identifier']),
  composite: new Set(['missing']),
  date: new Set(['missing']),
  number: new Set(['missing']),
  quantity: new Set(['missing']),
  uri: new Set(['below', 'above', 'missing']),
};

/** Token modifiers answered by the terminology service (search.html#token). */
const CODE_SET_MODIFIERS = new Set(['in', 'not-in', 'below', 'above']);

/**
 * One value of a token `:in`, `:not-in`, `:below` or `:above` parameter, to be resolved into the codes it stands for
 * before planning (src/fhir/search-terminology.ts): the plan itself stays pure.
 */
export interface CodeSetRequest {
  /** 'in' (also for :not-in: the same value set), 'below' or 'above' */
  kind: 'in' | 'below' | 'above';
  /** in: a value set canonical ("url" or "url|version") or "ValueSet/[id]"; below/above: "system|code" */
  value: string;
  /** below/above: the parts of `value` */
  system?: string;
  code?: string;
  /** the parameter as the client wrote it (for errors) */
  param: string;
}

export interface TokenCode {
  system: string;
  code: string;
}

/** The key of a request's codes in PlanOptions.codeSets. */
export function codeSetKey(r: Pick<CodeSetRequest, 'kind' | 'value'>): string {
  return `${r.kind} ${r.value}`;
}

/** Most codes one :in / :not-in / :below / :above parameter may stand for (each one is a condition of the query). */
export const MAX_CODE_SET = 1000;

export interface PlanOptions {
  strict: boolean;
  /** Search parameters as [name, value] pairs (repeats = AND). */
  params: [string, string][];
  compartment?: Compartment;
  /** Most parameters accepted (MAX_SEARCH_PARAMS); each ANDed criterion is a join, and planning cost grows with them. */
  maxParams?: number;
  /** The clock's now (deps.clock): what "approximately" (ap) dates are measured from. */
  now?: Date;
  /**
   * Token :in, :not-in, :below and :above: the codes each value stands for (by codeSetKey), resolved beforehand.
   * Absent (and no codeSetRequests): those modifiers are refused here (SEARCH_MODIFIER_UNSUPPORTED).
   */
  codeSets?: ReadonlyMap<string, TokenCode[]>;
  /** Collects the values not in codeSets instead of refusing them (their criteria are placeholders: plan again). */
  codeSetRequests?: CodeSetRequest[];
}

/** What parseCriterion needs for the terminology modifiers of one parameter. */
interface CodeSetContext {
  codeSets?: ReadonlyMap<string, TokenCode[]>;
  requests?: CodeSetRequest[];
  /** the parameter as given (chains and _has included) */
  param: string;
}

/**
 * "approximately" (search.html#prefix): within 10% of the distance between now and the searched value, at least a
 * day either side.
 */
function nearRange(low: string, high: string, now: number): { low: string; high: string } {
  const mid = (Date.parse(low) + Date.parse(high)) / 2;
  const delta = Math.max(0.1 * Math.abs(now - mid), 86_400_000);
  return { low: new Date(Date.parse(low) - delta).toISOString(), high: new Date(Date.parse(high) + delta).toISOString() };
}

function fixNear(criteria: Criterion[], now: number): void {
  for (const c of criteria) {
    if (c.kind === 'chain' || c.kind === 'has') fixNear([c.next], now);
    else if (c.kind === 'param') for (const v of c.values) if (v.prefix === 'ap' && v.low && v.high) v.near = nearRange(v.low, v.high, now);
  }
}

/** Parameters that only shape the output format. */
export const FORMAT_PARAMS = new Set(['_format', '_pretty']);

function checkSize(params: [string, string][], max: number | undefined): void {
  if (max === undefined) return;
  const n = params.filter(([k]) => !FORMAT_PARAMS.has(k)).length;
  if (n > max) {
    throw new FhirError('invalid', `The search has ${n} parameters; at most ${max} are accepted in one search (combine values with commas, or split the search)`, {
      code: 'SEARCH_TOO_COMPLEX',
      issueType: 'too-costly',
    });
  }
}

function unknownParam(fullName: string, where: string): FhirError {
  return new FhirError('invalid', `Unknown or unsupported search parameter '${fullName}' for ${where}`, {
    code: 'SEARCH_PARAM_UNKNOWN',
    issueType: 'not-supported',
  });
}

/** The definition of `code` shared by every one of `types` (system search needs a common parameter). */
function commonDef(registry: SearchParamRegistry, types: string[], code: string): ParamDef | undefined {
  if (code === '_id') return { code: '_id', type: 'token' };
  if (code === '_lastUpdated') return { code: '_lastUpdated', type: 'date' };
  let def: SearchParamDef | undefined;
  for (const t of types) {
    const d = registry.get(t, code);
    if (!d || (def && d.type !== def.type)) return undefined;
    def ??= d;
  }
  return def;
}

const MAX_CHAIN_DEPTH = 4;

/**
 * Parses one parameter name (with modifiers, chains and _has) for `types` into a Criterion, or returns a string
 * saying why it is unsupported. Malformed values throw 400.
 */
function parseCriterion(registry: SearchParamRegistry, types: string[], fullName: string, rawValue: string, terms: CodeSetContext, depth = 0): Criterion | string {
  if (depth > MAX_CHAIN_DEPTH) throw new FhirError('invalid', `Search parameter '${fullName}' chains deeper than ${MAX_CHAIN_DEPTH} levels`, { code: 'SEARCH_CHAIN_TOO_DEEP' });
  if (fullName.startsWith('_has:')) {
    // _has:Type:refParam:rest
    const m = /^_has:([A-Za-z]+):([a-zA-Z0-9_-]+):(.+)$/.exec(fullName);
    if (!m) throw new FhirError('invalid', `Malformed _has parameter '${fullName}': expected _has:Type:reference-param:param`, { code: 'SEARCH_HAS_INVALID' });
    const [, sourceType, refCode, rest] = m;
    if (!registry.paramsFor(sourceType).size) throw new FhirError('invalid', `Unknown resource type '${sourceType}' in '${fullName}'`, { code: 'SEARCH_HAS_INVALID' });
    const ref = registry.get(sourceType, refCode);
    if (!ref || ref.type !== 'reference') throw new FhirError('invalid', `'${refCode}' is not a reference parameter of ${sourceType} (in '${fullName}')`, { code: 'SEARCH_HAS_INVALID' });
    const next = parseCriterion(registry, [sourceType], rest, rawValue, terms, depth + 1);
    if (typeof next === 'string') return next;
    return { kind: 'has', name: fullName, sourceType, refCode, next };
  }
  if (fullName === '_text' || fullName === '_content') {
    return { kind: 'fulltext', name: fullName, values: splitOr(rawValue).map(unescape).filter(Boolean) };
  }
  const dot = fullName.indexOf('.');
  if (dot > 0) {
    // chain: param[:Type].rest
    const head = fullName.slice(0, dot);
    const rest = fullName.slice(dot + 1);
    const [code, typeMod, ...extra] = head.split(':');
    const def = commonDef(registry, types, code);
    if (!def || extra.length) return `unknown parameter '${code}'`;
    if (def.type !== 'reference') {
      throw new FhirError('invalid', `Cannot chain on '${code}': it is a ${def.type} parameter, not a reference`, { code: 'SEARCH_CHAIN_INVALID' });
    }
    const refDef = def as SearchParamDef;
    let targets = typeMod ? [typeMod] : refDef.target;
    if (typeMod && refDef.target.length && !refDef.target.includes(typeMod)) {
      throw new FhirError('invalid', `'${code}' cannot reference ${typeMod} (in '${fullName}')`, { code: 'SEARCH_CHAIN_INVALID' });
    }
    // Without a type modifier, use the targets where the chained parameter exists.
    const nextCode = rest.split(/[.:]/)[0];
    if (!typeMod) targets = targets.filter((t) => nextCode.startsWith('_') || registry.get(t, nextCode));
    if (!targets.length) return `no target of '${code}' has a parameter '${nextCode}'`;
    const nexts = targets.map((t) => parseCriterion(registry, [t], rest, rawValue, terms, depth + 1));
    const bad = nexts.find((n) => typeof n === 'string');
    if (bad !== undefined) return bad as string;
    // One criterion per target type; they share a shape, so keep the first and remember all targets.
    return { kind: 'chain', name: fullName, def: refDef, targetTypes: targets, next: nexts[0] as Criterion };
  }
  const [name, modifier, ...more] = fullName.split(':');
  const def = commonDef(registry, types, name);
  const supported = def && def.type in MODIFIERS && (def.code === '_id' || def.code === '_lastUpdated' || ('extract' in def && def.extract !== undefined));
  if (!def || !supported || more.length > 0) return `unknown parameter '${fullName}'`;
  if (
    modifier !== undefined &&
    !MODIFIERS[def.type]?.has(modifier) &&
    !(def.type === 'reference' && /^[A-Z][A-Za-z]+$/.test(modifier))
  ) {
    throw new FhirError('invalid', `Unknown modifier ':${modifier}' on ${def.type} parameter '${name}'`, {
      code: 'SEARCH_MODIFIER_INVALID',
      issueType: 'invalid',
    });
  }
  if (def.type === 'token' && modifier !== undefined && CODE_SET_MODIFIERS.has(modifier)) return codeSetCriterion(name, modifier, def, rawValue, terms);
  if (modifier === 'missing') {
    if (rawValue !== 'true' && rawValue !== 'false') throw bad(fullName, rawValue, ':missing takes true or false');
    return { kind: 'param', name, modifier, def, values: [{ raw: rawValue, value: rawValue }] };
  }
  const values = splitOr(rawValue).map((v) => parseValue(fullName, def, modifier, v, registry));
  return { kind: 'param', name, modifier, def, values };
}

const VALUE_SET_ID = /^ValueSet\/[A-Za-z0-9\-.]{1,64}$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

/** One value of a terminology modifier, checked for its form (400 naming the parameter when malformed). */
function codeSetRequest(param: string, modifier: string, raw: string): CodeSetRequest {
  if (modifier === 'in' || modifier === 'not-in') {
    const value = unescape(raw);
    if (!VALUE_SET_ID.test(value) && !ABSOLUTE_URI.test(value)) {
      throw new FhirError('invalid', `'${param}' takes a value set: its canonical URL or ValueSet/[id], not ${JSON.stringify(value)}`, { code: 'SEARCH_VALUESET_INVALID', expression: [param] });
    }
    return { kind: 'in', value, param };
  }
  const pipe = splitPipe(raw);
  const [system, code] = pipe.length === 2 ? [unescape(pipe[0]), unescape(pipe[1])] : ['', ''];
  if (!system || !code) {
    throw new FhirError('invalid', `':${modifier}' on '${param}' needs system|code (the hierarchy is that of the code system), not ${JSON.stringify(raw)}`, {
      code: 'SEARCH_TOKEN_SYSTEM_REQUIRED',
      expression: [param],
    });
  }
  return { kind: modifier as 'below' | 'above', value: `${system}|${code}`, system, code, param };
}

/** A criterion that no resource matches (`negate`: that every resource matches). */
function constantCriterion(name: string, negate: boolean): ParamCriterion {
  return { kind: 'param', name, ...(negate ? { modifier: 'not' } : {}), def: { code: '_id', type: 'token' }, values: [] };
}

/**
 * Token :in, :not-in, :below, :above (search.html#token) as the plain token search over the codes they stand for:
 * :in, :below and :above match a resource with any of the codes, :not-in one with none of them (as :not does, which
 * matches resources with no code at all, too). A code indexed without a system (an element of type code, such as
 * Observation.status) matches by its code alone.
 */
function codeSetCriterion(name: string, modifier: string, def: ParamDef, rawValue: string, terms: CodeSetContext): Criterion {
  if (def.code === '_id') {
    throw new FhirError('invalid', `Unknown modifier ':${modifier}' on _id`, { code: 'SEARCH_MODIFIER_INVALID', issueType: 'invalid' });
  }
  const requests = splitOr(rawValue).map((raw) => codeSetRequest(terms.param, modifier, raw));
  const negate = modifier === 'not-in';
  const codes = new Map<string, TokenCode>();
  let pending = false;
  for (const r of requests) {
    const found = terms.codeSets?.get(codeSetKey(r));
    if (!found) {
      if (!terms.requests) {
        throw new FhirError('invalid', `The modifier ':${modifier}' is not supported here (it is in searches and conditional requests)`, {
          code: 'SEARCH_MODIFIER_UNSUPPORTED',
          issueType: 'not-supported',
          expression: [terms.param],
        });
      }
      terms.requests.push(r);
      pending = true;
      continue;
    }
    for (const c of found) codes.set(`${c.system}\u0000${c.code}`, c);
    if (codes.size > MAX_CODE_SET) {
      throw new FhirError('invalid', `'${terms.param}' stands for more than ${MAX_CODE_SET} codes; search with a smaller value set or a lower code`, {
        code: 'SEARCH_EXPANSION_TOO_LARGE',
        issueType: 'too-costly',
        expression: [terms.param],
      });
    }
  }
  if (pending || !codes.size) return constantCriterion(name, negate);
  const values: ParsedValue[] = [...codes.values()].map((c) => ({ raw: `${c.system}|${c.code}`, system: c.system, value: c.code }));
  // an element of type code is indexed without a system (the binding implies it): it matches by its code
  for (const code of new Set([...codes.values()].map((c) => c.code))) values.push({ raw: `|${code}`, system: null, value: code });
  return { kind: 'param', name, ...(negate ? { modifier: 'not' } : {}), def, values };
}

/** Builds the SearchPlan for a type-level (one type) or system-level (several types) search. */
export function planSearch(registry: SearchParamRegistry, resourceTypes: string | string[], opts: PlanOptions): SearchPlan {
  const types = Array.isArray(resourceTypes) ? resourceTypes : [resourceTypes];
  const plan: SearchPlan = { resourceTypes: types, criteria: [], sort: [], count: DEFAULT_COUNT, offset: 0, total: 'none', include: [], ignored: [], applied: [], compartment: opts.compartment };
  const where = types.length === 1 ? types[0] : `the types ${types.join(', ')}`;
  checkSize(opts.params, opts.maxParams);
  for (const [fullName, rawValue] of opts.params) {
    const base = fullName.split(':')[0];
    if (RESULT_PARAMS.has(base)) {
      applyResultParam(plan, registry, fullName, rawValue, opts.strict);
      continue;
    }
    const c = parseCriterion(registry, types, fullName, rawValue, { codeSets: opts.codeSets, requests: opts.codeSetRequests, param: fullName });
    if (typeof c === 'string') {
      if (opts.strict) throw unknownParam(fullName, where);
      plan.ignored.push(fullName);
      continue;
    }
    plan.criteria.push(c);
    plan.applied.push([fullName, rawValue]);
  }
  fixNear(plan.criteria, (opts.now ?? new Date()).getTime());
  return plan;
}

function applyResultParam(plan: SearchPlan, registry: SearchParamRegistry, fullName: string, value: string, strict: boolean): void {
  const [name, modifier] = fullName.split(':');
  switch (name) {
    case '_count': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw bad(name, value, 'expected a non-negative integer');
      plan.count = Math.min(n, MAX_COUNT);
      plan.applied.push([name, String(plan.count)]);
      return;
    }
    case '_offset': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 100_000) throw bad(name, value, 'expected an integer between 0 and 100000');
      plan.offset = n;
      return;
    }
    case '_cursor': {
      try {
        // [keys..., id] continues forward; { b: [keys..., id] } pages backwards (the previous link)
        const c = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
        if (Array.isArray(c)) plan.cursor = c;
        else if (c && typeof c === 'object' && Array.isArray((c as { b?: unknown }).b)) {
          plan.cursor = (c as { b: unknown[] }).b;
          plan.backwards = true;
        } else throw new Error();
      } catch {
        throw bad(name, value, 'not a paging cursor issued by this server');
      }
      return;
    }
    case '_type':
      return; // handled by the caller (system search)
    case '_total':
      if (value !== 'none' && value !== 'estimate' && value !== 'accurate') throw bad(name, value, 'expected none, estimate or accurate');
      plan.total = value;
      plan.applied.push([name, value]);
      return;
    case '_summary':
      if (!['true', 'false', 'text', 'data', 'count'].includes(value)) throw bad(name, value, 'expected true, false, text, data or count');
      plan.summary = value;
      plan.applied.push([name, value]);
      return;
    case '_elements':
      plan.elements = value.split(',').map((s) => s.trim()).filter(Boolean);
      plan.applied.push([name, value]);
      return;
    case '_include':
    case '_revinclude': {
      if (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse') throw bad(fullName, value, `unknown modifier ':${modifier}'`);
      const reverse = name === '_revinclude';
      const kept: string[] = [];
      for (const spec of value.split(',')) {
        const parts = spec.split(':');
        if (spec === '*') {
          plan.include.push({ reverse, iterate: modifier !== undefined, sourceType: '*', code: '*' });
          kept.push(spec);
          continue;
        }
        const [sourceType, code, targetType] = parts;
        if (parts.length < 2 || parts.length > 3 || !sourceType || !code) throw bad(fullName, spec, 'expected Type:param or Type:param:TargetType');
        if (code !== '*') {
          const def = registry.get(sourceType, code);
          if (!def || def.type !== 'reference') {
            if (strict) throw bad(fullName, spec, `'${code}' is not a reference parameter of ${sourceType}`);
            plan.ignored.push(`${fullName}=${spec}`);
            continue;
          }
        }
        plan.include.push({ reverse, iterate: modifier !== undefined, sourceType, code, targetType });
        kept.push(spec);
      }
      // the self link lists only what was applied (search.html)
      if (kept.length) plan.applied.push([fullName, kept.join(',')]);
      return;
    }
    case '_sort': {
      for (const key of value.split(',').filter(Boolean)) {
        const descending = key.startsWith('-');
        const code = descending ? key.slice(1) : key;
        if (code === '_id') plan.sort.push({ code, type: 'token', descending });
        else if (code === '_lastUpdated') plan.sort.push({ code, type: 'date', descending });
        else {
          const def = commonDef(registry, plan.resourceTypes, code);
          if (!def || !['date', 'string', 'token', 'number', 'quantity', 'uri'].includes(def.type)) {
            if (strict) throw bad(name, value, `cannot sort on '${code}'`);
            plan.ignored.push(`_sort=${key}`);
            continue;
          }
          plan.sort.push({ code, type: def.type, descending });
        }
      }
      if (plan.sort.length) plan.applied.push([name, plan.sort.map((s) => (s.descending ? '-' : '') + s.code).join(',')]);
      return;
    }
    default:
      return; // _format, _pretty: handled by http/
  }
}
