// The table of FHIR interactions (http.html): each request shape (path below the tenant base, method) and the one
// file that answers it. The HTTP router and batch/transaction entries both go through dispatch(), so an interaction
// behaves the same whoever asks (conditions, Prefer, _summary/_elements, element limits live in its file once).
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { processBundle } from '../bundle/process.js';
import { auditAnswer, auditFailure } from '../audit.js';
import { capabilityStatement } from '../capability.js';
import type { FhirContext } from '../context.js';
import type { ExportService } from '../export-service.js';
import { assertResourceType } from '../ids.js';
import { patientEverything } from '../operations/everything.js';
import { reindexStart, reindexStatus } from '../operations/reindex.js';
import { validateOperation } from '../operations/validate.js';
import { expandOperation } from '../operations/expand.js';
import { lookupOperation } from '../operations/lookup.js';
import { subsumesOperation } from '../operations/subsumes.js';
import { translateOperation } from '../operations/translate.js';
import { codeSystemValidateCode, valueSetValidateCode } from '../operations/validate-code.js';
import { checkedParams, type FhirMethod, type FhirRequest, type FhirResult } from '../request.js';
import { auditEventInteraction, isAuditPath } from './audit-event.js';
import { conditionalDelete } from './conditional-delete.js';
import { conditionalPatch } from './conditional-patch.js';
import { conditionalUpdate } from './conditional-update.js';
import { create } from './create.js';
import { remove } from './delete.js';
import { history } from './history.js';
import { patch } from './patch.js';
import { read, vread } from './read.js';
import { searchCompartment, searchSystem, searchType } from './search.js';
import { update } from './update.js';

/** What the server itself supplies for `metadata` (the software and the authorization server's security block). */
export interface ServerFacts {
  software: { name: string; version: string };
  startedAt: string;
  security: Record<string, unknown>;
}

/** Path shape -> method -> answer. `s` is a transaction's session (bundle GET entries); otherwise each opens its own. */
type Handler = (ctx: FhirContext, req: FhirRequest, p: string[], s?: TenantSession) => Promise<FhirResult>;
type Methods = Partial<Record<FhirMethod, Handler>>;

interface Route {
  /** A readable name of the path, for 405 answers. */
  what: (p: string[]) => string;
  match: (p: string[]) => boolean;
  /** `dispatch`: this table itself (a batch answers each entry through it). */
  methods: (facts: ServerFacts, dispatch: Dispatch) => Methods;
}

const strict = (req: FhirRequest) => req.headers.preferStrict === true;

/** The Subscription operations (Backport IG): answered by the subscription service. */
const SUBSCRIPTION_OPERATIONS = new Set(['$status', '$events', '$get-ws-binding-token', '$resend']);

function subscriptionOperation(ctx: FhirContext, req: FhirRequest, name: string, id?: string): Promise<FhirResult> {
  if (!ctx.subscriptions) throw new FhirError('not-found', `Unknown operation '${name}' on Subscription`, { code: 'OPERATION_UNKNOWN', issueType: 'not-supported' });
  return ctx.subscriptions.operation(ctx, req, name, id);
}
/** Bulk Data export (Bulk 2.0): answered by the export service. */
function exports(ctx: FhirContext): ExportService {
  if (!ctx.exports) throw new FhirError('not-found', 'Bulk Data export is not available here', { code: 'OPERATION_UNKNOWN', issueType: 'not-supported' });
  return ctx.exports;
}
const isType = (x: string | undefined) => x !== undefined && !x.startsWith('$') && !x.startsWith('_');

/** POST [type]/_search: the form body's parameters join the query's (search.html#search). */
function formSearch(req: FhirRequest): [string, string][] {
  return [...req.params, ...formParams(req)];
}

function formParams(req: FhirRequest): [string, string][] {
  return checkedParams(bodyOf(req, ['form']).value as string);
}

