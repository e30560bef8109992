// The pure half of terminology-backed search (src/search/plan.ts, extract.ts; search.html#token, #quantity): token
// :in / :not-in / :below / :above collected as requests, then planned as plain token criteria over the resolved codes
// (capped), their malformed values refused; UCUM quantities searched and indexed in canonical units as well.
import { describe, expect, it } from '@jest/globals';
import { FhirError } from '../../src/core/errors.js';
import { SearchParamRegistry } from '../../src/core/search-registry.js';
import { canonicalCode, extractIndexRows, UCUM_CANONICAL_SYSTEM } from '../../src/search/extract.js';
import { criterionHolds } from '../../src/export/criteria.js';
import { codeSetKey, MAX_CODE_SET, planSearch, type CodeSetRequest, type ParamCriterion, type PlanOptions, type TokenCode } from '../../src/search/plan.js';

const registry = new SearchParamRegistry();
const UCUM = 'http://unitsofmeasure.org';
const CS = 'http://lab.example.org/cs';

const params = (query: string) => [...new URLSearchParams(query)] as [string, string][];
const plan = (type: string, query: string, extra: Partial<PlanOptions> = {}) => planSearch(registry, type, { strict: true, params: params(query), ...extra });
const first = (type: string, query: string, extra: Partial<PlanOptions> = {}) => plan(type, query, extra).criteria[0] as ParamCriterion;

function failure(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    return err as FhirError;
  }
  throw new Error('expected a FhirError');
}

describe('token :in / :not-in / :below / :above', () => {
  it('a first pass collects what to resolve (chains and _has included), with the parameter as written', () => {
    const requests: CodeSetRequest[] = [];
    const q = `code:in=${encodeURIComponent('http://x.org/vs')},ValueSet/v1&code:below=${encodeURIComponent(`${CS}|chem`)}&_has:Observation:subject:code:not-in=ValueSet/v2`;
    planSearch(registry, 'Observation', { strict: true, params: params(q), codeSets: new Map(), codeSetRequests: requests });
    expect(requests).toEqual([
      { kind: 'in', value: 'http://x.org/vs', param: 'code:in' },
      { kind: 'in', value: 'ValueSet/v1', param: 'code:in' },
      { kind: 'below', value: `${CS}|chem`, system: CS, code: 'chem', param: 'code:below' },
      { kind: 'in', value: 'ValueSet/v2', param: '_has:Observation:subject:code:not-in' },
    ]);
  });

  it('with the codes resolved: a plain token criterion (with system, and by code alone for code-typed elements)', () => {
    const codeSets = new Map<string, TokenCode[]>([[codeSetKey({ kind: 'in', value: 'ValueSet/v1' }), [{ system: CS, code: 'a' }, { system: CS, code: 'b' }]]]);
    const c = first('Observation', 'code:in=ValueSet/v1', { codeSets });
    expect(c.modifier).toBeUndefined();
    expect(c.values.map((v) => [v.system, v.value])).toEqual([[CS, 'a'], [CS, 'b'], [null, 'a'], [null, 'b']]);
    expect(first('Observation', 'code:not-in=ValueSet/v1', { codeSets }).modifier).toBe('not');
    // the self link keeps what the client wrote
    expect(plan('Observation', 'code:in=ValueSet/v1', { codeSets }).applied).toEqual([['code:in', 'ValueSet/v1']]);
  });

  it('an empty value set: :in matches nothing, :not-in everything', () => {
    const codeSets = new Map<string, TokenCode[]>([['in ValueSet/empty', []]]);
    expect(first('Observation', 'code:in=ValueSet/empty', { codeSets })).toMatchObject({ def: { code: '_id' }, values: [] });
    expect(first('Observation', 'code:not-in=ValueSet/empty', { codeSets })).toMatchObject({ def: { code: '_id' }, modifier: 'not', values: [] });
  });

  it(`more than ${MAX_CODE_SET} codes in one parameter is refused`, () => {
    const many = (n: number, p: string) => Array.from({ length: n }, (_, i) => ({ system: CS, code: `${p}${i}` }));
    const codeSets = new Map<string, TokenCode[]>([
      ['in ValueSet/a', many(600, 'a')],
      ['in ValueSet/b', many(600, 'b')],
    ]);
    expect(first('Observation', 'code:in=ValueSet/a', { codeSets }).values).toHaveLength(1200);
    const err = failure(() => plan('Observation', 'code:in=ValueSet/a,ValueSet/b', { codeSets }));
    expect([err.status, err.code, err.expression]).toEqual([400, 'SEARCH_EXPANSION_TOO_LARGE', ['code:in']]);
  });

  it('refuses malformed values, naming the parameter', () => {
    const requests: CodeSetRequest[] = [];
    const opts = { codeSets: new Map(), codeSetRequests: requests };
    for (const [q, code, param] of [
      ['code:below=chem', 'SEARCH_TOKEN_SYSTEM_REQUIRED', 'code:below'],
      ['code:above=|chem', 'SEARCH_TOKEN_SYSTEM_REQUIRED', 'code:above'],
      [`code:below=${encodeURIComponent(`${CS}|`)}`, 'SEARCH_TOKEN_SYSTEM_REQUIRED', 'code:below'],
      ['code:in=Patient/1', 'SEARCH_VALUESET_INVALID', 'code:in'],
      ['code:not-in=', 'SEARCH_VALUESET_INVALID', 'code:not-in'],
    ]) {
      const err = failure(() => plan('Observation', q, opts));
      expect([q, err.status, err.code, err.expression]).toEqual([q, 400, code, [param]]);
    }
  });

  it('where nothing resolves them (subscription criteria, export filters), they are refused', () => {
    const err = failure(() => plan('Observation', 'code:in=ValueSet/v1'));
    expect([err.status, err.code]).toEqual([400, 'SEARCH_MODIFIER_UNSUPPORTED']);
  });

  it('stay unknown modifiers on other types; uri :below is unchanged', () => {
    expect(failure(() => plan('Observation', 'date:in=ValueSet/v1')).code).toBe('SEARCH_MODIFIER_INVALID');
    expect(first('ValueSet', 'url:below=http://x.org/')).toMatchObject({ modifier: 'below', values: [{ value: 'http://x.org/' }] });
  });
});

