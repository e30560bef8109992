// Index-value extraction: evaluates each SearchParameter of the resource's type and turns the values into
// rows for the typed index tables (token, string, reference, date, number/quantity, uri).
import type { SearchParamRegistry } from './registry.js';
import { dateRange } from './date-range.js';

export interface IndexRows {
  token: [code: string, system: string | null, value: string | null][];
  string: [code: string, norm: string, value: string][];
  reference: [code: string, targetType: string | null, targetId: string | null, url: string | null][];
  date: [code: string, low: string | null, high: string | null][];
  number: [code: string, value: number, system: string | null, unit: string | null][];
  uri: [code: string, value: string][];
}

export function emptyRows(): IndexRows {
  return { token: [], string: [], reference: [], date: [], number: [], uri: [] };
}

/** Case- and accent-insensitive form used by string search (search.html#string). */
export function normalizeString(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_STRING = 2048;

function addToken(rows: IndexRows, code: string, v: unknown, isTelecom: boolean): void {
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

function addReference(rows: IndexRows, code: string, v: unknown): void {
  const ref = isObj(v) ? v.reference : v;
  if (typeof ref !== 'string') return;
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
  else if (isObj(v) && typeof v.value === 'number') rows.number.push([code, v.value, str(v.system), str(v.code) ?? str(v.unit)]);
}

function addUri(rows: IndexRows, code: string, v: unknown): void {
  if (typeof v === 'string') rows.uri.push([code, v.slice(0, MAX_STRING)]);
}

/** Extracts every index row of `resource` (which must already carry its final id and meta). */
export function extractIndexRows(registry: SearchParamRegistry, resource: Json): IndexRows {
  const rows = emptyRows();
  for (const def of registry.paramsFor(resource.resourceType as string).values()) {
    if (!def.extract || def.code === '_id' || def.code === '_lastUpdated') continue;
    let values: unknown[];
    try {
      values = def.extract(resource);
    } catch {
      continue; // an expression this engine cannot evaluate indexes nothing rather than failing the write
    }
    if (values.length === 0) continue;
    const telecom = def.expression.includes('telecom');
    for (const value of values) {
      switch (def.type) {
        case 'token':
          addToken(rows, def.code, value, telecom);
          break;
        case 'string':
          addString(rows, def.code, value);
          break;
        case 'reference':
          addReference(rows, def.code, value);
          break;
        case 'date':
          addDate(rows, def.code, value);
          break;
        case 'number':
        case 'quantity':
          addNumber(rows, def.code, value);
          break;
        case 'uri':
          addUri(rows, def.code, value);
          break;
      }
    }
  }
  dedupe(rows);
  return rows;
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
