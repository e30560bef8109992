// uri search (search.html#uri: exact and case-sensitive, :below, :above) and composite search (search.html#composite:
// components joined with `$`, each matched per its own type, on the SAME repeating element).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

const VALUE_SETS: Record<string, string | undefined> = {
  vsA: 'http://acme.org/fhir/ValueSet/a',
  vsAB: 'http://acme.org/fhir/ValueSet/a/b',
  vsUpper: 'http://acme.org/fhir/ValueSet/A',
  vsOther: 'http://acme.org/other',
  vsOid: 'urn:oid:1.2.3.4',
  vsNoUrl: undefined,
};

const quantity = (value: number, code = 'g/dL') => ({ value, unit: code, system: UCUM, code });

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'suri');
  for (const [key, url] of Object.entries(VALUE_SETS)) {
    ids[key] = (await create(t, { resourceType: 'ValueSet', status: 'draft', ...(url ? { url } : {}) })).id;
  }
  const obs = (extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', ...extra });
  const observations: Record<string, Record<string, unknown>> = {
    hbHigh: obs({ code: { coding: [{ system: LOINC, code: '718-7' }] }, valueQuantity: quantity(13.5) }),
    hbLow: obs({ code: { coding: [{ system: LOINC, code: '718-7' }] }, valueQuantity: quantity(12) }),
    otherHigh: obs({ code: { coding: [{ system: LOINC, code: '2345-7' }] }, valueQuantity: quantity(140, 'mg/dL') }),
    hbSnomed: obs({ code: { coding: [{ system: 'http://snomed.info/sct', code: '718-7' }] }, valueQuantity: quantity(15) }),
    bp: obs({
      code: { coding: [{ system: LOINC, code: '85354-9' }] },
      component: [
        { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: quantity(120, 'mm[Hg]') },
        { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: quantity(80, 'mm[Hg]') },
      ],
    }),
    bpLow: obs({
      code: { coding: [{ system: LOINC, code: '85354-9' }] },
      component: [
        { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: quantity(95, 'mm[Hg]') },
        { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: quantity(55, 'mm[Hg]') },
      ],
    }),
    concept: obs({ code: { coding: [{ system: LOINC, code: '883-9' }] }, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '112144000' }] } }),
    stringValue: obs({ code: { coding: [{ system: LOINC, code: '5778-6' }] }, valueString: 'Yellow' }),
    dollarValue: obs({ code: { coding: [{ system: LOINC, code: '5778-6' }] }, valueString: 'a$b' }),
  };
  for (const [key, body] of Object.entries(observations)) ids[key] = (await create(t, body)).id;
});
afterAll(async () => server.close());

describe('uri', () => {
  it.each([
    ['url=http://acme.org/fhir/ValueSet/a', ['vsA']],
    ['url=http://acme.org/fhir/ValueSet/A', ['vsUpper']],
    ['url=http://acme.org/fhir/ValueSet', []],
    ['url=http://acme.org/fhir/ValueSet/a/', []],
    ['url=urn:oid:1.2.3.4', ['vsOid']],
    ['url=urn:oid:1.2.3', []],
    ['url:below=http://acme.org/fhir/ValueSet/a', ['vsA', 'vsAB']],
    ['url:below=http://acme.org/fhir', ['vsA', 'vsAB', 'vsUpper']],
    ['url:below=http://acme.org/', ['vsA', 'vsAB', 'vsUpper', 'vsOther']],
    ['url:above=http://acme.org/fhir/ValueSet/a/b/c', ['vsA', 'vsAB']],
    ['url:above=http://acme.org/fhir/ValueSet/a', ['vsA']],
    ['url:above=http://acme.org/other/x', ['vsOther']],
    ['url=http://acme.org/fhir/ValueSet/a,urn:oid:1.2.3.4', ['vsA', 'vsOid']],
    ['url:missing=true', ['vsNoUrl']],
  ])('ValueSet?%s', async (query, expected) => {
    const [name, value] = query.split('=');
    expect(await found(`ValueSet?${name}=${enc(value)}`)).toEqual(keys(...expected));
  });
});

