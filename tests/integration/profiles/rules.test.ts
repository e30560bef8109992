// Profile rules (profiling.html), each with a resource that meets it and one that does not: cardinality at any depth,
// choice types, reference targets, fixed and pattern values, slicing by value / pattern / type / profile / exists with
// closed and ordered rules, and invariants. The profiles are the tenant's own StructureDefinitions, given as
// differentials; resources claim them in meta.profile. A refused write stores nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, issuesOf, LOINC, problemsOf, profile, send, uploadProfile, validate } from './helpers.js';

let server: TestServer;
let t: TestTenant;
let patientRef: string;
let groupRef: string;

const URL = (id: string) => `http://example.org/fhir/StructureDefinition/${id}`;
const UCUM = 'http://unitsofmeasure.org';

function obs(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    meta: { profile: [URL(id)] },
    status: 'final',
    code: { coding: [{ system: LOINC, code: '2345-7' }] },
    subject: { reference: patientRef },
    ...extra,
  };
}

async function expectStored(body: Record<string, unknown>): Promise<void> {
  const res = await send(t, 'post', 'Observation', body);
  expect({ status: res.status, body: res.status === 201 ? 'ok' : res.body }).toEqual({ status: 201, body: 'ok' });
}

async function count(): Promise<number> {
  return (await t.api.get(`${t.path}/Observation?_summary=count`)).body.total;
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'prof');
  patientRef = `Patient/${(await create(t, { resourceType: 'Patient', name: [{ family: 'Rule' }] })).id}`;
  groupRef = `Group/${(await create(t, { resourceType: 'Group', type: 'person', actual: true })).id}`;
  await uploadProfile(t, profile('card', 'Observation', [
    { id: 'Observation.identifier', min: 1, max: '2' },
    { id: 'Observation.identifier.system', min: 1 },
    { id: 'Observation.note', max: '0' },
  ]));
  await uploadProfile(t, profile('types', 'Observation', [
    { id: 'Observation.value[x]', type: [{ code: 'Quantity' }] },
    { id: 'Observation.subject', type: [{ code: 'Reference', targetProfile: ['http://hl7.org/fhir/StructureDefinition/Patient'] }] },
  ]));
  await uploadProfile(t, profile('values', 'Observation', [
    { id: 'Observation.status', fixedCode: 'final' },
    { id: 'Observation.code', patternCodeableConcept: { coding: [{ system: LOINC, code: '2345-7' }] } },
  ]));
  await uploadProfile(t, profile('invariant', 'Observation', [
    { id: 'Observation', constraint: [
      { key: 'test-1', severity: 'error', human: 'An effective time is given', expression: 'effective.exists()' },
      { key: 'test-2', severity: 'warning', human: 'A note is given', expression: 'note.exists()' },
      { key: 'test-3', severity: 'error', human: 'Not evaluable here', expression: 'descendants().where(url = \'x\').empty().not()' },
    ] },
  ]));
});
afterAll(async () => server.close());

describe('cardinality (min/max at any depth)', () => {
  it('accepts a resource within the bounds', async () => {
    await expectStored(obs('card', { identifier: [{ system: 'urn:a', value: '1' }] }));
  });

  it('refuses a missing element, a missing nested element and too many values, with their paths', async () => {
    const before = await count();
    expectRefused(await send(t, 'post', 'Observation', obs('card')), ['error PROFILE_CARDINALITY Observation.identifier'], URL('card'));
    expectRefused(await send(t, 'post', 'Observation', obs('card', { identifier: [{ system: 'urn:a', value: '1' }, { value: '2' }] })), ['error PROFILE_CARDINALITY Observation.identifier[1].system']);
    const three = [1, 2, 3].map((n) => ({ system: 'urn:a', value: String(n) }));
    expectRefused(await send(t, 'post', 'Observation', obs('card', { identifier: three, note: [{ text: 'x' }] })), [
      'error PROFILE_CARDINALITY Observation.identifier',
      'error PROFILE_CARDINALITY Observation.note',
    ]);
    expect(await count()).toBe(before);
  });

  it('answers in the outcome: message, profile, severity and issue type', async () => {
    const res = await send(t, 'post', 'Observation', obs('card'));
    const i = res.body.issue.find((x: any) => x.details?.coding?.[0]?.code === 'PROFILE_CARDINALITY');
    expect(i).toMatchObject({ severity: 'error', code: 'required', expression: ['Observation.identifier'] });
    expect(i.diagnostics).toBe(`Element Observation.identifier requires at least 1 value(s), found 0 at Observation.identifier (profile ${URL('card')})`);
    expect(i.details.text).toBe(i.diagnostics);
  });
});

describe('types: choice types and reference targets', () => {
  it('accepts an allowed type and a reference to an allowed target', async () => {
    await expectStored(obs('types', { valueQuantity: { value: 1, system: UCUM, code: 'mg' } }));
  });

  it('refuses a choice type the profile removed', async () => {
    expectRefused(await send(t, 'post', 'Observation', obs('types', { valueString: 'high' })), ['error PROFILE_TYPE Observation.valueString']);
  });

  it('refuses a reference to a type no target profile allows', async () => {
    expectRefused(await send(t, 'post', 'Observation', obs('types', { subject: { reference: groupRef } })), ['error PROFILE_TYPE Observation.subject']);
  });
});

