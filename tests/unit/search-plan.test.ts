// Query string -> SearchPlan, without HTTP or SQL (src/search/plan.ts, date-range.ts; search.html, REST.md §8-§10):
// OR-splitting and escapes, prefixes, implied precision, date ranges, modifiers, chains, _has, result parameters,
// and lenient/strict handling of unknown parameters.
import { describe, expect, it } from '@jest/globals';
import { FhirError } from '../../src/core/errors.js';
import { dateRange } from '../../src/search/date-range.js';
import { MAX_COUNT, planSearch, splitOr, type Criterion, type ParamCriterion, type SearchPlan } from '../../src/search/plan.js';
import { SearchParamRegistry } from '../../src/core/search-registry.js';

const registry = new SearchParamRegistry();

const plan = (type: string | string[], query: string, strict = false): SearchPlan =>
  planSearch(registry, type, { strict, params: [...new URLSearchParams(query)] as [string, string][] });
const only = (type: string, query: string): ParamCriterion => {
  const p = plan(type, query);
  expect(p.criteria).toHaveLength(1);
  expect(p.criteria[0].kind).toBe('param');
  return p.criteria[0] as ParamCriterion;
};
function failure(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    return err as FhirError;
  }
  throw new Error('expected a FhirError');
}

describe('splitOr (search.html#escaping)', () => {
  it.each([
    ['a,b', ['a', 'b']],
    ['a', ['a']],
    ['', ['']],
    ['a,,b', ['a', '', 'b']],
    ['a\\,b', ['a\\,b']],
    ['a\\\\,b', ['a\\\\', 'b']],
    ['a\\|b,c', ['a\\|b', 'c']],
    ['trailing\\', ['trailing\\']],
  ])('%s', (value, expected) => {
    expect(splitOr(value)).toEqual(expected);
  });
});

