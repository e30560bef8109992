// SearchPlan -> SQL with bound parameters only; table and column names come from fixed lists.
// Criteria compile to `id IN (SELECT resource_id FROM <index table> ...)` semi-joins; chains and _has nest
// the same compiler one level down; paging is keyset (no OFFSET), so deep pages cost what the first does.
// Scans of catalog types read the platform catalog's rows too (docs/catalog.md); every other scan is the tenant's alone.
import type { Queryable } from '../platform/db.js';
import type { Compartment, Criterion, IncludeSpec, ParamCriterion, ParsedValue, Restriction, SearchPlan, SortKey } from '../search/plan.js';
import { canonicalCode, clipIndexValue as clip, normalizeString } from '../search/extract.js';
import { FhirError } from '../core/errors.js';
import { CATALOG_TENANT, CATALOG_TYPES, isCatalogType, readsCatalog, visibleCurrent, type StoredVersion } from './resources.js';

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
  private readonly named = new Map<string, string>();
  add(v: unknown): string {
    this.list.push(v);
    return `$${this.list.length}`;
  }

  /** One parameter for a value several conditions use, bound at its first use. */
  once(key: string, value: () => unknown): string {
    let ref = this.named.get(key);
    if (!ref) this.named.set(key, (ref = this.add(value())));
    return ref;
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
  /** the tenant id's parameter ($1) */
  tenant: string;
  tenantId: string;
  /** the tenant's own rows only, never the catalog's (bulk export) */
  own?: boolean;
  baseUrl: string;
  alias: string;
  types: string[];
  depth: number;
  /** another criterion drives the scan (named references): check this one per candidate row instead */
  correlated?: boolean;
  /** authorization restrictions per type, applied to every (nested) scan of that type */
  restrictions?: Record<string, Restriction>;
}

/** Whether the scan of `s` (over `types`) reads the platform catalog's rows too. */
function isShared(s: Scope, types = s.types): boolean {
  return !s.own && readsCatalog(s.tenantId, types);
}

/** [tenant, catalog tenant] as one parameter. */
function tenantsParam(s: Scope): string {
  return s.p.once('tenants', () => [s.tenantId, CATALOG_TENANT]);
}

/**
 * The rows of `alias` (over `types`) the tenant sees: its own; in a shared scan also the catalog's rows of catalog
 * types that no own row with the same type and id shadows (the tenant's own resource wins an id collision).
 */
function visibleCondition(s: Scope, alias: string, types: string[]): string {
  if (!isShared(s, types)) return `${alias}.tenant_id = ${s.tenant}`;
  const catalogType = types.every(isCatalogType) ? '' : `${alias}.resource_type = ANY(${s.p.once('catalogTypes', () => [...CATALOG_TYPES])}::text[]) AND `;
  // The tenant's own catalog-type ids shadow the catalog's: an uncorrelated NOT IN (one hashed subplan over the tenant's
  // few catalog-type rows), not a NOT EXISTS correlated across tenants, which Citus cannot run (the two tenants' rows
  // live in different shards: ../shared/notes/citus.md).
  const own = `${alias}own`;
  const ownTypes = s.p.once('catalogTypes', () => [...CATALOG_TYPES]);
  return `${alias}.tenant_id = ANY(${tenantsParam(s)}::text[]) AND (${alias}.tenant_id = ${s.tenant} OR (${catalogType}(${alias}.resource_type, ${alias}.id) NOT IN (SELECT ${own}.resource_type, ${own}.id FROM resource ${own}
            WHERE ${own}.tenant_id = ${s.tenant} AND ${own}.resource_type = ANY(${ownTypes}::text[]))))`;
}

/**
 * A shared scan's semi-join: index rows of the tenant and of the catalog, each matching the resource row of its own
 * tenant (`x.tenant_id = alias.tenant_id`), so a catalog resource is found by its own index rows only.
 */
function sharedSemiJoin(s: Scope, table: string, conds: string, negate: boolean): string {
  const not = negate ? 'NOT ' : '';
  const a = s.alias;
  if (s.types.length === 1) {
    if (s.correlated) {
      const probe = `EXISTS (SELECT 1 FROM ${table} x WHERE x.tenant_id = ${a}.tenant_id AND x.resource_id = ${a}.id AND x.resource_type || '' = ${a}.resource_type AND ${conds})`;
      return `(${not}${probe}) IS TRUE`;
    }
    return `(${a}.tenant_id, ${a}.id) ${not}IN (SELECT x.tenant_id, x.resource_id FROM ${table} x WHERE x.tenant_id = ANY(${tenantsParam(s)}::text[]) AND x.resource_type = ${s.p.add(s.types[0])} AND ${conds})`;
  }
  return `(${a}.tenant_id, ${a}.resource_type, ${a}.id) ${not}IN (SELECT x.tenant_id, x.resource_type, x.resource_id FROM ${table} x
            WHERE x.tenant_id = ANY(${tenantsParam(s)}::text[]) AND x.resource_type = ANY(${s.p.add(s.types)}::text[]) AND ${conds})`;
}

