// The AuditEvent API (issue 12): the audit trail, read and searched, never written. AuditEvents live in their own
// table (store/audit.ts), one compact row per recorded event, and are rendered when asked for; so they are searched
// here, by the parameters an audit review needs, rather than through the generic search index.
//   GET AuditEvent?...  POST AuditEvent/_search  GET AuditEvent/[id]  GET AuditEvent/[id]/_history[/1]
//   GET AuditEvent/_history  GET Patient/[id]/AuditEvent
// Create, update, patch and delete are refused for everyone (405), in every form (fhir/guard.ts authorize()).
import type { GuardDecision, GuardRequest } from '../../core/guard.js';
import { FhirError } from '../../core/errors.js';
import { dateRange } from '../../search/date-range.js';
import { MAX_COUNT, splitOr } from '../../search/plan.js';
import { countAudit, readAudit, searchAudit, type AuditCondition, type AuditQuery, type AuditRow } from '../../store/audit.js';
import { categoriesOf, renderAuditEvent, subtypeKey } from '../audit.js';
import type { FhirContext } from '../context.js';
import { auditImmutable, authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { shapeResource } from '../subset.js';

const DEFAULT_COUNT = 20;
const SOFTWARE = 'tenfhir';

/** A reference search value (relative, absolute on this base, or a bare id for `patient`) as 'Type/id'. */
function refValue(ctx: FhirContext, v: string, defaultType?: string): string {
  let x = v.startsWith(`${ctx.baseUrl}/`) ? v.slice(ctx.baseUrl.length + 1) : v;
  x = x.replace(/\/_history\/.*$/, '');
  if (!x.includes('/') && defaultType) x = `${defaultType}/${x}`;
  return x;
}

function tokenValue(v: string): { system?: string; code: string } {
  const bar = v.indexOf('|');
  return bar < 0 ? { code: v } : { system: v.slice(0, bar) || undefined, code: v.slice(bar + 1) };
}

function bad(message: string, param: string): FhirError {
  return new FhirError('invalid', message, { code: 'AUDIT_SEARCH_INVALID', expression: [param] });
}

/** One `date` value as recorded-range conditions (search.html#date prefixes). */
function dateConditions(value: string): AuditCondition[] {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb)?(.*)$/.exec(value)!;
  const prefix = m[1] ?? 'eq';
  const r = dateRange(m[2]);
  if (!r) throw bad(`date: '${value.slice(0, 64)}' is not a FHIR date, dateTime or instant`, 'date');
  switch (prefix) {
    case 'eq': return [{ kind: 'recorded', op: 'ge', value: r.low }, { kind: 'recorded', op: 'le', value: r.high }];
    case 'gt': case 'sa': return [{ kind: 'recorded', op: 'gt', value: r.high }];
    case 'ge': return [{ kind: 'recorded', op: 'ge', value: r.low }];
    case 'lt': case 'eb': return [{ kind: 'recorded', op: 'lt', value: r.low }];
    case 'le': return [{ kind: 'recorded', op: 'le', value: r.high }];
    default: throw bad(`date: the prefix '${prefix}' is not supported on AuditEvent`, 'date');
  }
}

export interface AuditSearch {
  conditions: AuditCondition[];
  count: number;
  ascending: boolean;
  total: boolean;
  countOnly: boolean;
  elements?: string[];
  cursor?: { recorded: string; seq: string };
  /** The parameters as applied (for links). */
  applied: [string, string][];
}

/** The AuditEvent search parameters this server answers (docs/audit.md). */
export const AUDIT_SEARCH_PARAMS = ['_id', 'date', 'patient', 'entity', 'agent', 'altid', 'client', 'agent-role', 'action', 'outcome', 'type', 'subtype', 'address'];

