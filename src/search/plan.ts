// Query string -> SearchPlan (pure): parameter names, modifiers, prefixes and OR-lists per search.html.
// Unknown parameters are reported (lenient: ignored with a warning; strict: 400 naming them).
import { FhirError } from '../fhir/errors.js';
import { dateRange } from './date-range.js';
import type { ParamType, SearchParamDef, SearchParamRegistry } from './registry.js';

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
  /** number/quantity: implied-precision bounds */
  num?: number;
  numLow?: number;
  numHigh?: number;
}

export interface Criterion {
  name: string;
  modifier?: string;
  def: SearchParamDef | { code: '_id' | '_lastUpdated'; type: ParamType };
  /** OR-ed values */
  values: ParsedValue[];
}

export interface SortKey {
  code: string;
  type: ParamType;
  descending: boolean;
}

export interface SearchPlan {
  resourceType: string;
  criteria: Criterion[];
  sort: SortKey[];
  count: number;
  offset: number;
  total: 'none' | 'estimate' | 'accurate';
  summary?: string;
  elements?: string[];
  /** Parameters ignored (lenient handling). */
  ignored: string[];
  /** The parameters actually applied, for the self link. */
  applied: [string, string][];
}

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_total', '_summary', '_elements', '_format', '_pretty']);

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
  const half = 0.5 * Math.pow(10, -decimals + (exp ? Number(exp) : 0));
  return { num, numLow: num - half, numHigh: num + half };
}

function parseValue(name: string, type: ParamType, modifier: string | undefined, raw: string): ParsedValue {
  switch (type) {
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
      const parts = rest.split('|');
      if (parts.length !== 1 && parts.length !== 3) throw bad(name, raw, 'expected number or number|system|code');
      return {
        raw,
        prefix: prefix ?? 'eq',
        value: parts[0],
        ...parseNumber(name, raw, parts[0]),
        system: parts.length === 3 && parts[1] ? parts[1] : undefined,
        unit: parts.length === 3 && parts[2] ? parts[2] : undefined,
      };
    }
    case 'token': {
      if (modifier === 'text') return { raw, value: unescape(raw) };
      const pipe = splitPipe(raw);
      if (pipe.length === 2) return { raw, system: unescape(pipe[0]) === '' ? null : unescape(pipe[0]), value: unescape(pipe[1]) };
      return { raw, system: undefined, value: unescape(raw) };
    }
    case 'reference':
    case 'string':
    case 'uri':
    default:
      return { raw, value: unescape(raw) };
  }
}

const MODIFIERS: Record<string, Set<string>> = {
  string: new Set(['exact', 'contains', 'missing']),
  token: new Set(['not', 'missing', 'text']),
  reference: new Set(['missing']),
  date: new Set(['missing']),
  number: new Set(['missing']),
  quantity: new Set(['missing']),
  uri: new Set(['below', 'above', 'missing']),
};

export interface PlanOptions {
  strict: boolean;
  /** Search parameters as [name, value] pairs (repeats = AND). */
  params: [string, string][];
}

/** Builds the SearchPlan for a type-level search. Throws FhirError(invalid) for malformed values. */
export function planSearch(registry: SearchParamRegistry, resourceType: string, opts: PlanOptions): SearchPlan {
  const plan: SearchPlan = { resourceType, criteria: [], sort: [], count: DEFAULT_COUNT, offset: 0, total: 'none', ignored: [], applied: [] };
  for (const [fullName, rawValue] of opts.params) {
    const [name, modifier, ...more] = fullName.split(':');
    if (RESULT_PARAMS.has(name)) {
      applyResultParam(plan, registry, name, rawValue, opts.strict);
      continue;
    }
    let def: Criterion['def'] | undefined;
    if (name === '_id') def = { code: '_id', type: 'token' };
    else if (name === '_lastUpdated') def = { code: '_lastUpdated', type: 'date' };
    else def = registry.get(resourceType, name);
    const supported = def && def.type in MODIFIERS && (def.code.startsWith('_') || ('extract' in def && def.extract));
    if (!def || !supported || more.length > 0 || name.includes('.')) {
      if (opts.strict) {
        throw new FhirError('invalid', `Unknown or unsupported search parameter '${fullName}' for ${resourceType}`, {
          code: 'SEARCH_PARAM_UNKNOWN',
          issueType: 'not-supported',
        });
      }
      plan.ignored.push(fullName);
      continue;
    }
    if (modifier !== undefined && !MODIFIERS[def.type]?.has(modifier) && !(def.type === 'reference' && /^[A-Z][A-Za-z]+$/.test(modifier))) {
      throw new FhirError('invalid', `Unknown modifier ':${modifier}' on ${def.type} parameter '${name}'`, {
        code: 'SEARCH_MODIFIER_INVALID',
        issueType: 'invalid',
      });
    }
    if (modifier === 'missing') {
      if (rawValue !== 'true' && rawValue !== 'false') throw bad(fullName, rawValue, ':missing takes true or false');
      plan.criteria.push({ name, modifier, def, values: [{ raw: rawValue, value: rawValue }] });
    } else {
      const values = splitOr(rawValue).map((v) => parseValue(fullName, def.type, modifier, v));
      plan.criteria.push({ name, modifier, def, values });
    }
    plan.applied.push([fullName, rawValue]);
  }
  return plan;
}

function applyResultParam(plan: SearchPlan, registry: SearchParamRegistry, name: string, value: string, strict: boolean): void {
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
      if (!Number.isInteger(n) || n < 0) throw bad(name, value, 'expected a non-negative integer');
      plan.offset = n;
      return;
    }
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
    case '_sort': {
      for (const key of value.split(',').filter(Boolean)) {
        const descending = key.startsWith('-');
        const code = descending ? key.slice(1) : key;
        if (code === '_id') plan.sort.push({ code, type: 'token', descending });
        else if (code === '_lastUpdated') plan.sort.push({ code, type: 'date', descending });
        else {
          const def = registry.get(plan.resourceType, code);
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
