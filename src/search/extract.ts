// Index-value extraction: evaluates each SearchParameter of the resource's type and turns the values into
// rows for the typed index tables (token, string, reference, date, number/quantity, uri).
import type { SearchParamDef, SearchParamRegistry } from '../core/search-registry.js';
import { canonicalQuantity, UCUM_SYSTEM } from '../terminology/ucum.js';
import { dateRange } from './date-range.js';

/**
 * UCUM quantities are indexed twice: as written, and in canonical units (src/terminology/ucum.ts) under the
 * parameter's code + ":canonical" with this system and the canonical unit ("g.m-3"), so a search in mg/dL finds a
 * value stored in g/L (search.html#quantity) while searches without a UCUM unit, sorting and :missing read only the
 * rows as written.
 */
export const UCUM_CANONICAL_SYSTEM = 'urn:tenfhir:ucum-canonical';

/** The index code of a quantity parameter's canonical rows. */
export function canonicalCode(code: string): string {
  return `${code}:canonical`;
}

export interface IndexRows {
  token: [code: string, system: string | null, value: string | null][];
  string: [code: string, norm: string, value: string][];
  reference: [code: string, targetType: string | null, targetId: string | null, url: string | null][];
  date: [code: string, low: string | null, high: string | null][];
  number: [code: string, value: number, system: string | null, unit: string | null][];
  uri: [code: string, value: string][];
  composite: [code: string, system1: string | null, value1: string | null, system2: string | null, value2: string | null, num2: number | null, low2: string | null, high2: string | null][];
  /** [narrative text, all string content] for _text / _content */
  fulltext: [narrative: string, content: string][];
}

function emptyRows(): IndexRows {
  return { token: [], string: [], reference: [], date: [], number: [], uri: [], composite: [], fulltext: [] };
}

