// A tenant's own StructureDefinitions: given as differentials, checked when stored (a known base, elements that
// exist, no loosening of the base, invariants that parse -> 400 naming the element, nothing stored), enforced for
// that tenant only (another tenant neither reads them nor has them enforced), chained on each other and on the
// shipped profiles, and a new version applies at once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, issuesOf, problemsOf, profile, send, uploadProfile, US_CORE, validate } from './helpers.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;

const URL = (id: string) => `http://example.org/fhir/StructureDefinition/${id}`;
const patient = (claims: string[], extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', ...(claims.length ? { meta: { profile: claims } } : {}), name: [{ family: 'Own' }], ...extra });
const mrn = { system: 'urn:clinic:mrn', value: '42' };

const ownPatient = () =>
  profile('clinic-patient', 'Patient', [
    { id: 'Patient.identifier', min: 1 },
    { id: 'Patient.identifier.system', min: 1, fixedUri: 'urn:clinic:mrn' },
    { id: 'Patient.birthDate', min: 1 },
  ]);

let ownId: string;

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'sd-a');
  b = await newTenant(server, 'sd-b');
  ownId = await uploadProfile(a, ownPatient());
  // a profile on the tenant's profile, and one on a shipped profile
  await uploadProfile(a, profile('clinic-patient-strict', 'Patient', [{ id: 'Patient.telecom', min: 1 }], URL('clinic-patient')));
  await uploadProfile(a, profile('clinic-us-patient', 'Patient', [{ id: 'Patient.address', min: 1 }], `${US_CORE}us-core-patient`));
});
afterAll(async () => server.close());

describe('a tenant StructureDefinition given as a differential', () => {
  it('is enforced on the tenant writes that claim it', async () => {
    expect((await send(a, 'post', 'Patient', patient([URL('clinic-patient')], { identifier: [mrn], birthDate: '1990-01-01' }))).status).toBe(201);
    expectRefused(await send(a, 'post', 'Patient', patient([URL('clinic-patient')], { identifier: [{ system: 'urn:other', value: '1' }] })), [
      'error PROFILE_CARDINALITY Patient.birthDate',
      'error PROFILE_FIXED Patient.identifier[0].system',
    ], URL('clinic-patient'));
  });

  it('chains: a profile on the tenant profile adds to its rules; a profile on US Core Patient adds to US Core', async () => {
    expectRefused(await send(a, 'post', 'Patient', patient([URL('clinic-patient-strict')], { identifier: [mrn] })), [
      'error PROFILE_CARDINALITY Patient.birthDate',
      'error PROFILE_CARDINALITY Patient.telecom',
    ], URL('clinic-patient-strict'));
    expectRefused(await send(a, 'post', 'Patient', patient([URL('clinic-us-patient')], { identifier: [mrn] })), [
      'error PROFILE_CARDINALITY Patient.gender',
      'error PROFILE_CARDINALITY Patient.address',
    ], URL('clinic-us-patient'));
  });

  it('applies a new version at once', async () => {
    const loose = { ...ownPatient(), id: ownId, differential: { element: [{ id: 'Patient.identifier', path: 'Patient.identifier', min: 1 }] } };
    expect((await send(a, 'put', `StructureDefinition/${ownId}`, loose)).status).toBe(200);
    expect((await send(a, 'post', 'Patient', patient([URL('clinic-patient')], { identifier: [{ value: 'no system' }] }))).status).toBe(201);
    // a profile on it follows its base's new version
    const strict = patient([URL('clinic-patient-strict')], { identifier: [{ value: 'no system' }], telecom: [{ system: 'phone', value: '1' }] });
    expect((await send(a, 'post', 'Patient', strict)).status).toBe(201);
    expect((await send(a, 'put', `StructureDefinition/${ownId}`, { ...ownPatient(), id: ownId })).status).toBe(200);
    expect((await send(a, 'post', 'Patient', strict)).status).toBe(400);
    expect((await send(a, 'post', 'Patient', patient([URL('clinic-patient')], { identifier: [{ value: 'no system' }] }))).status).toBe(400);
  });
});