describe('dateRange (search.html#date): the instant range of a value by its precision', () => {
  it.each([
    ['2024', '2024-01-01T00:00:00.000Z', '2024-12-31T23:59:59.999Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['2023-02', '2023-02-01T00:00:00.000Z', '2023-02-28T23:59:59.999Z'],
    ['2024-12-31', '2024-12-31T00:00:00.000Z', '2024-12-31T23:59:59.999Z'],
    ['2024-01-31T23:59Z', '2024-01-31T23:59:00.000Z', '2024-01-31T23:59:59.999Z'],
    ['2024-01-31T23:59:59Z', '2024-01-31T23:59:59.000Z', '2024-01-31T23:59:59.999Z'],
    ['2024-01-31T23:59:59.5Z', '2024-01-31T23:59:59.500Z', '2024-01-31T23:59:59.500Z'],
    ['2024-01-31T20:30:00-05:00', '2024-02-01T01:30:00.000Z', '2024-02-01T01:30:00.999Z'],
    ['2024-02-01T01:00:00+01:00', '2024-02-01T00:00:00.000Z', '2024-02-01T00:00:00.999Z'],
    ['2024-01-31T10:00:00', '2024-01-31T10:00:00.000Z', '2024-01-31T10:00:00.999Z'],
  ])('%s', (value, low, high) => {
    expect(dateRange(value)).toEqual({ low, high });
  });

  it.each(['2024-13', '2023-02-29', '2024-04-31', '2024-01-00', '24', '2024-1-01', '2024/01/01', 'now', '', '2024-01-01T10', '2024-01-01 10:00'])('rejects %s', (value) => {
    expect(dateRange(value)).toBeUndefined();
  });

  // Month "00" becomes December of the year before (Date.UTC(year, -1, ...)); hours and minutes are not range-checked.
  it.each(['2024-00', '2024-00-15', '2024-01-01T24:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01T10:60:00Z', '2024-01-01T10:00:61Z', '2024-01-01T10:00:00+25:00'])('rejects %s', (value) => {
    expect(dateRange(value)).toBeUndefined();
  });
});

describe('prefixes and implied precision', () => {
  it('dates default to eq and carry the searched range', () => {
    expect(only('Patient', 'birthdate=2024-02').values[0]).toMatchObject({ prefix: 'eq', low: '2024-02-01T00:00:00.000Z', high: '2024-02-29T23:59:59.999Z' });
    expect(only('Patient', 'birthdate=sa2024').values[0]).toMatchObject({ prefix: 'sa', value: '2024' });
  });

  it.each([
    ['100', 99.5, 100.5],
    ['100.00', 99.995, 100.005],
    ['0.5', 0.45, 0.55],
    ['-3', -3.5, -2.5],
    // exponent form keeps one digit below its last significant one, as in the spec's 1e2 = [95, 105)
    ['5e-1', 0.495, 0.505],
  ])('number %s is [%d, %d)', (value, low, high) => {
    const v = only('RiskAssessment', `probability=${value}`).values[0];
    expect(v.numLow).toBeCloseTo(low, 10);
    expect(v.numHigh).toBeCloseTo(high, 10);
  });

  // REST.md §9: "1e2 ≡ [95, 105)" — one significant figure in the mantissa gives a window of ±5 at 10^2,
  // but plan.ts parseNumber widens it to ±0.5 × 10^2 = [50, 150).
  it('number 1e2 is [95, 105)', () => {
    const v = only('RiskAssessment', 'probability=1e2').values[0];
    expect([v.numLow, v.numHigh]).toEqual([95, 105]);
  });

  it('quantity: number|system|code and number||code', () => {
    expect(only('Observation', 'value-quantity=gt5.4|http://unitsofmeasure.org|mg').values[0]).toMatchObject({ prefix: 'gt', num: 5.4, system: 'http://unitsofmeasure.org', unit: 'mg' });
    const noSystem = only('Observation', 'value-quantity=5.4||mg').values[0];
    expect(noSystem.system).toBeUndefined();
    expect(noSystem.unit).toBe('mg');
  });

  it('rejects an unknown prefix and a non-number', () => {
    expect(failure(() => plan('Patient', 'birthdate=xx2024')).code).toBe('SEARCH_PARAM_INVALID');
    expect(failure(() => plan('RiskAssessment', 'probability=abc')).code).toBe('SEARCH_PARAM_INVALID');
    expect(failure(() => plan('Observation', 'value-quantity=5|a')).code).toBe('SEARCH_PARAM_INVALID');
  });
});

describe('token, reference and composite values', () => {
  it('token forms: code (any system), |code (no system), system|, system|code, escapes', () => {
    expect(only('Observation', 'code=x').values[0]).toMatchObject({ system: undefined, value: 'x' });
    expect(only('Observation', 'code=|x').values[0]).toMatchObject({ system: null, value: 'x' });
    expect(only('Observation', 'code=s|').values[0]).toMatchObject({ system: 's', value: '' });
    expect(only('Observation', 'code=s|x').values[0]).toMatchObject({ system: 's', value: 'x' });
    expect(only('Patient', 'identifier=a\\|b').values[0]).toMatchObject({ system: undefined, value: 'a|b' });
    expect(only('Patient', 'identifier=s|a\\,b').values[0]).toMatchObject({ system: 's', value: 'a,b' });
    expect(only('Observation', 'code=a,b').values.map((v) => v.value)).toEqual(['a', 'b']);
  });

  it(':of-type keeps the type system and joins type code and value', () => {
    const c = only('Patient', 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123');
    expect(c.modifier).toBe('of-type');
    expect(c.values[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', value: 'MR|123' });
  });

  it('reference :Type and :identifier modifiers', () => {
    expect(only('Observation', 'subject:Patient=1')).toMatchObject({ modifier: 'Patient', values: [{ value: '1' }] });
    expect(only('Observation', 'subject:identifier=urn:mrn|7').values[0]).toMatchObject({ system: 'urn:mrn', value: '7' });
  });

  it('composite values split into typed components', () => {
    const v = only('Observation', 'code-value-quantity=http://loinc.org|718-7$gt13').values[0];
    expect(v.parts).toHaveLength(2);
    expect(v.parts![0]).toMatchObject({ system: 'http://loinc.org', value: '718-7' });
    expect(v.parts![1]).toMatchObject({ prefix: 'gt', num: 13 });
    expect(failure(() => plan('Observation', 'code-value-quantity=718-7')).code).toBe('SEARCH_PARAM_INVALID');
  });

  it('composite: an escaped \\$ does not split components', () => {
    const v = only('Observation', 'code-value-string=http://loinc.org|5778-6$a\\$b').values[0];
    expect(v.parts![1].value).toBe('a$b');
  });

  it('string values are unescaped', () => {
    expect(only('Patient', 'family=a\\,b').values[0].value).toBe('a,b');
    expect(only('Patient', 'family=a\\\\b').values[0].value).toBe('a\\b');
    expect(only('Patient', 'family=a\\qb').values[0].value).toBe('a\\qb');
  });
});

describe('modifiers', () => {
  it('accepts the modifiers of each type', () => {
    for (const q of ['family:exact=x', 'family:contains=x', 'family:missing=true', 'gender:not=male', 'identifier:text=x', 'organization:missing=false', 'birthdate:missing=true']) {
      expect(plan('Patient', q, true).criteria).toHaveLength(1);
    }
    expect(plan('ValueSet', 'url:below=http://x', true).criteria).toHaveLength(1);
    expect(plan('ValueSet', 'url:above=http://x', true).criteria).toHaveLength(1);
  });

  it('rejects unknown modifiers and non-boolean :missing', () => {
    for (const q of ['family:foo=x', 'family:below=x', 'gender:exact=x', 'birthdate:exact=2024', 'url:contains=x']) {
      const type = q.startsWith('url') ? 'ValueSet' : 'Patient';
      const err = failure(() => plan(type, q));
      expect({ q, code: err.code, status: err.status }).toEqual({ q, code: 'SEARCH_MODIFIER_INVALID', status: 400 });
    }
    expect(failure(() => plan('Patient', 'family:missing=maybe')).code).toBe('SEARCH_PARAM_INVALID');
  });
});

describe('chains and _has', () => {
  const chain = (c: Criterion) => c as Extract<Criterion, { kind: 'chain' }>;

  it('typed, untyped and multi-level chains', () => {
    const typed = chain(plan('Observation', 'subject:Patient.name=x').criteria[0]);
    expect(typed).toMatchObject({ kind: 'chain', targetTypes: ['Patient'], next: { kind: 'param', name: 'name' } });
    const untyped = chain(plan('Observation', 'subject.name=x').criteria[0]);
    expect(untyped.targetTypes).toEqual(expect.arrayContaining(['Patient', 'Location']));
    expect(untyped.targetTypes).not.toContain('Group');
    const deep = chain(plan('DiagnosticReport', 'result.subject:Patient.organization.name=x').criteria[0]);
    expect(deep.targetTypes).toEqual(['Observation']);
    expect(chain(deep.next)).toMatchObject({ kind: 'chain', targetTypes: ['Patient'] });
    expect(chain(chain(deep.next).next)).toMatchObject({ kind: 'chain', targetTypes: ['Organization'], next: { kind: 'param', name: 'name' } });
  });

  it('rejects a chain on a non-reference and through a type the reference cannot target', () => {
    expect(failure(() => plan('Observation', 'code.name=x')).code).toBe('SEARCH_CHAIN_INVALID');
    expect(failure(() => plan('Observation', 'subject:Medication.code=x')).code).toBe('SEARCH_CHAIN_INVALID');
  });

  it('limits the chain depth', () => {
    expect(failure(() => plan('Patient', 'organization.partof.partof.partof.partof.partof.name=x')).code).toBe('SEARCH_CHAIN_TOO_DEEP');
  });

  it('parses nested _has and rejects malformed ones', () => {
    const has = plan('Patient', '_has:Observation:subject:_has:DiagnosticReport:result:status=final').criteria[0] as Extract<Criterion, { kind: 'has' }>;
    expect(has).toMatchObject({ kind: 'has', sourceType: 'Observation', refCode: 'subject', next: { kind: 'has', sourceType: 'DiagnosticReport', refCode: 'result' } });
    for (const q of ['_has:Observation:code=x', '_has:Widget:subject:code=x', '_has:Observation:status:code=x']) {
      expect(failure(() => plan('Patient', q)).code).toBe('SEARCH_HAS_INVALID');
    }
  });
});

describe('result parameters', () => {
  it('_count, _sort, _total, _summary, _elements', () => {
    const p = plan('Patient', '_count=7&_sort=-birthdate,family,_id&_total=accurate&_summary=true&_elements=name,gender');
    expect(p.count).toBe(7);
    expect(p.sort).toEqual([
      { code: 'birthdate', type: 'date', descending: true },
      { code: 'family', type: 'string', descending: false },
      { code: '_id', type: 'token', descending: false },
    ]);
    expect(p.total).toBe('accurate');
    expect(p.summary).toBe('true');
    expect(p.elements).toEqual(['name', 'gender']);
    expect(plan('Patient', `_count=${MAX_COUNT * 10}`).count).toBe(MAX_COUNT);
  });

  it('_include and _revinclude specs', () => {
    const p = plan('Observation', '_include=Observation:subject:Patient&_include:iterate=Patient:general-practitioner&_revinclude=Provenance:target&_include=*');
    expect(p.include).toEqual([
      { reverse: false, iterate: false, sourceType: 'Observation', code: 'subject', targetType: 'Patient' },
      { reverse: false, iterate: true, sourceType: 'Patient', code: 'general-practitioner', targetType: undefined },
      { reverse: true, iterate: false, sourceType: 'Provenance', code: 'target', targetType: undefined },
      { reverse: false, iterate: false, sourceType: '*', code: '*' },
    ]);
  });

  it('rejects bad result parameter values', () => {
    for (const q of ['_count=-1', '_count=x', '_total=some', '_summary=some', '_cursor=!!', '_include=Observation', '_include:deep=Observation:subject', '_offset=-2']) {
      expect({ q, code: failure(() => plan('Patient', q)).code }).toEqual({ q, code: 'SEARCH_PARAM_INVALID' });
    }
  });
});

describe('unknown parameters: lenient vs strict', () => {
  it('lenient: ignored, reported, and left out of applied', () => {
    const p = plan('Patient', 'family=x&shoe-size=1&_sort=shoe-size');
    expect(p.criteria).toHaveLength(1);
    expect(p.ignored).toEqual(['shoe-size', '_sort=shoe-size']);
    expect(p.applied).toEqual([['family', 'x']]);
  });

  it('strict: 400 naming the parameter', () => {
    const err = failure(() => plan('Patient', 'family=x&shoe-size=1', true));
    expect(err.code).toBe('SEARCH_PARAM_UNKNOWN');
    expect(err.status).toBe(400);
    expect(err.message).toContain('shoe-size');
  });

  it('system search accepts only parameters common to every listed type', () => {
    expect(plan(['Patient', 'Observation'], 'identifier=x&_tag=y&_lastUpdated=gt2020').criteria).toHaveLength(3);
    expect(plan(['Patient', 'Observation'], 'family=x').ignored).toEqual(['family']);
    expect(failure(() => plan(['Patient', 'Observation'], 'family=x', true)).code).toBe('SEARCH_PARAM_UNKNOWN');
  });

  // R4's _query is a token definition without an expression; every "_"-prefixed definition counts as supported.
  it('_query (no expression, not implemented) is unknown, not a criterion', () => {
    const p = plan('Patient', '_query=x');
    expect(p.criteria).toHaveLength(0);
    expect(p.ignored).toEqual(['_query']);
  });

  // REST.md §8: the self link lists only the parameters actually applied.
  it('an ignored _include spec is not listed as applied', () => {
    const p = plan('Observation', '_include=Observation:nonsense,Observation:subject');
    expect(p.applied).toEqual([['_include', 'Observation:subject']]);
  });
});
