// Request bodies as the FHIR layer reads them: media type (415), a guard against JSON nested absurdly deep or with
// huge arrays (one linear scan before JSON.parse, so hostile input cannot exhaust memory or stack), parsing (400).
// http/ reads the bytes (with the size limit); a bundle entry brings its resource already parsed.
import { FhirError } from '../core/errors.js';
import type { FhirRequest } from './request.js';

export const MAX_DEPTH = 100;
export const MAX_ARRAY_ITEMS = 100_000;

export type BodyKind = 'fhir-json' | 'json-patch' | 'form';

const FHIR_JSON = new Set(['application/fhir+json', 'application/json', 'application/json+fhir', 'text/json']);

/** Classifies the Content-Type header; throws 415 for anything we do not read. */
export function bodyKind(contentType: string | undefined, allowed: BodyKind[]): BodyKind {
  const [mime, ...params] = (contentType ?? '').split(';').map((p) => p.trim().toLowerCase());
  const version = params.find((p) => p.startsWith('fhirversion='))?.slice('fhirversion='.length).replace(/^"|"$/g, '');
  if (version !== undefined && version !== '4.0' && !version.startsWith('4.0.')) {
    throw new FhirError('unsupported-media', `fhirVersion=${version.slice(0, 20)} is not supported; this server speaks FHIR R4 (fhirVersion=4.0)`, { code: 'CONTENT_TYPE_UNSUPPORTED' });
  }
  let kind: BodyKind | undefined;
  if (FHIR_JSON.has(mime)) kind = 'fhir-json';
  else if (mime === 'application/json-patch+json') kind = 'json-patch';
  else if (mime === 'application/x-www-form-urlencoded') kind = 'form';
  if (!kind || !allowed.includes(kind)) {
    const expected = allowed.map((k) => (k === 'fhir-json' ? 'application/fhir+json' : k === 'json-patch' ? 'application/json-patch+json' : 'application/x-www-form-urlencoded')).join(' or ');
    throw new FhirError('unsupported-media', `Content-Type ${JSON.stringify(mime || '(none)')} is not supported here; send ${expected}`, { code: 'CONTENT_TYPE_UNSUPPORTED' });
  }
  return kind;
}

/** Linear pre-scan of JSON text: rejects nesting deeper than MAX_DEPTH or arrays longer than MAX_ARRAY_ITEMS. */
export function guardJson(text: string): void {
  let depth = 0;
  const counts: number[] = [];
  const arrays: boolean[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash escape
      else if (c === 34) inString = false;
      continue;
    }
    switch (c) {
      case 34:
        inString = true;
        break;
      case 123: // {
      case 91: // [
        depth++;
        if (depth > MAX_DEPTH) {
          throw new FhirError('invalid', `JSON nesting deeper than ${MAX_DEPTH} levels is not accepted`, { code: 'JSON_TOO_DEEP', issueType: 'too-costly' });
        }
        arrays.push(c === 91);
        counts.push(0);
        break;
      case 125:
      case 93:
        depth--;
        arrays.pop();
        counts.pop();
        break;
      case 44: // ,
        if (arrays[arrays.length - 1] && ++counts[counts.length - 1] >= MAX_ARRAY_ITEMS) {
          throw new FhirError('invalid', `JSON arrays longer than ${MAX_ARRAY_ITEMS} items are not accepted`, { code: 'JSON_ARRAY_TOO_LONG', issueType: 'too-costly' });
        }
        break;
      default:
        break;
    }
  }
}

/** Parses a JSON body after the guard; malformed JSON -> 400 with the parser's position. */
export function parseJsonBody(raw: string): unknown {
  // A UTF-8 byte order mark is legal before JSON text (RFC 8259 §8.1: parsers MAY ignore it); some clients send one.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.trim() === '') throw new FhirError('invalid', 'The request body is empty', { code: 'BODY_EMPTY' });
  guardJson(text);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FhirError('invalid', `Malformed JSON: ${(err as Error).message}`, { code: 'JSON_MALFORMED', issueType: 'structure' });
  }
}

/**
 * The request's body as one of `allowed` kinds: 415 for another media type, 400 when it is empty or not JSON. A body
 * that arrives parsed (a bundle entry's resource) is taken as it is.
 */
export function bodyOf(req: FhirRequest, allowed: BodyKind[] = ['fhir-json']): { kind: BodyKind; value: unknown } {
  const body = req.body;
  const kind = bodyKind(body?.contentType, allowed);
  if (body && 'value' in body && body.value !== undefined) return { kind, value: body.value };
  const text = body?.text ?? '';
  if (kind === 'form') return { kind, value: text };
  return { kind, value: parseJsonBody(text) };
}
