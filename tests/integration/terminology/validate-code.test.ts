// $validate-code on CodeSystem (codesystem-operation-validate-code.html) and ValueSet
// (valueset-operation-validate-code.html): result true/false with message and display, for shipped and tenant
// terminology, at type and instance level, by GET and POST.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectError, paramsOf } from './answers.js';

let server: TestServer;
let t: TestTenant;
let ownCs: Record<string, any>;
let ownVs: Record<string, any>;

const CS_URL = 'http://lab.example.org/CodeSystem/panels';
const VS_URL = 'http://lab.example.org/ValueSet/chemistry-panels';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'vc');
  ownCs = await create(t, {
    resourceType: 'CodeSystem',
    url: CS_URL,
    status: 'active',
    content: 'complete',
    concept: [
      { code: 'chem', display: 'Chemistry', concept: [{ code: 'bmp', display: 'Basic metabolic panel' }, { code: 'cmp', display: 'Comprehensive metabolic panel' }] },
      { code: 'hem', display: 'Hematology', concept: [{ code: 'cbc', display: 'Complete blood count' }] },
    ],
  });
  ownVs = await create(t, { resourceType: 'ValueSet', url: VS_URL, status: 'active', compose: { include: [{ system: CS_URL, filter: [{ property: 'concept', op: 'descendent-of', value: 'chem' }] }] } });
});
afterAll(async () => server.close());

const get = (path: string) => t.api.get(`${t.path}/${path}`);
const post = (path: string, parameter: unknown[]) => t.api.post(`${t.path}/${path}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Parameters', parameter }));
const q = (s: string) => encodeURIComponent(s);

describe('CodeSystem/$validate-code', () => {
  it('answers true with the display for an HL7 code, false for a code the system does not have', async () => {
    expect(paramsOf(await get('CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender&code=male'))).toEqual({ result: true, display: 'Male' });
    const no = paramsOf(await get('CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender&code=man'));
    expect(no.result).toBe(false);
    expect(no.message).toContain('"man" is not a code of http://hl7.org/fhir/administrative-gender');
  });

  it('keeps result true but says so when the display is wrong', async () => {
    const p = paramsOf(await get('CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender&code=male&display=Boy'));
    expect(p).toMatchObject({ result: true, display: 'Male' });
    expect(p.message).toContain('"Boy" is not a display');
  });

  it('validates LOINC codes of the subset, and says a code outside it may exist', async () => {
    expect(paramsOf(await post('CodeSystem/$validate-code', [{ name: 'coding', valueCoding: { system: 'http://loinc.org', code: '4548-4' } }])).result).toBe(true);
    const p = paramsOf(await get('CodeSystem/$validate-code?url=http://loinc.org&code=12345-6'));
    expect(p.result).toBe(false);
    expect(p.message).toContain('holds only part of http://loinc.org');
  });

  it('validates UCUM expressions as codes', async () => {
    expect(paramsOf(await get(`CodeSystem/$validate-code?url=http://unitsofmeasure.org&code=${q('10*3/uL')}`)).result).toBe(true);
    expect(paramsOf(await get(`CodeSystem/$validate-code?url=http://unitsofmeasure.org&code=${q('mg/dl/')}`)).result).toBe(false);
  });

  it("validates against the tenant's CodeSystem at type and instance level, and a codeableConcept passes when one coding does", async () => {
    expect(paramsOf(await get(`CodeSystem/$validate-code?url=${q(CS_URL)}&code=cbc`))).toEqual({ result: true, display: 'Complete blood count' });
    expect(paramsOf(await get(`CodeSystem/${ownCs.id}/$validate-code?code=nope`)).result).toBe(false);
    const cc = { coding: [{ system: CS_URL, code: 'nope' }, { system: CS_URL, code: 'bmp' }] };
    expect(paramsOf(await post(`CodeSystem/${ownCs.id}/$validate-code`, [{ name: 'codeableConcept', valueCodeableConcept: cc }]))).toEqual({ result: true, display: 'Basic metabolic panel' });
  });

  it('validates against a CodeSystem sent in the body', async () => {
    const codeSystem = { resourceType: 'CodeSystem', url: 'http://x.org/cs', status: 'active', content: 'complete', concept: [{ code: 'a' }] };
    expect(paramsOf(await post('CodeSystem/$validate-code', [{ name: 'codeSystem', resource: codeSystem }, { name: 'code', valueCode: 'a' }])).result).toBe(true);
    const bad = { ...codeSystem, concept: { code: 'a' } };
    expectError(await post('CodeSystem/$validate-code', [{ name: 'codeSystem', resource: bad }, { name: 'code', valueCode: 'a' }]), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[0].resource.concept');
  });

  it('400 without a code or a url, 404 for an unknown code system or instance', async () => {
    expectError(await get('CodeSystem/$validate-code?url=http://loinc.org'), 400, 'TERMINOLOGY_CODE_MISSING', 'code');
    expectError(await get('CodeSystem/$validate-code?code=x'), 400, 'TERMINOLOGY_SYSTEM_MISSING', 'url');
    expectError(await get('CodeSystem/$validate-code?url=http://nowhere.org/cs&code=x'), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'url');
    expectError(await get('CodeSystem/nope/$validate-code?code=x'), 404, 'RESOURCE_NOT_FOUND');
    expectError(await get('CodeSystem/$validate-code?url=http://loinc.org&code=x&coding=http://loinc.org|y'), 400, 'TERMINOLOGY_INPUT_CONFLICT', 'coding');
  });
});

