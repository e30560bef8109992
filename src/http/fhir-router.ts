// /fhir/{tenant}/... (and /fhir/... on a tenant's own host name): HTTP in and out, nothing else. Resolves the tenant
// (tenancy/), answers CORS and the discovery document, verifies the token (auth/), reads the body, builds the plain
// FhirRequest, lets the FHIR interaction table answer it (fhir/interactions/index.ts), and writes the FhirResult back.
import type { NextFunction, Request, Response } from 'express';
import type { AuditAgent } from '../core/audit.js';
import { FhirError, toFhirError } from '../core/errors.js';
import { outcomeOf } from '../fhir/audit.js';
import type { Deps } from '../core/deps.js';
import type { Guard } from '../core/guard.js';
import type { FhirContext } from '../fhir/context.js';
import type { Caller, SubscriptionService } from '../fhir/subscription-service.js';
import type { ExportService } from '../fhir/export-service.js';
import type { Dispatch } from '../fhir/interactions/index.js';
import { checkedParams, parsePrefer, type FhirMethod, type FhirRequest, type RequestHeaders } from '../fhir/request.js';
import type { OriginRegistry } from '../auth/origins.js';
import { smartConfiguration } from '../auth/smart-config.js';
import { breakGlassGrantOf, breakGlassPurpose } from '../auth/break-glass.js';
import { TenantStore } from '../store/session.js';
import type { TenantCache } from '../tenancy/tenant-cache.js';
import { hostBaseUrl, requestHost } from '../tenancy/tenant-hosts.js';
import { readBody } from './read-body.js';
import type { CancelSignal } from '../platform/cancel.js';
import { checkFormat, send } from './respond.js';
import { isServing, type Tenant } from '../core/tenant.js';
import { admit } from '../tenancy/admission.js';

/** Who is asking: the guard of the verified bearer token (401 otherwise), and the client it was issued to. */
export interface RequestVerifier {
  verify(authorization: string | undefined, audience: string, tenantId: string): Promise<{ guard: Guard; clientId?: string; caller?: Caller }>;
}