describe('UCUM quantity search values', () => {
  it('a UCUM unit carries its canonical value and precision range', () => {
    const v = first('Observation', `value-quantity=100|${UCUM}|mg/dL`).values[0];
    expect(v.canonical).toMatchObject({ prefix: 'eq', num: 1000, numLow: 995, numHigh: 1005, system: UCUM_CANONICAL_SYSTEM, unit: 'g.m-3' });
    expect(first('Observation', 'value-quantity=gt1||g/L').values[0].canonical).toMatchObject({ prefix: 'gt', num: 1000, unit: 'g.m-3' });
  });

  it('no canonical form for other systems, non-UCUM units, no unit, and ap on an offset scale', () => {
    expect(first('Observation', 'value-quantity=100|http://other.org|mg/dL').values[0].canonical).toBeUndefined();
    expect(first('Observation', 'value-quantity=100||tablets').values[0].canonical).toBeUndefined();
    expect(first('Observation', 'value-quantity=100').values[0].canonical).toBeUndefined();
    expect(first('Observation', `value-quantity=ap37|${UCUM}|Cel`).values[0].canonical).toBeUndefined();
    expect(first('Observation', `value-quantity=37|${UCUM}|Cel`).values[0].canonical).toMatchObject({ num: 310.15, unit: 'K' });
  });

  it('composites ending in a quantity carry the canonical form of their last part', () => {
    const v = first('Observation', `code-value-quantity=http://loinc.org|2345-7$100|${UCUM}|mg/dL`).values[0];
    expect(v.canonical?.parts?.[0]).toMatchObject({ system: 'http://loinc.org', value: '2345-7' });
    expect(v.canonical?.parts?.[1]).toMatchObject({ num: 1000, unit: 'g.m-3', system: UCUM_CANONICAL_SYSTEM });
  });
});

describe('UCUM quantity index rows', () => {
  const rows = (valueQuantity: Record<string, unknown>) =>
    extractIndexRows(registry, { resourceType: 'Observation', id: 'o', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, valueQuantity });

  it('a UCUM quantity gets a canonical row beside the rows as written', () => {
    const r = rows({ value: 1, unit: 'g/L', system: UCUM, code: 'g/L' });
    expect(r.number.filter(([c]) => c === 'value-quantity')).toEqual([['value-quantity', 1, UCUM, 'g/L']]);
    expect(r.number.filter(([c]) => c === canonicalCode('value-quantity'))).toEqual([['value-quantity:canonical', 1000, UCUM_CANONICAL_SYSTEM, 'g.m-3']]);
    expect(r.composite.filter(([c]) => c === 'code-value-quantity:canonical')).toEqual([['code-value-quantity:canonical', 'http://loinc.org', '2345-7', UCUM_CANONICAL_SYSTEM, 'g.m-3', 1000, null, null]]);
  });

  it('none for other systems or units that are not UCUM', () => {
    expect(rows({ value: 1, unit: 'g/L' }).number.some(([c]) => c.endsWith(':canonical'))).toBe(false);
    expect(rows({ value: 1, system: UCUM, code: 'not a unit' }).number.some(([c]) => c.endsWith(':canonical'))).toBe(false);
    expect(rows({ value: 1, system: 'http://other.org', code: 'g/L' }).composite.some(([c]) => c.endsWith(':canonical'))).toBe(false);
  });
});

describe('the in-memory matcher (Bulk _typeFilter on versions, src/export/criteria.ts) agrees with the SQL', () => {
  const obs = (value: number, unit: string) => ({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' }, valueQuantity: { value, unit, system: UCUM, code: unit } });
  const holds = (resource: Record<string, unknown>, query: string) => {
    const c = first('Observation', query);
    return criterionHolds(c, resource, extractIndexRows(registry, resource), 'http://h/fhir/t');
  };

  it('compares a UCUM quantity in canonical units, precision range included', () => {
    expect(holds(obs(1, 'g/L'), `value-quantity=100|${UCUM}|mg/dL`)).toBe(true);
    expect(holds(obs(1.1, 'g/L'), `value-quantity=100|${UCUM}|mg/dL`)).toBe(false);
    expect(holds(obs(1.1, 'g/L'), `value-quantity=gt100|${UCUM}|mg/dL`)).toBe(true);
    expect(holds(obs(5.4, 'mg/dL'), `value-quantity=lt13|${UCUM}|g/dL`)).toBe(true);
    // a unit of another kind never compares equal
    expect(holds(obs(1, 'mmol/L'), `value-quantity=1|${UCUM}|g/L`)).toBe(false);
  });
});
