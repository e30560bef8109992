// read and vread (http.html#read, #vread), with conditional read (If-None-Match, If-Modified-Since).
import type { Queryable } from '../../platform/db.js';
import { readCurrent, readVersion } from '../../store/resources.js';
import type { FhirContext, FhirResult, RequestHeaders } from '../context.js';
import { FhirError } from '../errors.js';
import { etag, parseETag } from '../etag.js';
import { assertInRegion, authorize, versionInRegion } from '../guard.js';
import { assertId } from '../ids.js';
import { limitResource } from '../subset.js';

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

/** Runs on the given transaction connection (bundles) or on a fresh tenant-bound one. */
export function onConnection<T>(ctx: FhirContext, q: Queryable | undefined, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return q ? fn(q) : ctx.deps.db.withTenant(ctx.tenant.id, fn, { signal: ctx.signal });
}

/** The stored JSON, cut down to the caller's element limit (lab technician's minimal Patient). */
function visibleBody(json: string, elements: string[] | undefined): string | Record<string, unknown> {
  return elements ? limitResource(JSON.parse(json) as Record<string, unknown>, elements) : json;
}

export async function readResource(ctx: FhirContext, type: string, id: string, h: RequestHeaders, q?: Queryable): Promise<FhirResult> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'read', resourceType: type, id });
  const restricted = !!(d?.compartment || d?.searchFilters);
  const row = await onConnection(ctx, q, async (c) => {
    const row = await readCurrent(c, ctx.tenant.id, type, id);
    // Under a patient/ or granular scope, a resource outside the region is as absent as a missing one.
    if (row && restricted) await assertInRegion(ctx, c, type, id, d);
    return row;
  });
  if (!row) throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  if (row.deleted) {
    throw new FhirError('gone', `${type}/${id} was deleted`, { code: 'RESOURCE_DELETED' });
  }
  const headers = headersFor(row.versionId, row.lastUpdated);
  if (notModified(h, row.versionId, row.lastUpdated)) return { status: 304, headers };
  return { status: 200, body: visibleBody(row.json!, d?.elements), headers };
}

export async function vreadResource(ctx: FhirContext, type: string, id: string, vid: string, q?: Queryable): Promise<FhirResult> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'vread', resourceType: type, id });
  if (!/^\d{1,9}$/.test(vid)) throw new FhirError('not-found', `${type}/${id} has no version '${vid.slice(0, 64)}'`, { code: 'VERSION_NOT_FOUND' });
  const row = await onConnection(ctx, q, async (c) => {
    // the current version (its index rows) must lie in the region; a resource deleted since is out of every region
    if (d?.compartment || d?.searchFilters) await assertInRegion(ctx, c, type, id, d);
    return readVersion(c, ctx.tenant.id, type, id, Number(vid));
  });
  if (!row) throw new FhirError('not-found', `${type}/${id} has no version ${vid}`, { code: 'VERSION_NOT_FOUND' });
  if (row.deleted) throw new FhirError('gone', `Version ${vid} of ${type}/${id} is a deletion`, { code: 'RESOURCE_DELETED' });
  // an old version is judged on its own content too: it may have been outside the region when it was current
  if (!versionInRegion(ctx, type, row.json, d)) throw new FhirError('not-found', `${type}/${id} has no version ${vid}`, { code: 'VERSION_NOT_FOUND' });
  return { status: 200, body: visibleBody(row.json!, d?.elements), headers: headersFor(row.versionId, row.lastUpdated) };
}
