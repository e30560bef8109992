// Request bodies: size limit (413), media type (415), and a guard against JSON nested absurdly deep or with
// huge arrays, checked in one linear scan before JSON.parse so hostile input cannot exhaust memory or stack.
import type { Request } from 'express';
import { FhirError } from '../fhir/errors.js';

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

function tooLarge(message: string): FhirError {
  // The rest of an oversized body is not read: close the connection rather than drain it.
  return new FhirError('too-large', message, { code: 'BODY_TOO_LARGE', headers: { Connection: 'close' } });
}

/** Reads the raw body, enforcing the byte limit while streaming. */
export function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(`Request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: FhirError) => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        fail(tooLarge(`Request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => fail(new FhirError('invalid', 'The request body could not be read', { code: 'BODY_READ_FAILED', cause: err })));
    // A client that goes away mid-body must not leave this promise (and its chunks) pending forever.
    req.on('close', () => fail(new FhirError('invalid', 'The request body ended early', { code: 'BODY_READ_FAILED' })));
  });
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
