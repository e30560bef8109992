// Request input handling without a server: media types, the JSON guard, Prefer, ETags, Accept and the
// FhirError -> OperationOutcome mapping (http.html#mime-type, #return, #versioning; STYLE.md §3).
import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { ERROR_KINDS, FhirError, toFhirError } from '../../src/core/errors.js';
import { etag, parseETag } from '../../src/fhir/etag.js';
import { assertId } from '../../src/fhir/ids.js';
import { bodyKind, guardJson, MAX_ARRAY_ITEMS, MAX_DEPTH, parseJsonBody } from '../../src/fhir/body.js';
import { parsePrefer } from '../../src/fhir/request.js';
import { asFhirError } from '../../src/store/db-errors.js';
import { checkFormat } from '../../src/http/respond.js';

function failure(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    return err as FhirError;
  }
  throw new Error('expected a FhirError');
}

describe('bodyKind (415 for unsupported Content-Type)', () => {
  it('classifies FHIR JSON, JSON Patch and forms, ignoring parameters and case', () => {
    expect(bodyKind('application/fhir+json; charset=utf-8', ['fhir-json'])).toBe('fhir-json');
    expect(bodyKind('Application/JSON', ['fhir-json'])).toBe('fhir-json');
    expect(bodyKind('application/fhir+json; fhirVersion=4.0', ['fhir-json'])).toBe('fhir-json');
    expect(bodyKind('application/json-patch+json', ['json-patch'])).toBe('json-patch');
    expect(bodyKind('application/x-www-form-urlencoded', ['form'])).toBe('form');
  });

  it('rejects other types, types not allowed here, and other FHIR versions', () => {
    for (const [type, allowed] of [
      ['text/plain', ['fhir-json']],
      ['application/xml', ['fhir-json']],
      [undefined, ['fhir-json']],
      ['application/json-patch+json', ['fhir-json']],
      ['application/fhir+json', ['form']],
      ['application/fhir+json; fhirVersion=3.0', ['fhir-json']],
    ] as const) {
      const f = failure(() => bodyKind(type, [...allowed]));
      expect([type, f.status, f.code]).toEqual([type, 415, 'CONTENT_TYPE_UNSUPPORTED']);
    }
  });
});

