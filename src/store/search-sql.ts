// SearchPlan -> SQL with bound parameters only; table and column names come from fixed lists.
// Criteria compile to `id IN (SELECT resource_id FROM <index table> ...)` semi-joins; chains and _has nest
// the same compiler one level down; paging is keyset (no OFFSET), so deep pages cost what the first does.
import type { Queryable } from '../platform/db.js';
import type { Compartment, Criterion, IncludeSpec, ParamCriterion, ParsedValue, Restriction, SearchPlan, SortKey } from '../search/plan.js';
import { clipIndexValue as clip, normalizeString } from '../search/extract.js';
import { FhirError } from '../core/errors.js';
import type { StoredVersion } from './resources.js';

const TABLE: Record<string, string> = {
  token: 'sp_token',
  string: 'sp_string',
  reference: 'sp_reference',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_number',
  uri: 'sp_uri',
  composite: 'sp_composite',
};

export class Params {
  readonly list: unknown[] = [];
  add(v: unknown): string {
    this.list.push(v);
    return `$${this.list.length}`;
  }
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * `col LIKE 'prefix%'` plus the equivalent byte-wise range. Under row-level security only leakproof operators may
 * use an index before the policy check; LIKE is not one, the text_pattern_ops comparisons are, so the range is what
 * lets the (..., norm text_pattern_ops) index serve a prefix search.
 */
function prefixCondition(p: Params, col: string, prefix: string): string {
  if (!prefix) return 'true';
  const v = p.add(prefix);
  return `${col} ~>=~ ${v} AND ${col} ~<~ (${v} || chr(1114111)) AND ${col} LIKE ${p.add(likeEscape(prefix) + '%')}`;
}

/** Where the compiled SQL runs: tenant parameter, the row alias, and its resource type(s). */
interface Scope {
  p: Params;
  tenant: string;
  baseUrl: string;
  alias: string;
  types: string[];
  depth: number;
  /** another criterion drives the scan (named references): check this one per candidate row instead */
  correlated?: boolean;
  /** authorization restrictions per type, applied to every (nested) scan of that type */
  restrictions?: Record<string, Restriction>;
}

/** `alias.id IN (SELECT x.resource_id FROM table x WHERE <tenant/type/code> AND cond)`, type-safe for several types. */
function semiJoin(s: Scope, table: string, code: string, cond: string | undefined, negate = false, driving = false): string {
  const codeCond = `x.code = ${s.p.add(code)}`;
  const extra = cond ? ` AND (${cond})` : '';
  if (s.types.length === 1) {
    // (built lazily: a bound parameter that the final SQL does not use is an error)
    const sub = () => `SELECT x.resource_id FROM ${table} x WHERE x.tenant_id = ${s.tenant} AND x.resource_type = ${s.p.add(s.types[0])} AND ${codeCond}${extra}`;
    // A reference to named resources is nearly always the most selective criterion, but the planner cannot know
    // (it estimates every criterion at one row). As an array it is evaluated first and drives the primary key.
    if (driving && !negate) return `${s.alias}.id = ANY(ARRAY(${sub()}))`;
    if (s.correlated) {
      // `(EXISTS ...) IS TRUE` is not flattened into a join: a per-row probe of (tenant_id, resource_id)
      const probe = `EXISTS (SELECT 1 FROM ${table} x WHERE x.tenant_id = ${s.tenant} AND x.resource_id = ${s.alias}.id AND x.resource_type || '' = ${s.alias}.resource_type AND ${codeCond}${extra})`;
      return `(${negate ? 'NOT ' : ''}${probe}) IS TRUE`;
    }
    return `${s.alias}.id ${negate ? 'NOT IN' : 'IN'} (${sub()})`;
  }
  const sub = `SELECT x.resource_type, x.resource_id FROM ${table} x WHERE x.tenant_id = ${s.tenant} AND x.resource_type = ANY(${s.p.add(s.types)}::text[]) AND ${codeCond}${extra}`;
  return `(${s.alias}.resource_type, ${s.alias}.id) ${negate ? 'NOT IN' : 'IN'} (${sub})`;
}

function tokenCondition(v: ParsedValue, p: Params, sys = 'x.system', val = 'x.value'): string {
  // searched values are clipped exactly as indexed values are (very long values)
  if (v.system === undefined) return `${val} = ${p.add(clip(v.value))}`;
  if (v.system === null) return `${sys} IS NULL AND ${val} = ${p.add(clip(v.value))}`;
  if (v.value === '') return `${sys} = ${p.add(clip(v.system))}`;
  return `${sys} = ${p.add(clip(v.system))} AND ${val} = ${p.add(clip(v.value))}`;
}

/** The SQL condition over an index-table row alias `x` for one searched value. */
function valueCondition(c: ParamCriterion, v: ParsedValue, s: Scope): string {
  const p = s.p;
  switch (c.def.type) {
    case 'token':
      if (c.modifier === 'text') return prefixCondition(p, 'x.norm', normalizeString(v.value));
      return tokenCondition(v, p);
    case 'string': {
      if (c.modifier === 'exact') return `x.value = ${p.add(clip(v.value))}`;
      const norm = clip(normalizeString(v.value));
      if (c.modifier === 'contains') return `x.norm LIKE ${p.add('%' + likeEscape(norm) + '%')}`;
      return prefixCondition(p, 'x.norm', norm);
    }
    case 'uri': {
      if (c.modifier === 'below') return `x.value LIKE ${p.add(likeEscape(clip(v.value)) + '%')}`;
      if (c.modifier === 'above') return `${p.add(v.value)} LIKE replace(replace(replace(x.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'`;
      return `x.value = ${p.add(clip(v.value))}`;
    }
    case 'reference': {
      if (c.modifier === 'identifier') return tokenCondition(v, p);
      let ref = v.value;
      if (ref.startsWith(s.baseUrl + '/')) ref = ref.slice(s.baseUrl.length + 1);
      const typed = c.modifier && /^[A-Z]/.test(c.modifier) ? c.modifier : undefined;
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]+)?$/.exec(ref);
      if (m) return `x.target_type = ${p.add(m[1])} AND x.target_id = ${p.add(m[2])}`;
      if (/^[A-Za-z0-9\-.]{1,64}$/.test(ref)) {
        if (typed) return `x.target_type = ${p.add(typed)} AND x.target_id = ${p.add(ref)}`;
        // A bare id: any of the parameter's target types. Naming them lets the (tenant, target_type, target_id) index serve.
        const targets = 'target' in c.def && c.def.target.length ? c.def.target : undefined;
        return targets ? `x.target_type = ANY(${p.add(targets)}::text[]) AND x.target_id = ${p.add(ref)}` : `x.target_id = ${p.add(ref)}`;
      }
      return `x.url = ${p.add(clip(v.value))}`;
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
    case 'composite': {
      const [a, b] = v.parts ?? [];
      const comps = 'components' in c.def ? c.def.components ?? [] : [];
      if (!a || !b || comps.length !== 2) return 'false';
      const second = (() => {
        switch (comps[1].type) {
          case 'token':
            return tokenCondition(b, p, 'x.system2', 'x.value2');
          case 'quantity':
          case 'number': {
            const conds = [numberCondition(b, p, 'x.num2')];
            if (b.system) conds.push(`x.system2 = ${p.add(b.system)}`);
            if (b.unit) conds.push(`x.value2 = ${p.add(b.unit)}`);
            return conds.join(' AND ');
          }
          case 'date':
            return dateCondition(b, p, 'x.low2', 'x.high2');
          case 'string':
            return `lower(x.value2) LIKE ${p.add(likeEscape(b.value.toLowerCase()) + '%')}`;
          default:
            return `x.value2 = ${p.add(b.value)}`;
        }
      })();
      return `${tokenCondition(a, p, 'x.system1', 'x.value1')} AND ${second}`;
    }
    default:
      return 'false';
  }
}

