// Hostile and malformed requests (http.html#general, #update, #create; REST.md §1, §3): every failure is an
// OperationOutcome with a stable error code, no stack trace leaves the server, and no rejected write changes a row.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { create, FHIR_JSON, newTenant, onServer, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'bad');
});
afterAll(async () => server.close());

const patient = { resourceType: 'Patient', name: [{ family: 'Ng', given: ['Ann'] }], gender: 'female', birthDate: '1980-02-03' };

/** Asserts the whole error: status, OperationOutcome shape, issue type, error code, and that nothing internal leaks. */
function expectOutcome(res: Response, status: number, issueCode: string, errorCode?: string, expression?: string): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { resourceType: 'OperationOutcome' } });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  const first = res.body.issue[0];
  expect(first.severity).toBe('error');
  expect(first.code).toBe(issueCode);
  if (errorCode) expect(first.details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  if (expression) expect(res.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? [])).toContain(expression);
  expect(res.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|\.js:\d+/);
}

/** Every version the tenant holds, as "url etag" lines: a rejected write must leave this unchanged. */
async function snapshot(tenant: TestTenant = t): Promise<string[]> {
  const res = await tenant.api.get(`${tenant.path}/_history?_count=1000`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: any) => `${e.fullUrl} ${e.response.etag}`).sort();
}

const post = (path: string, body: string, type = FHIR_JSON) => t.api.post(`${t.path}${path}`).set('Content-Type', type).send(body);
const put = (path: string, body: string, type = FHIR_JSON) => t.api.put(`${t.path}${path}`).set('Content-Type', type).send(body);

describe('malformed bodies (http.html#create: 400 when the body cannot be parsed)', () => {
  it('answers 400 JSON_MALFORMED to broken JSON on create, and stores nothing', async () => {
    const before = await snapshot();
    const res = await post('/Patient', '{"resourceType": "Patient", "name": [');
    expectOutcome(res, 400, 'structure', 'JSON_MALFORMED');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 JSON_MALFORMED to broken JSON on update', async () => {
    const p = await create(t, patient);
    const before = await snapshot();
    const res = await put(`/Patient/${p.id}`, `{"resourceType":"Patient","id":"${p.id}",}`);
    expectOutcome(res, 400, 'structure', 'JSON_MALFORMED');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 BODY_EMPTY to an empty body', async () => {
    const res = await post('/Patient', '');
    expectOutcome(res, 400, 'invalid', 'BODY_EMPTY');
  });

  it('answers 400 BODY_NOT_RESOURCE to a JSON value that is not an object', async () => {
    for (const body of ['[]', '"Patient"', '42', 'null']) {
      const res = await post('/Patient', body);
      expectOutcome(res, 400, 'invalid', 'BODY_NOT_RESOURCE');
    }
  });

  it('accepts a UTF-8 byte order mark before the JSON', async () => {
    const res = await post('/Patient', '\uFEFF' + JSON.stringify(patient));
    expect(res.status).toBe(201);
    expect(res.body.resourceType).toBe('Patient');
  });
});

