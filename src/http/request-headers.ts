// FHIR-relevant request headers: Prefer (return, handling), conditional headers.
import type { Request } from 'express';
import type { PreferReturn, RequestHeaders } from '../fhir/context.js';

export function parsePrefer(value: string | undefined): { return?: PreferReturn; strict?: boolean } {
  const out: { return?: PreferReturn; strict?: boolean } = {};
  for (const part of (value ?? '').split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) out.return = v;
    if (k === 'handling') out.strict = v === 'strict';
  }
  return out;
}

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function requestHeaders(req: Request): RequestHeaders {
  const prefer = parsePrefer(header(req, 'prefer'));
  return {
    ifMatch: header(req, 'if-match'),
    ifNoneMatch: header(req, 'if-none-match'),
    ifModifiedSince: header(req, 'if-modified-since'),
    ifNoneExist: header(req, 'if-none-exist'),
    preferReturn: prefer.return,
    preferStrict: prefer.strict,
  };
}