/**
 * Date prefixes over ranges (search.html#prefix): target [lo, hi] against searched [sl, sh]; a NULL bound is open
 * (-infinity / +infinity). Written without coalesce() where NULL already gives the right answer, so the
 * (..., low, high) index can serve range scans.
 */
export function dateCondition(v: ParsedValue, p: Params, loCol: string, hiCol: string): string {
  // Parameters are bound only when used: an unused $n has no type and PostgreSQL rejects the statement.
  const sl = () => `${p.add(v.low)}::timestamptz`;
  const sh = () => `${p.add(v.high)}::timestamptz`;
  const eq = () => `(${loCol} >= ${sl()} AND ${hiCol} <= ${sh()})`;
  switch (v.prefix) {
    case 'ne':
      return `NOT coalesce(${eq()}, false)`;
    case 'gt':
      return `(${hiCol} > ${sh()} OR ${hiCol} IS NULL)`;
    case 'lt':
      return `(${loCol} < ${sl()} OR ${loCol} IS NULL)`;
    case 'ge':
      return `(${hiCol} > ${sh()} OR ${hiCol} IS NULL OR ${eq()})`;
    case 'le':
      return `(${loCol} < ${sl()} OR ${loCol} IS NULL OR ${eq()})`;
    case 'sa':
      return `${loCol} > ${sh()}`;
    case 'eb':
      return `${hiCol} < ${sl()}`;
    case 'ap': {
      // "approximately": the range the plan fixed around the value (search/plan.ts nearRange)
      const al = `${p.add(v.near?.low ?? v.low)}::timestamptz`;
      const ah = `${p.add(v.near?.high ?? v.high)}::timestamptz`;
      return `((${loCol} <= ${ah} OR ${loCol} IS NULL) AND (${hiCol} >= ${al} OR ${hiCol} IS NULL))`;
    }
    default:
      return eq();
  }
}

