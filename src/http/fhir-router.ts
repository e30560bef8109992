// /fhir/{tenant}/...: resolves the tenant, then dispatches by path shape and method to the FHIR interactions.
// This is the one file that translates Express requests into FHIR calls.
import type { NextFunction, Request, Response } from 'express';
import { processBundle } from '../fhir/bundle/process.js';
import { capabilityStatement } from '../fhir/capability.js';
import type { Deps, FhirContext, FhirResult, RequestHeaders } from '../fhir/context.js';
import { FhirError } from '../fhir/errors.js';
import { assertResourceType } from '../fhir/ids.js';
import { history } from '../fhir/interactions/history.js';
import { readResource, vreadResource } from '../fhir/interactions/read.js';
import { searchCompartment, searchSystem, searchType } from '../fhir/interactions/search.js';
import { patientEverything } from '../fhir/operations/everything.js';
import { reindexStart, reindexStatus } from '../fhir/operations/reindex.js';
import { validateOperation } from '../fhir/operations/validate.js';
import { subsetResource } from '../fhir/subset.js';
import { prepareConditionalUpdate, prepareCreate, prepareDelete, preparePatch, prepareUpdate, writeOne, matchCondition } from '../fhir/write.js';
import type { TenantCache } from '../store/tenants.js';
import type { OriginRegistry } from '../auth/origins.js';
import { capabilitySecurity, smartConfiguration } from '../auth/smart-config.js';
import { accessFromToken } from '../auth/access.js';
import { TokenGuard, type TokenVerifier } from '../auth/verify.js';
import { bodyKind, parseJsonBody, readBody } from './body.js';
import { requestHeaders } from './request-headers.js';
import { checkFormat, send, writeResult } from './respond.js';

export interface RouterOptions {
  deps: Deps;
  tenants: TenantCache;
  software: { name: string; version: string };
  startedAt: string;
  verifier: TokenVerifier;
  origins: OriginRegistry;
  /**
   * BENCHMARK ONLY (bench/auth.ts, through createApp's BenchmarkOptions; never set by src/main.ts): no token is
   * read or verified, and every request acts with the guard a `system/*.cruds` token of role system gets.
   */
  benchmarkWithoutAuth?: boolean;
}

interface Call {
  ctx: FhirContext;
  req: Request;
  method: string;
  segments: string[];
  params: [string, string][];
  h: RequestHeaders;
}

function queryParams(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  return q < 0 ? [] : checkedParams(req.originalUrl.slice(q + 1));
}

/** Query or form parameters; a NUL character cannot be stored or compared by PostgreSQL, so it is a 400. */
function checkedParams(text: string): [string, string][] {
  const params = [...new URLSearchParams(text)] as [string, string][];
  for (const [k, v] of params) {
    if (k.includes('\u0000') || v.includes('\u0000')) {
      throw new FhirError('invalid', `Parameter '${k.replace(/\u0000/g, '\\0').slice(0, 64)}' contains a NUL character`, { code: 'PARAM_NUL_CHARACTER' });
    }
  }
  return params;
}

const READ_ONLY = 'GET, HEAD';
const POST_ONLY = 'POST';
const TYPE_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
const INSTANCE_METHODS = 'GET, HEAD, PUT, PATCH, DELETE';

/** 405, with the Allow header RFC 9110 §15.5.6 requires. */
function notAllowed(method: string, what: string, allow: string): FhirError {
  return new FhirError('not-allowed', `${method} is not allowed on ${what}; use ${allow}`, { code: 'METHOD_NOT_ALLOWED', headers: { Allow: allow } });
}

async function jsonBody(call: Call, kinds: ('fhir-json' | 'json-patch')[] = ['fhir-json']): Promise<{ body: unknown; kind: string }> {
  const kind = bodyKind(call.req.headers['content-type'], kinds);
  const text = await readBody(call.req, call.ctx.deps.config.maxBodyBytes);
  return { body: parseJsonBody(text), kind };
}

/** Applies _summary/_elements to a single-resource read. */
function shaped(result: FhirResult, params: [string, string][]): FhirResult {
  const summary = params.find(([k]) => k === '_summary')?.[1];
  const elements = params.find(([k]) => k === '_elements')?.[1];
  if ((!summary || summary === 'false') && !elements) return result;
  if (typeof result.body !== 'string') return result;
  if (summary === 'count') throw new FhirError('invalid', '_summary=count applies to searches only', { code: 'SUMMARY_INVALID' });
  const resource = subsetResource(JSON.parse(result.body), summary, elements?.split(',').map((s) => s.trim()).filter(Boolean));
  return { ...result, body: resource };
}

