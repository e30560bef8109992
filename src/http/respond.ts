// Writing FHIR results: media type, _format/_pretty, Prefer on writes, and every error as an OperationOutcome.
import type { NextFunction, Request, Response } from 'express';
import { FhirError } from '../core/errors.js';
import type { FhirResult } from '../fhir/request.js';
import type { Logger } from '../platform/log.js';
import { asFhirError } from '../store/db-errors.js';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Checks _format and Accept; throws 406 for formats this server does not produce (XML, Turtle). */
export function checkFormat(req: Request, params: [string, string][]): void {
  const fmt = params.find(([k]) => k === '_format')?.[1];
  if (fmt !== undefined) {
    if (!['json', 'application/json', 'application/fhir+json', 'application/json+fhir', 'text/json'].includes(fmt.split(';')[0].trim().toLowerCase())) {
      throw new FhirError('not-acceptable', `_format=${fmt.slice(0, 100)} is not supported; this server speaks JSON only`, { code: 'FORMAT_UNSUPPORTED' });
    }
    return;
  }
  const accept = req.headers.accept;
  if (!accept) return;
  if (!accept.split(',').some(acceptableRange)) {
    throw new FhirError('not-acceptable', `Accept ${JSON.stringify(accept.slice(0, 200))} cannot be met; this server produces application/fhir+json; fhirVersion=4.0`, { code: 'FORMAT_UNSUPPORTED' });
  }
}

/** One Accept media range we can answer: JSON or a wildcard, not refused with q=0, and R4 if a fhirVersion is named. */
function acceptableRange(range: string): boolean {
  const [type, ...params] = range.split(';').map((p) => p.trim().toLowerCase());
  if (!(type === '*/*' || type === 'application/*' || type.includes('json'))) return false;
  for (const p of params) {
    const [k, v = ''] = p.split('=').map((x) => x.trim().replace(/^"|"$/g, ''));
    if (k === 'q' && Number(v) === 0) return false;
    // http.html#version-parameter: R4 is fhirVersion=4.0 (4.0.1 is accepted as the same version).
    if (k === 'fhirversion' && v !== '4.0' && !v.startsWith('4.0.')) return false;
  }
  return true;
}

function pretty(params: [string, string][]): boolean {
  return params.some(([k, v]) => k === '_pretty' && v === 'true');
}

export function send(res: Response, params: [string, string][], result: FhirResult): void {
  const headers: Record<string, string | number> = { ...result.headers };
  // Prefer: return=OperationOutcome on a write answers with the outcome
  if (result.stream) {
    headers['Content-Type'] = result.contentType ?? FHIR_JSON;
    res.writeHead(result.status, headers);
    if (res.req.method === 'HEAD') {
      (result.stream as { destroy?: () => void }).destroy?.();
      res.end();
      return;
    }
    result.stream.on('error', () => res.destroy());
    result.stream.pipe(res);
    return;
  }
  const body = result.body ?? result.outcome;
  if (body === undefined || result.status === 304 || result.status === 204) {
    res.writeHead(result.status, headers).end();
    return;
  }
  let text = typeof body === 'string' ? body : JSON.stringify(body);
  if (pretty(params)) text = JSON.stringify(JSON.parse(text), null, 2);
  headers['Content-Type'] = result.contentType ?? FHIR_JSON;
  headers['Content-Length'] = Buffer.byteLength(text);
  // HEAD gets the headers only
  res.writeHead(result.status, headers).end(res.req.method === 'HEAD' ? undefined : text);
}

/** The one error middleware: FhirError -> its status; anything else -> 500, logged with its stack. */
export function errorHandler(rootLog: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    // Express/body errors that are not ours (e.g. malformed URI) are treated as bad requests.
    let f: FhirError;
    const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
    if (!(err instanceof FhirError) && status && status >= 400 && status < 500) {
      f = new FhirError('invalid', 'The request could not be understood', { code: 'BAD_REQUEST', cause: err });
    } else f = asFhirError(err);
    const log = (res.locals.log as Logger | undefined) ?? rootLog;
    if (f.kind === 'internal') log.error({ err, requestId: res.locals.requestId }, 'request failed');
    else log.debug({ code: f.code, status: f.status }, 'request rejected');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (f.kind === 'unauthenticated') res.setHeader('WWW-Authenticate', 'Bearer');
    for (const [k, v] of Object.entries(f.headers ?? {})) res.setHeader(k, v);
    res.status(f.status).setHeader('Content-Type', FHIR_JSON).send(JSON.stringify(f.toOutcome()));
  };
}