function numberCondition(v: ParsedValue, p: Params, col: string): string {
  const n = () => `${p.add(v.num)}::numeric`;
  switch (v.prefix) {
    case 'ne':
      return `NOT (${col} >= ${p.add(v.numLow)}::numeric AND ${col} < ${p.add(v.numHigh)}::numeric)`;
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
      return `${col} BETWEEN ${p.add((v.num ?? 0) - d)}::numeric AND ${p.add((v.num ?? 0) + d)}::numeric`;
    }
    default:
      return `(${col} >= ${p.add(v.numLow)}::numeric AND ${col} < ${p.add(v.numHigh)}::numeric)`;
  }
}

/** A nested `SELECT id FROM resource` over `types` matching `next`, for chains and _has. */
function nestedResources(s: Scope, types: string[], next: Criterion): { alias: string; sql: string } {
  const alias = `r${s.depth + 1}`;
  const inner: Scope = { ...s, alias, types, depth: s.depth + 1 };
  const typeCond = types.length === 1 ? `${alias}.resource_type = ${s.p.add(types[0])}` : `${alias}.resource_type = ANY(${s.p.add(types)}::text[])`;
  const conds = [`${alias}.tenant_id = ${s.tenant}`, typeCond, `NOT ${alias}.deleted`, criterionCondition(next, inner), ...restrictionConditions(inner)];
  return { alias, sql: `FROM resource ${alias} WHERE ${conds.join(' AND ')}` };
}

/** One type's authorization restriction over the row alias of `s` (whose types are [type]). */
function restrictionCondition(r: Restriction, s: Scope): string {
  const parts: string[] = [];
  if (r.compartment) parts.push(compartmentCondition(r.compartment, s));
  if (r.anyOf) {
    const alts = r.anyOf.map((alt) => {
      const conds = alt.criteria.map((c) => criterionCondition(c, s));
      if (alt.compartment) conds.unshift(compartmentCondition(alt.compartment, s));
      return conds.length ? `(${conds.join(' AND ')})` : 'true';
    });
    parts.push(alts.length ? `(${alts.join(' OR ')})` : 'false');
  }
  return parts.length ? parts.join(' AND ') : 'true';
}

