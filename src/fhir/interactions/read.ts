// read and vread (http.html#read, #vread), with conditional read (If-None-Match, If-Modified-Since) and _summary /
// _elements (search.html#summary), then the caller's element limit.
import { FhirError } from '../../core/errors.js';
import { factsOf } from '../audit.js';
import type { TenantSession } from '../../store/session.js';
import type { FhirContext } from '../context.js';
import { etag, parseETag } from '../etag.js';
import { assertInRegion, authorize, versionInRegion } from '../guard.js';
import { assertId } from '../ids.js';
import { param, type FhirRequest, type FhirResult, type RequestHeaders } from '../request.js';
import { shapeResource } from '../subset.js';

function headersFor(versionId: number, lastUpdated: Date): Record<string, string> {
  return { ETag: etag(versionId), 'Last-Modified': lastUpdated.toUTCString() };
}

function notModified(h: RequestHeaders, versionId: number, lastUpdated: Date): boolean {
  if (h.ifNoneMatch !== undefined) {
    // An entity tag we cannot parse matches nothing (RFC 9110 §13.1.2): serve the resource rather than fail.
    return h.ifNoneMatch.split(',').some((v) => v.trim() === '*' || (/^\s*(?:W\/)?"?\d+"?\s*$/.test(v) && parseETag(v) === versionId));
  }
  if (h.ifModifiedSince !== undefined) {
    const since = Date.parse(h.ifModifiedSince);
    // HTTP dates have second precision
    if (!Number.isNaN(since)) return Math.floor(lastUpdated.getTime() / 1000) * 1000 <= since;
  }
  return false;
}

/** Runs on the given session (a transaction's, in bundles) or on a fresh connection bound to the tenant. */
export function onSession<T>(ctx: FhirContext, s: TenantSession | undefined, fn: (s: TenantSession) => Promise<T>): Promise<T> {
  return s ? fn(s) : ctx.store.read(fn);
}

/** _summary / _elements asked of a single resource (none: {}); `_summary=count` belongs to searches. */
function askedShape(req: FhirRequest | undefined): { summary?: string; elements?: string[] } {
  const summary = req && param(req, '_summary');
  const elements = req && param(req, '_elements');
  if ((!summary || summary === 'false') && !elements) return {};
  if (summary === 'count') throw new FhirError('invalid', '_summary=count applies to searches only', { code: 'SUMMARY_INVALID' });
  return { summary, elements: elements?.split(',').map((x) => x.trim()).filter(Boolean) };
}

/** The stored JSON as asked and as the caller may see it: _summary/_elements, then its element limit (shapeResource). */
function visibleBody(json: string, req: FhirRequest | undefined, limit: string[] | undefined): string | Record<string, unknown> {
  const asked = askedShape(req);
  if (!asked.summary && !asked.elements && !limit) return json;
  return shapeResource(JSON.parse(json) as Record<string, unknown>, asked.summary, asked.elements, limit);
}

/** A read; `req` brings its conditional headers and _summary/_elements (none: the whole resource, unconditionally). */
export async function readResource(ctx: FhirContext, type: string, id: string, req?: FhirRequest, s?: TenantSession): Promise<FhirResult> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'read', resourceType: type, id });
  askedShape(req); // a bad _summary fails before anything is read (and recorded as read)
  const restricted = !!(d.compartment || d.searchFilters);
  const row = await onSession(ctx, s, async (c) => {
    const row = await c.readCurrent(type, id);
    // Under a patient/ or granular scope, a resource outside the region is as absent as a missing one.
    if (row && restricted) await assertInRegion(ctx, c, type, id, d);
    return row;
  });
  if (!row) throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  if (row.deleted) {
    throw new FhirError('gone', `${type}/${id} was deleted`, { code: 'RESOURCE_DELETED' });
  }
  const headers = headersFor(row.versionId, row.lastUpdated);
  if (notModified(req?.headers ?? {}, row.versionId, row.lastUpdated)) {
    return { status: 304, headers, audit: factsOf([row]) };
  }
  return { status: 200, body: visibleBody(row.json!, req, d.elements), headers, audit: factsOf([row]) };
}

async function vreadResource(ctx: FhirContext, req: FhirRequest, type: string, id: string, vid: string, s?: TenantSession): Promise<FhirResult> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'vread', resourceType: type, id });
  if (!/^\d{1,9}$/.test(vid)) throw new FhirError('not-found', `${type}/${id} has no version '${vid.slice(0, 64)}'`, { code: 'VERSION_NOT_FOUND' });
  const row = await onSession(ctx, s, async (c) => {
    // the current version (its index rows) must lie in the region; a resource deleted since is out of every region
    if (d.compartment || d.searchFilters) await assertInRegion(ctx, c, type, id, d);
    return c.readVersion(type, id, Number(vid));
  });
  if (!row) throw new FhirError('not-found', `${type}/${id} has no version ${vid}`, { code: 'VERSION_NOT_FOUND' });
  if (row.deleted) throw new FhirError('gone', `Version ${vid} of ${type}/${id} is a deletion`, { code: 'RESOURCE_DELETED' });
  // an old version is judged on its own content too: it may have been outside the region when it was current
  if (!versionInRegion(ctx, type, row.json, d)) throw new FhirError('not-found', `${type}/${id} has no version ${vid}`, { code: 'VERSION_NOT_FOUND' });
  return { status: 200, body: visibleBody(row.json!, req, d.elements), headers: headersFor(row.versionId, row.lastUpdated), audit: factsOf([row]) };
}

/** GET [type]/[id] */
export async function read(ctx: FhirContext, req: FhirRequest, type: string, id: string, s?: TenantSession): Promise<FhirResult> {
  return readResource(ctx, type, id, req, s);
}

/** GET [type]/[id]/_history/[vid] */
export async function vread(ctx: FhirContext, req: FhirRequest, type: string, id: string, vid: string, s?: TenantSession): Promise<FhirResult> {
  return vreadResource(ctx, req, type, id, vid, s);
}
