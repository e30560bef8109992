// patch with JSON Patch (http.html#patch, RFC 6902): the result is processed as an update (validated, versioned).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'patch');
});
afterAll(async () => server.close());

const JSON_PATCH = 'application/json-patch+json';
const patient = { resourceType: 'Patient', active: true, name: [{ family: 'Ng', given: ['Ann', 'B'] }], gender: 'female', birthDate: '1980-02-03' };

function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string, expression?: string): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0].severity).toBe('error');
  expect(res.body.issue[0].code).toBe(issueCode);
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  if (expression) expect(res.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? [])).toContain(expression);
  expect(res.text).not.toMatch(/\n\s+at |node_modules/);
}

const patch = (id: string, ops: unknown, type = JSON_PATCH) => t.api.patch(`${t.path}/Patient/${id}`).set('Content-Type', type).send(typeof ops === 'string' ? ops : JSON.stringify(ops));

/** The resource must still be exactly version 1 as created. */
async function expectUnchanged(p: Record<string, any>): Promise<void> {
  const now = await t.api.get(`${t.path}/Patient/${p.id}`);
  expect(now.body).toEqual(p);
  const h = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
  expect(h.body.entry).toHaveLength(1);
}

describe('JSON Patch operations (RFC 6902 §4)', () => {
  it('removing the last item of an array removes the element (FHIR JSON has no empty arrays), nested ones too', async () => {
    const p = await create(t, { resourceType: 'Patient', name: [{ family: 'Solo', given: ['Only'] }], telecom: [{ system: 'phone', value: '1' }] });
    const res = await patch(p.id, [
      { op: 'remove', path: '/name/0/given/0' },
      { op: 'remove', path: '/telecom/0' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.name).toEqual([{ family: 'Solo' }]);
    expect(res.body.telecom).toBeUndefined();
    // an empty array the client writes itself is still refused, with its path
    expectOutcome(await patch(p.id, [{ op: 'add', path: '/identifier', value: [] }]), 400, 'structure', 'ARRAY_EMPTY', 'Patient.identifier');
  });

  it('applies add, replace, remove and test in order, storing version 2 with ETag and Location', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'add', path: '/name/0/given/1', value: 'Mid' },
      { op: 'add', path: '/name/-', value: { family: 'Alias' } },
      { op: 'remove', path: '/active' },
      { op: 'add', path: '/telecom', value: [{ system: 'phone', value: '555' }] },
    ]);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers.location).toBe(`${t.base}/Patient/${p.id}/_history/2`);
    expect(res.body).toMatchObject({ id: p.id, gender: 'male', meta: { versionId: '2' }, telecom: [{ system: 'phone', value: '555' }] });
    expect(res.body.name).toEqual([{ family: 'Ng', given: ['Ann', 'Mid', 'B'] }, { family: 'Alias' }]);
    expect(res.body.active).toBeUndefined();
    const read = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(read.body).toEqual(res.body);
    const v1 = await t.api.get(`${t.path}/Patient/${p.id}/_history/1`);
    expect(v1.body.gender).toBe('female');
    const h = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
    expect(h.body.entry.map((e: any) => e.request.method)).toEqual(['PUT', 'POST']);
  });

  it('applies move and copy', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [
      { op: 'copy', from: '/name/0', path: '/name/1' },
      { op: 'move', from: '/name/1/given', path: '/name/1/suffix' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.name).toEqual([{ family: 'Ng', given: ['Ann', 'B'] }, { family: 'Ng', suffix: ['Ann', 'B'] }]);
  });

  it('handles ~0 and ~1 escapes in pointers', async () => {
    const p = await create(t, { ...patient, extension: [{ url: 'urn:a/b~c', valueString: 'x' }] });
    const res = await patch(p.id, [{ op: 'test', path: '/extension/0/url', value: 'urn:a/b~c' }, { op: 'replace', path: '/extension/0/valueString', value: 'y' }]);
    expect(res.status).toBe(200);
    expect(res.body.extension[0].valueString).toBe('y');
  });

  it('honours Prefer: return=minimal', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [{ op: 'replace', path: '/gender', value: 'other' }]).set('Prefer', 'return=minimal');
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.etag).toBe('W/"2"');
  });
});