/** The restrictions that apply to the scan of `s` (one condition per restricted type it covers). */
function restrictionConditions(s: Scope): string[] {
  if (!s.restrictions) return [];
  const out: string[] = [];
  for (const type of s.types) {
    const r = s.restrictions[type];
    if (!r) continue;
    const cond = restrictionCondition(r, { ...s, types: [type], correlated: false });
    out.push(s.types.length === 1 ? cond : `(${s.alias}.resource_type <> ${s.p.add(type)} OR ${cond})`);
  }
  return out;
}

/** A reference criterion naming resources (Patient/1, 1): selective, so it leads the scan. */
function isDriving(c: Criterion): boolean {
  return (
    c.kind === 'param' &&
    c.def.type === 'reference' &&
    (c.modifier === undefined || /^[A-Z]/.test(c.modifier)) &&
    c.values.every((v) => /^([A-Z][A-Za-z]+\/)?[A-Za-z0-9\-.]{1,64}$/.test(v.value))
  );
}

function criterionCondition(c: Criterion, s: Scope): string {
  const p = s.p;
  if (c.kind === 'fulltext') {
    const column = c.name === '_text' ? 'narrative' : 'content';
    const ors = c.values.map((v) => `x.${column} @@ plainto_tsquery('simple', ${p.add(normalizeString(v))})`).join(' OR ');
    if (s.types.length === 1) {
      return `${s.alias}.id IN (SELECT x.resource_id FROM sp_fulltext x WHERE x.tenant_id = ${s.tenant} AND x.resource_type = ${p.add(s.types[0])} AND (${ors || 'false'}))`;
    }
    return `(${s.alias}.resource_type, ${s.alias}.id) IN (SELECT x.resource_type, x.resource_id FROM sp_fulltext x WHERE x.tenant_id = ${s.tenant} AND (${ors || 'false'}))`;
  }
  if (c.kind === 'chain') {
    const n = nestedResources(s, c.targetTypes, c.next);
    return semiJoin(s, 'sp_reference', c.def.code, `(x.target_type, x.target_id) IN (SELECT ${n.alias}.resource_type, ${n.alias}.id ${n.sql})`);
  }
  if (c.kind === 'has') {
    const n = nestedResources(s, [c.sourceType], c.next);
    const targetTypes = s.types.length === 1 ? `x.target_type = ${p.add(s.types[0])}` : `x.target_type = ANY(${p.add(s.types)}::text[])`;
    const sub = `SELECT x.target_type, x.target_id FROM sp_reference x WHERE x.tenant_id = ${s.tenant} AND x.resource_type = ${p.add(c.sourceType)}
                   AND x.code = ${p.add(c.refCode)} AND ${targetTypes} AND x.resource_id IN (SELECT ${n.alias}.id ${n.sql})`;
    return `(${s.alias}.resource_type, ${s.alias}.id) IN (${sub})`;
  }
  if (c.def.code === '_id') {
    const ids = c.values.map((v) => v.value);
    if (c.modifier === 'missing') return c.values[0].value === 'true' ? 'false' : 'true';
    return c.modifier === 'not' ? `NOT (${s.alias}.id = ANY(${p.add(ids)}::text[]))` : `${s.alias}.id = ANY(${p.add(ids)}::text[])`;
  }
  if (c.def.code === '_lastUpdated') {
    if (c.modifier === 'missing') return c.values[0].value === 'true' ? 'false' : 'true';
    return '(' + c.values.map((v) => dateCondition(v, p, `${s.alias}.last_updated`, `${s.alias}.last_updated`)).join(' OR ') + ')';
  }
  let table = TABLE[c.def.type];
  let code = c.def.code;
  if (c.def.type === 'token' && c.modifier === 'text') {
    table = 'sp_string';
    code = `${code}:text`;
  } else if (c.def.type === 'token' && c.modifier === 'of-type') code = `${code}:of-type`;
  else if (c.def.type === 'reference' && c.modifier === 'identifier') {
    table = 'sp_token';
    code = `${code}:identifier`;
  }
  if (c.modifier === 'missing') return semiJoin(s, table, code, undefined, c.values[0].value === 'true');
  const ors = c.values.map((v) => `(${valueCondition(c, v, s)})`).join(' OR ');
  // :not matches resources with no value at all, too (search.html#token)
  return semiJoin(s, table, code, ors, c.modifier === 'not', isDriving(c));
}