/** `alias.id IN (SELECT x.resource_id FROM table x WHERE <tenant/type/code> AND cond)`, type-safe for several types. */
function semiJoin(s: Scope, table: string, code: string, cond: string | undefined, negate = false, driving = false): string {
  const codeCond = `x.code = ${s.p.add(code)}`;
  const extra = cond ? ` AND (${cond})` : '';
  if (isShared(s)) return sharedSemiJoin(s, table, codeCond + extra, negate);
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

/**
 * A quantity (or composite ending in one) searched in a UCUM unit: the resource's rows as written match, or its
 * canonical rows (`<code>:canonical`, src/search/extract.ts) match the value converted to canonical units.
 */
function canonicalQuantityCondition(c: ParamCriterion, s: Scope, table: string, code: string): string {
  const own = c.values.map((v) => `(${valueCondition(c, v, s)})`).join(' OR ');
  const canonical = c.values.flatMap((v) => (v.canonical ? [`(${valueCondition(c, v.canonical, s)})`] : [])).join(' OR ');
  return `(${semiJoin(s, table, code, own)} OR ${semiJoin(s, table, canonicalCode(code), canonical)})`;
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
  const conds = [visibleCondition(inner, alias, types), typeCond, `NOT ${alias}.deleted`, criterionCondition(next, inner), ...restrictionConditions(inner)];
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
    if (isShared(s)) return sharedSemiJoin(s, 'sp_fulltext', `(${ors || 'false'})`, false);
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
    // sources of a catalog type may be the catalog's own resources (matched with their own index rows)
    const sources = isShared(s, [c.sourceType])
      ? { tenant: `x.tenant_id = ANY(${tenantsParam(s)}::text[])`, rows: `(x.tenant_id, x.resource_id) IN (SELECT ${n.alias}.tenant_id, ${n.alias}.id ${n.sql})` }
      : { tenant: `x.tenant_id = ${s.tenant}`, rows: `x.resource_id IN (SELECT ${n.alias}.id ${n.sql})` };
    const sub = `SELECT x.target_type, x.target_id FROM sp_reference x WHERE ${sources.tenant} AND x.resource_type = ${p.add(c.sourceType)}
                   AND x.code = ${p.add(c.refCode)} AND ${targetTypes} AND ${sources.rows}`;
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
  if (c.values.some((v) => v.canonical)) return canonicalQuantityCondition(c, s, table, code);
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
    // A shared scan's row reads the index rows of its own tenant (its own, or the catalog's).
    const where = `x.tenant_id = ${isShared(s) ? `${s.alias}.tenant_id` : s.tenant} AND x.resource_id = ${s.alias}.id AND x.resource_type || '' = ${s.alias}.resource_type AND x.code = ${s.p.add(k.code)}`;
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

/**
 * The WHERE condition over `resource r` that a plan's criteria, compartment and restrictions compile to (bulk export:
 * the tenant's own rows only, never the catalog's).
 */
export function planCondition(plan: SearchPlan, tenantId: string, baseUrl: string, p: Params): string {
  return baseWhere(plan, tenantId, baseUrl, p, true).where;
}

function baseWhere(plan: SearchPlan, tenantId: string, baseUrl: string, p: Params, own = plan.ownOnly === true): { where: string; scope: Scope } {
  const tenant = p.add(tenantId);
  const s: Scope = { p, tenant, tenantId, ...(own ? { own } : {}), baseUrl, alias: 'r', types: plan.resourceTypes, depth: 0, restrictions: plan.restrictions };
  const typeCond = plan.resourceTypes.length === 1 ? `r.resource_type = ${p.add(plan.resourceTypes[0])}` : `r.resource_type = ANY(${p.add(plan.resourceTypes)}::text[])`;
  const where = [visibleCondition(s, 'r', plan.resourceTypes), typeCond, 'NOT r.deleted'];
  if (plan.compartment) where.push(compartmentCondition(plan.compartment, s));
  // a shared scan has no driving criterion: its semi-joins match (tenant_id, id) pairs
  const driving = isShared(s) ? [] : plan.criteria.filter(isDriving);
  const rest = plan.criteria.filter((c) => !driving.includes(c));
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
  // a shared scan's rows may be the catalog's: each body is read from its own tenant's row
  const shared = isShared(scope);
  // The page is chosen first and the bodies read after, so only the returned rows pay for jsonb -> text. A join on
  // the row's key, not a correlated subquery per row: Citus runs no correlated subquery over a subquery (issue 16).
  const sql = `SELECT pg.*, c.content::text AS content
                 FROM (SELECT ${shared ? 'r.tenant_id, ' : ''}r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, ${select}
                         FROM resource r WHERE ${conds.join(' AND ')} ORDER BY ${order.join(', ')} LIMIT ${p.add(plan.count + 1)}${offset ? ` OFFSET ${p.add(offset)}` : ''}) pg
                 JOIN resource c ON c.tenant_id = ${shared ? 'pg.tenant_id' : '$1'} AND c.resource_type = pg.resource_type AND c.id = pg.id
                ORDER BY ${order.map((o) => `pg.${o}`).join(', ')}`;
  const r = await q.query<Record<string, unknown>>(sql, p.list);
  let rows = r.rows.slice(0, plan.count).map((row) => ({
    resourceType: row.resource_type as string,
    id: row.id as string,
    versionId: row.version_id as number,
    lastUpdated: row.last_updated as Date,
    deleted: row.deleted as boolean,
    json: row.content as string,
    keys: [...keys.map((_, i) => keyValue(row[`s${i}`])), row.resource_type, row.id],
    ...(shared && row.tenant_id !== tenantId ? { catalog: true } : {}),
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
  const s: Scope = { p, tenant, tenantId, baseUrl, alias: 'r', types: [type], depth: 0, restrictions: { [type]: restriction } };
  const sql = `SELECT r.id FROM resource r WHERE ${visibleCondition(s, 'r', [type])} AND r.resource_type = ${p.add(type)} AND r.id = ANY(${p.add(ids)}::text[])
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
    if (readsCatalog(tenantId, refs.map((x) => x.type))) {
      frontier = await visibleCurrent(q, tenantId, refs);
      for (const v of frontier) seen.add(`${v.resourceType}/${v.id}`);
      out.push(...frontier);
      continue;
    }
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

/**
 * `blocked`: "Type:code" references held in elements the caller may not see (never followed, either direction).
 * Resources of the platform catalog (`catalog`) are followed through the catalog's own index rows.
 */
async function includeTargets(q: Queryable, tenantId: string, spec: IncludeSpec, from: StoredVersion[], blocked: string[]): Promise<{ type: string; id: string }[]> {
  if (from.some((v) => v.catalog)) return catalogIncludeTargets(q, tenantId, spec, from, blocked);
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

/**
 * includeTargets for a frontier holding catalog resources. Forward: each source's references, read from its own
 * tenant's index rows. Reverse: the tenant's resources referencing any of `from`, and the catalog's (of catalog types)
 * referencing the catalog's resources among `from`.
 */
async function catalogIncludeTargets(q: Queryable, tenantId: string, spec: IncludeSpec, from: StoredVersion[], blocked: string[]): Promise<{ type: string; id: string }[]> {
  const tenants = [tenantId, CATALOG_TENANT];
  if (spec.reverse) {
    const shared = from.filter((v) => v.catalog);
    const r = await q.query<{ t: string; i: string }>(
      `SELECT DISTINCT x.resource_type AS t, x.resource_id AS i FROM sp_reference x
        WHERE x.tenant_id = ANY($7::text[])
          AND ((x.tenant_id = $1 AND (x.target_type, x.target_id) IN (SELECT * FROM unnest($2::text[], $3::text[])))
            OR (x.tenant_id <> $1 AND x.resource_type = ANY($8::text[]) AND (x.target_type, x.target_id) IN (SELECT * FROM unnest($9::text[], $10::text[]))))
          AND ($4 = '*' OR x.resource_type = $4) AND ($5 = '*' OR x.code = $5) AND NOT ((x.resource_type || ':' || x.code) = ANY($6::text[])) LIMIT ${MAX_INCLUDES}`,
      [tenantId, from.map((v) => v.resourceType), from.map((v) => v.id), spec.sourceType, spec.code, blocked, tenants, CATALOG_TYPES, shared.map((v) => v.resourceType), shared.map((v) => v.id)],
    );
    return r.rows.map((x) => ({ type: x.t, id: x.i }));
  }
  const sources = from.filter((v) => spec.sourceType === '*' || v.resourceType === spec.sourceType);
  if (!sources.length) return [];
  const r = await q.query<{ t: string; i: string }>(
    `SELECT DISTINCT x.target_type AS t, x.target_id AS i FROM sp_reference x
      WHERE x.tenant_id = ANY($1::text[]) AND x.resource_id = ANY($2::text[]) AND (x.tenant_id || '/' || x.resource_type || '/' || x.resource_id) = ANY($3::text[])
        AND ($4 = '*' OR x.code = $4) AND x.target_type IS NOT NULL AND ($5::text IS NULL OR x.target_type = $5)
        AND NOT ((x.resource_type || ':' || x.code) = ANY($6::text[])) LIMIT ${MAX_INCLUDES}`,
    [tenants, sources.map((v) => v.id), sources.map((v) => `${v.catalog ? CATALOG_TENANT : tenantId}/${v.resourceType}/${v.id}`), spec.code, spec.targetType ?? null, blocked],
  );
  return r.rows.map((x) => ({ type: x.t, id: x.i }));
}