/** Case- and accent-insensitive form used by string search (search.html#string). */
export function normalizeString(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_STRING = 2048;

/** Longest indexed value in UTF-8 bytes: btree index entries must stay under ~2.7 kB (two values per entry). */
const MAX_INDEX_BYTES = 800;

/** Cuts a value to MAX_INDEX_BYTES (never inside a character). Searches clip their values the same way. */
export function clipIndexValue<T extends string | null>(v: T): T {
  if (v === null || v.length * 3 <= MAX_INDEX_BYTES || Buffer.byteLength(v) <= MAX_INDEX_BYTES) return v;
  let out = v.slice(0, MAX_INDEX_BYTES);
  while (Buffer.byteLength(out) > MAX_INDEX_BYTES) out = out.slice(0, -1);
  const last = out.charCodeAt(out.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) out = out.slice(0, -1);
  return out as T;
}

function addTokenText(rows: IndexRows, code: string, text: unknown): void {
  if (typeof text === 'string' && text) rows.string.push([`${code}:text`, normalizeString(text.slice(0, MAX_STRING)), text.slice(0, MAX_STRING)]);
}

function addToken(rows: IndexRows, code: string, v: unknown, isTelecom: boolean): void {
  if (isObj(v)) {
    // :text matches CodeableConcept.text, Coding.display and Identifier.type.text (search.html#token)
    addTokenText(rows, code, v.text);
    addTokenText(rows, code, v.display);
    if (Array.isArray(v.coding)) for (const c of v.coding) if (isObj(c)) addTokenText(rows, code, c.display);
    if (isObj(v.type) && typeof v.value === 'string') {
      addTokenText(rows, code, v.type.text);
      // :of-type (Identifier): type-system|type-code|value
      const codings = Array.isArray(v.type.coding) ? v.type.coding : [];
      for (const c of codings) if (isObj(c) && typeof c.code === 'string') rows.token.push([`${code}:of-type`, str(c.system), `${c.code}|${v.value}`]);
    }
  }
  if (typeof v === 'string') rows.token.push([code, null, v]);
  else if (typeof v === 'boolean') rows.token.push([code, null, String(v)]);
  else if (isObj(v)) {
    if (Array.isArray(v.coding)) {
      for (const c of v.coding) if (isObj(c) && (c.code || c.system)) rows.token.push([code, str(c.system), str(c.code)]);
    } else if (isTelecom && 'value' in v) {
      if (typeof v.value === 'string') rows.token.push([code, null, v.value]);
    } else if ('value' in v && !('code' in v)) {
      // Identifier
      if (v.value !== undefined || v.system !== undefined) rows.token.push([code, str(v.system), str(v.value)]);
    } else if ('code' in v || 'system' in v) {
      // Coding, or a Quantity-like code
      rows.token.push([code, str(v.system), str(v.code)]);
    }
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function addString(rows: IndexRows, code: string, v: unknown): void {
  const push = (s: unknown) => {
    if (typeof s === 'string' && s.length > 0) {
      const value = s.slice(0, MAX_STRING);
      rows.string.push([code, normalizeString(value), value]);
    }
  };
  if (typeof v === 'string') push(v);
  else if (isObj(v)) {
    // HumanName and Address: every part is searchable
    for (const key of ['text', 'family', 'given', 'prefix', 'suffix', 'line', 'city', 'district', 'state', 'postalCode', 'country']) {
      const part = v[key];
      if (Array.isArray(part)) part.forEach(push);
      else push(part);
    }
  }
}

const LOCAL_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

function addReference(rows: IndexRows, code: string, v: unknown, localBase?: string): void {
  // :identifier matches Reference.identifier (search.html#reference)
  const hasIdentifier = isObj(v) && isObj(v.identifier) && (typeof v.identifier.value === 'string' || typeof v.identifier.system === 'string');
  if (hasIdentifier) {
    const ident = (v as { identifier: Json }).identifier;
    rows.token.push([`${code}:identifier`, str(ident.system), str(ident.value)]);
  }
  const raw = isObj(v) ? v.reference : v;
  if (typeof raw !== 'string') {
    // a Reference with only an identifier still *has* a value (for :missing)
    if (hasIdentifier) rows.reference.push([code, null, null, null]);
    return;
  }
  // an absolute URL on this tenant's own base is a local reference
  const ref = localBase && raw.startsWith(localBase + '/') ? raw.slice(localBase.length + 1) : raw;
  const m = LOCAL_REF.exec(ref);
  if (m) rows.reference.push([code, m[1], m[2], null]);
  else rows.reference.push([code, null, null, ref]);
}

function addDate(rows: IndexRows, code: string, v: unknown): void {
  if (typeof v === 'string') {
    const r = dateRange(v);
    if (r) rows.date.push([code, r.low, r.high]);
  } else if (isObj(v)) {
    if ('start' in v || 'end' in v) {
      const lo = typeof v.start === 'string' ? dateRange(v.start)?.low ?? null : null;
      const hi = typeof v.end === 'string' ? dateRange(v.end)?.high ?? null : null;
      if (lo || hi) rows.date.push([code, lo, hi]);
    } else if (Array.isArray(v.event)) {
      for (const e of v.event) addDate(rows, code, e);
    }
  }
}

function addNumber(rows: IndexRows, code: string, v: unknown): void {
  if (typeof v === 'number') rows.number.push([code, v, null, null]);
  else if (isObj(v) && typeof v.value === 'number') {
    rows.number.push([code, v.value, str(v.system), str(v.code) ?? str(v.unit)]);
    // `value||unit` may name the human unit too (search.html#quantity)
    if (typeof v.unit === 'string' && typeof v.code === 'string' && v.unit !== v.code) rows.number.push([code, v.value, str(v.system), v.unit]);
    const canonical = v.system === UCUM_SYSTEM && typeof v.code === 'string' ? canonicalQuantity(v.value, v.code) : undefined;
    if (canonical && Number.isFinite(canonical.value)) rows.number.push([canonicalCode(code), canonical.value, UCUM_CANONICAL_SYSTEM, canonical.unit]);
  }
}

function addUri(rows: IndexRows, code: string, v: unknown): void {
  if (typeof v === 'string') rows.uri.push([code, v.slice(0, MAX_STRING)]);
}

/** Extracts every index row of `resource` (which must already carry its final id and meta). */
/**
 * Extracts every index row of `resource` (which must already carry its final id and meta). `localBase` is the
 * tenant's FHIR base: absolute references to it are indexed as local ones.
 */
export function extractIndexRows(registry: SearchParamRegistry, resource: Json, localBase?: string): IndexRows {
  const rows = emptyRows();
  for (const def of registry.paramsFor(resource.resourceType as string).values()) {
    if (!def.extract || def.code === '_id' || def.code === '_lastUpdated') continue;
    if (def.type === 'composite') {
      addComposite(rows, def, resource);
      continue;
    }
    let values: unknown[];
    try {
      values = def.extract(resource);
    } catch {
      continue; // an expression this engine cannot evaluate indexes nothing rather than failing the write
    }
    if (values.length === 0) continue;
    const telecom = def.expression.includes('telecom');
    for (const value of values) addValue(rows, def.type, def.code, value, telecom, localBase);
  }
  rows.fulltext.push(fullText(resource));
  clipRows(rows);
  dedupe(rows);
  return rows;
}

function clipRows(rows: IndexRows): void {
  const c = clipIndexValue;
  rows.token = rows.token.map(([k, a, b]) => [k, c(a), c(b)]);
  rows.string = rows.string.map(([k, a, b]) => [k, c(a), c(b)]);
  rows.uri = rows.uri.map(([k, a]) => [k, c(a)]);
  rows.reference = rows.reference.map(([k, t, i, u]) => [k, t, i, c(u)]);
  rows.composite = rows.composite.map(([k, s1, v1, s2, v2, n, lo, hi]) => [k, c(s1), c(v1), c(s2), c(v2), n, lo, hi]);
}

/** One row per combination of component values on each base node (search.html#composite). */
function addComposite(rows: IndexRows, def: SearchParamDef, resource: Json): void {
  const comps = def.components;
  if (!comps || comps.length !== 2 || comps[0].type !== 'token') return;
  let nodes: unknown[];
  try {
    nodes = def.extract!(resource);
  } catch {
    return;
  }
  for (const node of nodes) {
    if (!isObj(node)) continue;
    const first = emptyRows();
    const second = emptyRows();
    try {
      for (const v of comps[0].extract(node)) addToken(first, 'c', v, false);
      for (const v of comps[1].extract(node)) addValue(second, comps[1].type, 'c', v, false);
    } catch {
      continue;
    }
    for (const [, s1, v1] of first.token) {
      for (const [, s2, v2] of second.token) rows.composite.push([def.code, s1, v1, s2, v2, null, null, null]);
      for (const [, , v2] of second.string) rows.composite.push([def.code, s1, v1, null, v2, null, null, null]);
      for (const [, v2] of second.uri) rows.composite.push([def.code, s1, v1, null, v2, null, null, null]);
      for (const [, t2, id2, url2] of second.reference) rows.composite.push([def.code, s1, v1, null, t2 && id2 ? `${t2}/${id2}` : url2, null, null, null]);
      for (const [c2, n2, s2, u2] of second.number) rows.composite.push([c2 === 'c' ? def.code : canonicalCode(def.code), s1, v1, s2, u2, n2, null, null]);
      for (const [, lo, hi] of second.date) rows.composite.push([def.code, s1, v1, null, null, null, lo, hi]);
    }
  }
}

function addValue(rows: IndexRows, type: string, code: string, value: unknown, telecom: boolean, localBase?: string): void {
  switch (type) {
    case 'token':
      addToken(rows, code, value, telecom);
      break;
    case 'string':
      addString(rows, code, value);
      break;
    case 'reference':
      addReference(rows, code, value, localBase);
      break;
    case 'date':
      addDate(rows, code, value);
      break;
    case 'number':
    case 'quantity':
      addNumber(rows, code, value);
      break;
    case 'uri':
      addUri(rows, code, value);
      break;
  }
}

const MAX_FULLTEXT = 100_000;

/** The narrative's text (tags stripped) and every string value of the resource, for _text and _content. */
function fullText(resource: Json): [string, string] {
  const text = resource.text as { div?: unknown } | undefined;
  const narrative = typeof text?.div === 'string' ? text.div.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ') : '';
  const parts: string[] = [];
  let size = 0;
  const walk = (v: unknown, key: string, depth: number) => {
    if (size > MAX_FULLTEXT || depth > 32) return;
    if (typeof v === 'string') {
      if (key === 'div' || key === 'reference' || key === 'system' || key === 'url' || key === 'id' || key === 'data') return;
      parts.push(v);
      size += v.length;
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, key, depth + 1));
    else if (isObj(v)) for (const [k, x] of Object.entries(v)) if (k !== 'meta' && k !== 'resourceType') walk(x, k, depth + 1);
  };
  walk(resource, '', 0);
  // accent- and case-folded, like string search ("jurgen" finds "Jürgen")
  return [normalizeString(narrative.slice(0, MAX_FULLTEXT)), normalizeString(parts.join(' ').slice(0, MAX_FULLTEXT))];
}

function dedupe(rows: IndexRows): void {
  for (const key of Object.keys(rows) as (keyof IndexRows)[]) {
    const seen = new Set<string>();
    (rows[key] as unknown[][]) = (rows[key] as unknown[][]).filter((r) => {
      const k = JSON.stringify(r);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
}