export interface RouterOptions {
  deps: Deps;
  tenants: TenantCache;
  verifier: RequestVerifier;
  origins: OriginRegistry;
  dispatch: Dispatch;
  subscriptions?: SubscriptionService;
  exports?: ExportService;
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The query string's parameters (checkedParams: a NUL character is a 400). */
function queryParams(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  return q < 0 ? [] : checkedParams(req.originalUrl.slice(q + 1));
}

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function requestHeaders(req: Request): RequestHeaders {
  const prefer = parsePrefer(header(req, 'prefer'));
  return {
    ifMatch: header(req, 'if-match'),
    ifNoneMatch: header(req, 'if-none-match'),
    ifModifiedSince: header(req, 'if-modified-since'),
    ifNoneExist: header(req, 'if-none-exist'),
    preferReturn: prefer.return,
    preferStrict: prefer.strict,
    ...(prefer.async ? { preferAsync: true } : {}),
  };
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

/** The decoded path segments below /fhir. */
function segments(req: Request): string[] {
  try {
    return req.path.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  } catch {
    throw new FhirError('invalid', 'Malformed percent-encoding in the URL', { code: 'URL_MALFORMED' });
  }
}

/** The request as the FHIR layer takes it: HEAD answered as GET, the body read (with its size limit) when one may come. */
async function fhirRequest(req: Request, path: string[], params: [string, string][], maxBodyBytes: number): Promise<FhirRequest> {
  const method = (req.method === 'HEAD' ? 'GET' : req.method) as FhirMethod;
  const out: FhirRequest = { method, path, params, headers: requestHeaders(req) };
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') out.body = { contentType: req.headers['content-type'], text: await readBody(req, maxBodyBytes) };
  return out;
}

/**
 * The request's tenant, its path below the tenant's base, and that base: on a tenant's own host name (host-based
 * tenants, TENANT_HOSTS_ENABLED) the base is `<scheme>://<host>/fhir`; anywhere else `/fhir/{tenant}` below
 * PUBLIC_BASE_URL. A host whose tenant no longer names it (changed in another process, not yet refreshed) is no
 * tenant's: the path decides, as on any unknown host.
 */
async function resolve(opts: RouterOptions, req: Request, mainHost: string | undefined): Promise<{ tenant: Tenant; rest: string[]; baseUrl: string }> {
  const path = segments(req);
  const publicBaseUrl = opts.deps.config.publicBaseUrl;
  const host = mainHost === undefined ? undefined : requestHost(req.hostname, mainHost);
  const ofHost = host === undefined ? undefined : await opts.tenants.hosts.tenantOf(host);
  if (ofHost && host) {
    const tenant = await opts.tenants.get(ofHost);
    if (isServing(tenant) && tenant.host === host) return { tenant, rest: path, baseUrl: hostBaseUrl(publicBaseUrl, host) };
  }
  const [slug, ...rest] = path;
  if (!slug) throw new FhirError('not-found', 'Use /fhir/{tenant} as the FHIR base', { code: 'TENANT_UNKNOWN' });
  const tenant = await opts.tenants.get(slug);
  if (!isServing(tenant)) throw new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
  return { tenant, rest, baseUrl: `${publicBaseUrl}/fhir/${tenant.id}` };
}

/** Express handler for everything under /fhir. */
export function fhirRouter(opts: RouterOptions) {
  const { deps } = opts;
  // host-based tenants: only when the deployment opts in (nothing is looked up otherwise)
  const mainHost = deps.config.tenantHostsEnabled ? new URL(deps.config.publicBaseUrl).hostname : undefined;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const { tenant, rest, baseUrl } = await resolve(opts, req, mainHost);
      res.locals.log = res.locals.log.child({ tenantId: tenant.id });
      const discovery = isDiscovery(rest);
      const cors = await applyCors(req, res, opts, tenant.id, discovery);
      if (req.method === 'OPTIONS') return preflight(req, res, cors);
      if (discovery && rest[0] === '.well-known') {
        // SMART: JSON "regardless of Accept headers"
        res.status(200).json(smartConfiguration(deps.config.publicBaseUrl, tenant.id));
        return;
      }
      if (!METHODS.has(req.method) && req.method !== 'HEAD') {
        throw new FhirError('not-allowed', `${req.method} is not a FHIR interaction`, { code: 'METHOD_NOT_ALLOWED', headers: { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE' } });
      }
      // Everything but metadata needs a token for this tenant's base (401 otherwise, another tenant's token included).
      const who = discovery ? undefined : await verified(opts, req, baseUrl, tenant.id);
      if (who?.clientId) {
        res.locals.log = res.locals.log.child({ clientId: who.clientId });
        if (cors && !(await opts.origins.forClient(who.clientId)).has(req.headers.origin!)) res.removeHeader('Access-Control-Allow-Origin');
      }
      const admitted = await admit(deps, {
        tenant,
        method: req.method === 'HEAD' ? 'GET' : req.method,
        path: rest,
        address: req.ip,
        peer: req.socket.remoteAddress,
        discovery,
        ...(who?.caller ? { role: who.caller.role, sub: who.caller.sub, clientId: who.caller.clientId } : {}),
      });
      for (const [k, v] of Object.entries(admitted)) res.setHeader(k, v);
      const params = queryParams(req);
      checkFormat(req, params);
      const agent = agentOf(req, who?.caller);
      const ctx: FhirContext = {
        deps,
        tenant,
        store: new TenantStore(deps.db, tenant.id, baseUrl, res.locals.signal as CancelSignal, deps.config.auditTrail ? { agent, requestId: res.locals.requestId } : null),
        agent,
        baseUrl,
        registry: await deps.searchParams.forTenant(tenant.id),
        requestId: res.locals.requestId,
        log: res.locals.log,
        // metadata is public: no interaction of it reads tenant data beyond the CapabilityStatement
        guard: who?.guard ?? DISCOVERY_GUARD,
        ...(who?.caller ? { caller: who.caller } : {}),
        ...(opts.subscriptions ? { subscriptions: opts.subscriptions } : {}),
        ...(opts.exports ? { exports: opts.exports } : {}),
      };
      send(res, params, await opts.dispatch(ctx, await fhirRequest(req, rest, params, deps.config.maxBodyBytes)));
    } catch (err) {
      next(err);
    }
  };
}

/** Who acts, as the audit trail names them: the token's user and client, its role, and the client's address. */
function agentOf(req: Request, caller: Caller | undefined): AuditAgent {
  const agent: AuditAgent = {};
  if (req.ip) agent.address = req.ip;
  if (!caller) return agent;
  agent.clientId = caller.clientId;
  agent.role = caller.role;
  if (caller.sub !== caller.clientId) agent.userSub = caller.sub;
  // break-glass (the grant a platform admin acts under, src/auth/break-glass.ts)
  const grant = breakGlassGrantOf(caller);
  if (grant) agent.purposeOfUse = breakGlassPurpose(grant);
  if (caller.fhirUser) agent.userRef = caller.fhirUser.replace(/^.*\/((?:Practitioner|PractitionerRole|Patient|RelatedPerson|Person)\/[^/]+)$/, '$1');
  return agent;
}

/**
 * The verified token; a refused one is audited (a rejected credential is a failed authentication, whoever tried it)
 * before the 401 goes back.
 */
async function verified(opts: RouterOptions, req: Request, baseUrl: string, tenantId: string) {
  try {
    return await opts.verifier.verify(req.headers.authorization, baseUrl, tenantId);
  } catch (err) {
    const e = toFhirError(err);
    await opts.deps.audit
      .record(tenantId, [{
        recorded: opts.deps.clock().toISOString(),
        category: 'token',
        subtype: 'token-rejected',
        action: 'E',
        outcome: outcomeOf(e.status),
        outcomeDesc: e.message,
        agent: agentOf(req, undefined),
        detail: { path: req.path.slice(0, 200) },
      }])
      .catch((auditErr) => opts.deps.log.error({ err: auditErr }, 'the audit record of a refused token could not be stored'));
    throw err;
  }
}

/** The guard of the unauthenticated discovery request (`metadata`): it may not touch any resource. */
const DISCOVERY_GUARD: Guard = {
  decide: () => ({ allow: false, denial: 'forbidden', reason: 'metadata needs no token, everything else does' }),
  forType: () => ({ allow: false, denial: 'forbidden', reason: 'metadata needs no token, everything else does' }),
};