/** Parses AuditEvent search parameters; anything else is a 400 naming it (a filter silently dropped would widen an audit review). */
export function parseAuditSearch(ctx: FhirContext, params: readonly (readonly [string, string])[]): AuditSearch {
  const out: AuditSearch = { conditions: [], count: DEFAULT_COUNT, ascending: false, total: false, countOnly: false, applied: [] };
  for (const [name, value] of params) {
    if (name === '_format' || name === '_pretty') continue;
    if (name !== '_cursor') out.applied.push([name, value]);
    const values = splitOr(value);
    switch (name) {
      case '_id': out.conditions.push({ kind: 'seq', values }); break;
      case 'patient': out.conditions.push({ kind: 'patient', values: values.map((v) => refValue(ctx, v, 'Patient').replace(/^Patient\//, '')) }); break;
      case 'entity': out.conditions.push({ kind: 'entity', values: values.map((v) => refValue(ctx, v)) }); break;
      case 'agent': out.conditions.push({ kind: 'user_ref', values: values.map((v) => refValue(ctx, v)) }); break;
      case 'altid': out.conditions.push({ kind: 'user_sub', values }); break;
      // not an R4 parameter: the registered client that acted (AuditEvent.agent.who.identifier)
      case 'client': out.conditions.push({ kind: 'client_id', values }); break;
      case 'agent-role': out.conditions.push({ kind: 'role', values: values.map((v) => tokenValue(v).code) }); break;
      case 'address': out.conditions.push({ kind: 'address', values }); break;
      case 'action': {
        if (values.some((v) => !/^[CRUDE]$/.test(v))) throw bad(`action: '${value.slice(0, 64)}' is not one of C, R, U, D, E`, 'action');
        out.conditions.push({ kind: 'action', values });
        break;
      }
      case 'outcome': {
        if (values.some((v) => !/^(0|4|8|12)$/.test(tokenValue(v).code))) throw bad(`outcome: '${value.slice(0, 64)}' is not one of 0, 4, 8, 12`, 'outcome');
        out.conditions.push({ kind: 'outcome', values: values.map((v) => Number(tokenValue(v).code)) });
        break;
      }
      case 'type': {
        const cats = values.flatMap((v) => categoriesOf(tokenValue(v).system, tokenValue(v).code));
        out.conditions.push(cats.length ? { kind: 'category', values: cats } : { kind: 'none' });
        break;
      }
      case 'subtype': {
        const subs = values.map((v) => subtypeKey(tokenValue(v).system, tokenValue(v).code)).filter((x): x is string => !!x);
        out.conditions.push(subs.length ? { kind: 'subtype', values: subs } : { kind: 'none' });
        break;
      }
      case 'date': out.conditions.push(...dateConditions(value)); break;
      case '_count': {
        if (!/^\d{1,6}$/.test(value)) throw bad(`_count: '${value.slice(0, 64)}' is not a whole number`, '_count');
        out.count = Math.min(Number(value), MAX_COUNT);
        break;
      }
      case '_sort': {
        const key = value.replace(/^-/, '');
        if (key !== 'date' && key !== '_lastUpdated') throw bad(`_sort: AuditEvents sort by date (or -date) only, not '${value.slice(0, 64)}'`, '_sort');
        out.ascending = !value.startsWith('-');
        break;
      }
      case '_total': out.total = value === 'accurate'; break;
      case '_summary': out.countOnly = value === 'count'; break;
      case '_elements': out.elements = value.split(',').map((x) => x.trim()).filter(Boolean); break;
      case '_cursor': {
        try {
          const [recorded, seq] = JSON.parse(Buffer.from(value, 'base64url').toString()) as [string, string];
          if (typeof recorded !== 'string' || !/^\d{1,18}$/.test(String(seq)) || Number.isNaN(Date.parse(recorded))) throw new Error('bad');
          out.cursor = { recorded, seq: String(seq) };
        } catch {
          throw bad('_cursor: not a cursor this server issued', '_cursor');
        }
        break;
      }
      default:
        throw new FhirError('invalid', `AuditEvent cannot be searched by '${name.slice(0, 64)}': use ${AUDIT_SEARCH_PARAMS.join(', ')}`, {
          code: 'AUDIT_SEARCH_UNSUPPORTED',
          expression: [name.slice(0, 64)],
        });
    }
  }
  if (out.count === 0) out.countOnly = true;
  return out;
}

/** What the caller's decision leaves visible: its patient compartment, and its granular filter (one set, else nothing). */
function restriction(ctx: FhirContext, d: GuardDecision): { patient?: string; conditions: AuditCondition[] } {
  const conditions: AuditCondition[] = [];
  let patient = d.compartment?.patientId;
  if (d.searchFilters) {
    if (d.searchFilters.length !== 1) return { conditions: [{ kind: 'none' }] };
    const [set] = d.searchFilters;
    if (set.compartment) patient = set.compartment.patientId;
    try {
      conditions.push(...parseAuditSearch(ctx, set.params).conditions);
    } catch {
      return { conditions: [{ kind: 'none' }] }; // a filter the audit search cannot evaluate matches nothing
    }
  }
  return { ...(patient !== undefined ? { patient } : {}), conditions };
}

function render(ctx: FhirContext, row: AuditRow, d: GuardDecision, elements?: string[]): Record<string, unknown> {
  const r = renderAuditEvent(row, ctx.baseUrl, SOFTWARE, !!d.compartment);
  return elements || d.elements ? shapeResource(r, undefined, elements, d.elements) : r;
}

function facts(rows: AuditRow[]) {
  return { entities: rows.map((r) => ({ ref: `AuditEvent/${r.seq}`, version: 1 })), patients: [] };
}

async function runAuditSearch(ctx: FhirContext, params: readonly (readonly [string, string])[], access: GuardRequest, path: string, bundleType: 'searchset' | 'history', fixed: AuditCondition[] = []): Promise<FhirResult> {
  const d = authorize(ctx, access);
  const search = parseAuditSearch(ctx, params);
  const r = restriction(ctx, d);
  const query: AuditQuery = {
    conditions: [...fixed, ...search.conditions, ...r.conditions],
    ...(r.patient !== undefined ? { patient: r.patient } : {}),
    ascending: search.ascending,
    count: search.count,
    ...(search.cursor ? { after: search.cursor } : {}),
  };
  // this process's spooled records first: a search sees everything recorded before it (others' within milliseconds)
  await ctx.deps.audit.settle();
  const { rows, total } = await ctx.store.read(async (s) => ({
    rows: search.countOnly ? [] : await searchAudit(s.q, ctx.tenant.id, query),
    total: search.countOnly || search.total ? await countAudit(s.q, ctx.tenant.id, query) : undefined,
  }));
  const more = rows.length > search.count;
  const page = rows.slice(0, search.count);
  const link = (cursor?: AuditRow) => {
    const u = new URL(`${ctx.baseUrl}/${path}`);
    for (const [k, v] of search.applied) u.searchParams.append(k, v);
    if (cursor) u.searchParams.set('_cursor', Buffer.from(JSON.stringify([cursor.recorded.toISOString(), cursor.seq])).toString('base64url'));
    return u.toString();
  };
  const links = [{ relation: 'self', url: link() }];
  if (more) links.push({ relation: 'next', url: link(page[page.length - 1]) });
  const body: Record<string, unknown> = {
    resourceType: 'Bundle',
    type: bundleType,
    ...(total !== undefined ? { total } : !more && !search.cursor ? { total: page.length } : {}),
    link: links,
    entry: page.map((row) => ({
      fullUrl: `${ctx.baseUrl}/AuditEvent/${row.seq}`,
      resource: render(ctx, row, d, search.elements),
      ...(bundleType === 'searchset'
        ? { search: { mode: 'match' } }
        : { request: { method: 'POST', url: 'AuditEvent' }, response: { status: '201 Created', lastModified: row.recorded.toISOString() } }),
    })),
  };
  return { status: 200, body, audit: facts(page) };
}

async function readOne(ctx: FhirContext, id: string, access: GuardRequest): Promise<{ row: AuditRow; d: GuardDecision }> {
  const d = authorize(ctx, access);
  const r = restriction(ctx, d);
  await ctx.deps.audit.settle();
  const row = await ctx.store.read(async (s) => {
    if (r.patient === undefined && !r.conditions.length) return readAudit(s.q, ctx.tenant.id, id);
    const [hit] = await searchAudit(s.q, ctx.tenant.id, { conditions: [{ kind: 'seq', values: [id] }, ...r.conditions], ...(r.patient !== undefined ? { patient: r.patient } : {}), ascending: false, count: 1 });
    return hit;
  });
  if (!row) throw new FhirError('not-found', `AuditEvent/${id.slice(0, 64)} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  return { row, d };
}

/** A write on an audit path: the 405 authorize() gives every AuditEvent write. */
function immutable(method: string): FhirError {
  return auditImmutable({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? method);
}

/** True when the path is the audit trail's (AuditEvent/..., Patient/[id]/AuditEvent). */
export function isAuditPath(p: string[]): boolean {
  // operations ($validate) take the ordinary route: validating an AuditEvent writes nothing
  return (p[0] === 'AuditEvent' && !p.some((x) => x.startsWith('$'))) || (p.length === 3 && p[0] === 'Patient' && p[2] === 'AuditEvent');
}

/** Answers a request on an audit path. */
export async function auditEventInteraction(ctx: FhirContext, req: FhirRequest, form?: () => [string, string][]): Promise<FhirResult> {
  const p = req.path;
  if (p[0] === 'Patient') {
    if (req.method !== 'GET') throw immutable(req.method);
    return runAuditSearch(ctx, req.params, { interaction: 'search-compartment', resourceType: 'AuditEvent', compartmentId: p[1] }, `Patient/${p[1]}/AuditEvent`, 'searchset', [
      { kind: 'patient', values: [p[1]] },
    ]);
  }
  if (p.length === 2 && p[1] === '_search' && req.method === 'POST') {
    return runAuditSearch(ctx, [...req.params, ...(form ? form() : [])], { interaction: 'search-type', resourceType: 'AuditEvent' }, 'AuditEvent', 'searchset');
  }
  if (req.method !== 'GET') throw immutable(req.method);
  if (p.length === 1) return runAuditSearch(ctx, req.params, { interaction: 'search-type', resourceType: 'AuditEvent' }, 'AuditEvent', 'searchset');
  if (p.length === 2 && p[1] === '_history') return runAuditSearch(ctx, req.params, { interaction: 'history-type', resourceType: 'AuditEvent' }, 'AuditEvent/_history', 'history');
  const id = p[1];
  if (p.length === 2) {
    const { row, d } = await readOne(ctx, id, { interaction: 'read', resourceType: 'AuditEvent', id });
    return answerOne(ctx, row, d, req);
  }
  if (p.length === 3 && p[2] === '_history') {
    const { row, d } = await readOne(ctx, id, { interaction: 'history-instance', resourceType: 'AuditEvent', id });
    const body = {
      resourceType: 'Bundle',
      type: 'history',
      total: 1,
      link: [{ relation: 'self', url: `${ctx.baseUrl}/AuditEvent/${id}/_history` }],
      entry: [{ fullUrl: `${ctx.baseUrl}/AuditEvent/${id}`, resource: render(ctx, row, d), request: { method: 'POST', url: 'AuditEvent' }, response: { status: '201 Created' } }],
    };
    return { status: 200, body, audit: facts([row]) };
  }
  if (p.length === 4 && p[2] === '_history') {
    const { row, d } = await readOne(ctx, id, { interaction: 'vread', resourceType: 'AuditEvent', id });
    if (p[3] !== '1') throw new FhirError('not-found', `AuditEvent/${id.slice(0, 64)} has no version '${p[3].slice(0, 64)}'`, { code: 'VERSION_NOT_FOUND' });
    return answerOne(ctx, row, d, req);
  }
  throw new FhirError('not-found', `Unknown path /${p.join('/').slice(0, 200)}`, { code: 'PATH_UNKNOWN' });
}

function answerOne(ctx: FhirContext, row: AuditRow, d: GuardDecision, req: FhirRequest): FhirResult {
  const elements = req.params.find(([k]) => k === '_elements')?.[1]?.split(',').map((x) => x.trim()).filter(Boolean);
  return {
    status: 200,
    body: render(ctx, row, d, elements),
    headers: { ETag: 'W/"1"', 'Last-Modified': row.recorded.toUTCString() },
    audit: facts([row]),
  };
}
