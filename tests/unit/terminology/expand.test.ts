// The pure expansion engine (src/terminology/expand.ts): hierarchy from nesting and parent properties, filters,
// excludes and imports, three-valued membership, cycles.
import { describe, expect, it } from '@jest/globals';
import type { CodeSystem, ValueSet } from '@medplum/fhirtypes';
import { IndexedCodeSystem } from '../../../src/terminology/code-system.js';
import { checkMembership, expandValueSet, type TerminologySource } from '../../../src/terminology/expand.js';
import { FhirError } from '../../../src/core/errors.js';

const CS = 'http://example.org/cs';
const cs = new IndexedCodeSystem({
  resourceType: 'CodeSystem',
  url: CS,
  status: 'active',
  content: 'complete',
  concept: [
    { code: 'a', concept: [{ code: 'a1', display: 'First' }, { code: 'a2', property: [{ code: 'status', valueCode: 'retired' }] }] },
    { code: 'b', property: [{ code: 'parent', valueCode: 'a1' }] },
  ],
} as CodeSystem);
const fragment = new IndexedCodeSystem({ resourceType: 'CodeSystem', url: 'http://example.org/frag', status: 'active', content: 'fragment', concept: [{ code: 'x' }] } as CodeSystem);

function source(valueSets: ValueSet[] = []): TerminologySource {
  return {
    codeSystem: (url) => (url === CS ? cs : url === fragment.url ? fragment : undefined),
    valueSet: (url) => valueSets.find((v) => v.url === url),
  };
}
const vs = (compose: ValueSet['compose'], url?: string): ValueSet => ({ resourceType: 'ValueSet', status: 'active', ...(url ? { url } : {}), compose });
const codes = (v: ValueSet, src = source()) => expandValueSet(v, src).entries.map((e) => e.code);

describe('expansion', () => {
  it('follows nesting and parent properties for is-a', () => {
    expect(cs.isA('b', 'a')).toBe(true);
    expect(codes(vs({ include: [{ system: CS, filter: [{ property: 'concept', op: 'is-a', value: 'a1' }] }] }))).toEqual(['a1', 'b']);
    expect(codes(vs({ include: [{ system: CS, filter: [{ property: 'concept', op: 'generalizes', value: 'b' }] }] }))).toEqual(['a', 'a1', 'b']);
  });

  it('drops inactive codes when compose.inactive is false, and flags them otherwise', () => {
    expect(codes(vs({ include: [{ system: CS }], inactive: false }))).toEqual(['a', 'a1', 'b']);
    expect(expandValueSet(vs({ include: [{ system: CS }] }), source()).entries.find((e) => e.code === 'a2')?.inactive).toBe(true);
  });

  it('intersects an include with its imported value sets', () => {
    const imported = vs({ include: [{ system: CS, concept: [{ code: 'a1' }, { code: 'b' }] }] }, 'http://example.org/vs1');
    expect(codes(vs({ include: [{ system: CS, valueSet: ['http://example.org/vs1'], filter: [{ property: 'concept', op: 'is-a', value: 'a' }] }] }), source([imported]))).toEqual(['a1', 'b']);
  });

  it('refuses an import cycle', () => {
    const loop = vs({ include: [{ valueSet: ['http://example.org/loop'] }] }, 'http://example.org/loop');
    expect(() => expandValueSet(loop, source([loop]))).toThrow(FhirError);
  });
});

describe('membership', () => {
  it('is true, false, or undefined when a fragment does not hold the code', () => {
    const v = vs({ include: [{ system: CS, filter: [{ property: 'concept', op: 'descendent-of', value: 'a' }] }, { system: fragment.url }], exclude: [{ system: CS, concept: [{ code: 'a2' }] }] });
    expect(checkMembership(v, source(), CS, 'b').result).toBe(true);
    expect(checkMembership(v, source(), CS, 'a').result).toBe(false);
    expect(checkMembership(v, source(), CS, 'a2').result).toBe(false);
    expect(checkMembership(v, source(), fragment.url, 'x').result).toBe(true);
    expect(checkMembership(v, source(), fragment.url, 'y').result).toBeUndefined();
    expect(checkMembership(v, source(), 'http://other.org', 'b').result).toBe(false);
    expect(checkMembership(v, source(), undefined, 'a1')).toEqual({ result: true, system: CS });
  });
});
