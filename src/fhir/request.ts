// A FHIR interaction as a plain request, whoever sent it: http/ builds one from an HTTP request, a batch or
// transaction builds one from each entry. The interaction table (interactions/index.ts) answers it with a FhirResult.
import type { AuditFacts } from '../core/audit.js';
import { FhirError } from '../core/errors.js';

export type FhirMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

/** The request headers FHIR gives meaning to (http.html#ops, #cond-read, #ccreate, #prefer). */
export interface RequestHeaders {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifNoneExist?: string;
  preferReturn?: PreferReturn;
  /** Prefer: handling=strict (search.html#errors) */
  preferStrict?: boolean;
  /** Prefer: respond-async (async.html; Bulk Data kick-off) */
  preferAsync?: boolean;
}

/** The body: bytes with their media type (HTTP), or a value already parsed (a bundle entry's resource). */
export interface RequestBody {
  contentType?: string;
  text?: string;
  value?: unknown;
}

export interface FhirRequest {
  /** HEAD is answered as GET (http/ drops the body). */
  method: FhirMethod;
  /** Decoded path segments below the tenant's base: ['Patient', '1', '_history', '2']. */
  path: string[];
  /** Query (and, for POST _search, form) parameters in order; repeats are ANDed. */
  params: [string, string][];
  headers: RequestHeaders;
  body?: RequestBody;
}

/** A successful FHIR answer; http/ turns it into a response, a bundle into an entry. `body` may be pre-serialized JSON. */
export interface FhirResult {
  status: number;
  body?: Record<string, unknown> | string;
  headers?: Record<string, string>;
  /** The version a write made: a bundle entry's etag, lastModified and location. */
  version?: { resourceType: string; id: string; versionId: number; lastUpdated: string };
  /** Prefer: return=OperationOutcome on a write: the outcome instead of the resource (the body of an HTTP answer). */
  outcome?: Record<string, unknown>;
  /** The body's media type when it is not FHIR JSON (Bulk Data manifest: application/json). */
  contentType?: string;
  /** A body streamed as it is (Bulk Data NDJSON files), with its media type in `contentType`. */
  stream?: NodeJS.ReadableStream;
  /** What the interaction touched, for its audit record (fhir/audit.ts); absent: what the path names. */
  audit?: AuditFacts;
}

/** Parses a Prefer header (http.html#prefer): return=..., handling=strict|lenient. */
export function parsePrefer(value: string | undefined): { return?: PreferReturn; strict?: boolean; async?: boolean } {
  const out: { return?: PreferReturn; strict?: boolean; async?: boolean } = {};
  for (const part of (value ?? '').split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) out.return = v;
    if (k === 'handling') out.strict = v === 'strict';
    if (k === 'respond-async') out.async = true;
  }
  return out;
}

/** The value of a single-valued parameter (the first one). */
export function param(req: FhirRequest, name: string): string | undefined {
  return req.params.find(([k]) => k === name)?.[1];
}

/** Parameters of a query string or form body; a NUL character cannot be stored or compared by PostgreSQL, so it is a 400. */
export function checkedParams(text: string): [string, string][] {
  const params = [...new URLSearchParams(text)] as [string, string][];
  for (const [k, v] of params) {
    if (k.includes('\u0000') || v.includes('\u0000')) {
      throw new FhirError('invalid', `Parameter '${k.replace(/\u0000/g, '\\0').slice(0, 64)}' contains a NUL character`, { code: 'PARAM_NUL_CHARACTER' });
    }
  }
  return params;
}
