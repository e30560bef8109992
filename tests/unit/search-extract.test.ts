// Index extraction from the official R4 SearchParameters (src/search/extract.ts, registry.ts; search.html): the rows
// each parameter type produces, HumanName/Address parts, Identifier/ContactPoint/Coding tokens, :text and :of-type
// rows, references, date ranges (Periods with open ends), quantities, composites and the full-text columns.
import { describe, expect, it } from '@jest/globals';
import { extractIndexRows, normalizeString, type IndexRows } from '../../src/search/extract.js';
import { SearchParamRegistry } from '../../src/core/search-registry.js';

const registry = new SearchParamRegistry();
const rows = (resource: Record<string, unknown>): IndexRows => extractIndexRows(registry, resource);
const of = <T extends unknown[]>(list: T[], code: string): T[] => list.filter((r) => r[0] === code);

describe('normalizeString (case- and accent-folding for string search)', () => {
  it.each([
    ['Müller', 'muller'],
    ['ZOË', 'zoe'],
    ['Zoe\u0308', 'zoe'],
    ['García Márquez', 'garcia marquez'],
    ['Ærøskøbing', 'ærøskøbing'],
    ['😀 Party', '😀 party'],
    ['İstanbul', 'istanbul'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeString(input)).toBe(expected);
  });
});

describe('Patient', () => {
  const patient = rows({
    resourceType: 'Patient',
    id: 'p1',
    meta: { tag: [{ system: 'urn:t', code: 'vip' }], profile: ['http://x/p'], source: 'urn:src' },
    active: true,
    gender: 'female',
    birthDate: '1980-02',
    name: [{ family: 'Müller', given: ['Ann', 'Lou'], prefix: ['Dr.'], suffix: ['PhD'], text: 'Dr. Ann Müller' }],
    address: [{ line: ['1 Main St'], city: 'Zürich', state: 'ZH', postalCode: '8001', country: 'CH' }],
    identifier: [{ system: 'urn:mrn', value: '7', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }], text: 'Medical record' } }],
    telecom: [{ system: 'phone', value: '555' }, { system: 'email', value: 'a@b.c' }],
    managingOrganization: { reference: 'Organization/o1' },
    generalPractitioner: [{ reference: 'Practitioner/d1/_history/2' }, { reference: 'http://elsewhere.org/Practitioner/9' }],
  });

  it('name holds every HumanName part; family and given only their own', () => {
    expect(of(patient.string, 'name').map((r) => r[2]).sort()).toEqual(['Ann', 'Dr.', 'Dr. Ann Müller', 'Lou', 'Müller', 'PhD']);
    expect(of(patient.string, 'family')).toEqual([['family', 'muller', 'Müller']]);
    expect(of(patient.string, 'given').map((r) => r[2])).toEqual(['Ann', 'Lou']);
  });

  it('address holds every Address part; address-city etc. only their own', () => {
    expect(of(patient.string, 'address').map((r) => r[1]).sort()).toEqual(['1 main st', '8001', 'ch', 'zh', 'zurich']);
    expect(of(patient.string, 'address-city')).toEqual([['address-city', 'zurich', 'Zürich']]);
    expect(of(patient.string, 'address-postalcode').map((r) => r[2])).toEqual(['8001']);
  });

  it('tokens: identifier, :of-type, :text, telecom, phone, email, gender, active, _tag', () => {
    expect(of(patient.token, 'identifier')).toEqual([['identifier', 'urn:mrn', '7']]);
    expect(of(patient.token, 'identifier:of-type')).toEqual([['identifier:of-type', 'http://terminology.hl7.org/CodeSystem/v2-0203', 'MR|7']]);
    expect(of(patient.string, 'identifier:text').map((r) => r[1])).toEqual(['medical record']);
    expect(of(patient.token, 'telecom').map((r) => r[2]).sort()).toEqual(['555', 'a@b.c']);
    expect(of(patient.token, 'phone')).toEqual([['phone', null, '555']]);
    expect(of(patient.token, 'email')).toEqual([['email', null, 'a@b.c']]);
    expect(of(patient.token, 'gender')).toEqual([['gender', null, 'female']]);
    expect(of(patient.token, 'active')).toEqual([['active', null, 'true']]);
    expect(of(patient.token, '_tag')).toEqual([['_tag', 'urn:t', 'vip']]);
  });

  it('references: local (version dropped) and external', () => {
    expect(of(patient.reference, 'organization')).toEqual([['organization', 'Organization', 'o1', null]]);
    expect(of(patient.reference, 'general-practitioner')).toEqual([
      ['general-practitioner', 'Practitioner', 'd1', null],
      ['general-practitioner', null, null, 'http://elsewhere.org/Practitioner/9'],
    ]);
  });

  it('dates by precision, uris', () => {
    expect(of(patient.date, 'birthdate')).toEqual([['birthdate', '1980-02-01T00:00:00.000Z', '1980-02-29T23:59:59.999Z']]);
    expect(of(patient.uri, '_profile')).toEqual([['_profile', 'http://x/p']]);
    expect(of(patient.uri, '_source')).toEqual([['_source', 'urn:src']]);
  });

  it('full text: narrative empty, content folded, without ids, systems and meta', () => {
    const [narrative, content] = patient.fulltext[0];
    expect(narrative).toBe('');
    expect(content).toContain('muller');
    expect(content).toContain('zurich');
    expect(content).not.toContain('urn:mrn');
    expect(content).not.toContain('vip');
    expect(content).not.toContain('p1');
  });
});