/** A terminology operation's routes: GET and POST at type level and (unless `instance` is false) instance level. */
function terminologyRoute(type: string, op: string, run: (ctx: FhirContext, req: FhirRequest, id?: string) => Promise<FhirResult>, instance = true): Route[] {
  const routes: Route[] = [{ what: () => `${type}/${op}`, match: (p) => p.length === 2 && p[0] === type && p[1] === op, methods: () => ({ GET: (ctx, req) => run(ctx, req), POST: (ctx, req) => run(ctx, req) }) }];
  if (instance) routes.push({ what: (p) => `${type}/${p[1]}/${op}`, match: (p) => p.length === 3 && p[0] === type && p[2] === op, methods: () => ({ GET: (ctx, req, p) => run(ctx, req, p[1]), POST: (ctx, req, p) => run(ctx, req, p[1]) }) });
  return routes;
}

const ROUTES: Route[] = [
  {
    what: () => 'the tenant base (GET searches all types, POST takes a batch or transaction Bundle)',
    match: (p) => p.length === 0,
    methods: (_facts, dispatch) => ({ GET: (ctx, req) => searchSystem(ctx, req.params, strict(req)), POST: (ctx, req) => processBundle(ctx, req, dispatch) }),
  },
  {
    what: () => 'metadata',
    match: (p) => p.length === 1 && p[0] === 'metadata',
    methods: (facts) => ({ GET: async (ctx) => ({ status: 200, body: capabilityStatement(ctx, facts.software, facts.startedAt, facts.security) }) }),
  },
  { what: () => '_history', match: (p) => p.length === 1 && p[0] === '_history', methods: () => ({ GET: (ctx, req) => history(ctx, req) }) },
  {
    what: () => '$export',
    match: (p) => p.length === 1 && p[0] === '$export',
    methods: () => ({ GET: (ctx, req) => exports(ctx).kickOff(ctx, req, { level: 'system' }), POST: (ctx, req) => exports(ctx).kickOff(ctx, req, { level: 'system' }) }),
  },
  {
    what: () => 'Patient/$export',
    match: (p) => p.length === 2 && p[0] === 'Patient' && p[1] === '$export',
    methods: () => ({ GET: (ctx, req) => exports(ctx).kickOff(ctx, req, { level: 'patient' }), POST: (ctx, req) => exports(ctx).kickOff(ctx, req, { level: 'patient' }) }),
  },
  {
    what: (p) => `Group/${p[1]}/$export`,
    match: (p) => p.length === 3 && p[0] === 'Group' && p[2] === '$export',
    methods: () => ({
      GET: (ctx, req, p) => exports(ctx).kickOff(ctx, req, { level: 'group', groupId: p[1] }),
      POST: (ctx, req, p) => exports(ctx).kickOff(ctx, req, { level: 'group', groupId: p[1] }),
    }),
  },
  {
    what: () => '$export-status/[id]',
    match: (p) => p.length === 2 && p[0] === '$export-status',
    methods: () => ({ GET: (ctx, req, p) => exports(ctx).status(ctx, req, p[1]), DELETE: (ctx, _req, p) => exports(ctx).cancel(ctx, p[1]) }),
  },
  {
    what: () => '$export-file/[id]/[name]',
    match: (p) => p.length === 3 && p[0] === '$export-file',
    methods: () => ({ GET: (ctx, _req, p) => exports(ctx).file(ctx, p[1], p[2]) }),
  },
  {
    what: () => '$reindex',
    match: (p) => p.length === 1 && p[0] === '$reindex',
    methods: () => ({ GET: (ctx, req) => reindexStatus(ctx, req), POST: (ctx, req) => reindexStart(ctx, req) }),
  },
  {
    what: (p) => p[0],
    match: (p) => p.length === 1 && isType(p[0]),
    methods: () => ({
      GET: (ctx, req, p, s) => searchType(ctx, p[0], req.params, strict(req), s),
      POST: (ctx, req, p) => create(ctx, req, p[0]),
      PUT: (ctx, req, p) => conditionalUpdate(ctx, req, p[0]),
      PATCH: (ctx, req, p) => conditionalPatch(ctx, req, p[0]),
      DELETE: (ctx, req, p) => conditionalDelete(ctx, req, p[0]),
    }),
  },
  { what: (p) => `${p[0]}/_search`, match: (p) => p.length === 2 && isType(p[0]) && p[1] === '_search', methods: () => ({ POST: (ctx, req, p) => searchType(ctx, p[0], formSearch(req), strict(req)) }) },
  { what: (p) => `${p[0]}/_history`, match: (p) => p.length === 2 && isType(p[0]) && p[1] === '_history', methods: () => ({ GET: (ctx, req, p) => history(ctx, req, p[0]) }) },
  {
    what: (p) => `Subscription/${p[1]}`,
    match: (p) => p.length === 2 && p[0] === 'Subscription' && SUBSCRIPTION_OPERATIONS.has(p[1]),
    methods: () => ({ GET: (ctx, req, p) => subscriptionOperation(ctx, req, p[1]), POST: (ctx, req, p) => subscriptionOperation(ctx, req, p[1]) }),
  },
  {
    what: (p) => `Subscription/${p[1]}/${p[2]}`,
    match: (p) => p.length === 3 && p[0] === 'Subscription' && SUBSCRIPTION_OPERATIONS.has(p[2]),
    methods: () => ({ GET: (ctx, req, p) => subscriptionOperation(ctx, req, p[2], p[1]), POST: (ctx, req, p) => subscriptionOperation(ctx, req, p[2], p[1]) }),
  },
  { what: (p) => `${p[0]}/$validate`, match: (p) => p.length === 2 && isType(p[0]) && p[1] === '$validate', methods: () => ({ POST: (ctx, req, p) => validateOperation(ctx, req, p[0]) }) },
  // terminology operations (GET and POST), type level [type]/$op and instance level [type]/[id]/$op
  ...terminologyRoute('CodeSystem', '$lookup', (ctx, req) => lookupOperation(ctx, req), false),
  ...terminologyRoute('CodeSystem', '$validate-code', codeSystemValidateCode),
  ...terminologyRoute('CodeSystem', '$subsumes', subsumesOperation),
  ...terminologyRoute('ValueSet', '$expand', expandOperation),
  ...terminologyRoute('ValueSet', '$validate-code', valueSetValidateCode),
  ...terminologyRoute('ConceptMap', '$translate', translateOperation),
  { what: (p) => `${p[0]}/$reindex`, match: (p) => p.length === 2 && isType(p[0]) && p[1] === '$reindex', methods: () => ({ POST: (ctx, req, p) => reindexStart(ctx, req, p[0]) }) },
  {
    what: (p) => `${p[0]}/${p[1]}`,
    match: (p) => p.length === 2 && isType(p[0]) && !p[1].startsWith('$'),
    methods: () => ({
      GET: (ctx, req, p, s) => read(ctx, req, p[0], p[1], s),
      PUT: (ctx, req, p) => update(ctx, req, p[0], p[1]),
      PATCH: (ctx, req, p) => patch(ctx, req, p[0], p[1]),
      DELETE: (ctx, req, p) => remove(ctx, req, p[0], p[1]),
    }),
  },
  { what: (p) => `${p[0]}/${p[1]}/_history`, match: (p) => p.length === 3 && isType(p[0]) && p[2] === '_history', methods: () => ({ GET: (ctx, req, p) => history(ctx, req, p[0], p[1]) }) },
  { what: (p) => `${p[0]}/${p[1]}/$validate`, match: (p) => p.length === 3 && isType(p[0]) && p[2] === '$validate', methods: () => ({ POST: (ctx, req, p) => validateOperation(ctx, req, p[0], p[1]) }) },
  {
    what: (p) => `${p[0]}/${p[1]}/_history/${p[3]}`,
    match: (p) => p.length === 4 && isType(p[0]) && p[2] === '_history',
    methods: () => ({ GET: (ctx, req, p, s) => vread(ctx, req, p[0], p[1], p[3], s) }),
  },
  {
    what: (p) => `Patient/${p[1]}/$everything`,
    match: (p) => p.length === 3 && p[0] === 'Patient' && p[2] === '$everything',
    methods: () => ({ GET: (ctx, req, p) => patientEverything(ctx, req, p[1]), POST: (ctx, req, p) => patientEverything(ctx, req, p[1]) }),
  },
  {
    // compartment search: Patient/[id]/[type] or Patient/[id]/*
    what: (p) => `Patient/${p[1]}/${p[2]}`,
    match: (p) => p.length === 3 && p[0] === 'Patient' && isType(p[2]),
    methods: () => ({ GET: (ctx, req, p) => searchCompartment(ctx, p[1], p[2], req.params, strict(req)) }),
  },
];

