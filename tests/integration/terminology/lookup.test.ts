// CodeSystem/$lookup (codesystem-operation-lookup.html): display, designations and properties of a code, from the
// shipped LOINC subset, the HL7 code systems, UCUM, and the tenant's own CodeSystems; GET and POST.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectError } from './answers.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'lkp');
});
afterAll(async () => server.close());

const lookup = (query: string) => t.api.get(`${t.path}/CodeSystem/$lookup?${query}`);
const post = (body: unknown) => t.api.post(`${t.path}/CodeSystem/$lookup`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

/** name -> value of the top-level parameters; properties as code -> value. */
function read(res: Response): { params: Record<string, unknown>; props: Record<string, unknown[]> } {
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Parameters');
  const params: Record<string, unknown> = {};
  const props: Record<string, unknown[]> = {};
  for (const p of res.body.parameter) {
    if (p.name === 'property') {
      const code = p.part.find((x: any) => x.name === 'code').valueCode;
      const value = p.part.find((x: any) => x.name === 'value');
      props[code] = [...(props[code] ?? []), Object.entries(value).find(([k]) => k.startsWith('value'))![1]];
    } else if (p.name !== 'designation') params[p.name] = Object.entries(p).find(([k]) => k.startsWith('value'))?.[1];
  }
  return { params, props };
}

describe('$lookup on shipped code systems', () => {
  it('answers a LOINC code with its long common name and its six axes', async () => {
    const { params, props } = read(await lookup('system=http://loinc.org&code=2345-7'));
    expect(params).toMatchObject({ name: 'LOINC', display: 'Glucose [Mass/volume] in Serum or Plasma' });
    expect(props).toMatchObject({ COMPONENT: ['Glucose'], PROPERTY: ['MCnc'], TIME_ASPCT: ['Pt'], SYSTEM: ['Ser/Plas'], SCALE_TYP: ['Qn'], CLASS: ['CHEM'] });
  });

  it('returns only the properties asked for', async () => {
    const { props } = read(await lookup('system=http://loinc.org&code=718-7&property=COMPONENT&property=SYSTEM'));
    expect(props).toEqual({ COMPONENT: ['Hemoglobin'], SYSTEM: ['Bld'] });
  });

  it('answers an HL7 code (administrative-gender) by GET and by POST with a coding', async () => {
    expect(read(await lookup('system=http://hl7.org/fhir/administrative-gender&code=female')).params).toMatchObject({ name: 'AdministrativeGender', version: '4.0.1', display: 'Female' });
    const res = await post({ resourceType: 'Parameters', parameter: [{ name: 'coding', valueCoding: { system: 'http://hl7.org/fhir/administrative-gender', code: 'other' } }] });
    expect(read(res).params).toMatchObject({ display: 'Other' });
  });

  it('answers the hierarchy of a v3 code (parent and child properties)', async () => {
    const { props } = read(await lookup('system=http://terminology.hl7.org/CodeSystem/v3-ActCode&code=AMB'));
    expect(props.parent).toEqual(['_ActEncounterCode']);
  });

  it('answers a UCUM unit with its display and canonical form', async () => {
    const { params, props } = read(await lookup(`system=http://unitsofmeasure.org&code=${encodeURIComponent('mg/dL')}`));
    expect(params).toMatchObject({ name: 'UCUM', display: 'milligram per deciliter' });
    expect(props.canonical).toEqual(['10 g.m-3']);
    // any well-formed expression is a code, named or not
    expect(read(await lookup(`system=http://unitsofmeasure.org&code=${encodeURIComponent('mmol/(24.h)')}`)).params.display).toBe('mmol/(24.h)');
  });

  it("answers the tenant's own CodeSystem, which takes precedence over a shipped one with the same url", async () => {
    await create(t, { resourceType: 'CodeSystem', url: 'http://hl7.org/fhir/administrative-gender', status: 'active', content: 'complete', name: 'OurGender', concept: [{ code: 'female', display: 'Woman' }] });
    expect(read(await lookup('system=http://hl7.org/fhir/administrative-gender&code=female')).params).toMatchObject({ name: 'OurGender', display: 'Woman' });
  });
});

describe('$lookup errors', () => {
  it('400 when the code or the system is missing, or both code and coding are given', async () => {
    expectError(await lookup('system=http://loinc.org'), 400, 'TERMINOLOGY_CODE_MISSING', 'code');
    expectError(await lookup('code=2345-7'), 400, 'TERMINOLOGY_SYSTEM_MISSING', 'system');
    expectError(await lookup('code=1&coding=http://loinc.org|2345-7'), 400, 'TERMINOLOGY_INPUT_CONFLICT', 'coding');
  });

  it('404 for an unknown code system or an unknown code', async () => {
    expectError(await lookup('system=http://example.org/none&code=x'), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'system');
    expectError(await lookup('system=http://loinc.org&code=99999-9'), 404, 'TERMINOLOGY_CODE_UNKNOWN', 'code');
    expectError(await lookup(`system=http://unitsofmeasure.org&code=${encodeURIComponent('mg/')}`), 404, 'TERMINOLOGY_CODE_UNKNOWN', 'code');
  });

  it('400 for a malformed Parameters body', async () => {
    expectError(await post({ resourceType: 'Patient' }), 400, 'PARAMETERS_INVALID', 'Parameters');
    expectError(await post({ resourceType: 'Parameters', parameter: {} }), 400, 'PARAMETERS_INVALID', 'Parameters.parameter');
    expectError(await post({ resourceType: 'Parameters', parameter: [{ valueString: 'x' }] }), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[0].name');
    expectError(await post({ resourceType: 'Parameters', parameter: [{ name: 'code', valueInteger: 3 }] }), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[0].valueInteger');
    expectError(await post({ resourceType: 'Parameters', parameter: [{ name: 'coding', valueCoding: { code: 5 } }] }), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[0].valueCoding');
    expectError(await post({ resourceType: 'Parameters', parameter: [{ name: 'system', valueUri: 'a' }, { name: 'system', valueUri: 'b' }, { name: 'code', valueCode: 'c' }] }), 400, 'PARAMETERS_INVALID', 'Parameters.parameter[1].valueUri');
  });

  it('403 without read access to CodeSystem', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Patient.rs' }));
    const res = await api.get(`${t.path}/CodeSystem/$lookup?system=http://loinc.org&code=2345-7`);
    expectError(res, 403, 'SCOPE_INSUFFICIENT');
  });
});
