// _typeFilter (and the Group's member compartments) judged in memory on one stored version: a version of the snapshot
// read from history (the resource changed after kick-off), or a deleted resource's last version. It gives the answer
// the SQL search gives (src/store/search-sql.ts: valueCondition, dateCondition, numberCondition) over the index rows
// a write of that version stores (extractIndexRows, with the same normalisation and clipping). Supported: _id,
// _lastUpdated, token (plain, :not, :text, :of-type), string (prefix, :exact, :contains), reference (plain, typed,
// :identifier), uri (plain, :below, :above), date (every prefix), number and quantity (every prefix, system and code),
// and :missing on each of them. Anything else (composite, chains, _has, _text/_content) fails closed: no match.
import type { SearchParamRegistry } from '../core/search-registry.js';
import { canonicalCode, clipIndexValue as clip, extractIndexRows, normalizeString, type IndexRows } from '../search/extract.js';
import type { Compartment, Criterion, ParamCriterion, ParsedValue, Restriction } from '../search/plan.js';

type Json = Record<string, unknown>;

/** Whether the version `json` of `type` matches one of the alternatives (each: its compartment and every criterion). */
export function alternativesHold(registry: SearchParamRegistry, baseUrl: string, type: string, json: string | null, anyOf: NonNullable<Restriction['anyOf']>): boolean {
  if (json === null) return false;
  const resource = JSON.parse(json) as Json;
  const rows = extractIndexRows(registry, resource, baseUrl);
  return anyOf.some((alt) => (!alt.compartment || inCompartment(alt.compartment, type, resource, rows)) && alt.criteria.every((c) => criterionHolds(c, resource, rows, baseUrl)));
}

function inCompartment(c: Compartment, type: string, resource: Json, rows: IndexRows): boolean {
  if (c.includeSelf === true && type === c.type && resource.id === c.id) return true;
  return rows.reference.some(([code, targetType, targetId]) => targetType === c.type && targetId === c.id && c.params.includes(`${type}:${code}`));
}

/** One criterion on a version's content and index rows. */
export function criterionHolds(c: Criterion, resource: Json, rows: IndexRows, baseUrl: string): boolean {
  if (c.kind !== 'param') return false;
  const m = c.modifier;
  if (c.def.code === '_id') {
    if (m === 'missing') return c.values[0]?.value !== 'true';
    if (m !== undefined && m !== 'not') return false;
    const hit = c.values.some((v) => v.value === resource.id);
    return m === 'not' ? !hit : hit;
  }
  if (c.def.code === '_lastUpdated') {
    if (m === 'missing') return c.values[0]?.value !== 'true';
    if (m !== undefined) return false;
    const at = (resource.meta as { lastUpdated?: unknown } | undefined)?.lastUpdated;
    const t = typeof at === 'string' ? Date.parse(at) : NaN;
    if (Number.isNaN(t)) return false;
    return c.values.some((v) => dateHolds(v, t, t));
  }
  if (m === 'missing') {
    const own = ownRows(c, rows);
    if (!own) return false;
    const has = own.length > 0;
    return c.values[0]?.value === 'true' ? !has : has;
  }
  const match = matcher(c, rows, baseUrl);
  if (!match) return false;
  const hit = match.rows.some((row) => c.values.some((v) => match.test(row, v))) || canonicalHolds(c, rows, baseUrl);
  // :not matches resources with no value at all, too (as the SQL's NOT IN does)
  return m === 'not' ? !hit : hit;
}

/**
 * A quantity (or composite ending in one) searched in a UCUM unit matches the canonical index rows too
 * (`<code>:canonical`, src/search/extract.ts), as the SQL's canonicalQuantityCondition does: 100 mg/dL finds 1 g/L.
 */
function canonicalHolds(c: ParamCriterion, rows: IndexRows, baseUrl: string): boolean {
  const values = c.values.flatMap((v) => (v.canonical ? [v.canonical] : []));
  if (!values.length) return false;
  const match = matcher({ ...c, def: { ...c.def, code: canonicalCode(c.def.code) } } as ParamCriterion, rows, baseUrl);
  return !!match && match.rows.some((row) => values.some((v) => match.test(row, v)));
}

/** The index rows of the criterion's own parameter (its table and code, as `:missing` reads them). */
function ownRows(c: ParamCriterion, rows: IndexRows): unknown[][] | undefined {
  const code = c.def.code;
  switch (c.def.type) {
    case 'token':
      return rows.token.filter((r) => r[0] === code);
    case 'string':
      return rows.string.filter((r) => r[0] === code);
    case 'reference':
      return rows.reference.filter((r) => r[0] === code);
    case 'date':
      return rows.date.filter((r) => r[0] === code);
    case 'number':
    case 'quantity':
      return rows.number.filter((r) => r[0] === code);
    case 'uri':
      return rows.uri.filter((r) => r[0] === code);
    case 'composite':
      return rows.composite.filter((r) => r[0] === code);
    default:
      return undefined;
  }
}

interface Matcher {
  rows: unknown[][];
  test(row: unknown[], v: ParsedValue): boolean;
}