function compartmentCondition(comp: Compartment, s: Scope): string {
  const p = s.p;
  const type = p.add(comp.type);
  const id = p.add(comp.id);
  const members = `(${s.alias}.resource_type, ${s.alias}.id) IN (SELECT x.resource_type, x.resource_id FROM sp_reference x
            WHERE x.tenant_id = ${s.tenant} AND x.target_type = ${type} AND x.target_id = ${id}
              AND (x.resource_type || ':' || x.code) = ANY(${p.add(comp.params)}::text[]))`;
  return comp.includeSelf ? `(${members} OR (${s.alias}.resource_type = ${type} AND ${s.alias}.id = ${id}))` : members;
}

/** The sort keys, each a NULL-free expression (sentinels put missing values last in either direction). */
function sortExpressions(plan: SearchPlan, s: Scope): { expr: string; desc: boolean; cast: string }[] {
  const keys: SortKey[] = plan.sort.length ? plan.sort : [{ code: '_lastUpdated', type: 'date', descending: true }];
  return keys.map((k) => {
    if (k.code === '_id') return { expr: `${s.alias}.id`, desc: k.descending, cast: 'text' };
    if (k.code === '_lastUpdated') return { expr: `${s.alias}.last_updated`, desc: k.descending, cast: 'timestamptz' };
    const table = TABLE[k.type];
    // `|| ''` keeps the planner off the value index for this per-row lookup (it must use (tenant_id, resource_id)).
    const where = `x.tenant_id = ${s.tenant} AND x.resource_id = ${s.alias}.id AND x.resource_type || '' = ${s.alias}.resource_type AND x.code = ${s.p.add(k.code)}`;
    if (k.type === 'date') {
      const agg = k.descending ? `max(coalesce(x.high, x.low))` : `min(coalesce(x.low, x.high))`;
      const sentinel = k.descending ? `'-infinity'::timestamptz` : `'infinity'::timestamptz`;
      return { expr: `coalesce((SELECT ${agg} FROM ${table} x WHERE ${where}), ${sentinel})`, desc: k.descending, cast: 'timestamptz' };
    }
    if (k.type === 'number' || k.type === 'quantity') {
      const sentinel = k.descending ? `'-Infinity'::numeric` : `'Infinity'::numeric`;
      return { expr: `coalesce((SELECT ${k.descending ? 'max' : 'min'}(x.value) FROM ${table} x WHERE ${where}), ${sentinel})`, desc: k.descending, cast: 'numeric' };
    }
    const col = k.type === 'string' ? 'x.norm' : 'x.value';
    const sentinel = k.descending ? `''` : `chr(1114111)`;
    return { expr: `coalesce((SELECT ${k.descending ? 'max' : 'min'}(${col}) FROM ${table} x WHERE ${where}), ${sentinel})`, desc: k.descending, cast: 'text' };
  });
}

/** The WHERE condition over `resource r` that a plan's criteria, compartment and restrictions compile to (bulk export). */
export function planCondition(plan: SearchPlan, tenantId: string, baseUrl: string, p: Params): string {
  return baseWhere(plan, tenantId, baseUrl, p).where;
}