describe('JSON Patch failures change nothing', () => {
  it('answers 422 PATCH_TEST_FAILED when a test operation fails', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'test', path: '/birthDate', value: '1999-01-01' },
    ]);
    expectOutcome(res, 422, 'processing', 'PATCH_TEST_FAILED');
    await expectUnchanged(p);
  });

  it('answers 422 PATCH_TEST_FAILED when a test names a path that does not exist', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, [{ op: 'test', path: '/deceasedBoolean', value: false }]), 422, 'processing', 'PATCH_TEST_FAILED');
    await expectUnchanged(p);
  });

  it('compares test values structurally (key order does not matter)', async () => {
    const p = await create(t, patient);
    const ok = await patch(p.id, [{ op: 'test', path: '/name/0', value: { given: ['Ann', 'B'], family: 'Ng' } }]);
    expect(ok.status).toBe(200);
  });

  it('answers 400 SCHEMA_VIOLATION when the patched resource is invalid (gender "bogus")', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [{ op: 'replace', path: '/gender', value: 'bogus' }]);
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.gender');
    await expectUnchanged(p);
  });

  it('answers 400 when the patch adds an unknown element', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, [{ op: 'add', path: '/colour', value: 'red' }]), 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.colour');
    await expectUnchanged(p);
  });

  it('answers 400 PATCH_CHANGES_IDENTITY when the patch changes or removes the id or resourceType', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, [{ op: 'replace', path: '/id', value: 'other-id' }]), 400, 'invalid', 'PATCH_CHANGES_IDENTITY');
    expectOutcome(await patch(p.id, [{ op: 'remove', path: '/id' }]), 400, 'invalid', 'PATCH_CHANGES_IDENTITY');
    expectOutcome(await patch(p.id, [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }]), 400, 'invalid', 'PATCH_CHANGES_IDENTITY');
    expectOutcome(await patch(p.id, [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'x' } }]), 400, 'invalid', 'PATCH_CHANGES_IDENTITY');
    await expectUnchanged(p);
    expect((await t.api.get(`${t.path}/Patient/other-id`)).status).toBe(404);
  });

  it('ignores meta.versionId and lastUpdated set by a patch (the server stamps them)', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [{ op: 'replace', path: '/meta/versionId', value: '99' }]);
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
  });

  it('answers 400 PATCH_INVALID to malformed operations, naming the operation', async () => {
    const p = await create(t, patient);
    const cases: unknown[] = [
      { op: 'add', path: '/gender', value: 'male' }, // not an array
      [{ op: 'frobnicate', path: '/gender' }],
      [{ op: 'add', path: 'gender', value: 'male' }],
      [{ op: 'add', path: '/gender' }],
      [{ op: 'replace', path: '/nothing/here', value: 1 }],
      [{ op: 'remove', path: '/name/5' }],
      [{ op: 'add', path: '/name/9', value: { family: 'x' } }],
      [{ op: 'add', path: '/name/01', value: { family: 'x' } }],
      [{ op: 'move', from: '/name', path: '/name/0/given' }],
      [{ op: 'copy', path: '/name/1' }],
      ['not an op'],
      [{ op: 'remove', path: '' }],
    ];
    for (const ops of cases) {
      const res = await patch(p.id, ops);
      expectOutcome(res, 400, 'invalid', 'PATCH_INVALID');
    }
    await expectUnchanged(p);
  });

  it('answers 400 PATCH_INVALID and pollutes no prototype for __proto__ / constructor paths', async () => {
    const p = await create(t, patient);
    const attacks = [
      [{ op: 'add', path: '/__proto__/polluted', value: 'yes' }],
      [{ op: 'add', path: '/name/0/__proto__/polluted', value: 'yes' }],
      [{ op: 'add', path: '/constructor/prototype/polluted', value: 'yes' }],
      [{ op: 'add', path: '/__proto__', value: { polluted: 'yes' } }],
      [{ op: 'copy', from: '/__proto__', path: '/x' }],
    ];
    for (const ops of attacks) {
      const res = await patch(p.id, ops);
      expectOutcome(res, 400, 'invalid', 'PATCH_INVALID');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    await expectUnchanged(p);
  });

  it('answers 404 for a resource that does not exist and 410 for a deleted one', async () => {
    expectOutcome(await patch('nobody', [{ op: 'add', path: '/gender', value: 'male' }]), 404, 'not-found', 'RESOURCE_NOT_FOUND');
    const p = await create(t, patient);
    await t.api.delete(`${t.path}/Patient/${p.id}`);
    expectOutcome(await patch(p.id, [{ op: 'add', path: '/gender', value: 'male' }]), 410, 'deleted', 'RESOURCE_DELETED');
  });

  it('answers 400 JSON_MALFORMED to a patch that is not JSON', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, '[{"op":'), 400, 'structure', 'JSON_MALFORMED');
  });
});

describe('patch media types (http.html#patch)', () => {
  it('answers 415 PATCH_FORMAT_UNSUPPORTED to FHIRPath Patch (a Parameters body as application/fhir+json)', async () => {
    const p = await create(t, patient);
    const fhirpathPatch = {
      resourceType: 'Parameters',
      parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.gender' }, { name: 'value', valueCode: 'male' }] }],
    };
    const res = await patch(p.id, fhirpathPatch, FHIR_JSON);
    expectOutcome(res, 415, 'not-supported', 'PATCH_FORMAT_UNSUPPORTED');
    await expectUnchanged(p);
  });

  it('answers 415 to a resource body sent as the patch with a FHIR content type', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, { ...p, gender: 'male' }, FHIR_JSON), 415, 'not-supported', 'PATCH_FORMAT_UNSUPPORTED');
    await expectUnchanged(p);
  });

  it('accepts a JSON Patch array sent as plain application/json', async () => {
    const p = await create(t, patient);
    const res = await patch(p.id, [{ op: 'replace', path: '/gender', value: 'male' }], 'application/json');
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('male');
  });

  it('answers 415 CONTENT_TYPE_UNSUPPORTED to XML Patch and to text/plain', async () => {
    const p = await create(t, patient);
    expectOutcome(await patch(p.id, '<diff/>', 'application/xml-patch+xml'), 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
    expectOutcome(await patch(p.id, '[]', 'text/plain'), 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
    await expectUnchanged(p);
  });
});
