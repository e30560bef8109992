// AND / OR / escaping (search.html#combining, #escaping), chaining (search.html#chaining: typed, untyped, several
// levels, 400 on a non-reference) and reverse chaining with _has (search.html#has, nested).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const LOINC = 'http://loinc.org';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'schn');
  ids.orgA = (await create(t, { resourceType: 'Organization', name: 'Acme Hospital' })).id;
  ids.orgB = (await create(t, { resourceType: 'Organization', name: 'Beta Clinic', partOf: { reference: `Organization/${ids.orgA}` } })).id;
  ids.drX = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Xavier' }] })).id;
  ids.ann = (await create(t, {
    resourceType: 'Patient',
    name: [{ family: 'Anders', given: ['Ann'] }],
    identifier: [{ system: 'urn:mrn', value: 'A-1' }],
    managingOrganization: { reference: `Organization/${ids.orgA}` },
    generalPractitioner: [{ reference: `Practitioner/${ids.drX}` }],
  })).id;
  ids.bob = (await create(t, { resourceType: 'Patient', name: [{ family: 'Bobson', given: ['Bob'] }], managingOrganization: { reference: `Organization/${ids.orgB}` } })).id;
  ids.loc = (await create(t, { resourceType: 'Location', name: 'Anders Wing' })).id;
  const obs = (subject: string | undefined, code: string[], status: string) => ({
    resourceType: 'Observation',
    status,
    code: { coding: code.map((c) => ({ system: LOINC, code: c })) },
    ...(subject ? { subject: { reference: subject } } : {}),
  });
  ids.oAnn1 = (await create(t, obs(`Patient/${ids.ann}`, ['718-7'], 'final'))).id;
  ids.oAnn2 = (await create(t, obs(`Patient/${ids.ann}`, ['2345-7'], 'preliminary'))).id;
  ids.oBob = (await create(t, obs(`Patient/${ids.bob}`, ['718-7'], 'final'))).id;
  ids.oLocation = (await create(t, obs(`Location/${ids.loc}`, ['718-7'], 'final'))).id;
  ids.oMulti = (await create(t, obs(undefined, ['718-7', '2345-7'], 'amended'))).id;
  ids.drAnn = (await create(t, { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' }, subject: { reference: `Patient/${ids.ann}` }, result: [{ reference: `Observation/${ids.oAnn1}` }] })).id;
  ids.drBob = (await create(t, { resourceType: 'DiagnosticReport', status: 'preliminary', code: { text: 'CBC' }, subject: { reference: `Patient/${ids.bob}` }, result: [{ reference: `Observation/${ids.oBob}` }] })).id;
  // literal commas, pipes and backslashes in values
  ids.comma = (await create(t, { resourceType: 'Patient', name: [{ family: 'Comma,Name' }], identifier: [{ value: 'A,B' }, { value: 'x|y' }] })).id;
  ids.commaOnly = (await create(t, { resourceType: 'Patient', name: [{ family: 'Comma' }], identifier: [{ value: 'A' }] })).id;
  ids.nameOnly = (await create(t, { resourceType: 'Patient', name: [{ family: 'Name' }], identifier: [{ value: 'B' }] })).id;
  ids.backslash = (await create(t, { resourceType: 'Patient', name: [{ family: 'Back\\slash' }] })).id;
});
afterAll(async () => server.close());

describe('AND, OR and escaping', () => {
  it('a comma ORs, repetition ANDs, across parameters', async () => {
    expect(await found('Observation?code=718-7,2345-7&status=final')).toEqual(keys('oAnn1', 'oBob', 'oLocation'));
    expect(await found('Observation?code=718-7&code=2345-7')).toEqual(keys('oMulti'));
    expect(await found('Observation?status=final&status=preliminary')).toEqual([]);
    expect(await found('Observation?status=final,preliminary&status=preliminary,amended')).toEqual(keys('oAnn2'));
  });

  it('\\, is a literal comma, not an OR', async () => {
    expect(await found(`Patient?family=${enc('comma\\,name')}`)).toEqual(keys('comma'));
    expect(await found('Patient?family=comma,name')).toEqual(keys('comma', 'commaOnly', 'nameOnly'));
    expect(await found(`Patient?family:exact=${enc('Comma\\,Name')}`)).toEqual(keys('comma'));
    expect(await found(`Patient?identifier=${enc('A\\,B')}`)).toEqual(keys('comma'));
    expect(await found('Patient?identifier=A,B')).toEqual(keys('commaOnly', 'nameOnly'));
    expect(await found(`Patient?identifier=${enc('A\\,B')},B`)).toEqual(keys('comma', 'nameOnly'));
  });

  it('\\| is a literal pipe in a token and \\\\ a literal backslash', async () => {
    expect(await found(`Patient?identifier=${enc('x\\|y')}`)).toEqual(keys('comma'));
    expect(await found(`Patient?identifier=${enc('x|y')}`)).toEqual([]);
    expect(await found(`Patient?family=${enc('back\\\\slash')}`)).toEqual(keys('backslash'));
    expect(await found(`Patient?family:exact=${enc('Back\\\\slash')}`)).toEqual(keys('backslash'));
  });
});

describe('chaining', () => {
  it.each([
    ['Observation?subject:Patient.name=anders', ['oAnn1', 'oAnn2']],
    ['Observation?subject:Patient.family=bobs', ['oBob']],
    ['Observation?patient.family=bob', ['oBob']],
    ['Observation?patient.name=anders,bobson', ['oAnn1', 'oAnn2', 'oBob']],
    ['Observation?subject:Location.name=anders', ['oLocation']],
    ['Observation?subject:Patient.identifier=urn:mrn|A-1', ['oAnn1', 'oAnn2']],
    ['Observation?subject:Patient.name:exact=Anders', ['oAnn1', 'oAnn2']],
    ['Observation?subject:Patient.name:exact=anders', []],
    ['Observation?subject:Patient.name=nobody', []],
    ['Observation?subject:Patient.name=anders&code=2345-7', ['oAnn2']],
    ['Observation?subject:Patient.name=anders&subject:Patient.name=bob', []],
  ])('%s', async (query, expected) => {
    expect(await found(query)).toEqual(keys(...expected));
  });

  it('an untyped chain follows every target type that has the parameter', async () => {
    expect(await found('Observation?subject.name=anders')).toEqual(keys('oAnn1', 'oAnn2', 'oLocation'));
    expect(await found('Observation?subject.name=bob')).toEqual(keys('oBob'));
  });

  it('chains on _id', async () => {
    expect(await found(`Observation?subject:Patient._id=${ids.ann}`)).toEqual(keys('oAnn1', 'oAnn2'));
  });

  it.each([
    ['Observation?subject:Patient.organization.name=acme', ['oAnn1', 'oAnn2']],
    ['Observation?subject:Patient.organization.name=beta', ['oBob']],
    ['Observation?subject:Patient.organization.partof.name=acme', ['oBob']],
    ['Observation?subject:Patient.general-practitioner:Practitioner.name=xavier', ['oAnn1', 'oAnn2']],
    ['DiagnosticReport?result.subject:Patient.name=anders', ['drAnn']],
    ['DiagnosticReport?result.subject.name=bob', ['drBob']],
    ['DiagnosticReport?result.subject:Patient.organization.name=beta', ['drBob']],
    ['DiagnosticReport?result.code=718-7&result.subject:Patient.name=anders', ['drAnn']],
    ['DiagnosticReport?result.status=preliminary', []],
  ])('several levels: %s', async (query, expected) => {
    expect(await found(query)).toEqual(keys(...expected));
  });

  it('answers 400 SEARCH_CHAIN_INVALID to a chain on a parameter that is not a reference', async () => {
    for (const query of ['Observation?code.name=x', 'Observation?status.display=x', 'Patient?family.name=x', 'Observation?date.value=2024']) {
      const res = await t.api.get(`${t.path}/${query}`);
      expect({ query, status: res.status, code: res.body.issue?.[0]?.details?.coding?.[0]?.code }).toEqual({ query, status: 400, code: 'SEARCH_CHAIN_INVALID' });
      expect(res.body.issue[0].diagnostics).toContain(query.split('?')[1].split('.')[0]);
    }
  });

  it('answers 400 to a chain through a type the reference cannot point to', async () => {
    const res = await t.api.get(`${t.path}/Observation?subject:Medication.code=x`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SEARCH_CHAIN_INVALID');
  });
});

describe('reverse chaining (_has)', () => {
  it.each([
    ['Patient?_has:Observation:subject:code=2345-7', ['ann']],
    ['Patient?_has:Observation:patient:code=718-7', ['ann', 'bob']],
    [`Patient?_has:Observation:patient:code=${enc(`${LOINC}|718-7`)}`, ['ann', 'bob']],
    ['Patient?_has:Observation:subject:code=718-7&_has:Observation:subject:status=preliminary', ['ann']],
    ['Patient?_has:Observation:subject:status=amended', []],
    ['Patient?_has:Observation:subject:code=718-7,2345-7&family=bob', ['bob']],
    ['Location?_has:Observation:subject:code=718-7', ['loc']],
    ['Practitioner?_has:Patient:general-practitioner:family=anders', ['drX']],
    ['Organization?_has:Patient:organization:family=bob', ['orgB']],
    ['Observation?_has:DiagnosticReport:result:status=final', ['oAnn1']],
  ])('%s', async (query, expected) => {
    expect(await found(query)).toEqual(keys(...expected));
  });

  it.each([
    ['Patient?_has:Observation:subject:_has:DiagnosticReport:result:status=final', ['ann']],
    ['Patient?_has:Observation:subject:_has:DiagnosticReport:result:status=preliminary', ['bob']],
    ['Organization?_has:Patient:organization:_has:Observation:subject:code=2345-7', ['orgA']],
    ['Organization?_has:Organization:partof:_has:Patient:organization:family=bob', ['orgA']],
    ['Practitioner?_has:Patient:general-practitioner:_has:Observation:subject:status=final', ['drX']],
  ])('nested: %s', async (query, expected) => {
    expect(await found(query)).toEqual(keys(...expected));
  });

  it('_has combines with a chain inside it', async () => {
    expect(await found('Patient?_has:DiagnosticReport:subject:result.code=718-7')).toEqual(keys('ann', 'bob'));
    expect(await found('Organization?_has:Patient:organization:general-practitioner.name=xavier')).toEqual(keys('orgA'));
  });

  it.each([
    ['Patient?_has:Observation:code=x', 'SEARCH_HAS_INVALID'],
    ['Patient?_has:Widget:subject:code=x', 'SEARCH_HAS_INVALID'],
    ['Patient?_has:Observation:status:code=x', 'SEARCH_HAS_INVALID'],
    ['Patient?_has:Observation:nonsense:code=x', 'SEARCH_HAS_INVALID'],
  ])('answers 400 to a malformed _has: %s', async (query, code) => {
    const res = await t.api.get(`${t.path}/${query}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe(code);
  });
});
