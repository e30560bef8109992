// token search parameters (search.html#token, REST.md §9): code, system|code, |code, system|, :not (matching
// resources without a value too), :text (CodeableConcept.text / Coding.display, string-style), :of-type on
// Identifier (type-system|type-code|value), booleans, code elements and ContactPoint values.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const LOINC = 'http://loinc.org';
const SCT = 'http://snomed.info/sct';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'stok');
  const obs = (code: Record<string, unknown> | undefined, status: string, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Observation',
    status,
    ...(code ? { code } : {}),
    ...extra,
  });
  const observations: Record<string, Record<string, unknown>> = {
    hbLoinc: obs({ coding: [{ system: LOINC, code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' }], text: 'Hgb' }, 'final', {
      category: [{ coding: [{ system: OBS_CAT, code: 'laboratory', display: 'Laboratory' }] }],
    }),
    hbSnomed: obs({ coding: [{ system: SCT, code: '718-7' }], text: 'Hémoglobine' }, 'amended'),
    hbNoSystem: obs({ coding: [{ code: '718-7' }] }, 'preliminary'),
    glucose: obs({ coding: [{ system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] }, 'final', {
      category: [{ coding: [{ system: OBS_CAT, code: 'vital-signs' }] }, { text: 'Chemistry panel' }],
    }),
    textOnly: obs({ text: 'Free text observation' }, 'cancelled'),
    twoCodings: obs({ coding: [{ system: LOINC, code: '2345-7' }, { system: SCT, code: '33747003', display: 'Glucose measurement' }] }, 'final'),
  };
  for (const [key, body] of Object.entries(observations)) ids[key] = (await create(t, body)).id;
  const patients: Record<string, Record<string, unknown>> = {
    mrn: {
      active: true,
      gender: 'female',
      identifier: [
        { system: 'urn:mrn', value: '12345', type: { coding: [{ system: V2_0203, code: 'MR' }], text: 'Medical record number' } },
        { system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-12-3456', type: { coding: [{ system: V2_0203, code: 'SS' }] } },
      ],
      telecom: [{ system: 'phone', value: '+1 555 0100', use: 'home' }, { system: 'email', value: 'ann@example.org' }],
    },
    ssnOnly: {
      active: false,
      gender: 'male',
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: '12345', type: { coding: [{ system: V2_0203, code: 'SS' }] } }],
      telecom: [{ system: 'email', value: '+1 555 0100' }],
    },
    noSystem: { gender: 'other', identifier: [{ value: '12345' }], telecom: [{ system: 'phone', value: 'ann@example.org' }] },
    bare: {},
  };
  for (const [key, body] of Object.entries(patients)) ids[key] = (await create(t, { resourceType: 'Patient', ...body })).id;
});
afterAll(async () => server.close());

describe('token on CodeableConcept (Observation.code)', () => {
  it.each([
    ['718-7', ['hbLoinc', 'hbSnomed', 'hbNoSystem']],
    [`${LOINC}|718-7`, ['hbLoinc']],
    [`${SCT}|718-7`, ['hbSnomed']],
    ['|718-7', ['hbNoSystem']],
    [`${LOINC}|`, ['hbLoinc', 'glucose', 'twoCodings']],
    [`${SCT}|`, ['hbSnomed', 'twoCodings']],
    [`${LOINC}|33747003`, []],
    [`${SCT}|33747003`, ['twoCodings']],
    ['718', []],
    ['718-7x', []],
    [`http://loinc.org/|718-7`, []],
    [`${LOINC}|718-7,${SCT}|33747003`, ['hbLoinc', 'twoCodings']],
  ])('code=%s', async (value, expected) => {
    expect(await found(`Observation?code=${enc(value)}`)).toEqual(keys(...expected));
  });

  it('matches any coding of a CodeableConcept; repeated parameters must all match', async () => {
    expect(await found(`Observation?code=${enc(`${LOINC}|2345-7`)}&code=${enc(`${SCT}|33747003`)}`)).toEqual(keys('twoCodings'));
    expect(await found(`Observation?code=718-7&code=2345-7`)).toEqual([]);
  });

  it('category (a list of CodeableConcepts) matches any of them', async () => {
    expect(await found('Observation?category=laboratory')).toEqual(keys('hbLoinc'));
    expect(await found(`Observation?category=${enc(`${OBS_CAT}|vital-signs`)}`)).toEqual(keys('glucose'));
    expect(await found(`Observation?category=${enc(`${OBS_CAT}|`)}`)).toEqual(keys('hbLoinc', 'glucose'));
  });
});