describe('fixed and pattern values', () => {
  it('accepts the fixed value and a value containing the pattern (with more)', async () => {
    await expectStored(obs('values', { code: { coding: [{ system: LOINC, code: '2345-7', display: 'Glucose' }, { system: 'urn:local', code: 'GLU' }], text: 'Glucose' } }));
  });

  it('refuses another value than the fixed one, and a value without the pattern', async () => {
    expectRefused(await send(t, 'post', 'Observation', obs('values', { status: 'preliminary' })), ['error PROFILE_FIXED Observation.status']);
    expectRefused(await send(t, 'post', 'Observation', obs('values', { code: { coding: [{ system: LOINC, code: '2823-3' }] } })), ['error PROFILE_PATTERN Observation.code']);
  });
});

describe('invariants', () => {
  it('accepts a resource meeting the constraints', async () => {
    await expectStored(obs('invariant', { effectiveDateTime: '2024-01-02', note: [{ text: 'fine' }] }));
  });

  it('refuses an error constraint; a warning constraint alone does not refuse; a best practice (dom-6) is information', async () => {
    const res = await send(t, 'post', 'Observation', obs('invariant'));
    expectRefused(res, ['error PROFILE_INVARIANT Observation', 'warning PROFILE_INVARIANT Observation']);
    expect(res.body.issue.map((i: any) => i.code)).toEqual(['invariant', 'invariant']);
    expect(res.body.issue[0].diagnostics).toContain('Constraint test-1 failed: An effective time is given');
    await expectStored(obs('invariant', { effectiveDateTime: '2024-01-02' }));
    const noNarrative = await validate(t, 'Observation/$validate', obs('invariant', { effectiveDateTime: '2024-01-02', note: [{ text: 'fine' }] }));
    expect(noNarrative.body.issue.find((i: any) => i.details.coding[0].code === 'PROFILE_INVARIANT')).toMatchObject({ severity: 'information', diagnostics: expect.stringContaining('dom-6') });
  });

  it('skips a constraint the engine cannot evaluate, and says so on $validate', async () => {
    const text = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Glucose</div>' };
    const res = await validate(t, 'Observation/$validate', obs('invariant', { text, effectiveDateTime: '2024-01-02', note: [{ text: 'fine' }] }));
    expect(issuesOf(res)).toEqual(['information PROFILE_NOT_CHECKED Observation']);
    expect(res.body.issue[0].diagnostics).toBe(`1 invariant(s) could not be evaluated by the FHIRPath engine and were skipped: test-3 at Observation (profile ${URL('invariant')})`);
  });
});

describe('$validate with the rules', () => {
  it('reports every problem of every profile claimed, stores nothing', async () => {
    const before = await count();
    const body = obs('card', { status: 'preliminary', valueString: 'x', note: [{ text: 'n' }] });
    (body.meta as { profile: string[] }).profile.push(URL('types'), URL('values'), URL('invariant'));
    const res = await validate(t, 'Observation/$validate', body);
    expect(res.status).toBe(200);
    expect(problemsOf(res).sort()).toEqual([
      'error PROFILE_CARDINALITY Observation.identifier',
      'error PROFILE_CARDINALITY Observation.note',
      'error PROFILE_FIXED Observation.status',
      'error PROFILE_INVARIANT Observation',
      'error PROFILE_TYPE Observation.valueString',
    ]);
    expect(await count()).toBe(before);
  });

  it('does not refuse base invariants on a valid resource (ele-1, dom-*, ref-1 with contained resources)', async () => {
    const body = obs('values', {
      contained: [{ resourceType: 'Specimen', id: 'sp1', type: { text: 'blood' } }],
      specimen: { reference: '#sp1' },
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Glucose</div>' },
      valueQuantity: { value: 5.2, system: UCUM, code: 'mmol/L', unit: 'mmol/L' },
      referenceRange: [{ low: { value: 3.9, system: UCUM, code: 'mmol/L' }, high: { value: 5.5, system: UCUM, code: 'mmol/L' } }],
      effectivePeriod: { start: '2024-01-02T10:00:00Z', end: '2024-01-02T11:00:00Z' },
    });
    const res = await validate(t, 'Observation/$validate', body);
    expect(problemsOf(res)).toEqual([]);
    expect(issuesOf(res).filter((i) => i.includes('PROFILE_NOT_CHECKED'))).toEqual([]);
    await expectStored(body);
  });

  it('refuses a contained resource nothing references (dom-3) and a dangling local reference (ref-1)', async () => {
    const res = await validate(t, 'Observation/$validate', obs('values', { contained: [{ resourceType: 'Specimen', id: 'sp1' }] }));
    expect(problemsOf(res)).toEqual(['error PROFILE_INVARIANT Observation']);
    expect(res.body.issue[0].diagnostics).toContain('dom-3');
    const dangling = await validate(t, 'Observation/$validate', obs('values', { specimen: { reference: '#nowhere' } }));
    expect(problemsOf(dangling)).toContain('error PROFILE_INVARIANT Observation.specimen');
  });
});