function matcher(c: ParamCriterion, rows: IndexRows, baseUrl: string): Matcher | undefined {
  const code = c.def.code;
  const m = c.modifier;
  const plain = m === undefined || m === 'not';
  switch (c.def.type) {
    case 'token':
      if (m === 'text') return { rows: rows.string.filter((r) => r[0] === `${code}:text`), test: (r, v) => (r[1] as string).startsWith(normalizeString(v.value)) };
      if (m === 'of-type') return { rows: rows.token.filter((r) => r[0] === `${code}:of-type`), test: (r, v) => tokenHolds(v, r[1] as string | null, r[2] as string | null) };
      if (!plain) return undefined;
      return { rows: rows.token.filter((r) => r[0] === code), test: (r, v) => tokenHolds(v, r[1] as string | null, r[2] as string | null) };
    case 'string': {
      const own = rows.string.filter((r) => r[0] === code);
      if (m === 'exact') return { rows: own, test: (r, v) => r[2] === clip(v.value) };
      if (m === 'contains') return { rows: own, test: (r, v) => (r[1] as string).includes(clip(normalizeString(v.value))) };
      if (!plain) return undefined;
      return { rows: own, test: (r, v) => (r[1] as string).startsWith(clip(normalizeString(v.value))) };
    }
    case 'uri': {
      const own = rows.uri.filter((r) => r[0] === code);
      if (m === 'below') return { rows: own, test: (r, v) => (r[1] as string).startsWith(clip(v.value)) };
      if (m === 'above') return { rows: own, test: (r, v) => v.value.startsWith(r[1] as string) };
      if (!plain) return undefined;
      return { rows: own, test: (r, v) => r[1] === clip(v.value) };
    }
    case 'reference': {
      if (m === 'identifier') return { rows: rows.token.filter((r) => r[0] === `${code}:identifier`), test: (r, v) => tokenHolds(v, r[1] as string | null, r[2] as string | null) };
      const typed = m !== undefined && /^[A-Z]/.test(m) ? m : undefined;
      if (!plain && !typed) return undefined;
      const own = rows.reference.filter((r) => r[0] === code);
      return { rows: own, test: (r, v) => referenceHolds(c, typed, v, r[1] as string | null, r[2] as string | null, r[3] as string | null, baseUrl) };
    }
    case 'date':
      if (!plain) return undefined;
      return {
        rows: rows.date.filter((r) => r[0] === code),
        test: (r, v) => dateHolds(v, r[1] === null ? null : Date.parse(r[1] as string), r[2] === null ? null : Date.parse(r[2] as string)),
      };
    case 'number':
    case 'quantity':
      if (!plain) return undefined;
      return { rows: rows.number.filter((r) => r[0] === code), test: (r, v) => numberHolds(v, r[1] as number, r[2] as string | null, r[3] as string | null) };
    default:
      return undefined;
  }
}

/** search-sql tokenCondition: searched values clipped as indexed ones are. */
function tokenHolds(v: ParsedValue, system: string | null, value: string | null): boolean {
  if (v.system === undefined) return value === clip(v.value);
  if (v.system === null) return system === null && value === clip(v.value);
  if (v.value === '') return system === clip(v.system);
  return system === clip(v.system) && value === clip(v.value);
}

/** search-sql valueCondition, reference. */
function referenceHolds(c: ParamCriterion, typed: string | undefined, v: ParsedValue, targetType: string | null, targetId: string | null, url: string | null, baseUrl: string): boolean {
  let ref = v.value;
  if (ref.startsWith(baseUrl + '/')) ref = ref.slice(baseUrl.length + 1);
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]+)?$/.exec(ref);
  if (m) return targetType === m[1] && targetId === m[2];
  if (/^[A-Za-z0-9\-.]{1,64}$/.test(ref)) {
    if (typed) return targetType === typed && targetId === ref;
    const targets = 'target' in c.def && c.def.target.length ? c.def.target : undefined;
    return targets ? targetType !== null && targets.includes(targetType) && targetId === ref : targetId === ref;
  }
  return url !== null && url === clip(v.value);
}

/** search-sql dateCondition over a target range [lo, hi] (null: open), in epoch milliseconds; NULL logic as SQL's. */
function dateHolds(v: ParsedValue, lo: number | null, hi: number | null): boolean {
  const sl = v.low !== undefined ? Date.parse(v.low) : NaN;
  const sh = v.high !== undefined ? Date.parse(v.high) : NaN;
  const eq = () => lo !== null && hi !== null && lo >= sl && hi <= sh;
  switch (v.prefix) {
    case 'ne':
      return !eq();
    case 'gt':
      return hi === null || hi > sh;
    case 'lt':
      return lo === null || lo < sl;
    case 'ge':
      return hi === null || hi > sh || eq();
    case 'le':
      return lo === null || lo < sl || eq();
    case 'sa':
      return lo !== null && lo > sh;
    case 'eb':
      return hi !== null && hi < sl;
    case 'ap': {
      const al = Date.parse(v.near?.low ?? v.low ?? '');
      const ah = Date.parse(v.near?.high ?? v.high ?? '');
      return (lo === null || lo <= ah) && (hi === null || hi >= al);
    }
    default:
      return eq();
  }
}

/** search-sql numberCondition, plus the quantity's system and code when searched. */
function numberHolds(v: ParsedValue, x: number, system: string | null, unit: string | null): boolean {
  if (v.system && system !== v.system) return false;
  if (v.unit && unit !== v.unit) return false;
  const n = v.num;
  if (n === undefined) return false;
  switch (v.prefix) {
    case 'ne':
      return v.numLow !== undefined && v.numHigh !== undefined && !(x >= v.numLow && x < v.numHigh);
    case 'gt':
    case 'sa':
      return x > n;
    case 'lt':
    case 'eb':
      return x < n;
    case 'ge':
      return x >= n;
    case 'le':
      return x <= n;
    case 'ap': {
      const d = Math.abs(n * 0.1);
      return x >= n - d && x <= n + d;
    }
    default:
      return v.numLow !== undefined && v.numHigh !== undefined && x >= v.numLow && x < v.numHigh;
  }
}