describe('guardJson / parseJsonBody (hostile JSON is a 400, not a crash)', () => {
  it('accepts nesting up to MAX_DEPTH and arrays up to MAX_ARRAY_ITEMS', () => {
    expect(() => guardJson('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH))).not.toThrow();
    expect(() => guardJson(`[${Array(MAX_ARRAY_ITEMS).fill(0).join(',')}]`)).not.toThrow();
  });

  it('rejects one level deeper and one item more', () => {
    expect(failure(() => guardJson('['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1))).code).toBe('JSON_TOO_DEEP');
    expect(failure(() => guardJson(`[${Array(MAX_ARRAY_ITEMS + 1).fill(0).join(',')}]`)).code).toBe('JSON_ARRAY_TOO_LONG');
  });

  it('ignores brackets and commas inside strings, including escaped quotes', () => {
    const noisy = JSON.stringify({ s: '['.repeat(500) + '\\"' + ','.repeat(200_000) });
    expect(() => guardJson(noisy)).not.toThrow();
  });

  it('counts commas per array, not across nested arrays or objects', () => {
    const manySmall = `[${Array(1000).fill(`[${Array(200).fill(0).join(',')}]`).join(',')}]`;
    expect(() => guardJson(manySmall)).not.toThrow();
    const wideObject = `{${Array(MAX_ARRAY_ITEMS + 5).fill(0).map((_, i) => `"k${i}":0`).join(',')}}`;
    expect(() => guardJson(wideObject)).not.toThrow();
  });

  it('parses a 100000-deep document without touching the stack', () => {
    const f = failure(() => parseJsonBody('['.repeat(100_000) + ']'.repeat(100_000)));
    expect([f.status, f.code, f.issueType]).toEqual([400, 'JSON_TOO_DEEP', 'too-costly']);
  });

  it('maps malformed, empty and BOM-prefixed bodies', () => {
    expect(failure(() => parseJsonBody('{"a":')).code).toBe('JSON_MALFORMED');
    expect(failure(() => parseJsonBody('  ')).code).toBe('BODY_EMPTY');
    expect(parseJsonBody('\uFEFF{"a":1}')).toEqual({ a: 1 });
  });
});

describe('parsePrefer (http.html#return, search.html#errors)', () => {
  it('reads return and handling, in any order and with quotes', () => {
    expect(parsePrefer('return=minimal')).toEqual({ return: 'minimal' });
    expect(parsePrefer('handling=strict, return="OperationOutcome"')).toEqual({ return: 'OperationOutcome', strict: true });
    expect(parsePrefer('return=representation; handling=lenient')).toEqual({ return: 'representation', strict: false });
    expect(parsePrefer('return=everything')).toEqual({});
    expect(parsePrefer(undefined)).toEqual({});
  });
});

describe('ETags (http.html#versioning)', () => {
  it('formats weak ETags and parses W/"n", "n" and n', () => {
    expect(etag(3)).toBe('W/"3"');
    expect([parseETag('W/"3"'), parseETag('"4"'), parseETag('5'), parseETag(' W/"6" ')]).toEqual([3, 4, 5, 6]);
    for (const bad of ['W/"x"', '', 'W/', '"1"2"']) expect(failure(() => parseETag(bad)).code).toBe('ETAG_INVALID');
  });
});

describe('ids (http.html#general)', () => {
  it('accepts 1-64 of [A-Za-z0-9-.] and rejects the rest', () => {
    for (const ok of ['a', 'A-1.b', 'x'.repeat(64)]) expect(() => assertId(ok)).not.toThrow();
    for (const bad of ['', 'x'.repeat(65), 'a_b', 'a b', 'a/b', 'é']) expect(failure(() => assertId(bad)).code).toBe('ID_INVALID');
  });
});

describe('checkFormat (406 when Accept or _format cannot be met)', () => {
  const req = (accept?: string) => ({ headers: accept === undefined ? {} : { accept } }) as unknown as Request;

  it('accepts JSON, wildcards and R4 versions', () => {
    for (const accept of [undefined, '*/*', 'application/json', 'application/fhir+json; fhirVersion=4.0', 'text/html, */*;q=0.8', 'application/fhir+json;fhirVersion="4.0.1"']) {
      expect(() => checkFormat(req(accept), [])).not.toThrow();
    }
    expect(() => checkFormat(req('application/fhir+xml'), [['_format', 'json']])).not.toThrow();
  });

  it('refuses XML, Turtle, q=0 JSON and other FHIR versions', () => {
    for (const accept of ['application/fhir+xml', 'text/turtle', 'application/fhir+json;q=0', 'application/fhir+json; fhirVersion=3.0', 'text/html']) {
      expect([accept, failure(() => checkFormat(req(accept), [])).status]).toEqual([accept, 406]);
    }
    for (const fmt of ['xml', 'application/fhir+xml', 'ttl', 'html']) {
      expect(failure(() => checkFormat(req(), [['_format', fmt]])).code).toBe('FORMAT_UNSUPPORTED');
    }
  });
});

describe('FhirError -> OperationOutcome (STYLE.md §3)', () => {
  it('maps every kind to its status and issue type', () => {
    expect(new FhirError('not-allowed', 'x').status).toBe(405);
    expect(new FhirError('too-large', 'x').status).toBe(413);
    expect(new FhirError('unsupported-media', 'x').status).toBe(415);
    expect(new FhirError('not-acceptable', 'x').status).toBe(406);
    expect(new FhirError('precondition-failed', 'x').status).toBe(412);
    for (const [kind, { status, issueType }] of Object.entries(ERROR_KINDS)) {
      const f = new FhirError(kind as keyof typeof ERROR_KINDS, 'm', { code: 'C' });
      expect(f.status).toBe(status);
      expect(f.toOutcome()).toEqual({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: issueType, diagnostics: 'm', details: { coding: [{ system: 'urn:tenfhir:error-code', code: 'C' }], text: 'm' } }],
      });
    }
  });

  it('carries response headers (Allow on 405)', () => {
    expect(new FhirError('not-allowed', 'x', { headers: { Allow: 'GET' } }).headers).toEqual({ Allow: 'GET' });
  });

  it('turns anything else into a generic 500 without the original message', () => {
    const f = toFhirError(Object.assign(new Error('relation "resource" does not exist at character 15'), { code: '42P01' }));
    expect(f.status).toBe(500);
    expect(JSON.stringify(f.toOutcome())).not.toContain('relation');
    expect(asFhirError(Object.assign(new Error('x'), { code: '40001' })).status).toBe(409);
    expect(asFhirError(Object.assign(new Error('x'), { code: '57014' })).status).toBe(503);
    expect(asFhirError(Object.assign(new Error('duplicate key'), { code: '23505' })).status).toBe(409);
  });
});