describe('tenant isolation', () => {
  it('another tenant cannot read it, by id or by url', async () => {
    expect((await b.api.get(`${b.path}/StructureDefinition/${ownId}`)).status).toBe(404);
    const found = await b.api.get(`${b.path}/StructureDefinition?url=${encodeURIComponent(URL('clinic-patient'))}`);
    expect(found.body.entry).toBeUndefined();
  });

  it('another tenant claiming the same url is not held to it (unknown there: a warning on $validate)', async () => {
    expect((await send(b, 'post', 'Patient', patient([URL('clinic-patient')]))).status).toBe(201);
    const res = await validate(b, 'Patient/$validate', patient([URL('clinic-patient')]));
    expect(issuesOf(res)).toEqual(['warning PROFILE_UNKNOWN Patient.meta.profile[0]']);
    const asked = await validate(b, `Patient/$validate?profile=${encodeURIComponent(URL('clinic-patient'))}`, patient([]));
    expect(problemsOf(asked)).toEqual(['error PROFILE_UNKNOWN Patient']);
  });
});

describe('a StructureDefinition is checked when stored', () => {
  async function expectInvalid(sd: Record<string, unknown>, expression: string, message: RegExp): Promise<void> {
    const res = await send(a, 'post', 'StructureDefinition', sd);
    expect({ status: res.status, issues: issuesOf(res) }).toEqual({ status: 400, issues: [`error PROFILE_DEFINITION_INVALID ${expression}`] });
    expect(res.body.issue[0].diagnostics).toMatch(message);
    const stored = await a.api.get(`${a.path}/StructureDefinition?url=${encodeURIComponent(String(sd.url))}`);
    expect(stored.body.entry).toBeUndefined();
  }

  it('refuses an unknown base', async () => {
    await expectInvalid(profile('bad-base', 'Patient', [{ id: 'Patient.gender', min: 1 }], 'http://example.org/fhir/StructureDefinition/nowhere'), 'StructureDefinition.baseDefinition', /unknown baseDefinition/);
  });

  it('refuses a base of another type', async () => {
    await expectInvalid(profile('bad-type', 'Patient', [{ id: 'Patient.gender', min: 1 }], 'http://hl7.org/fhir/StructureDefinition/Observation'), 'StructureDefinition.type', /defines Observation, not Patient/);
  });

  it('refuses an element that does not exist, naming the differential element', async () => {
    await expectInvalid(profile('bad-element', 'Patient', [{ id: 'Patient.gender', min: 1 }, { id: 'Patient.colour', min: 1 }]), 'StructureDefinition.differential.element[1]', /element colour does not exist/);
    await expectInvalid(profile('bad-child', 'Patient', [{ id: 'Patient.gender.value', min: 1 }]), 'StructureDefinition.differential.element[0]', /primitive/);
  });

  it('refuses loosening the base (min below, max above) and a type the base does not allow', async () => {
    await expectInvalid(profile('bad-min', 'Observation', [{ id: 'Observation.status', min: 0 }]), 'StructureDefinition.differential.element[0]', /min 0 is below the base's 1/);
    await expectInvalid(profile('bad-max', 'Patient', [{ id: 'Patient.gender', max: '*' }]), 'StructureDefinition.differential.element[0]', /max \* exceeds the base's 1/);
    await expectInvalid(profile('bad-types', 'Observation', [{ id: 'Observation.value[x]', type: [{ code: 'Address' }] }]), 'StructureDefinition.differential.element[0]', /type Address is not allowed/);
  });

  it('refuses a slice on an element that is not sliced', async () => {
    await expectInvalid(profile('bad-slice', 'Patient', [{ id: 'Patient.identifier:mrn', min: 1 }]), 'StructureDefinition.differential.element[0]', /defines no slicing/);
  });

  it('refuses an invariant that does not parse', async () => {
    await expectInvalid(
      profile('bad-invariant', 'Patient', [{ id: 'Patient', constraint: [{ key: 'x-1', severity: 'error', human: 'broken', expression: 'name.where(' }] }]),
      'StructureDefinition.differential.element[0].constraint[0].expression',
      /does not parse/,
    );
  });
});
