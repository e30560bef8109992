// read, vread, create, update, delete and their headers (http.html#read ... #delete)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server);
});
afterAll(async () => server.close());

const patient = { resourceType: 'Patient', name: [{ family: 'Ng', given: ['Ann'] }], gender: 'female', birthDate: '1980-02-03' };

describe('create (http.html#create)', () => {
  it('assigns id, versionId 1 and lastUpdated, and answers 201 with Location, ETag and Last-Modified', async () => {
    const res = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient, id: 'client-id', meta: { versionId: '9', lastUpdated: '2001-01-01T00:00:00Z' } }));
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe('client-id');
    expect(res.body.meta.versionId).toBe('1');
    expect(Date.parse(res.body.meta.lastUpdated)).toBeGreaterThan(Date.parse('2020-01-01'));
    expect(res.headers.location).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers['last-modified']).toBe(new Date(res.body.meta.lastUpdated).toUTCString());
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  });

  it('honours Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).set('Prefer', 'return=minimal').send(JSON.stringify(patient));
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    const oo = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).set('Prefer', 'return=OperationOutcome').send(JSON.stringify(patient));
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
  });

  it('accepts application/json as well as application/fhir+json', async () => {
    const res = await t.api.post(`${t.path}/Patient`).set('Content-Type', 'application/json').send(JSON.stringify(patient));
    expect(res.status).toBe(201);
  });
});

describe('read and vread (http.html#read, #vread)', () => {
  it('reads the current version with ETag and Last-Modified', async () => {
    const p = await create(t, patient);
    const res = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Patient', id: p.id, name: patient.name });
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers['last-modified']).toBe(new Date(p.meta.lastUpdated).toUTCString());
  });

  it('answers 404 with an OperationOutcome for an unknown id and for a version that does not exist', async () => {
    const missing = await t.api.get(`${t.path}/Patient/does-not-exist`);
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    expect(missing.body.issue[0].code).toBe('not-found');
    const p = await create(t, patient);
    const v = await t.api.get(`${t.path}/Patient/${p.id}/_history/7`);
    expect(v.status).toBe(404);
    expect(v.body.issue[0].code).toBe('not-found');
  });

  it('answers 304 to If-None-Match with the current ETag and to If-Modified-Since after the change', async () => {
    const p = await create(t, patient);
    const inm = await t.api.get(`${t.path}/Patient/${p.id}`).set('If-None-Match', 'W/"1"');
    expect(inm.status).toBe(304);
    const stale = await t.api.get(`${t.path}/Patient/${p.id}`).set('If-None-Match', 'W/"0"');
    expect(stale.status).toBe(200);
    const later = new Date(Date.parse(p.meta.lastUpdated) + 5000).toUTCString();
    expect((await t.api.get(`${t.path}/Patient/${p.id}`).set('If-Modified-Since', later)).status).toBe(304);
    const earlier = new Date(Date.parse(p.meta.lastUpdated) - 5000).toUTCString();
    expect((await t.api.get(`${t.path}/Patient/${p.id}`).set('If-Modified-Since', earlier)).status).toBe(200);
  });

  it('applies _summary and _elements and tags the subset SUBSETTED', async () => {
    const p = await create(t, { ...patient, text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>' }, maritalStatus: { text: 'M' } });
    const summary = await t.api.get(`${t.path}/Patient/${p.id}?_summary=true`);
    expect(summary.body.name).toBeDefined();
    expect(summary.body.maritalStatus).toBeUndefined();
    expect(summary.body.text).toBeUndefined();
    expect(summary.body.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
    const elements = await t.api.get(`${t.path}/Patient/${p.id}?_elements=gender`);
    expect(Object.keys(elements.body).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    const pretty = await t.api.get(`${t.path}/Patient/${p.id}?_pretty=true`);
    expect(pretty.text).toContain('\n  "');
  });
});

describe('update (http.html#update)', () => {
  it('creates version 2 with a new ETag, and vread still returns version 1', async () => {
    const p = await create(t, patient);
    const res = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'other' }));
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers.location).toBe(`${t.base}/Patient/${p.id}/_history/2`);
    const v1 = await t.api.get(`${t.path}/Patient/${p.id}/_history/1`);
    expect(v1.body.gender).toBe('female');
    expect(v1.headers.etag).toBe('W/"1"');
  });

  it('answers 412 when If-Match names an older version, and changes nothing', async () => {
    const p = await create(t, patient);
    const res = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"0"').send(JSON.stringify({ ...p, gender: 'male' }));
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const after = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(after.body.gender).toBe('female');
    expect(after.body.meta.versionId).toBe('1');
    const ok = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"1"').send(JSON.stringify({ ...p, gender: 'male' }));
    expect(ok.status).toBe(200);
  });

  it('creates a resource with a client-assigned id (update as create) with 201', async () => {
    const res = await t.api.put(`${t.path}/Patient/my-id-1`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient, id: 'my-id-1' }));
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('my-id-1');
    expect(res.headers.location).toBe(`${t.base}/Patient/my-id-1/_history/1`);
  });
});

describe('delete (http.html#delete)', () => {
  it('deletes, then read answers 410 and vread of the deletion 410, history keeps both versions', async () => {
    const p = await create(t, patient);
    const del = await t.api.delete(`${t.path}/Patient/${p.id}`);
    expect(del.status).toBe(204);
    const read = await t.api.get(`${t.path}/Patient/${p.id}`);
    expect(read.status).toBe(410);
    expect(read.body.issue[0].code).toBe('deleted');
    expect((await t.api.get(`${t.path}/Patient/${p.id}/_history/1`)).status).toBe(200);
    expect((await t.api.get(`${t.path}/Patient/${p.id}/_history/2`)).status).toBe(410);
    const h = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
    expect(h.body.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'POST']);
    // deleting again has no effect
    expect((await t.api.delete(`${t.path}/Patient/${p.id}`)).status).toBe(204);
    // a PUT brings it back to life with the next version
    const back = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patient, id: p.id }));
    expect(back.status).toBe(201);
    expect(back.body.meta.versionId).toBe('3');
  });
});