describe('Observation', () => {
  const obs = rows({
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Hb <b>high</b> &amp; rising</div>' },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }], text: 'Hgb' },
    subject: { reference: 'Patient/p1' },
    performer: [{ identifier: { system: 'urn:npi', value: '123' } }],
    effectivePeriod: { start: '2024-01-10' },
    valueQuantity: { value: 13.5, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
    component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } }],
  });

  it('code tokens and :text rows from text and displays', () => {
    expect(of(obs.token, 'code')).toEqual([['code', 'http://loinc.org', '718-7']]);
    expect(of(obs.string, 'code:text').map((r) => r[1]).sort()).toEqual(['hemoglobin', 'hgb']);
    expect(of(obs.token, 'status')).toEqual([['status', null, 'final']]);
  });

  it('subject and patient references; performer identifier under :identifier', () => {
    expect(of(obs.reference, 'subject')).toEqual([['subject', 'Patient', 'p1', null]]);
    expect(of(obs.reference, 'patient')).toEqual([['patient', 'Patient', 'p1', null]]);
    expect(of(obs.token, 'performer:identifier')).toEqual([['performer:identifier', 'urn:npi', '123']]);
    expect(of(obs.reference, 'performer')).toEqual([['performer', null, null, null]]); // present (for :missing), but matches no target
  });

  it('a Period with an open end has no high', () => {
    expect(of(obs.date, 'date')).toEqual([['date', '2024-01-10T00:00:00.000Z', null]]);
  });

  it('quantity value, system and unit code', () => {
    expect(of(obs.number, 'value-quantity')).toEqual([['value-quantity', 13.5, 'http://unitsofmeasure.org', 'g/dL']]);
  });

  it('composites pair the components of one node', () => {
    expect(of(obs.composite, 'code-value-quantity')).toEqual([['code-value-quantity', 'http://loinc.org', '718-7', 'http://unitsofmeasure.org', 'g/dL', 13.5, null, null]]);
    expect(of(obs.composite, 'component-code-value-quantity')).toEqual([['component-code-value-quantity', 'http://loinc.org', '8480-6', 'http://unitsofmeasure.org', 'mm[Hg]', 120, null, null]]);
  });

  it('narrative text without markup', () => {
    const [narrative] = obs.fulltext[0];
    expect(narrative).toContain('hb');
    expect(narrative).toContain('high');
    expect(narrative).not.toContain('<b>');
    expect(narrative).not.toContain('xhtml');
  });
});
