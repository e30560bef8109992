// Parsing batch/transaction entries (http.html#transaction): shape checks and request URLs.
import type { FhirContext } from '../context.js';
import { isResourceType } from '../../core/definitions.js';
import { FhirError } from '../../core/errors.js';

export type EntryMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ParsedEntry {
  index: number;
  method: EntryMethod;
  url: string;
  type: string;
  id?: string;
  vid?: string;
  /** query string of a conditional or search URL */
  query?: string;
  fullUrl?: string;
  resource?: Record<string, unknown>;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export function entryError(index: number, message: string, code: string, kind: 'invalid' | 'not-found' = 'invalid'): FhirError {
  return new FhirError(kind, `Bundle.entry[${index}]: ${message}`, { code, expression: [`Bundle.entry[${index}]`] });
}

/** Checks the Bundle itself; returns its entries. */
export function checkBundle(body: unknown, maxEntries: number): { type: 'batch' | 'transaction'; entries: unknown[] } {
  if (!body || typeof body !== 'object' || (body as { resourceType?: unknown }).resourceType !== 'Bundle') {
    throw new FhirError('invalid', 'POST to the base URL expects a Bundle of type batch or transaction', { code: 'BUNDLE_EXPECTED', expression: ['resourceType'] });
  }
  const b = body as { type?: unknown; entry?: unknown };
  if (b.type !== 'batch' && b.type !== 'transaction') {
    throw new FhirError('invalid', `Bundle.type must be 'batch' or 'transaction' here, not ${JSON.stringify(b.type)}`, { code: 'BUNDLE_TYPE_INVALID', expression: ['Bundle.type'] });
  }
  const entries = b.entry === undefined ? [] : b.entry;
  if (!Array.isArray(entries)) throw new FhirError('invalid', 'Bundle.entry must be an array', { code: 'BUNDLE_ENTRY_INVALID', expression: ['Bundle.entry'] });
  if (entries.length > maxEntries) {
    throw new FhirError('too-large', `The Bundle has ${entries.length} entries; the limit is ${maxEntries}`, { code: 'BUNDLE_TOO_LARGE', expression: ['Bundle.entry'] });
  }
  return { type: b.type, entries };
}

/** Parses one entry's request; throws a FhirError naming the entry. */
export function parseEntry(ctx: FhirContext, raw: unknown, index: number): ParsedEntry {
  if (!raw || typeof raw !== 'object') throw entryError(index, 'not an object', 'BUNDLE_ENTRY_INVALID');
  const e = raw as { request?: Record<string, unknown>; resource?: unknown; fullUrl?: unknown };
  const req = e.request;
  if (!req || typeof req !== 'object') throw entryError(index, 'has no request (method and url are required)', 'BUNDLE_ENTRY_NO_REQUEST');
  const method = req.method;
  if (typeof method !== 'string' || !METHODS.has(method)) throw entryError(index, `request.method ${JSON.stringify(method)} is not one of GET, HEAD, POST, PUT, PATCH, DELETE`, 'BUNDLE_ENTRY_METHOD');
  if (typeof req.url !== 'string' || req.url === '') throw entryError(index, 'request.url is missing', 'BUNDLE_ENTRY_URL');
  let url = req.url;
  if (url.startsWith(ctx.baseUrl + '/')) url = url.slice(ctx.baseUrl.length + 1);
  else if (/^[a-z]+:/i.test(url)) throw entryError(index, `request.url ${JSON.stringify(url.slice(0, 200))} is not on this tenant's base`, 'BUNDLE_ENTRY_URL');
  url = url.replace(/^\/+/, '');
  const qi = url.indexOf('?');
  const path = qi >= 0 ? url.slice(0, qi) : url;
  const query = qi >= 0 ? url.slice(qi + 1) : undefined;
  const parts = path.split('/');
  const type = parts[0];
  if (!isResourceType(type)) throw entryError(index, `request.url names unknown resource type '${type.slice(0, 64)}'`, 'RESOURCE_TYPE_UNKNOWN');
  const out: ParsedEntry = { index, method: method as EntryMethod, url, type, query };
  if (parts.length >= 2) out.id = parts[1];
  if (parts.length === 4 && parts[2] === '_history') out.vid = parts[3];
  else if (parts.length > 2) throw entryError(index, `request.url ${JSON.stringify(url.slice(0, 200))} is not a supported interaction URL`, 'BUNDLE_ENTRY_URL');
  if (typeof e.fullUrl === 'string') out.fullUrl = e.fullUrl;
  if (e.resource !== undefined) {
    if (!e.resource || typeof e.resource !== 'object' || Array.isArray(e.resource)) throw entryError(index, 'resource must be an object', 'BUNDLE_ENTRY_INVALID');
    out.resource = e.resource as Record<string, unknown>;
  }
  for (const k of ['ifMatch', 'ifNoneExist', 'ifNoneMatch', 'ifModifiedSince'] as const) {
    if (typeof req[k] === 'string') out[k] = req[k] as string;
  }
  // ifNoneExist is the query part of a search URL; tolerate clients that send "Patient?identifier=..." or "?...".
  if (out.ifNoneExist !== undefined) out.ifNoneExist = stripSearchPrefix(out.ifNoneExist, type);
  if (out.vid !== undefined && method !== 'GET' && method !== 'HEAD') {
    throw entryError(index, `${method} entries cannot target a version (${JSON.stringify(url.slice(0, 200))})`, 'BUNDLE_ENTRY_URL');
  }
  if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && !out.resource) {
    throw entryError(index, `${method} entries must contain a resource`, 'BUNDLE_ENTRY_NO_RESOURCE');
  }
  if (method === 'POST' && (out.id !== undefined || query !== undefined)) throw entryError(index, 'POST entries must use the type URL (e.g. "Patient")', 'BUNDLE_ENTRY_URL');
  if ((method === 'PUT' || method === 'PATCH' || method === 'DELETE') && out.id === undefined && query === undefined) {
    throw entryError(index, `${method} entries need Type/id or a conditional Type?criteria URL`, 'BUNDLE_ENTRY_URL');
  }
  return out;
}

function stripSearchPrefix(query: string, type: string): string {
  if (query.startsWith('?')) return query.slice(1);
  if (query.startsWith(`${type}?`)) return query.slice(type.length + 1);
  return query;
}

/** Extracts the JSON Patch operations of a PATCH entry (a Binary with contentType application/json-patch+json). */
export function patchOperations(entry: ParsedEntry): unknown {
  const r = entry.resource!;
  if (r.resourceType === 'Parameters') {
    throw entryError(entry.index, 'FHIRPath Patch (Parameters) is not supported; send JSON Patch as a Binary with contentType application/json-patch+json', 'PATCH_FORMAT_UNSUPPORTED');
  }
  if (r.resourceType !== 'Binary' || r.contentType !== 'application/json-patch+json' || typeof r.data !== 'string') {
    throw entryError(entry.index, 'PATCH entries carry JSON Patch as a Binary resource with contentType application/json-patch+json and base64 data', 'PATCH_FORMAT_UNSUPPORTED');
  }
  try {
    return JSON.parse(Buffer.from(r.data, 'base64').toString('utf8'));
  } catch {
    throw entryError(entry.index, 'the Binary data is not base64-encoded JSON', 'PATCH_INVALID');
  }
}