function baseWhere(plan: SearchPlan, tenantId: string, baseUrl: string, p: Params): { where: string; scope: Scope } {
  const tenant = p.add(tenantId);
  const s: Scope = { p, tenant, baseUrl, alias: 'r', types: plan.resourceTypes, depth: 0, restrictions: plan.restrictions };
  const typeCond = plan.resourceTypes.length === 1 ? `r.resource_type = ${p.add(plan.resourceTypes[0])}` : `r.resource_type = ANY(${p.add(plan.resourceTypes)}::text[])`;
  const where = [`r.tenant_id = ${tenant}`, typeCond, 'NOT r.deleted'];
  if (plan.compartment) where.push(compartmentCondition(plan.compartment, s));
  const driving = plan.criteria.filter(isDriving);
  const rest = plan.criteria.filter((c) => !isDriving(c));
  for (const c of driving) where.push(criterionCondition(c, s));
  const rs = driving.length && plan.resourceTypes.length === 1 ? { ...s, correlated: true } : s;
  for (const c of rest) where.push(criterionCondition(c, rs));
  where.push(...restrictionConditions(s));
  return { where: where.join(' AND '), scope: s };
}

export interface SearchRow extends StoredVersion {
  /** sort key values (then id), for the paging cursors */
  keys: unknown[];
}

export interface SearchPage {
  rows: SearchRow[];
  /** True when more results follow this page (in the paging direction). */
  more: boolean;
}

/**
 * Runs the plan and returns one page. `cursor` = { values of the row to continue after, backwards? }:
 * forward pages continue after the last row; backward pages (previous link) end before the first.
 */
export async function searchPage(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan, backwards = false): Promise<SearchPage> {
  const p = new Params();
  const { where, scope } = baseWhere(plan, tenantId, baseUrl, p);
  const keys = sortExpressions(plan, scope);
  const conds = [where];
  const all = [...keys, { expr: 'r.resource_type', desc: false, cast: 'text' }, { expr: 'r.id', desc: false, cast: 'text' }];
  if (plan.cursor) {
    // Lexicographic "after the cursor row" over (keys..., type, id) with each key's direction (flipped when going back).
    const vals = checkCursor(plan.cursor, all.map((k) => k.cast));
    const ors: string[] = [];
    for (let i = 0; i < all.length; i++) {
      const eqs = all.slice(0, i).map((k, j) => `${k.expr} = ${p.add(vals[j])}::${k.cast}`);
      const forwardGreater = !all[i].desc !== backwards;
      eqs.push(`${all[i].expr} ${forwardGreater ? '>' : '<'} ${p.add(vals[i])}::${all[i].cast}`);
      ors.push(`(${eqs.join(' AND ')})`);
    }
    conds.push(`(${ors.join(' OR ')})`);
  }
  const dir = (desc: boolean) => (desc !== backwards ? 'DESC' : 'ASC');
  const order = [...keys.map((k, i) => `s${i} ${dir(k.desc)}`), `resource_type ${dir(false)}`, `id ${dir(false)}`];
  const select = keys.map((k, i) => `${k.expr} AS s${i}`).join(', ');
  const offset = plan.cursor ? 0 : plan.offset;
  // The page is chosen first and the bodies read after, so only the returned rows pay for jsonb -> text.
  const sql = `SELECT pg.*, (SELECT c.content::text FROM resource c WHERE c.tenant_id = $1 AND c.resource_type = pg.resource_type AND c.id = pg.id) AS content
                 FROM (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, ${select}
                         FROM resource r WHERE ${conds.join(' AND ')} ORDER BY ${order.join(', ')} LIMIT ${p.add(plan.count + 1)}${offset ? ` OFFSET ${p.add(offset)}` : ''}) pg
                ORDER BY ${order.join(', ')}`;
  const r = await q.query<Record<string, unknown>>(sql, p.list);
  let rows = r.rows.slice(0, plan.count).map((row) => ({
    resourceType: row.resource_type as string,
    id: row.id as string,
    versionId: row.version_id as number,
    lastUpdated: row.last_updated as Date,
    deleted: row.deleted as boolean,
    json: row.content as string,
    keys: [...keys.map((_, i) => keyValue(row[`s${i}`])), row.resource_type, row.id],
  }));
  if (backwards) rows = rows.reverse();
  return { rows, more: r.rows.length > plan.count };
}

