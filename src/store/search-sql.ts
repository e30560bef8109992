// SearchPlan -> SQL with bound parameters only. Table and column names come from fixed lists.
import type { Queryable } from '../platform/db.js';
import type { Criterion, ParsedValue, SearchPlan } from '../search/plan.js';
import { normalizeString } from '../search/extract.js';
import type { StoredVersion } from './resources.js';

const TABLE: Record<string, string> = {
  token: 'sp_token',
  string: 'sp_string',
  reference: 'sp_reference',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_number',
  uri: 'sp_uri',
};

class Params {
  readonly list: unknown[] = [];
  add(v: unknown): string {
    this.list.push(v);
    return `$${this.list.length}`;
  }
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The SQL condition over an index-table row alias `x` for one searched value. */
function valueCondition(c: Criterion, v: ParsedValue, p: Params, baseUrl: string): string {
  switch (c.def.type) {
    case 'token': {
      if (c.modifier === 'text') return `x.value ILIKE ${p.add(likeEscape(v.value) + '%')}`;
      if (v.system === undefined) return `x.value = ${p.add(v.value)}`;
      if (v.system === null) return `x.system IS NULL AND x.value = ${p.add(v.value)}`;
      if (v.value === '') return `x.system = ${p.add(v.system)}`;
      return `x.system = ${p.add(v.system)} AND x.value = ${p.add(v.value)}`;
    }
    case 'string': {
      if (c.modifier === 'exact') return `x.value = ${p.add(v.value)}`;
      const norm = likeEscape(normalizeString(v.value));
      if (c.modifier === 'contains') return `x.norm LIKE ${p.add('%' + norm + '%')}`;
      return `x.norm LIKE ${p.add(norm + '%')}`;
    }
    case 'uri': {
      if (c.modifier === 'below') return `x.value LIKE ${p.add(likeEscape(v.value) + '%')}`;
      if (c.modifier === 'above') return `${p.add(v.value)} LIKE replace(replace(replace(x.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'`;
      return `x.value = ${p.add(v.value)}`;
    }
    case 'reference': {
      let ref = v.value;
      if (ref.startsWith(baseUrl + '/')) ref = ref.slice(baseUrl.length + 1);
      const typed = c.modifier && /^[A-Z]/.test(c.modifier) ? c.modifier : undefined;
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(ref);
      if (m) return `x.target_type = ${p.add(m[1])} AND x.target_id = ${p.add(m[2])}`;
      if (/^[A-Za-z0-9\-.]{1,64}$/.test(ref)) {
        return typed ? `x.target_type = ${p.add(typed)} AND x.target_id = ${p.add(ref)}` : `x.target_id = ${p.add(ref)}`;
      }
      return `x.url = ${p.add(v.value)}`;
    }
    case 'date':
      return dateCondition(v, p, 'x.low', 'x.high');
    case 'number':
    case 'quantity': {
      const conds = [numberCondition(v, p, 'x.value')];
      if (v.system) conds.push(`x.system = ${p.add(v.system)}`);
      if (v.unit) conds.push(`x.unit = ${p.add(v.unit)}`);
      return conds.join(' AND ');
    }
    default:
      return 'false';
  }
}

/** Date prefixes over ranges (search.html#prefix): target [lo, hi] against searched [sl, sh]. */
export function dateCondition(v: ParsedValue, p: Params, loCol: string, hiCol: string): string {
  const lo = `coalesce(${loCol}, '-infinity'::timestamptz)`;
  const hi = `coalesce(${hiCol}, 'infinity'::timestamptz)`;
  const sl = `${p.add(v.low)}::timestamptz`;
  const sh = `${p.add(v.high)}::timestamptz`;
  const eq = `(${lo} >= ${sl} AND ${hi} <= ${sh})`;
  switch (v.prefix) {
    case 'ne':
      return `NOT ${eq}`;
    case 'gt':
      return `${hi} > ${sh}`;
    case 'lt':
      return `${lo} < ${sl}`;
    case 'ge':
      return `(${hi} > ${sh} OR ${eq})`;
    case 'le':
      return `(${lo} < ${sl} OR ${eq})`;
    case 'sa':
      return `${lo} > ${sh}`;
    case 'eb':
      return `${hi} < ${sl}`;
    case 'ap': {
      // "approximately": within 10% of the distance between now and the searched value, at least a day
      const mid = (Date.parse(v.low!) + Date.parse(v.high!)) / 2;
      const delta = Math.max(0.1 * Math.abs(Date.now() - mid), 86_400_000);
      const al = `${p.add(new Date(Date.parse(v.low!) - delta).toISOString())}::timestamptz`;
      const ah = `${p.add(new Date(Date.parse(v.high!) + delta).toISOString())}::timestamptz`;
      return `(${lo} <= ${ah} AND ${hi} >= ${al})`;
    }
    default:
      return eq;
  }
}

function numberCondition(v: ParsedValue, p: Params, col: string): string {
  const n = () => p.add(v.num);
  switch (v.prefix) {
    case 'ne':
      return `NOT (${col} >= ${p.add(v.numLow)} AND ${col} < ${p.add(v.numHigh)})`;
    case 'gt':
    case 'sa':
      return `${col} > ${n()}`;
    case 'lt':
    case 'eb':
      return `${col} < ${n()}`;
    case 'ge':
      return `${col} >= ${n()}`;
    case 'le':
      return `${col} <= ${n()}`;
    case 'ap': {
      const d = Math.abs((v.num ?? 0) * 0.1);
      return `${col} BETWEEN ${p.add((v.num ?? 0) - d)} AND ${p.add((v.num ?? 0) + d)}`;
    }
    default:
      return `(${col} >= ${p.add(v.numLow)} AND ${col} < ${p.add(v.numHigh)})`;
  }
}

function criterionCondition(c: Criterion, p: Params, baseUrl: string, tenant: string, type: string): string {
  if (c.def.code === '_id') {
    const ids = c.values.map((v) => v.value);
    if (c.modifier === 'missing') return c.values[0].value === 'true' ? 'false' : 'true';
    return c.modifier === 'not' ? `NOT (r.id = ANY(${p.add(ids)}::text[]))` : `r.id = ANY(${p.add(ids)}::text[])`;
  }
  if (c.def.code === '_lastUpdated') {
    if (c.modifier === 'missing') return c.values[0].value === 'true' ? 'false' : 'true';
    return '(' + c.values.map((v) => dateCondition(v, p, 'r.last_updated', 'r.last_updated')).join(' OR ') + ')';
  }
  const table = TABLE[c.def.type];
  const head = `SELECT x.resource_id FROM ${table} x WHERE x.tenant_id = ${tenant} AND x.resource_type = ${type} AND x.code = ${p.add(c.def.code)}`;
  if (c.modifier === 'missing') {
    return c.values[0].value === 'true' ? `r.id NOT IN (${head})` : `r.id IN (${head})`;
  }
  const ors = c.values.map((v) => `(${valueCondition(c, v, p, baseUrl)})`).join(' OR ');
  // :not matches resources with no value at all, too (search.html#token)
  if (c.modifier === 'not') return `r.id NOT IN (${head} AND (${ors}))`;
  return `r.id IN (${head} AND (${ors}))`;
}

function sortExpression(key: SearchPlan['sort'][number], p: Params, tenant: string, type: string): string {
  if (key.code === '_id') return `r.id ${key.descending ? 'DESC' : 'ASC'}`;
  if (key.code === '_lastUpdated') return `r.last_updated ${key.descending ? 'DESC' : 'ASC'}`;
  const table = TABLE[key.type];
  const col = key.type === 'date' ? (key.descending ? 'max(x.high)' : 'min(x.low)') : key.type === 'string' ? (key.descending ? 'max(x.norm)' : 'min(x.norm)') : key.descending ? 'max(x.value)' : 'min(x.value)';
  return `(SELECT ${col} FROM ${table} x WHERE x.tenant_id = ${tenant} AND x.resource_type = ${type} AND x.resource_id = r.id AND x.code = ${p.add(key.code)}) ${key.descending ? 'DESC NULLS LAST' : 'ASC NULLS LAST'}`;
}

function whereClause(plan: SearchPlan, tenantId: string, baseUrl: string, p: Params): string {
  const tenant = p.add(tenantId);
  const type = p.add(plan.resourceType);
  const where = [`r.tenant_id = ${tenant}`, `r.resource_type = ${type}`, 'NOT r.deleted'];
  for (const c of plan.criteria) where.push(criterionCondition(c, p, baseUrl, tenant, type));
  return where.join(' AND ');
}

export interface SearchPage {
  rows: StoredVersion[];
  /** True when more results follow this page. */
  more: boolean;
}

/** Runs the plan and returns one page (count + 1 rows are fetched to know whether more follow). */
export async function searchPage(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan): Promise<SearchPage> {
  const p = new Params();
  const where = whereClause(plan, tenantId, baseUrl, p);
  const tenantParam = '$1';
  const typeParam = '$2';
  const order = plan.sort.map((k) => sortExpression(k, p, tenantParam, typeParam));
  order.push('r.id ASC');
  if (!plan.sort.length) order.unshift('r.last_updated DESC');
  const sql = `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content::text AS content
                 FROM resource r WHERE ${where} ORDER BY ${order.join(', ')} LIMIT ${p.add(plan.count + 1)} OFFSET ${p.add(plan.offset)}`;
  const r = await q.query<{ resource_type: string; id: string; version_id: number; last_updated: Date; deleted: boolean; content: string }>(sql, p.list);
  const rows = r.rows.slice(0, plan.count).map((row) => ({
    resourceType: row.resource_type,
    id: row.id,
    versionId: row.version_id,
    lastUpdated: row.last_updated,
    deleted: row.deleted,
    json: row.content,
  }));
  return { rows, more: r.rows.length > plan.count };
}

/** Counts all matches (for _total=accurate and _summary=count). */
export async function searchCount(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan): Promise<number> {
  const p = new Params();
  const where = whereClause(plan, tenantId, baseUrl, p);
  const r = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM resource r WHERE ${where}`, p.list);
  return Number(r.rows[0].n);
}

/** Ids of up to `limit` matches: conditional create/update/delete and conditional references. */
export async function searchIds(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan, limit: number): Promise<string[]> {
  const p = new Params();
  const where = whereClause(plan, tenantId, baseUrl, p);
  const r = await q.query<{ id: string }>(`SELECT r.id FROM resource r WHERE ${where} ORDER BY r.id LIMIT ${p.add(limit)}`, p.list);
  return r.rows.map((x) => x.id);
}