describe('media types (http.html#mime-type: 415 for an unsupported Content-Type)', () => {
  it('answers 415 CONTENT_TYPE_UNSUPPORTED to text/plain', async () => {
    const before = await snapshot();
    const res = await post('/Patient', JSON.stringify(patient), 'text/plain');
    expectOutcome(res, 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 415 CONTENT_TYPE_UNSUPPORTED to application/xml and application/fhir+xml', async () => {
    for (const type of ['application/xml', 'application/fhir+xml']) {
      const res = await post('/Patient', '<Patient xmlns="http://hl7.org/fhir"/>', type);
      expectOutcome(res, 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
    }
  });

  it('answers 415 to a body sent without any Content-Type', async () => {
    const res = await t.api.post(`${t.path}/Patient`).set('Content-Type', '').send(Buffer.from(JSON.stringify(patient)));
    expectOutcome(res, 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
  });

  it('answers 415 to a FHIR body on PUT sent as form data', async () => {
    const p = await create(t, patient);
    const res = await put(`/Patient/${p.id}`, 'a=b', 'application/x-www-form-urlencoded');
    expectOutcome(res, 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
  });
});

describe('size and shape limits (413, and JSON that would exhaust the parser)', () => {
  let small: TestServer;
  let st: TestTenant;
  beforeAll(async () => {
    small = await startServer({ maxBodyBytes: 2048 });
    st = await newTenant(small, 'small');
  });
  afterAll(async () => small.close());

  it('answers 413 BODY_TOO_LARGE to a body over maxBodyBytes, and stores nothing', async () => {
    const before = await snapshot(st);
    const big = { ...patient, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(5000)}</div>` } };
    const res = await st.api.post(`${st.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(big));
    expectOutcome(res, 413, 'too-costly', 'BODY_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    expect(await snapshot(st)).toEqual(before);
    // The same server still takes a small body.
    const ok = await st.api.post(`${st.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient));
    expect(ok.status).toBe(201);
  });

  it('answers 413 to an oversized chunked body (no Content-Length to trust)', async () => {
    const big = JSON.stringify({ ...patient, name: [{ family: 'y'.repeat(8000) }] });
    const req = st.api.post(`${st.path}/Patient`).set('Content-Type', FHIR_JSON).set('Transfer-Encoding', 'chunked');
    req.write(big.slice(0, 4000));
    req.write(big.slice(4000));
    const res = await req;
    expectOutcome(res, 413, 'too-costly', 'BODY_TOO_LARGE');
  });

  it('answers 400 JSON_TOO_DEEP to 100000 nested arrays inside an extension value, and keeps serving', async () => {
    const before = await snapshot();
    const deep = `{"resourceType":"Patient","extension":[{"url":"urn:x","valueString":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    const res = await post('/Patient', deep);
    expectOutcome(res, 400, 'too-costly', 'JSON_TOO_DEEP');
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/metadata`)).status).toBe(200);
  });

  it('answers 400 JSON_TOO_DEEP to deeply nested objects, even inside strings-with-brackets noise', async () => {
    const deep = `{"resourceType":"Patient","name":[{"family":"[[[{{{\\"]]"}],"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const res = await post('/Patient', deep);
    expectOutcome(res, 400, 'too-costly', 'JSON_TOO_DEEP');
  });

  it('answers 400 JSON_ARRAY_TOO_LONG to an array of 200000 items, and keeps serving', async () => {
    const before = await snapshot();
    const huge = `{"resourceType":"Patient","name":[${Array.from({ length: 200_000 }, () => '{}').join(',')}]}`;
    const res = await post('/Patient', huge);
    expectOutcome(res, 400, 'too-costly', 'JSON_ARRAY_TOO_LONG');
    expect(await snapshot()).toEqual(before);
    const read = await t.api.get(`${t.path}/Organization/${t.slug}`);
    expect(read.status).toBe(200);
  });

  it('answers 400 SCHEMA_VIOLATION (not a crash) to nesting just under the guard', async () => {
    const deep = `{"resourceType":"Patient","extension":[{"url":"urn:x","valueString":${'['.repeat(90)}${']'.repeat(90)}}]}`;
    const res = await post('/Patient', deep);
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.extension[0].valueString');
  });
});

describe('body against URL (http.html#update: 400 when the id or type does not match)', () => {
  it('answers 400 RESOURCE_TYPE_MISMATCH when the body type differs from the URL type (create and update)', async () => {
    const before = await snapshot();
    const c = await post('/Patient', JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }));
    expectOutcome(c, 400, 'invalid', 'RESOURCE_TYPE_MISMATCH', 'resourceType');
    const u = await put('/Patient/abc', JSON.stringify({ resourceType: 'Observation', id: 'abc', status: 'final', code: { text: 'x' } }));
    expectOutcome(u, 400, 'invalid', 'RESOURCE_TYPE_MISMATCH', 'resourceType');
    const missing = await post('/Patient', JSON.stringify({ name: [{ family: 'x' }] }));
    expectOutcome(missing, 400, 'invalid', 'RESOURCE_TYPE_MISMATCH', 'resourceType');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 RESOURCE_ID_MISMATCH when the body id differs from the URL id, and changes nothing', async () => {
    const p = await create(t, patient);
    const before = await snapshot();
    const res = await put(`/Patient/${p.id}`, JSON.stringify({ ...p, id: 'someone-else', gender: 'male' }));
    expectOutcome(res, 400, 'invalid', 'RESOURCE_ID_MISMATCH', 'Patient.id');
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.gender).toBe('female');
    expect((await t.api.get(`${t.path}/Patient/someone-else`)).status).toBe(404);
  });

  it('answers 400 RESOURCE_ID_MISSING when an update body carries no id', async () => {
    const p = await create(t, patient);
    const { id: _id, ...noId } = p;
    const res = await put(`/Patient/${p.id}`, JSON.stringify(noId));
    expectOutcome(res, 400, 'invalid', 'RESOURCE_ID_MISSING', 'Patient.id');
  });
});

describe('ids (http.html#general: id = [A-Za-z0-9-.]{1,64})', () => {
  const bad = ['bad_id', 'has space', 'a*b', 'ünïcode', 'x'.repeat(65)];

  it.each(bad)('answers 400 ID_INVALID to update of %j, and stores nothing', async (id) => {
    const before = await snapshot();
    const res = await put(`/Patient/${encodeURIComponent(id)}`, JSON.stringify({ ...patient, id }));
    expectOutcome(res, 400, 'invalid', 'ID_INVALID');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 ID_INVALID on read, vread, delete, patch, history and $validate of a malformed id', async () => {
    const id = encodeURIComponent('x'.repeat(65));
    expectOutcome(await t.api.get(`${t.path}/Patient/${id}`), 400, 'invalid', 'ID_INVALID');
    expectOutcome(await t.api.get(`${t.path}/Patient/${id}/_history/1`), 400, 'invalid', 'ID_INVALID');
    expectOutcome(await t.api.get(`${t.path}/Patient/${id}/_history`), 400, 'invalid', 'ID_INVALID');
    expectOutcome(await t.api.delete(`${t.path}/Patient/bad_id`), 400, 'invalid', 'ID_INVALID');
    expectOutcome(
      await t.api.patch(`${t.path}/Patient/bad_id`).set('Content-Type', 'application/json-patch+json').send('[]'),
      400,
      'invalid',
      'ID_INVALID',
    );
    expectOutcome(await post('/Patient/bad_id/$validate?mode=delete', JSON.stringify({ resourceType: 'Parameters' })), 400, 'invalid', 'ID_INVALID');
  });

  it('accepts exactly 64 characters', async () => {
    const id = 'a'.repeat(60) + '-1.Z';
    const res = await put(`/Patient/${id}`, JSON.stringify({ ...patient, id }));
    expect(res.status).toBe(201);
    expect(res.body.id).toBe(id);
  });

  it('answers 400 URL_MALFORMED to broken percent-encoding', async () => {
    expectOutcome(await t.api.get(`${t.path}/Patient/%E0%A4%A`), 400, 'invalid', 'URL_MALFORMED');
  });
});

describe('not found (http.html#read: 404)', () => {
  it('answers 404 RESOURCE_TYPE_UNKNOWN to an unknown or mis-cased resource type, for reads and writes', async () => {
    expectOutcome(await t.api.get(`${t.path}/Patientt`), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
    expectOutcome(await t.api.get(`${t.path}/patient/1`), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
    const before = await snapshot();
    expectOutcome(await post('/Widget', JSON.stringify({ resourceType: 'Widget' })), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 404 TENANT_UNKNOWN for a tenant that does not exist, before reading the body', async () => {
    expectOutcome(await t.api.get('/fhir/no-such-tenant-x/metadata'), 404, 'not-found', 'TENANT_UNKNOWN');
    expectOutcome(await t.api.get('/fhir/NOT_A_SLUG/Patient'), 404, 'not-found', 'TENANT_UNKNOWN');
    const res = await t.api.post('/fhir/no-such-tenant-x/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(patient));
    expectOutcome(res, 404, 'not-found', 'TENANT_UNKNOWN');
  });

  it('answers 404 VERSION_NOT_FOUND for a version that does not exist', async () => {
    const p = await create(t, patient);
    expectOutcome(await t.api.get(`${t.path}/Patient/${p.id}/_history/2`), 404, 'not-found', 'VERSION_NOT_FOUND');
    expectOutcome(await t.api.get(`${t.path}/Patient/${p.id}/_history/0`), 404, 'not-found', 'VERSION_NOT_FOUND');
    expectOutcome(await t.api.get(`${t.path}/Patient/${p.id}/_history/abc`), 404, 'not-found', 'VERSION_NOT_FOUND');
    expectOutcome(await t.api.get(`${t.path}/Patient/${p.id}/_history/99999999999999`), 404, 'not-found', 'VERSION_NOT_FOUND');
    expectOutcome(await t.api.get(`${t.path}/Patient/nobody/_history/1`), 404, 'not-found', 'VERSION_NOT_FOUND');
  });

  it('answers 404 for unknown paths and operations', async () => {
    expectOutcome(await t.api.get(`${t.path}/Patient/1/2/3/4/5`), 404, 'not-found', 'PATH_UNKNOWN');
    expectOutcome(await t.api.get(`${t.path}/$nope`), 404, 'not-found', 'PATH_UNKNOWN');
    expectOutcome(await post('/Patient/$nope', '{}'), 404, 'not-supported', 'OPERATION_UNKNOWN');
    expectOutcome(await t.api.get('/nothing-here'), 404, 'not-found', 'PATH_UNKNOWN');
  });
});

describe('conditional read headers (http.html#cread)', () => {
  it('serves the resource (200) when If-None-Match holds an entity tag it cannot parse', async () => {
    const p = await create(t, patient);
    for (const tag of ['W/"abc1"', 'garbage 7', '"x"']) {
      const res = await t.api.get(`${t.path}/Patient/${p.id}`).set('If-None-Match', tag);
      expect({ tag, status: res.status }).toEqual({ tag, status: 200 });
    }
    expect((await t.api.get(`${t.path}/Patient/${p.id}`).set('If-None-Match', 'W/"9", W/"1"')).status).toBe(304);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`).set('If-None-Match', '*')).status).toBe(304);
  });

  it('ignores an unparseable If-Modified-Since', async () => {
    const p = await create(t, patient);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`).set('If-Modified-Since', 'last tuesday')).status).toBe(200);
  });
});

describe('methods (405) and formats (406)', () => {
  it('answers 405 METHOD_NOT_ALLOWED to DELETE on metadata and PATCH on the base, with an Allow header', async () => {
    const del = await t.api.delete(`${t.path}/metadata`);
    expectOutcome(del, 405, 'not-supported', 'METHOD_NOT_ALLOWED');
    expect(del.headers.allow).toBe('GET, HEAD');
    const patch = await t.api.patch(t.path).set('Content-Type', 'application/json-patch+json').send('[]');
    expectOutcome(patch, 405, 'not-supported', 'METHOD_NOT_ALLOWED');
    expect(patch.headers.allow).toBe('GET, HEAD, POST');
  });

  it('answers 405 to other methods the path does not take', async () => {
    const p = await create(t, patient);
    const cases: [Response, string][] = [
      [await t.api.post(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(p)), 'GET, HEAD, PUT, PATCH, DELETE'],
      [await t.api.put(`${t.path}/_history`).set('Content-Type', FHIR_JSON).send('{}'), 'GET, HEAD'],
      [await t.api.delete(`${t.path}/Patient/_history`), 'GET, HEAD'],
      [await t.api.get(`${t.path}/Patient/_search`), 'POST'],
      [await t.api.get(`${t.path}/Patient/$validate`), 'POST'],
      [await t.api.put(`${t.path}/Patient/${p.id}/_history/1`).set('Content-Type', FHIR_JSON).send('{}'), 'GET, HEAD'],
      [await t.api.put(t.path).set('Content-Type', FHIR_JSON).send('{}'), 'GET, HEAD, POST'],
    ];
    for (const [res, allow] of cases) {
      expectOutcome(res, 405, 'not-supported', 'METHOD_NOT_ALLOWED');
      expect(res.headers.allow).toBe(allow);
    }
  });

  it('answers 406 FORMAT_UNSUPPORTED to Accept: application/fhir+xml', async () => {
    const res = await t.api.get(`${t.path}/metadata`).set('Accept', 'application/fhir+xml');
    expectOutcome(res, 406, 'not-supported', 'FORMAT_UNSUPPORTED');
  });

  it('answers 406 FORMAT_UNSUPPORTED to _format=xml and _format=application/fhir+xml', async () => {
    expectOutcome(await t.api.get(`${t.path}/metadata?_format=xml`), 406, 'not-supported', 'FORMAT_UNSUPPORTED');
    expectOutcome(await t.api.get(`${t.path}/Patient?_format=${encodeURIComponent('application/fhir+xml')}`), 406, 'not-supported', 'FORMAT_UNSUPPORTED');
  });

  it('answers 406 to a write asking for XML back, and stores nothing', async () => {
    const before = await snapshot();
    const res = await post('/Patient?_format=xml', JSON.stringify(patient));
    expectOutcome(res, 406, 'not-supported', 'FORMAT_UNSUPPORTED');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 406 to a FHIR version other than R4 in Accept', async () => {
    const res = await t.api.get(`${t.path}/metadata`).set('Accept', 'application/fhir+json; fhirVersion=3.0');
    expectOutcome(res, 406, 'not-supported', 'FORMAT_UNSUPPORTED');
    const r4 = await t.api.get(`${t.path}/metadata`).set('Accept', 'application/fhir+json; fhirVersion=4.0');
    expect(r4.status).toBe(200);
  });

  it('serves JSON for Accept values that include JSON or wildcards', async () => {
    for (const accept of ['application/json', 'application/fhir+json', '*/*', 'text/html, application/xhtml+xml, */*;q=0.8', 'application/fhir+xml;q=1, application/fhir+json;q=0.9']) {
      const res = await t.api.get(`${t.path}/metadata`).set('Accept', accept);
      expect({ accept, status: res.status }).toEqual({ accept, status: 200 });
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    }
  });
});

describe('schema violations (validation: 400 with a FHIRPath expression per issue)', () => {
  it('answers 400 SCHEMA_VIOLATION at Patient.birthDate to a malformed date, and stores nothing', async () => {
    const before = await snapshot();
    const res = await post('/Patient', JSON.stringify({ ...patient, birthDate: '03/02/1980' }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.birthDate');
    expect(res.body.issue[0].expression).toEqual(['Patient.birthDate']);
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 at the element for an impossible calendar date', async () => {
    const res = await post('/Patient', JSON.stringify({ ...patient, birthDate: '1980-13-45' }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.birthDate');
  });

  it('answers 400 SCHEMA_VIOLATION naming an unknown element', async () => {
    const res = await post('/Patient', JSON.stringify({ ...patient, favouriteColour: 'blue' }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.favouriteColour');
  });

  it('answers 400 SCHEMA_VIOLATION naming an element of the wrong type', async () => {
    const res = await post('/Patient', JSON.stringify({ ...patient, active: 'yes' }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.active');
    const nested = await post('/Patient', JSON.stringify({ ...patient, name: [{ family: ['Ng'] }] }));
    expectOutcome(nested, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.name[0].family');
    const notArray = await post('/Patient', JSON.stringify({ ...patient, name: { family: 'Ng' } }));
    expectOutcome(notArray, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.name');
  });

  it('answers 400 naming a bad code, and reports every issue at once', async () => {
    const res = await post('/Patient', JSON.stringify({ ...patient, gender: 'bogus', birthDate: 'yesterday', extra: 1 }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION');
    const where = res.body.issue.flatMap((i: { expression: string[] }) => i.expression);
    expect(where).toEqual(expect.arrayContaining(['Patient.gender', 'Patient.birthDate', 'Patient.extra']));
  });

  it('answers 400 for an invalid update body and leaves the current version', async () => {
    const p = await create(t, patient);
    const before = await snapshot();
    const res = await put(`/Patient/${p.id}`, JSON.stringify({ ...p, birthDate: 'soon' }));
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.birthDate');
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.birthDate).toBe('1980-02-03');
  });

  it('validates contained resources with their own type', async () => {
    const res = await post(
      '/Observation',
      JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, contained: [{ resourceType: 'Patient', id: 'p1', birthDate: 'nope' }], subject: { reference: '#p1' } }),
    );
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Observation.contained[0].birthDate');
  });
});

describe('references (references.html: literal references must resolve inside the tenant)', () => {
  const obs = (ref: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: ref } });

  it('answers 400 REFERENCE_NOT_FOUND at Observation.subject.reference for a Patient the tenant does not hold', async () => {
    const before = await snapshot();
    const res = await post('/Observation', JSON.stringify(obs('Patient/does-not-exist')));
    expectOutcome(res, 400, 'not-found', 'REFERENCE_NOT_FOUND', 'Observation.subject.reference');
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 for a reference to a deleted Patient, and accepts one to a live Patient', async () => {
    const p = await create(t, patient);
    expect((await post('/Observation', JSON.stringify(obs(`Patient/${p.id}`)))).status).toBe(201);
    expect((await t.api.delete(`${t.path}/Patient/${p.id}`)).status).toBe(204);
    const res = await post('/Observation', JSON.stringify(obs(`Patient/${p.id}`)));
    expectOutcome(res, 400, 'not-found', 'REFERENCE_NOT_FOUND', 'Observation.subject.reference');
  });

  it('answers 400 REFERENCE_INVALID to a malformed reference and REFERENCE_OTHER_TENANT to another tenant', async () => {
    expectOutcome(await post('/Observation', JSON.stringify(obs('Widget/1'))), 400, 'value', 'REFERENCE_INVALID', 'Observation.subject.reference');
    expectOutcome(await post('/Observation', JSON.stringify(obs(`${server.origin}/fhir/other-tenant/Patient/1`))), 400, 'business-rule', 'REFERENCE_OTHER_TENANT', 'Observation.subject.reference');
  });

  it('accepts the same reference once the tenant turns referential integrity off', async () => {
    const loose = await newTenant(server, 'loose');
    const res = await loose.api.post(`${loose.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify(obs('Patient/does-not-exist')));
    expectOutcome(res, 400, 'not-found', 'REFERENCE_NOT_FOUND', 'Observation.subject.reference');
    await updateTenantSettings(server.deps.db, loose.slug, { referentialIntegrity: false });
    // The tenant cache lives per app: a fresh server reads the new settings at once.
    const fresh = await startServer();
    try {
      const api = await onServer(fresh, loose);
      const again = await api.post(`${loose.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify(obs('Patient/does-not-exist')));
      expect(again.status).toBe(201);
      expect(again.body.subject.reference).toBe('Patient/does-not-exist');
      const cap = await api.get(`${loose.path}/metadata`);
      expect(cap.body.rest[0].resource.find((r: { type: string }) => r.type === 'Observation').referencePolicy).not.toContain('enforced');
      // Malformed references are still refused.
      const bad = await api.post(`${loose.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify(obs('Widget/1')));
      expectOutcome(bad, 400, 'value', 'REFERENCE_INVALID', 'Observation.subject.reference');
    } finally {
      await fresh.close();
    }
  });
});