function keyValue(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  // node-postgres turns timestamptz 'infinity' into the number Infinity, which JSON cannot carry
  if (v === Infinity) return 'infinity';
  if (v === -Infinity) return '-infinity';
  return v;
}

const INSTANT = /^(-?infinity|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z)$/;

/** A client-supplied cursor must have this search's shape and value types; anything else is a 400. */
function checkCursor(vals: unknown[], casts: string[]): unknown[] {
  const ok =
    vals.length === casts.length &&
    vals.every((v, i) => {
      if (casts[i] === 'timestamptz') return typeof v === 'string' && INSTANT.test(v);
      if (casts[i] === 'numeric') return (typeof v === 'string' && /^(-?Infinity|-?\d+(\.\d+)?(e[-+]?\d+)?)$/i.test(v)) || (typeof v === 'number' && Number.isFinite(v));
      return typeof v === 'string' && !v.includes('\u0000');
    });
  if (!ok) throw new FhirError('invalid', 'Invalid value for _cursor: it does not belong to this search', { code: 'SEARCH_PARAM_INVALID' });
  return vals;
}

function whereOnly(plan: SearchPlan, tenantId: string, baseUrl: string): { where: string; p: Params } {
  const p = new Params();
  return { where: baseWhere(plan, tenantId, baseUrl, p).where, p };
}

/** Counts all matches (for _total=accurate and _summary=count). */
export async function searchCount(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan): Promise<number> {
  const { where, p } = whereOnly(plan, tenantId, baseUrl);
  const r = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM resource r WHERE ${where}`, p.list);
  return Number(r.rows[0].n);
}

/** The planner's row estimate (for _total=estimate). */
export async function searchEstimate(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan): Promise<number> {
  const { where, p } = whereOnly(plan, tenantId, baseUrl);
  const r = await q.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(`EXPLAIN (FORMAT JSON) SELECT 1 FROM resource r WHERE ${where}`, p.list);
  return Math.round(r.rows[0]['QUERY PLAN'][0].Plan['Plan Rows']);
}

/** Ids of up to `limit` matches: conditional create/update/delete and conditional references. */
export async function searchIds(q: Queryable, tenantId: string, baseUrl: string, plan: SearchPlan, limit: number): Promise<string[]> {
  const { where, p } = whereOnly(plan, tenantId, baseUrl);
  const r = await q.query<{ id: string }>(`SELECT r.id FROM resource r WHERE ${where} ORDER BY r.id LIMIT ${p.add(limit)}`, p.list);
  return r.rows.map((x) => x.id);
}

/**
 * Which of `ids` (current versions of `type`) lie inside `restriction`: reads, includes and history entries under
 * patient/ or granular scopes, and the content a write is about to commit (checked inside its transaction).
 */
export async function permittedIds(q: Queryable, tenantId: string, baseUrl: string, type: string, ids: string[], restriction: Restriction): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const p = new Params();
  const tenant = p.add(tenantId);
  const s: Scope = { p, tenant, baseUrl, alias: 'r', types: [type], depth: 0, restrictions: { [type]: restriction } };
  const sql = `SELECT r.id FROM resource r WHERE r.tenant_id = ${tenant} AND r.resource_type = ${p.add(type)} AND r.id = ANY(${p.add(ids)}::text[])
                 AND ${restrictionConditions(s).join(' AND ')}`;
  const r = await q.query<{ id: string }>(sql, p.list);
  return new Set(r.rows.map((x) => x.id));
}

const MAX_INCLUDES = 1000;

/**
 * _include / _revinclude (with :iterate) for a page: returns the included resources (not deleted, deduplicated,
 * never the page's own matches).
 */
export async function loadIncludes(q: Queryable, tenantId: string, specs: IncludeSpec[], page: StoredVersion[], blocked: string[] = []): Promise<StoredVersion[]> {
  const seen = new Set(page.map((r) => `${r.resourceType}/${r.id}`));
  const out: StoredVersion[] = [];
  let frontier = page;
  for (let round = 0; round < 5 && frontier.length && out.length < MAX_INCLUDES; round++) {
    const active = specs.filter((s) => round === 0 || s.iterate);
    if (!active.length) break;
    const found = new Map<string, { type: string; id: string }>();
    for (const spec of active) {
      for (const ref of await includeTargets(q, tenantId, spec, frontier, blocked)) {
        const key = `${ref.type}/${ref.id}`;
        if (!seen.has(key)) found.set(key, ref);
      }
    }
    if (!found.size) break;
    const refs = [...found.values()].slice(0, MAX_INCLUDES - out.length);
    const r = await q.query<{ resource_type: string; id: string; version_id: number; last_updated: Date; deleted: boolean; content: string }>(
      `SELECT resource_type, id, version_id, last_updated, deleted, content::text AS content FROM resource
        WHERE tenant_id = $1 AND NOT deleted AND (resource_type, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
      [tenantId, refs.map((x) => x.type), refs.map((x) => x.id)],
    );
    frontier = r.rows.map((row) => ({ resourceType: row.resource_type, id: row.id, versionId: row.version_id, lastUpdated: row.last_updated, deleted: row.deleted, json: row.content }));
    for (const v of frontier) seen.add(`${v.resourceType}/${v.id}`);
    out.push(...frontier);
  }
  return out;
}