/** 405, with the Allow header RFC 9110 §15.5.6 requires (HEAD is allowed wherever GET is). */
function notAllowed(method: string, what: string, methods: Methods): FhirError {
  const allow = Object.keys(methods).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', ');
  return new FhirError('not-allowed', `${method} is not allowed on ${what}; use ${allow}`, { code: 'METHOD_NOT_ALLOWED', headers: { Allow: allow } });
}

/** Where no route matches: the most specific 404 for the path. */
function unknownPath(p: string[]): FhirError {
  const [type, second] = p;
  if (p.length >= 1 && (type.startsWith('$') || type.startsWith('_'))) {
    return new FhirError('not-found', `Unknown system-level path '${type.slice(0, 64)}'`, { code: 'PATH_UNKNOWN' });
  }
  if (p.length >= 2 && second.startsWith('$')) {
    return new FhirError('not-found', `Unknown operation '${second.slice(0, 64)}' on ${type}`, { code: 'OPERATION_UNKNOWN', issueType: 'not-supported' });
  }
  return new FhirError('not-found', `Unknown path /${p.join('/').slice(0, 200)}`, { code: 'PATH_UNKNOWN' });
}

/**
 * Answers one FHIR request of the tenant in `ctx`. `s`: run reads on this session (a transaction's GET entries see
 * the transaction's own writes). Resource types are checked before methods, so an unknown type is 404 whatever the
 * method.
 */
