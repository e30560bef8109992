// SMART scope arithmetic (scopes-and-launch-context.html): v1/v2 grammar, granular filters, invalid scopes,
// intersections (requested ∩ client-allowed ∩ role ceiling) and rendering back to the token's `scope`.
import { describe, expect, it } from '@jest/globals';
import {
  effectiveScopes,
  intersectScope,
  intersectScopes,
  normalizeScopes,
  OTHER_SCOPES,
  parseScope,
  parseScopes,
  renderScope,
  renderScopes,
  type ResourceScope,
  type Scope,
} from '../../src/auth/scopes.js';

const LAB = 'category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
const VITALS = 'category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';

function one(raw: string): ResourceScope {
  const s = parseScope(raw);
  if ('reason' in s || s.kind !== 'resource') throw new Error(`expected a resource scope from ${raw}`);
  return s;
}

function scopes(str: string): Scope[] {
  const { scopes: out, rejected } = parseScopes(str);
  expect(rejected).toEqual([]);
  return out;
}

const render = (s: Scope[]) => renderScopes(s);

describe('parseScopes: SMART v2 grammar', () => {
  it('parses context, type and letters', () => {
    expect(one('patient/Observation.rs')).toEqual({ kind: 'resource', context: 'patient', resourceType: 'Observation', letters: 'rs', params: [] });
    expect(one('user/*.cruds')).toMatchObject({ context: 'user', resourceType: '*', letters: 'cruds' });
    expect(one('system/Patient.c')).toMatchObject({ context: 'system', resourceType: 'Patient', letters: 'c' });
    expect(one('user/Encounter.crus').letters).toBe('crus');
  });

  it('accepts every in-order subset of cruds', () => {
    for (let mask = 1; mask < 32; mask++) {
      const letters = [...'cruds'].filter((_, i) => mask & (1 << i)).join('');
      expect(one(`user/Observation.${letters}`).letters).toBe(letters);
    }
  });

  it('parses granular filters into name/value pairs (AND-ed), collapsing duplicates', () => {
    expect(one(`patient/Observation.rs?${LAB}`).params).toEqual([['category', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory']]);
    expect(one(`user/Observation.rs?${LAB}&status=final&${LAB}`).params).toEqual([
      ['category', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory'],
      ['status', 'final'],
    ]);
    expect(one('user/Condition.rs?code:in=http://example.org/vs').params).toEqual([['code:in', 'http://example.org/vs']]);
  });

  it('parses the context and identity scopes', () => {
    const { scopes: out, rejected } = parseScopes(OTHER_SCOPES.join(' '));
    expect(rejected).toEqual([]);
    expect(out).toEqual(OTHER_SCOPES.map((name) => ({ kind: 'other', name })));
  });

  it('splits on any whitespace, ignores empty input and collapses duplicates', () => {
    expect(parseScopes(undefined)).toEqual({ scopes: [], rejected: [] });
    expect(parseScopes('  openid\tpatient/*.rs\n patient/*.rs openid ').scopes).toHaveLength(2);
  });
});

describe('parseScopes: SMART v1 scopes mapped to v2', () => {
  it.each([
    ['patient/*.read', 'patient', '*', 'rs'],
    ['user/Observation.write', 'user', 'Observation', 'cud'],
    ['user/*.*', 'user', '*', 'cruds'],
    ['system/*.read', 'system', '*', 'rs'],
  ])('%s -> .%s', (raw, context, resourceType, letters) => {
    expect(one(raw)).toEqual({ kind: 'resource', context, resourceType, letters, params: [], v1: true });
  });

  it('renders them back in v1 form', () => {
    for (const raw of ['patient/*.read', 'user/Observation.write', 'user/*.*']) expect(renderScope(one(raw))).toBe(raw);
  });
});

describe('parseScopes: invalid scopes are ignored with a reason', () => {
  it.each([
    ['patient/Observation.dus', /in that order/],
    ['patient/Observation.sr', /in that order/],
    ['patient/Observation.rr', /in that order/],
    ['patient/Observation.rx', /unknown interaction letter 'x'/],
    ['patient/Observation.', /no interactions/],
    ['patient/Observation.readwrite', /unknown interaction letter/],
    ['foo/Observation.rs', /unknown scope context 'foo'/],
    ['patient/observation.rs', /not a FHIR resource type/],
    [`patient/*.rs?${LAB}`, /concrete resource type/],
    [`patient/Observation.read?${LAB}`, /v1 scopes .* take no query/],
    ['patient/Observation.rs?', /empty query/],
    ['patient/Observation.rs?category', /not name=value/],
    ['patient/Observation.rs?=x', /not name=value/],
    ['patient/Observation', /not a SMART resource scope/],
    ['email', /not a SMART resource scope/],
    ['launch/imagingstudy', /not a SMART resource scope/],
  ])('%s', (raw, reason) => {
    const { scopes: out, rejected } = parseScopes(`openid ${raw} patient/Patient.r`);
    expect(rejected).toEqual([{ scope: raw, reason: expect.stringMatching(reason) }]);
    expect(out.map(renderScope)).toEqual(['openid', 'patient/Patient.r']);
  });

  it('checks type names with the supplied predicate', () => {
    const isResourceType = (t: string) => ['Patient', 'Observation'].includes(t);
    expect(parseScopes('user/Patient.rs user/Foo.rs', { isResourceType }).rejected).toEqual([{ scope: 'user/Foo.rs', reason: "'Foo' is not a FHIR resource type" }]);
    expect(parseScope('user/toString.read')).toEqual({ scope: 'user/toString.read', reason: "'toString' is not a FHIR resource type" });
    expect(parseScope('user/Patient.toString')).toMatchObject({ reason: expect.stringMatching(/unknown interaction letter 't'/) });
  });
});

describe('intersectScope', () => {
  const x = (a: string, b: string) => {
    const z = intersectScope(one(a), one(b));
    return z && renderScope(z);
  };

  it('narrows the type and the letters', () => {
    expect(x('user/*.cruds', 'user/Observation.rs')).toBe('user/Observation.rs');
    expect(x('user/Observation.rs', 'user/*.cruds')).toBe('user/Observation.rs');
    expect(x('user/*.crus', 'user/*.rds')).toBe('user/*.rs');
    expect(x('user/Observation.c', 'user/Observation.rs')).toBeUndefined();
    expect(x('user/Observation.rs', 'user/Patient.rs')).toBeUndefined();
  });

  it('treats patient/ as user/ narrowed to a patient; system/ meets only system/', () => {
    expect(x('patient/*.rs', 'user/Observation.crus')).toBe('patient/Observation.rs');
    expect(x('user/Observation.rs', 'patient/*.cruds')).toBe('patient/Observation.rs');
    expect(x('system/*.rs', 'user/*.rs')).toBeUndefined();
    expect(x('patient/*.rs', 'system/*.rs')).toBeUndefined();
    expect(x('system/Patient.rs', 'system/*.cruds')).toBe('system/Patient.rs');
  });

  it('keeps granular filters: granular ∩ broader = granular, granular ∩ granular = both AND-ed', () => {
    expect(x(`user/Observation.rs?${LAB}`, 'user/*.cruds')).toBe(`user/Observation.rs?${LAB}`);
    expect(x('user/*.rs', `user/Observation.crus?${LAB}`)).toBe(`user/Observation.rs?${LAB}`);
    expect(x(`user/Observation.rs?${LAB}`, `user/Observation.rs?${VITALS}`)).toBe(`user/Observation.rs?${LAB}&${VITALS}`);
    expect(x(`user/Observation.rs?${LAB}`, `user/Observation.rs?${LAB}`)).toBe(`user/Observation.rs?${LAB}`);
  });

  it('keeps the left operand v1 form only while it still fits', () => {
    expect(x('patient/*.read', 'patient/*.rs')).toBe('patient/*.read');
    expect(x('patient/*.rs', 'patient/*.read')).toBe('patient/*.rs');
    expect(x('user/*.*', 'user/Observation.rs')).toBe('user/Observation.read');
    expect(x('user/*.*', 'user/Encounter.cu')).toBe('user/Encounter.cu');
    expect(x('user/*.write', 'user/Observation.cud')).toBe('user/Observation.write');
    expect(x('user/*.*', `user/Observation.rs?${LAB}`)).toBe(`user/Observation.rs?${LAB}`);
  });

  it('carries and intersects element limits', () => {
    const limited: ResourceScope = { ...one('user/Patient.rs'), elements: ['name', 'gender', 'birthDate'] };
    expect(intersectScope(one('user/*.cruds'), limited)?.elements).toEqual(['name', 'gender', 'birthDate']);
    expect(intersectScope({ ...one('user/Patient.r'), elements: ['name', 'address'] }, limited)?.elements).toEqual(['name']);
    expect(intersectScope(one('user/*.cruds'), one('user/Patient.rs'))?.elements).toBeUndefined();
  });
});

describe('intersectScopes / effectiveScopes', () => {
  it('intersects unions pairwise and keeps other scopes present on both sides', () => {
    const out = intersectScopes(scopes('openid fhirUser launch/patient patient/*.rs'), scopes('openid launch/patient user/Observation.cruds user/Patient.r'));
    expect(render(out)).toBe('openid launch/patient patient/Observation.rs patient/Patient.r');
  });

  it('is requested ∩ client-allowed ∩ ceiling', () => {
    const requested = scopes(`openid fhirUser offline_access user/*.read`);
    const client = scopes('openid fhirUser user/*.cruds');
    const ceiling = scopes(`openid fhirUser offline_access user/Patient.rs user/Observation.cu?${VITALS} user/Observation.rs user/Encounter.crus`);
    expect(render(effectiveScopes(requested, client, ceiling))).toBe('openid fhirUser user/Patient.read user/Observation.read user/Encounter.read');
  });

  it('yields nothing when any side grants nothing', () => {
    expect(effectiveScopes(scopes('user/*.rs'), scopes('user/*.rs'), [])).toEqual([]);
    expect(effectiveScopes(scopes('system/*.rs'), scopes('system/*.rs'), scopes('user/*.cruds'))).toEqual([]);
  });
});

describe('normalizeScopes', () => {
  it('merges scopes that differ only in letters', () => {
    expect(render(normalizeScopes(scopes('user/Encounter.rs user/Encounter.cu')))).toBe('user/Encounter.crus');
    expect(render(normalizeScopes(scopes('user/Encounter.read user/Encounter.write')))).toBe('user/Encounter.*');
    expect(render(normalizeScopes(scopes('user/Encounter.read user/Encounter.cud')))).toBe('user/Encounter.cruds');
  });

  it('drops scopes covered by a broader one of the same context', () => {
    expect(render(normalizeScopes(scopes(`user/Observation.rs user/*.rs user/Observation.r?${LAB}`)))).toBe('user/*.rs');
    expect(render(normalizeScopes(scopes(`user/Observation.rs?${LAB} user/Observation.rs`)))).toBe('user/Observation.rs');
    expect(render(normalizeScopes(scopes('patient/Observation.rs user/Observation.rs')))).toBe('patient/Observation.rs user/Observation.rs');
  });
});

describe('renderScopes', () => {
  it('round-trips v2 scopes, granular ones included', () => {
    const str = `launch/patient openid patient/Observation.rs?${LAB}&status=final user/Encounter.crus system/*.cruds`;
    expect(renderScopes(scopes(str))).toBe(str);
  });
});