/** `blocked`: "Type:code" references held in elements the caller may not see (never followed, either direction). */
async function includeTargets(q: Queryable, tenantId: string, spec: IncludeSpec, from: StoredVersion[], blocked: string[]): Promise<{ type: string; id: string }[]> {
  if (spec.reverse) {
    const r = await q.query<{ t: string; i: string }>(
      `SELECT DISTINCT x.resource_type AS t, x.resource_id AS i FROM sp_reference x
        WHERE x.tenant_id = $1 AND (x.target_type, x.target_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
          AND ($4 = '*' OR x.resource_type = $4) AND ($5 = '*' OR x.code = $5) AND NOT ((x.resource_type || ':' || x.code) = ANY($6::text[])) LIMIT ${MAX_INCLUDES}`,
      [tenantId, from.map((v) => v.resourceType), from.map((v) => v.id), spec.sourceType, spec.code, blocked],
    );
    return r.rows.map((x) => ({ type: x.t, id: x.i }));
  }
  const sources = from.filter((v) => spec.sourceType === '*' || v.resourceType === spec.sourceType);
  if (!sources.length) return [];
  const r = await q.query<{ t: string; i: string }>(
    `SELECT DISTINCT x.target_type AS t, x.target_id AS i FROM sp_reference x
      WHERE x.tenant_id = $1 AND x.resource_id = ANY($2::text[]) AND (x.resource_type || '/' || x.resource_id) = ANY($3::text[])
        AND ($4 = '*' OR x.code = $4) AND x.target_type IS NOT NULL AND ($5::text IS NULL OR x.target_type = $5)
        AND NOT ((x.resource_type || ':' || x.code) = ANY($6::text[])) LIMIT ${MAX_INCLUDES}`,
    [tenantId, sources.map((v) => v.id), sources.map((v) => `${v.resourceType}/${v.id}`), spec.code, spec.targetType ?? null, blocked],
  );
  return r.rows.map((x) => ({ type: x.t, id: x.i }));
}