describe('ValueSet/$validate-code', () => {
  it('answers for an R4 value set (administrative-gender) by GET and POST', async () => {
    expect(paramsOf(await get('ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/administrative-gender&system=http://hl7.org/fhir/administrative-gender&code=female'))).toEqual({ result: true, display: 'Female' });
    const no = paramsOf(await post('ValueSet/$validate-code', [{ name: 'url', valueUri: 'http://hl7.org/fhir/ValueSet/administrative-gender' }, { name: 'coding', valueCoding: { system: 'http://hl7.org/fhir/administrative-gender', code: 'f' } }]));
    expect(no.result).toBe(false);
  });

  it('answers from is-a filters and excludes (v3 ActEncounterCode) without expanding', async () => {
    const vs = 'http://terminology.hl7.org/ValueSet/v3-ActEncounterCode';
    const sys = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
    expect(paramsOf(await get(`ValueSet/$validate-code?url=${q(vs)}&system=${q(sys)}&code=AMB`)).result).toBe(true);
    expect(paramsOf(await get(`ValueSet/$validate-code?url=${q(vs)}&system=${q(sys)}&code=_ActEncounterCode`)).result).toBe(false);
    expect(paramsOf(await get(`ValueSet/$validate-code?url=${q(vs)}&system=${q(sys)}&code=CPT`)).result).toBe(false);
  });

  it('answers for UCUM value sets: every unit, or a listed few', async () => {
    expect(paramsOf(await get(`ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/ucum-units&system=http://unitsofmeasure.org&code=${q('mmol/L')}`)).result).toBe(true);
    expect(paramsOf(await get(`ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/ucum-bodyweight&system=http://unitsofmeasure.org&code=${q('[lb_av]')}`)).result).toBe(true);
    expect(paramsOf(await get(`ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/ucum-bodyweight&system=http://unitsofmeasure.org&code=mg`)).result).toBe(false);
  });

  it("answers for the tenant's ValueSet by url and by id", async () => {
    expect(paramsOf(await get(`ValueSet/$validate-code?url=${q(VS_URL)}&system=${q(CS_URL)}&code=cmp`))).toEqual({ result: true, display: 'Comprehensive metabolic panel' });
    expect(paramsOf(await get(`ValueSet/${ownVs.id}/$validate-code?system=${q(CS_URL)}&code=chem`)).result).toBe(false);
    expect(paramsOf(await get(`ValueSet/${ownVs.id}/$validate-code?system=${q(CS_URL)}&code=cbc`)).result).toBe(false);
  });

  it('says when membership cannot be determined (a code outside the LOINC subset)', async () => {
    const p = paramsOf(await get('ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/observation-codes&system=http://loinc.org&code=12345-6'));
    expect(p.result).toBe(false);
    expect(p.message).toContain('cannot be determined');
    expect(paramsOf(await get('ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/observation-codes&system=http://loinc.org&code=2345-7')).result).toBe(true);
  });

  it('400 without url, 404 for an unknown value set', async () => {
    expectError(await get('ValueSet/$validate-code?code=x'), 400, 'TERMINOLOGY_VALUESET_MISSING', 'url');
    expectError(await get('ValueSet/$validate-code?url=http://nowhere.org/vs&code=x'), 404, 'TERMINOLOGY_VALUESET_UNKNOWN', 'url');
    expectError(await post('ValueSet/$validate-code', [{ name: 'url', valueUri: 'http://nowhere.org/vs' }, { name: 'code', valueCode: 'x' }]), 404, 'TERMINOLOGY_VALUESET_UNKNOWN', 'Parameters.parameter[0].valueUri');
    expectError(await post('ValueSet/$validate-code', [{ name: 'valueSet', resource: { resourceType: 'ValueSet', compose: { include: 'x' } } }, { name: 'code', valueCode: 'x' }]), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[0].resource.compose.include');
  });
});