/**
 * The search criteria of a conditional request in one canonical spelling (decoded, re-encoded, sorted), so that
 * `identifier=s|v`, `identifier=s%7Cv` and the same criteria in another order from If-None-Exist or a conditional
 * URL are the same condition: write.ts serialises conditional writes by the condition's text.
 */
function conditionalQuery(params: [string, string][]): string {
  const keep = params.filter(([k]) => !['_format', '_pretty'].includes(k));
  keep.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return new URLSearchParams(keep).toString();
}

/** If-None-Exist carries "[search]" or "[type]?[search]" (http.html#ccreate); canonicalised like a conditional URL. */
function ifNoneExistQuery(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return conditionalQuery([...new URLSearchParams(header.replace(/^[^?=&]*\?/, ''))] as [string, string][]);
}

async function dispatch(call: Call, opts: RouterOptions): Promise<FhirResult> {
  const { ctx, method, segments: s, params, h } = call;
  const strict = h.preferStrict === true;
  // [base]
  if (s.length === 0) {
    if (method === 'POST') return processBundle(ctx, (await jsonBody(call)).body, h.preferReturn);
    if (method === 'GET') return searchSystem(ctx, params, strict);
    throw notAllowed(method, 'the tenant base (GET searches all types, POST takes a batch or transaction Bundle)', 'GET, HEAD, POST');
  }
  if (s.length === 1 && s[0] === 'metadata') {
    if (method !== 'GET') throw notAllowed(method, 'metadata', READ_ONLY);
    return { status: 200, body: capabilityStatement(ctx, opts.software, opts.startedAt, capabilitySecurity(ctx.deps.config.publicBaseUrl)) };
  }
  if (s.length === 1 && s[0] === '_history') {
    if (method !== 'GET') throw notAllowed(method, '_history', READ_ONLY);
    return history(ctx, params);
  }
  const type = s[0];
  if (s.length === 1 && type === '$reindex') {
    if (method === 'POST') return reindexStart(ctx, undefined, params);
    if (method === 'GET') return reindexStatus(ctx, params);
    throw notAllowed(method, '$reindex', 'GET, HEAD, POST');
  }
  if (type.startsWith('$') || type.startsWith('_')) {
    throw new FhirError('not-found', `Unknown system-level path '${type.slice(0, 64)}'`, { code: 'PATH_UNKNOWN' });
  }
  assertResourceType(type);
  if (s.length === 1) {
    switch (method) {
      case 'GET':
        return searchType(ctx, type, params, strict);
      case 'POST': {
        const { body } = await jsonBody(call);
        const w = await writeOne(ctx, (q) => prepareCreate(ctx, q, type, body, { ifNoneExist: ifNoneExistQuery(h.ifNoneExist) }));
        return writeResult(ctx, w, h.preferReturn);
      }
      case 'PUT': {
        const { body } = await jsonBody(call);
        const query = conditionalQuery(params);
        if (!query) throw new FhirError('invalid', `PUT on ${type} needs an id (${type}/[id]) or search criteria`, { code: 'CONDITION_EMPTY' });
        const w = await writeOne(ctx, (q) => prepareConditionalUpdate(ctx, q, type, query, body, { ifMatch: h.ifMatch }));
        return writeResult(ctx, w, h.preferReturn);
      }
      case 'DELETE': {
        const query = conditionalQuery(params);
        if (!query) throw new FhirError('invalid', `DELETE on ${type} needs an id or search criteria`, { code: 'CONDITION_EMPTY' });
        const w = await writeOne(ctx, async (q) => {
          const ids = await matchCondition(ctx, q, type, query);
          if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}; conditional delete removes one at a time`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
          if (ids.length === 0) return { status: 204, resourceType: type, id: '', versionId: 0, lastUpdated: '', json: null };
          return prepareDelete(ctx, q, type, ids[0], { ifMatch: h.ifMatch });
        });
        return writeResult(ctx, w, h.preferReturn);
      }
      case 'PATCH': {
        const { body } = await jsonBody(call, ['json-patch']);
        const query = conditionalQuery(params);
        if (!query) throw new FhirError('invalid', `PATCH on ${type} needs an id or search criteria`, { code: 'CONDITION_EMPTY' });
        const w = await writeOne(ctx, async (q) => {
          const ids = await matchCondition(ctx, q, type, query);
          if (ids.length === 0) throw new FhirError('not-found', `No ${type} matches the condition`, { code: 'CONDITION_NO_MATCH' });
          if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
          return preparePatch(ctx, q, type, ids[0], body, { ifMatch: h.ifMatch });
        });
        return writeResult(ctx, w, h.preferReturn);
      }
      default:
        throw notAllowed(method, type, TYPE_METHODS);
    }
  }
  const second = s[1];
  if (s.length === 2 && second === '_search') {
    if (method !== 'POST') throw notAllowed(method, `${type}/_search`, POST_ONLY);
    bodyKind(call.req.headers['content-type'], ['form']);
    const text = await readBody(call.req, ctx.deps.config.maxBodyBytes);
    return searchType(ctx, type, [...params, ...checkedParams(text)], strict);
  }
  if (s.length === 2 && second === '_history') {
    if (method !== 'GET') throw notAllowed(method, `${type}/_history`, READ_ONLY);
    return history(ctx, params, type);
  }
  if (s.length === 2 && second === '$validate') {
    if (method !== 'POST') throw notAllowed(method, `${type}/$validate`, POST_ONLY);
    return validateOperation(ctx, type, undefined, (await jsonBody(call)).body, params.find(([k]) => k === 'mode')?.[1]);
  }
  if (s.length === 2 && second === '$reindex') {
    if (method !== 'POST') throw notAllowed(method, `${type}/$reindex`, POST_ONLY);
    return reindexStart(ctx, type, params);
  }
  if (second.startsWith('$')) throw new FhirError('not-found', `Unknown operation '${second.slice(0, 64)}' on ${type}`, { code: 'OPERATION_UNKNOWN', issueType: 'not-supported' });
  const id = second;
  if (s.length === 2) {
    switch (method) {
      case 'GET':
        return shaped(await readResource(ctx, type, id, h), params);
      case 'PUT': {
        const { body } = await jsonBody(call);
        const w = await writeOne(ctx, (q) => prepareUpdate(ctx, q, type, id, body, { ifMatch: h.ifMatch }));
        return writeResult(ctx, w, h.preferReturn);
      }
      case 'PATCH': {
        const { body, kind } = await jsonBody(call, ['json-patch', 'fhir-json']);
        // A FHIR media type carries FHIRPath Patch (a Parameters resource), which this server does not apply; a JSON
        // array under application/json is taken as JSON Patch. Under application/json-patch+json, a malformed
        // document is a 400 from the patch engine, not a media-type problem.
        if (kind === 'fhir-json' && (body as { resourceType?: string })?.resourceType === 'Parameters') {
          throw new FhirError('unsupported-media', 'FHIRPath Patch is not supported; send application/json-patch+json', { code: 'PATCH_FORMAT_UNSUPPORTED' });
        }
        if (kind === 'fhir-json' && !Array.isArray(body)) throw new FhirError('unsupported-media', 'PATCH expects a JSON Patch document (application/json-patch+json)', { code: 'PATCH_FORMAT_UNSUPPORTED' });
        const w = await writeOne(ctx, (q) => preparePatch(ctx, q, type, id, body, { ifMatch: h.ifMatch }));
        return writeResult(ctx, w, h.preferReturn);
      }
      case 'DELETE': {
        const w = await writeOne(ctx, (q) => prepareDelete(ctx, q, type, id, { ifMatch: h.ifMatch }));
        return writeResult(ctx, w, h.preferReturn);
      }
      default:
        throw notAllowed(method, `${type}/${id}`, INSTANCE_METHODS);
    }
  }
  const third = s[2];
  if (s.length === 3 && third === '_history') {
    if (method !== 'GET') throw notAllowed(method, `${type}/${id}/_history`, READ_ONLY);
    return history(ctx, params, type, id);
  }
  if (s.length === 3 && third === '$validate') {
    if (method !== 'POST') throw notAllowed(method, `${type}/${id}/$validate`, POST_ONLY);
    return validateOperation(ctx, type, id, (await jsonBody(call)).body, params.find(([k]) => k === 'mode')?.[1]);
  }
  if (s.length === 4 && third === '_history') {
    if (method !== 'GET') throw notAllowed(method, `${type}/${id}/_history/${s[3]}`, READ_ONLY);
    return shaped(await vreadResource(ctx, type, id, s[3]), params);
  }
  if (type === 'Patient' && s.length === 3 && third === '$everything') {
    if (method !== 'GET' && method !== 'POST') throw notAllowed(method, `Patient/${id}/$everything`, 'GET, HEAD, POST');
    return patientEverything(ctx, id, params);
  }
  if (type === 'Patient' && s.length === 3 && !third.startsWith('$') && !third.startsWith('_')) {
    // compartment search: Patient/[id]/[type] or Patient/[id]/*
    if (method !== 'GET') throw notAllowed(method, `Patient/${id}/${third}`, READ_ONLY);
    return searchCompartment(ctx, id, third, params, strict);
  }
  throw new FhirError('not-found', `Unknown path /${s.join('/').slice(0, 200)}`, { code: 'PATH_UNKNOWN' });
}

/** The two endpoints that answer without a token (SMART: discovery). */
function isDiscovery(rest: string[]): boolean {
  return (rest.length === 1 && rest[0] === 'metadata') || (rest.length === 2 && rest[0] === '.well-known' && rest[1] === 'smart-configuration');
}

const EXPOSED = 'Location, ETag, Last-Modified, Content-Location, X-Request-Id, WWW-Authenticate';

/**
 * CORS (SMART app-launch.html#cors): discovery answers any origin; the REST API answers the origins registered by
 * the tenant's clients, and an actual request only the origins of the token's own client.
 */
async function applyCors(req: Request, res: Response, opts: RouterOptions, tenantId: string, discovery: boolean): Promise<boolean> {
  const origin = req.headers.origin;
  if (!origin) return false;
  const allowed = discovery || (await opts.origins.forTenant(tenantId)).has(origin);
  if (!allowed) return false;
  res.setHeader('Access-Control-Allow-Origin', discovery ? '*' : origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Expose-Headers', EXPOSED);
  return true;
}

function preflight(req: Request, res: Response, cors: boolean): void {
  if (cors) {
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, If-Modified-Since');
    res.setHeader('Access-Control-Max-Age', '600');
  }
  res.status(204).end();
}

/** Express handler for everything under /fhir. */
export function fhirRouter(opts: RouterOptions) {
  // BENCHMARK ONLY: the guard of an unrestricted system token, in place of verification (see RouterOptions).
  const benchmarkGuard = opts.benchmarkWithoutAuth ? new TokenGuard(accessFromToken({ scope: 'system/*.cruds', role: 'system' })) : undefined;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const raw = req.path.split('/').filter(Boolean);
      let segments: string[];
      try {
        segments = raw.map((p) => decodeURIComponent(p));
      } catch {
        throw new FhirError('invalid', 'Malformed percent-encoding in the URL', { code: 'URL_MALFORMED' });
      }
      const [slug, ...rest] = segments;
      if (!slug) throw new FhirError('not-found', 'Use /fhir/{tenant} as the FHIR base', { code: 'TENANT_UNKNOWN' });
      const tenant = await opts.tenants.get(slug);
      if (!tenant || tenant.status !== 'active') {
        throw new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
      }
      res.locals.log = res.locals.log.child({ tenantId: tenant.id });
      const discovery = isDiscovery(rest);
      const cors = await applyCors(req, res, opts, tenant.id, discovery);
      if (req.method === 'OPTIONS') return preflight(req, res, cors);
      const baseUrl = `${opts.deps.config.publicBaseUrl}/fhir/${tenant.id}`;
      if (discovery && rest[0] === '.well-known') {
        // SMART: JSON "regardless of Accept headers"
        res.status(200).json(smartConfiguration(opts.deps.config.publicBaseUrl, tenant.id));
        return;
      }
      // Everything else needs a token for this tenant's base (401 otherwise, another tenant's token included).
      const principal = discovery || benchmarkGuard ? undefined : await opts.verifier.verify(req.headers.authorization, baseUrl, tenant.id);
      if (principal) {
        res.locals.log = res.locals.log.child({ clientId: principal.claims.client_id });
        if (cors && !(await opts.origins.forClient(principal.claims.client_id)).has(req.headers.origin!)) res.removeHeader('Access-Control-Allow-Origin');
      }
      const ctx: FhirContext = {
        deps: opts.deps,
        tenant,
        baseUrl,
        registry: await opts.deps.searchParams.forTenant(tenant.id),
        requestId: res.locals.requestId,
        log: res.locals.log,
        signal: res.locals.signal as AbortSignal,
        ...(principal ? { guard: principal.guard } : benchmarkGuard && !discovery ? { guard: benchmarkGuard } : {}),
      };
      const params = queryParams(req);
      checkFormat(req, params);
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const result = await dispatch({ ctx, req, method, segments: rest, params, h: requestHeaders(req) }, opts);
      send(res, params, result);
    } catch (err) {
      next(err);
    }
  };
}