describe('composite: code-value-quantity', () => {
  it.each([
    [`${LOINC}|718-7$gt13`, ['hbHigh']],
    [`${LOINC}|718-7$lt13`, ['hbLow']],
    [`${LOINC}|718-7$12`, ['hbLow']],
    [`718-7$gt13`, ['hbHigh', 'hbSnomed']],
    [`${LOINC}|718-7$gt100`, []],
    [`${LOINC}|2345-7$gt100`, ['otherHigh']],
    [`${LOINC}|718-7$gt13|${UCUM}|g/dL`, ['hbHigh']],
    [`${LOINC}|718-7$gt13|${UCUM}|mg/dL`, ['hbHigh', 'hbLow']], // UCUM units compare canonically: 12 g/dL > 13 mg/dL
    [`${LOINC}|718-7$gt13,${LOINC}|2345-7$gt13`, ['hbHigh', 'otherHigh']],
  ])('code-value-quantity=%s', async (value, expected) => {
    expect(await found(`Observation?code-value-quantity=${enc(value)}`)).toEqual(keys(...expected));
  });

  it('AND of two composites', async () => {
    expect(await found(`Observation?code-value-quantity=${enc(`${LOINC}|718-7$gt10`)}&code-value-quantity=${enc(`${LOINC}|718-7$lt13`)}`)).toEqual(keys('hbLow'));
  });
});

describe('composite: component-code-value-quantity correlates code and value within one component', () => {
  it.each([
    [`${LOINC}|8480-6$gt100`, ['bp']],
    [`${LOINC}|8480-6$gt90`, ['bp', 'bpLow']],
    [`${LOINC}|8480-6$lt100`, ['bpLow']],
    // 80 belongs to the diastolic component: a systolic "below 100" must not pair 8480-6 with 80
    [`${LOINC}|8480-6$lt90`, []],
    [`${LOINC}|8462-4$lt60`, ['bpLow']],
    [`${LOINC}|8462-4$gt100`, []],
    [`${LOINC}|8462-4$80|${UCUM}|mm[Hg]`, ['bp']],
  ])('component-code-value-quantity=%s', async (value, expected) => {
    expect(await found(`Observation?component-code-value-quantity=${enc(value)}`)).toEqual(keys(...expected));
  });
});

describe('composite with token and string second components', () => {
  it('code-value-concept', async () => {
    expect(await found(`Observation?code-value-concept=${enc(`${LOINC}|883-9$http://snomed.info/sct|112144000`)}`)).toEqual(keys('concept'));
    expect(await found(`Observation?code-value-concept=${enc(`${LOINC}|883-9$112144000`)}`)).toEqual(keys('concept'));
    expect(await found(`Observation?code-value-concept=${enc(`${LOINC}|718-7$112144000`)}`)).toEqual([]);
  });

  it('code-value-string matches the string component string-style', async () => {
    expect(await found(`Observation?code-value-string=${enc(`${LOINC}|5778-6$yell`)}`)).toEqual(keys('stringValue'));
    expect(await found(`Observation?code-value-string=${enc(`${LOINC}|5778-6$green`)}`)).toEqual([]);
  });

  it('a wrong number of components is a 400', async () => {
    const res = await t.api.get(`${t.path}/Observation?code-value-quantity=${enc(`${LOINC}|718-7`)}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SEARCH_PARAM_INVALID');
    expect(res.body.issue[0].diagnostics).toContain('code-value-quantity');
  });

  // search.html#escaping: "\$" escapes a dollar sign inside a composite component.
  it('an escaped \\$ inside a component is a literal dollar sign, not a component separator', async () => {
    expect(await found(`Observation?code-value-string=${enc(`${LOINC}|5778-6$a\\$b`)}`)).toEqual(keys('dollarValue'));
  });
});