export type Dispatch = (ctx: FhirContext, req: FhirRequest, s?: TenantSession) => Promise<FhirResult>;

export function dispatcher(facts: ServerFacts): Dispatch {
  const answer: Dispatch = async (ctx, req, s) => {
    const p = req.path;
    if (p.length >= 1 && isType(p[0]) && !(p.length === 1 && p[0] === 'metadata')) assertResourceType(p[0]);
    if (isAuditPath(p)) return auditEventInteraction(ctx, req, () => formParams(req));
    const route = routes.find((r) => r.match(p));
    if (!route) throw unknownPath(p);
    const handler = route.byMethod[req.method];
    if (!handler) throw notAllowed(req.method, route.what(p), route.byMethod);
    return handler(ctx, req, p, s);
  };
  // Every interaction is audited (issue 12): answered ones before they answer, failed ones before the error goes up.
  // A transaction's failed entry is not: its transaction fails, and the Bundle's own record says so.
  const dispatch: Dispatch = async (ctx, req, s) => {
    let result: FhirResult;
    try {
      result = await answer(ctx, req, s);
    } catch (err) {
      if (!s) await auditFailure(ctx, req, err).catch((auditErr) => ctx.log.error({ err: auditErr }, 'the audit record of a failed request could not be stored'));
      throw err;
    }
    await auditAnswer(ctx, req, result, s);
    return result;
  };
  const routes = ROUTES.map((r) => ({ ...r, byMethod: r.methods(facts, dispatch) }));
  return dispatch;
}
