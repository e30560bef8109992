// $validate (resource-operation-validate.html): type and instance level, modes create/update/delete. It answers
// 200 with an OperationOutcome whether or not the resource is valid, and never stores anything.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'val');
});
afterAll(async () => server.close());

const patient = { resourceType: 'Patient', name: [{ family: 'Valid' }], gender: 'female', birthDate: '1980-02-03' };

async function snapshot(): Promise<string[]> {
  const res = await t.api.get(`${t.path}/_history?_count=1000`);
  return (res.body.entry ?? []).map((e: any) => `${e.fullUrl} ${e.response.etag}`).sort();
}

const validate = (path: string, body: unknown) => t.api.post(`${t.path}/${path}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

function expectValid(res: Response): void {
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue).toHaveLength(1);
  expect(res.body.issue[0]).toMatchObject({ severity: 'information', code: 'informational' });
}

/** 200 with error issues; returns "code expression" pairs of the errors. */
function errorsOf(res: Response): string[] {
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const errors = res.body.issue.filter((i: any) => i.severity === 'error');
  expect(errors.length).toBeGreaterThan(0);
  // One element may fail more than one schema keyword (e.g. pattern and calendar check): compare distinct pairs.
  return [...new Set<string>(errors.map((i: any) => `${i.details?.coding?.[0]?.code} ${(i.expression ?? []).join(',')}`))];
}

function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0].code).toBe(issueCode);
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
}

describe('$validate at type level (POST [type]/$validate)', () => {
  it('answers 200 with an information issue for a valid resource, and stores nothing', async () => {
    const before = await snapshot();
    expectValid(await validate('Patient/$validate', patient));
    expectValid(await validate('Patient/$validate?mode=create', { ...patient, id: 'ignored-on-create' }));
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/Patient?family=Valid`)).body.entry).toBeUndefined();
  });

  it('answers 200 with error issues and their expressions for an invalid resource, and stores nothing', async () => {
    const before = await snapshot();
    const res = await validate('Patient/$validate', { ...patient, birthDate: 'soon', gender: 'bogus', colour: 'red' });
    expect(errorsOf(res).sort()).toEqual(['SCHEMA_VIOLATION Patient.birthDate', 'SCHEMA_VIOLATION Patient.colour', 'SCHEMA_VIOLATION Patient.gender']);
    expect(res.body.issue.every((i: any) => i.code === 'structure')).toBe(true);
    expect(await snapshot()).toEqual(before);
  });

  it('reports a reference to a Patient the tenant does not hold', async () => {
    const res = await validate('Observation/$validate', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/nobody' } });
    expect(errorsOf(res)).toEqual(['REFERENCE_NOT_FOUND Observation.subject.reference']);
    expect(res.body.issue[0].code).toBe('not-found');
    const p = await create(t, patient);
    expectValid(await validate('Observation/$validate', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${p.id}` } }));
  });

  it('reports a body whose type differs from the URL', async () => {
    expect(errorsOf(await validate('Observation/$validate', patient))).toEqual(['RESOURCE_TYPE_MISMATCH resourceType']);
  });

  it('takes a Parameters body with resource and mode', async () => {
    const before = await snapshot();
    expectValid(await validate('Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }, { name: 'mode', valueCode: 'create' }] }));
    const bad = await validate('Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...patient, birthDate: 'x' } }] });
    expect(errorsOf(bad)).toEqual(['SCHEMA_VIOLATION Patient.birthDate']);
    expect(await snapshot()).toEqual(before);
  });

  it('mode=update at type level needs a resource id', async () => {
    expect(errorsOf(await validate('Patient/$validate?mode=update', patient))).toEqual(['RESOURCE_ID_MISSING Patient.id']);
    expectValid(await validate('Patient/$validate?mode=update', { ...patient, id: 'x1' }));
  });

  it('answers 400 to an unknown mode, to mode=delete without an id, and to a Parameters body without a resource', async () => {
    expectOutcome(await validate('Patient/$validate?mode=destroy', patient), 400, 'invalid', 'VALIDATE_MODE_INVALID');
    expectOutcome(await validate('Patient/$validate?mode=delete', patient), 400, 'invalid', 'VALIDATE_MODE_INVALID');
    expectOutcome(await validate('Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'create' }] }), 400, 'invalid', 'VALIDATE_NO_RESOURCE');
  });

  it('answers 400 to malformed JSON, 404 to an unknown type and 405 to GET', async () => {
    const malformed = await t.api.post(`${t.path}/Patient/$validate`).set('Content-Type', FHIR_JSON).send('{"resourceType":');
    expectOutcome(malformed, 400, 'structure', 'JSON_MALFORMED');
    expectOutcome(await validate('Widget/$validate', { resourceType: 'Widget' }), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
    expectOutcome(await t.api.get(`${t.path}/Patient/$validate`), 405, 'not-supported', 'METHOD_NOT_ALLOWED');
  });
});

describe('$validate at instance level (POST [type]/[id]/$validate)', () => {
  it('mode=update accepts a body whose id matches the URL, and reports a different id', async () => {
    const p = await create(t, patient);
    const before = await snapshot();
    expectValid(await validate(`Patient/${p.id}/$validate?mode=update`, { ...p, gender: 'male' }));
    expect(errorsOf(await validate(`Patient/${p.id}/$validate?mode=update`, { ...p, id: 'other' }))).toEqual(['RESOURCE_ID_MISMATCH Patient.id']);
    expect(errorsOf(await validate(`Patient/${p.id}/$validate?mode=update`, { ...p, birthDate: '1980-02-30' }))).toEqual(['SCHEMA_VIOLATION Patient.birthDate']);
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.gender).toBe('female');
  });

  it('mode=delete reports whether the resource can be deleted, and deletes nothing', async () => {
    const p = await create(t, patient);
    const before = await snapshot();
    expectValid(await validate(`Patient/${p.id}/$validate?mode=delete`, { resourceType: 'Parameters' }));
    expect(errorsOf(await validate('Patient/nobody/$validate?mode=delete', { resourceType: 'Parameters' }))).toEqual(['RESOURCE_NOT_FOUND Patient']);
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(200);
  });

  it('mode=create at instance level validates the body', async () => {
    expectValid(await validate('Patient/anything/$validate?mode=create', patient));
  });
});
