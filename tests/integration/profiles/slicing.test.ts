// Slicing (profiling.html#slicing), one discriminator type at a time, each with a resource that meets the slices and
// one that does not: value (with closed rules), pattern, type, profile (a slice whose type is a profile on Identifier,
// itself the tenant's), exists; and ordered slicing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, LOINC, problemsOf, profile, send, uploadProfile, validate } from './helpers.js';

let server: TestServer;
let t: TestTenant;
let patientRef: string;

const URL = (id: string) => `http://example.org/fhir/StructureDefinition/${id}`;
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const UCUM = 'http://unitsofmeasure.org';

function obs(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Observation', meta: { profile: [URL(id)] }, status: 'final', code: { coding: [{ system: LOINC, code: '2345-7' }] }, subject: { reference: patientRef }, ...extra };
}

async function expectAccepted(body: Record<string, unknown>): Promise<void> {
  const res = await send(t, 'post', 'Observation', body);
  expect({ status: res.status, body: res.status === 201 ? 'ok' : res.body }).toEqual({ status: 201, body: 'ok' });
}

const refuse = async (body: Record<string, unknown>, expected: string[], id: string) => expectRefused(await send(t, 'post', 'Observation', body), expected, URL(id));

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'slice');
  patientRef = `Patient/${(await create(t, { resourceType: 'Patient', name: [{ family: 'Slice' }] })).id}`;
  // value discriminator on identifier.system, closed: exactly one MRN, at most one lab number, nothing else
  await uploadProfile(t, profile('slice-value', 'Observation', [
    { id: 'Observation.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'closed' } },
    { id: 'Observation.identifier:mrn', min: 1, max: '1' },
    { id: 'Observation.identifier:mrn.system', fixedUri: 'urn:mrn' },
    { id: 'Observation.identifier:mrn.value', min: 1 },
    { id: 'Observation.identifier:lab', min: 0, max: '1' },
    { id: 'Observation.identifier:lab.system', fixedUri: 'urn:lab' },
  ]));
  // pattern discriminator on $this: a laboratory category is required, others allowed
  await uploadProfile(t, profile('slice-pattern', 'Observation', [
    { id: 'Observation.category', slicing: { discriminator: [{ type: 'pattern', path: '$this' }], rules: 'open' } },
    { id: 'Observation.category:lab', min: 1, max: '1', patternCodeableConcept: { coding: [{ system: CATEGORY, code: 'laboratory' }] } },
  ]));
  // type discriminator: a Quantity value (the valueQuantity type slice) must carry UCUM units; other types are free
  await uploadProfile(t, profile('slice-type', 'Observation', [
    { id: 'Observation.value[x]', slicing: { discriminator: [{ type: 'type', path: '$this' }], rules: 'open' } },
    { id: 'Observation.value[x]:valueQuantity', type: [{ code: 'Quantity' }] },
    { id: 'Observation.value[x]:valueQuantity.system', min: 1, fixedUri: UCUM },
  ]));
  // profile discriminator: one identifier must conform to the tenant's own Identifier profile
  await uploadProfile(t, profile('strict-identifier', 'Identifier', [
    { id: 'Identifier.system', min: 1, fixedUri: 'urn:strict' },
    { id: 'Identifier.value', min: 1 },
  ], 'http://hl7.org/fhir/StructureDefinition/Identifier', 'complex-type'));
  await uploadProfile(t, profile('slice-profile', 'Observation', [
    { id: 'Observation.identifier', slicing: { discriminator: [{ type: 'profile', path: '$this' }], rules: 'open' } },
    { id: 'Observation.identifier:strict', min: 1, max: '1', type: [{ code: 'Identifier', profile: [URL('strict-identifier')] }] },
  ]));
  // exists discriminator: components with a value (at most 2) and components saying why there is none (at most 1)
  await uploadProfile(t, profile('slice-exists', 'Observation', [
    { id: 'Observation.component', slicing: { discriminator: [{ type: 'exists', path: 'dataAbsentReason' }], rules: 'closed' } },
    { id: 'Observation.component:measured', min: 0, max: '2' },
    { id: 'Observation.component:measured.dataAbsentReason', max: '0' },
    { id: 'Observation.component:missing', min: 0, max: '1' },
    { id: 'Observation.component:missing.dataAbsentReason', min: 1 },
    { id: 'Observation.component:missing.value[x]', max: '0' },
  ]));
  // ordered slicing: MRNs before lab numbers
  await uploadProfile(t, profile('slice-ordered', 'Observation', [
    { id: 'Observation.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'open', ordered: true } },
    { id: 'Observation.identifier:mrn', min: 0 },
    { id: 'Observation.identifier:mrn.system', fixedUri: 'urn:mrn' },
    { id: 'Observation.identifier:lab', min: 0 },
    { id: 'Observation.identifier:lab.system', fixedUri: 'urn:lab' },
  ]));
});
afterAll(async () => server.close());

