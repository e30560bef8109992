// JSON Patch engine (RFC 6902) without HTTP: operations, failures, and that no path reaches a prototype.
import { describe, expect, it } from '@jest/globals';
import { FhirError } from '../../src/core/errors.js';
import { applyJsonPatch } from '../../src/fhir/json-patch.js';

const doc = () => ({ resourceType: 'Patient', id: 'p', name: [{ family: 'Ng', given: ['A', 'B'] }], active: true, 'a/b': 1, 'c~d': 2 });

function failure(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    return err as FhirError;
  }
  throw new Error('expected a FhirError');
}

describe('applyJsonPatch (RFC 6902 §4)', () => {
  it('adds, removes, replaces, moves, copies and tests, leaving the input untouched', () => {
    const input = doc();
    const out = applyJsonPatch(input, [
      { op: 'add', path: '/gender', value: 'female' },
      { op: 'add', path: '/name/0/given/-', value: 'C' },
      { op: 'add', path: '/name/0/given/0', value: 'Z' },
      { op: 'remove', path: '/active' },
      { op: 'replace', path: '/name/0/family', value: 'Ngo' },
      { op: 'copy', from: '/name/0', path: '/name/1' },
      { op: 'move', from: '/name/1/given', path: '/name/1/suffix' },
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/a~1b', value: 3 },
      { op: 'remove', path: '/c~0d' },
    ]);
    expect(out).toEqual({ resourceType: 'Patient', id: 'p', gender: 'female', 'a/b': 3, name: [{ family: 'Ngo', given: ['Z', 'A', 'B', 'C'] }, { family: 'Ngo', suffix: ['Z', 'A', 'B', 'C'] }] });
    expect(input).toEqual(doc());
  });

  it('replaces the whole document with path ""', () => {
    expect(applyJsonPatch(doc(), [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'p' } }])).toEqual({ resourceType: 'Patient', id: 'p' });
  });

  it('test compares structurally, regardless of key order', () => {
    expect(() => applyJsonPatch(doc(), [{ op: 'test', path: '/name/0', value: { given: ['A', 'B'], family: 'Ng' } }])).not.toThrow();
  });

  it('a failed test is 422 PATCH_TEST_FAILED, also for a missing location', () => {
    for (const op of [
      { op: 'test', path: '/active', value: false },
      { op: 'test', path: '/nothing', value: null },
      { op: 'test', path: '/name/7', value: {} },
    ]) {
      const f = failure(() => applyJsonPatch(doc(), [op]));
      expect([f.status, f.code, f.expression]).toEqual([422, 'PATCH_TEST_FAILED', ['[0]']]);
    }
  });

  it.each([
    ['not an array', { op: 'add', path: '/x', value: 1 }],
    ['unknown op', [{ op: 'merge', path: '/x' }]],
    ['path without slash', [{ op: 'add', path: 'x', value: 1 }]],
    ['missing value', [{ op: 'add', path: '/x' }]],
    ['missing from', [{ op: 'move', path: '/x' }]],
    ['missing parent', [{ op: 'add', path: '/a/b/c', value: 1 }]],
    ['remove missing', [{ op: 'remove', path: '/missing' }]],
    ['index past the end', [{ op: 'add', path: '/name/2', value: {} }]],
    ['leading zero index', [{ op: 'add', path: '/name/00', value: {} }]],
    ['remove "-"', [{ op: 'remove', path: '/name/-' }]],
    ['move into itself', [{ op: 'move', from: '/name', path: '/name/0' }]],
    ['remove the root', [{ op: 'remove', path: '' }]],
    ['non-object op', [42]],
    ['result not an object', [{ op: 'replace', path: '', value: [1] }]],
  ])('%s is 400 PATCH_INVALID', (_name, patch) => {
    const f = failure(() => applyJsonPatch(doc(), patch));
    expect([f.status, f.code]).toEqual([400, 'PATCH_INVALID']);
  });

  it('never walks into or writes a prototype', () => {
    for (const path of ['/__proto__/polluted', '/__proto__', '/constructor/prototype/polluted', '/name/__proto__/polluted', '/name/0/constructor/prototype/polluted']) {
      const f = failure(() => applyJsonPatch(doc(), [{ op: 'add', path, value: { polluted: true } }]));
      expect([path, f.code]).toEqual([path, 'PATCH_INVALID']);
    }
    failure(() => applyJsonPatch(doc(), [{ op: 'copy', from: '/constructor', path: '/x' }]));
    failure(() => applyJsonPatch(doc(), [{ op: 'move', from: '/__proto__', path: '/x' }]));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('treats an own "__proto__" key from JSON.parse as data, never as the prototype', () => {
    const parsed = JSON.parse('{"resourceType":"Patient","id":"p","__proto__":{"x":1}}') as Record<string, unknown>;
    const f = failure(() => applyJsonPatch(parsed, [{ op: 'add', path: '/__proto__/y', value: 2 }]));
    expect(f.code).toBe('PATCH_INVALID');
    expect(Object.prototype).not.toHaveProperty('y');
  });
});