describe(':not — excludes matches and keeps resources without any value', () => {
  it('code:not', async () => {
    expect(await found(`Observation?code:not=${enc(`${LOINC}|718-7`)}`)).toEqual(keys('hbSnomed', 'hbNoSystem', 'glucose', 'textOnly', 'twoCodings'));
    expect(await found('Observation?code:not=718-7')).toEqual(keys('glucose', 'textOnly', 'twoCodings'));
  });

  it('status:not and gender:not (code elements), including resources with no gender', async () => {
    expect(await found('Observation?status:not=final')).toEqual(keys('hbSnomed', 'hbNoSystem', 'textOnly'));
    expect(await found('Patient?gender:not=female')).toEqual(keys('ssnOnly', 'noSystem', 'bare'));
    expect(await found('Observation?category:not=laboratory')).toEqual(keys('hbSnomed', 'hbNoSystem', 'glucose', 'textOnly', 'twoCodings'));
  });

  it(':not combines with other criteria (AND)', async () => {
    expect(await found('Observation?code:not=718-7&status=final')).toEqual(keys('glucose', 'twoCodings'));
  });
});

describe(':text — the text of a CodeableConcept or Coding.display, string-style', () => {
  it.each([
    ['hemo', ['hbLoinc', 'hbSnomed']],
    ['HEMOGLOBINE', ['hbSnomed']],
    ['hgb', ['hbLoinc']],
    ['glucose', ['glucose', 'twoCodings']],
    ['glucose%20measure', ['twoCodings']],
    ['free%20text', ['textOnly']],
    ['globin', []],
    ['718-7', []],
  ])('code:text=%s', async (value, expected) => {
    expect(await found(`Observation?code:text=${value}`)).toEqual(keys(...expected));
  });

  it('category:text matches category.text and coding displays', async () => {
    expect(await found('Observation?category:text=chem')).toEqual(keys('glucose'));
    expect(await found('Observation?category:text=labor')).toEqual(keys('hbLoinc'));
  });

  it('identifier:text matches Identifier.type.text', async () => {
    expect(await found('Patient?identifier:text=medical%20record')).toEqual(keys('mrn'));
  });
});

describe('Identifier tokens', () => {
  it.each([
    ['12345', ['mrn', 'ssnOnly', 'noSystem']],
    ['urn:mrn|12345', ['mrn']],
    ['|12345', ['noSystem']],
    ['http://hl7.org/fhir/sid/us-ssn|', ['mrn', 'ssnOnly']],
    ['http://hl7.org/fhir/sid/us-ssn|12345', ['ssnOnly']],
    ['urn:mrn|999-12-3456', []],
  ])('identifier=%s', async (value, expected) => {
    expect(await found(`Patient?identifier=${enc(value)}`)).toEqual(keys(...expected));
  });

  it.each([
    [`${V2_0203}|MR|12345`, ['mrn']],
    [`${V2_0203}|SS|12345`, ['ssnOnly']],
    [`${V2_0203}|SS|999-12-3456`, ['mrn']],
    [`${V2_0203}|MR|999-12-3456`, []],
    [`urn:other|MR|12345`, []],
  ])('identifier:of-type=%s', async (value, expected) => {
    expect(await found(`Patient?identifier:of-type=${enc(value)}`)).toEqual(keys(...expected));
  });
});

describe('booleans, codes and ContactPoint', () => {
  it('active=true|false; a Patient without active matches neither', async () => {
    expect(await found('Patient?active=true')).toEqual(keys('mrn'));
    expect(await found('Patient?active=false')).toEqual(keys('ssnOnly'));
    expect(await found('Patient?active:missing=true')).toEqual(keys('noSystem', 'bare'));
    expect(await found('Patient?active:not=true')).toEqual(keys('ssnOnly', 'noSystem', 'bare'));
  });

  it('code elements: gender and status, with OR', async () => {
    expect(await found('Patient?gender=female')).toEqual(keys('mrn'));
    expect(await found('Patient?gender=male,other')).toEqual(keys('ssnOnly', 'noSystem'));
    expect(await found('Observation?status=final,amended')).toEqual(keys('hbLoinc', 'hbSnomed', 'glucose', 'twoCodings'));
    expect(await found('Observation?status=cancelled')).toEqual(keys('textOnly'));
  });

  it('telecom matches ContactPoint.value; phone and email only their own system', async () => {
    expect(await found(`Patient?telecom=${enc('+1 555 0100')}`)).toEqual(keys('mrn', 'ssnOnly'));
    expect(await found(`Patient?phone=${enc('+1 555 0100')}`)).toEqual(keys('mrn'));
    expect(await found(`Patient?email=${enc('+1 555 0100')}`)).toEqual(keys('ssnOnly'));
    expect(await found('Patient?email=ann@example.org')).toEqual(keys('mrn'));
    expect(await found('Patient?phone=ann@example.org')).toEqual(keys('noSystem'));
    expect(await found('Patient?telecom=555')).toEqual([]);
  });
});