describe('value discriminator, closed slicing', () => {
  it('accepts values matching the slices', async () => {
    await expectAccepted(obs('slice-value', { identifier: [{ system: 'urn:lab', value: 'L1' }, { system: 'urn:mrn', value: 'M1' }] }));
  });

  it('refuses a missing required slice, a slice over its maximum, a slice member breaking its constraints, and an unmatched value', async () => {
    await refuse(obs('slice-value', { identifier: [{ system: 'urn:lab', value: 'L1' }] }), ['error PROFILE_CARDINALITY Observation.identifier'], 'slice-value');
    await refuse(obs('slice-value', { identifier: [{ system: 'urn:mrn', value: 'M1' }, { system: 'urn:mrn', value: 'M2' }] }), ['error PROFILE_CARDINALITY Observation.identifier'], 'slice-value');
    await refuse(obs('slice-value', { identifier: [{ system: 'urn:mrn' }] }), ['error PROFILE_CARDINALITY Observation.identifier[0].value'], 'slice-value');
    const res = await send(t, 'post', 'Observation', obs('slice-value', { identifier: [{ system: 'urn:mrn', value: 'M1' }, { system: 'urn:other', value: 'X' }] }));
    expectRefused(res, ['error PROFILE_SLICE Observation.identifier[1]'], URL('slice-value'));
    expect(res.body.issue[0].diagnostics).toContain('matches none of the slices of Observation.identifier (mrn, lab), and the slicing is closed');
  });

  it('names the slice in a cardinality message', async () => {
    const res = await send(t, 'post', 'Observation', obs('slice-value', { identifier: [{ system: 'urn:lab', value: 'L1' }] }));
    expect(res.body.issue[0].diagnostics).toContain("Slice 'mrn' of Observation.identifier requires at least 1 value(s), found 0");
  });
});

describe('pattern discriminator', () => {
  it('accepts the required slice among other values', async () => {
    await expectAccepted(obs('slice-pattern', { category: [{ coding: [{ system: CATEGORY, code: 'vital-signs' }] }, { coding: [{ system: CATEGORY, code: 'laboratory', display: 'Laboratory' }] }] }));
  });

  it('refuses when no value matches the required slice', async () => {
    await refuse(obs('slice-pattern', { category: [{ coding: [{ system: CATEGORY, code: 'vital-signs' }] }] }), ['error PROFILE_CARDINALITY Observation.category'], 'slice-pattern');
  });
});

describe('type discriminator', () => {
  it('applies the type slice to values of that type only', async () => {
    await expectAccepted(obs('slice-type', { valueQuantity: { value: 1, system: UCUM, code: 'mg' } }));
    await expectAccepted(obs('slice-type', { valueString: 'positive' }));
  });

  it('refuses a value of the slice type breaking the slice', async () => {
    await refuse(obs('slice-type', { valueQuantity: { value: 1, unit: 'mg' } }), ['error PROFILE_CARDINALITY Observation.valueQuantity.system'], 'slice-type');
    await refuse(obs('slice-type', { valueQuantity: { value: 1, system: 'urn:units', code: 'mg' } }), ['error PROFILE_FIXED Observation.valueQuantity.system'], 'slice-type');
  });
});

describe('profile discriminator', () => {
  it('accepts a value conforming to the slice profile', async () => {
    await expectAccepted(obs('slice-profile', { identifier: [{ system: 'urn:loose' }, { system: 'urn:strict', value: 'S1' }] }));
  });

  it('refuses when no value conforms to it', async () => {
    await refuse(obs('slice-profile', { identifier: [{ system: 'urn:strict' }, { system: 'urn:loose', value: 'x' }] }), ['error PROFILE_CARDINALITY Observation.identifier'], 'slice-profile');
  });
});

describe('exists discriminator', () => {
  const measured = (v: number) => ({ code: { text: `c${v}` }, valueQuantity: { value: v } });
  const missing = { code: { text: 'm' }, dataAbsentReason: { text: 'not done' } };

  it('accepts components sorted by whether a value exists', async () => {
    await expectAccepted(obs('slice-exists', { component: [measured(1), missing, measured(2)] }));
  });

  it('refuses too many of one kind', async () => {
    await refuse(obs('slice-exists', { component: [measured(1), measured(2), measured(3)] }), ['error PROFILE_CARDINALITY Observation.component'], 'slice-exists');
    await refuse(obs('slice-exists', { component: [missing, missing] }), ['error PROFILE_CARDINALITY Observation.component'], 'slice-exists');
  });
});

describe('ordered slicing', () => {
  it('accepts values in the order of the slices', async () => {
    await expectAccepted(obs('slice-ordered', { identifier: [{ system: 'urn:mrn', value: '1' }, { system: 'urn:lab', value: '2' }] }));
  });

  it('refuses values out of order', async () => {
    await refuse(obs('slice-ordered', { identifier: [{ system: 'urn:lab', value: '2' }, { system: 'urn:mrn', value: '1' }] }), ['error PROFILE_SLICE Observation.identifier[1]'], 'slice-ordered');
  });

  it('$validate reports slice problems like a write', async () => {
    const res = await validate(t, 'Observation/$validate', obs('slice-ordered', { identifier: [{ system: 'urn:lab', value: '2' }, { system: 'urn:mrn', value: '1' }] }));
    expect(res.status).toBe(200);
    expect(problemsOf(res)).toEqual(['error PROFILE_SLICE Observation.identifier[1]']);
  });
});
