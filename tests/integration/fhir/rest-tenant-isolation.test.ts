// Tenant isolation over the REST API (STYLE.md §3: another tenant's resource is `not-found`, indistinguishable
// from a missing one): tenant A's base used with tenant B's ids sees nothing, and writes through A never touch B.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
/** B's resources (ids), created in beforeAll. */
let pB: Record<string, any>;
let oB: Record<string, any>;
const SYS = 'urn:iso:mrn';

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'iso-a');
  b = await newTenant(server, 'iso-b');
  pB = await create(b, { resourceType: 'Patient', identifier: [{ system: SYS, value: 'B-1' }], name: [{ family: 'Bravo' }], gender: 'female' });
  const v2 = await b.api.put(`${b.path}/Patient/${pB.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...pB, gender: 'other' }));
  expect(v2.status).toBe(200);
  pB = v2.body;
  oB = await create(b, { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${pB.id}` } });
  await create(a, { resourceType: 'Patient', identifier: [{ system: SYS, value: 'A-1' }], name: [{ family: 'Alpha' }] });
});
afterAll(async () => server.close());

/** B's state must be exactly as set up: Patient v2 (gender other), Observation v1, and nothing else new. */
async function expectBUntouched(): Promise<void> {
  const p = await b.api.get(`${b.path}/Patient/${pB.id}`);
  expect(p.status).toBe(200);
  expect(p.body).toEqual(pB);
  const o = await b.api.get(`${b.path}/Observation/${oB.id}`);
  expect(o.body).toEqual(oB);
  const h = await b.api.get(`${b.path}/_history?_count=1000`);
  expect(h.body.entry.map((e: any) => `${e.request.method} ${e.fullUrl.split('/').slice(-2).join('/')} ${e.response.etag}`)).toEqual([
    `POST Observation/${oB.id} W/"1"`,
    `PUT Patient/${pB.id} W/"2"`,
    `POST Patient/${pB.id} W/"1"`,
    `PUT Organization/${b.slug} W/"1"`,
  ]);
}

function expectNotFound(res: Response, code = 'RESOURCE_NOT_FOUND'): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status: 404, type: 'OperationOutcome' });
  expect(res.body.issue[0].code).toBe('not-found');
  expect(res.body.issue[0].details.coding[0].code).toBe(code);
}

function matchIds(res: Response): string[] {
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode !== 'outcome').map((e: any) => e.resource?.id ?? e.fullUrl);
}

describe('reads through the wrong tenant are 404, like a missing id', () => {
  it('read, vread and instance history of B ids from A answer 404', async () => {
    const read = await a.api.get(`${a.path}/Patient/${pB.id}`);
    expectNotFound(read);
    const missing = await a.api.get(`${a.path}/Patient/no-such-id`);
    // Same shape and wording as a missing id: nothing tells the caller the id exists elsewhere.
    expect(read.body.issue[0].diagnostics.replace(pB.id, 'X')).toBe(missing.body.issue[0].diagnostics.replace('no-such-id', 'X'));
    expectNotFound(await a.api.get(`${a.path}/Patient/${pB.id}/_history/1`), 'VERSION_NOT_FOUND');
    expectNotFound(await a.api.get(`${a.path}/Patient/${pB.id}/_history/2`), 'VERSION_NOT_FOUND');
    expectNotFound(await a.api.get(`${a.path}/Patient/${pB.id}/_history`));
    expectNotFound(await a.api.get(`${a.path}/Observation/${oB.id}`));
    expectNotFound(await a.api.get(`${a.path}/Organization/${b.slug}`));
  });

  it('conditional read headers do not reveal B (still 404)', async () => {
    expectNotFound(await a.api.get(`${a.path}/Patient/${pB.id}`).set('If-None-Match', 'W/"2"'));
  });

  it('search in A finds none of B (GET and POST _search)', async () => {
    expect(matchIds(await a.api.get(`${a.path}/Patient?_id=${pB.id}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Patient?identifier=${encodeURIComponent(`${SYS}|B-1`)}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Patient?family=bravo`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Observation?subject=Patient/${pB.id}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Observation`))).toEqual([]);
    const post = await a.api.post(`${a.path}/Patient/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(`_id=${pB.id}`);
    expect(matchIds(post)).toEqual([]);
    // and B does see its own
    expect(matchIds(await b.api.get(`${b.path}/Patient?_id=${pB.id}`))).toEqual([pB.id]);
  });

  it('type and system history in A list none of B', async () => {
    const type = await a.api.get(`${a.path}/Patient/_history?_count=1000`);
    for (const e of type.body.entry ?? []) expect(e.fullUrl.startsWith(`${a.base}/`)).toBe(true);
    expect(JSON.stringify(type.body)).not.toContain(pB.id);
    const obs = await a.api.get(`${a.path}/Observation/_history`);
    expect(obs.status).toBe(200);
    expect(obs.body.entry).toBeUndefined();
    const sys = await a.api.get(`${a.path}/_history?_count=1000`);
    expect(JSON.stringify(sys.body)).not.toContain(pB.id);
    expect(JSON.stringify(sys.body)).not.toContain(oB.id);
    expect(JSON.stringify(sys.body)).not.toContain(b.slug);
  });

  it('a transaction or batch in A cannot read B', async () => {
    const batch = await a.api
      .post(a.path)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${pB.id}` } }, { request: { method: 'GET', url: `Patient?_id=${pB.id}` } }] }));
    expect(batch.status).toBe(200);
    expect(batch.body.entry[0].response.status).toMatch(/^404/);
    expect(batch.body.entry[1].resource.entry).toBeUndefined();
    const tx = await a.api
      .post(a.path)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: `Patient/${pB.id}` } }] }));
    // A failed read inside a transaction is that entry's answer (src/fhir/bundle/process.ts): 404, never B's data.
    if (tx.status === 200) {
      expect(tx.body.entry[0].response.status).toMatch(/^404/);
      expect(tx.body.entry[0].resource).toBeUndefined();
    } else {
      expect(tx.status).toBe(404);
      expect(tx.body.resourceType).toBe('OperationOutcome');
    }
    expect(JSON.stringify(tx.body)).not.toContain('Bravo');
  });
});

describe('writes through the wrong tenant never touch B', () => {
  it('update of B id from A creates A\'s own resource (201), leaving B as it was', async () => {
    const res = await a.api.put(`${a.path}/Patient/${pB.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', id: pB.id, name: [{ family: 'Alpha-copy' }] }));
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.location).toBe(`${a.base}/Patient/${pB.id}/_history/1`);
    expect((await a.api.get(`${a.path}/Patient/${pB.id}`)).body.name[0].family).toBe('Alpha-copy');
    await expectBUntouched();
    // deleting A's copy leaves B's original alone
    expect((await a.api.delete(`${a.path}/Patient/${pB.id}`)).status).toBe(204);
    expect((await a.api.get(`${a.path}/Patient/${pB.id}`)).status).toBe(410);
    await expectBUntouched();
  });

  it('delete of a B id from A is a no-op 204 there, and B keeps its resource', async () => {
    const res = await a.api.delete(`${a.path}/Observation/${oB.id}`);
    expect(res.status).toBe(204);
    expectNotFound(await a.api.get(`${a.path}/Observation/${oB.id}`));
    await expectBUntouched();
  });

  it('If-Match writes and PATCH on B ids from A fail as if the resource did not exist', async () => {
    const put = await a.api.put(`${a.path}/Observation/${oB.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"1"').send(JSON.stringify({ ...oB, status: 'amended' }));
    expect(put.status).toBe(412);
    expect(put.body.issue[0].details.coding[0].code).toBe('VERSION_CONFLICT');
    const del = await a.api.delete(`${a.path}/Observation/${oB.id}`).set('If-Match', 'W/"1"');
    expect(del.status).toBe(412);
    const patch = await a.api.patch(`${a.path}/Observation/${oB.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }]));
    expectNotFound(patch);
    await expectBUntouched();
  });

  it('conditional create, update, delete and patch in A ignore B\'s matching resources', async () => {
    const ident = encodeURIComponent(`${SYS}|B-1`);
    const patch = await a.api.patch(`${a.path}/Patient?identifier=${ident}`).set('Content-Type', 'application/json-patch+json').send('[]');
    expectNotFound(patch, 'CONDITION_NO_MATCH');
    const del = await a.api.delete(`${a.path}/Patient?identifier=${ident}`);
    expect(del.status).toBe(204);
    await expectBUntouched();
    const cc = await a.api.post(`${a.path}/Patient`).set('Content-Type', FHIR_JSON).set('If-None-Exist', `identifier=${SYS}|B-1`).send(JSON.stringify({ resourceType: 'Patient', identifier: [{ system: SYS, value: 'B-1' }] }));
    expect(cc.status).toBe(201);
    expect(cc.body.id).not.toBe(pB.id);
    const cu = await a.api.put(`${a.path}/Patient?identifier=${encodeURIComponent(`${SYS}|B-2`)}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', id: pB.id, identifier: [{ system: SYS, value: 'B-2' }] }));
    expect(cu.status).toBe(201);
    await expectBUntouched();
  });

  it('A cannot reference B\'s resources, by relative or absolute reference', async () => {
    const rel = await a.api.post(`${a.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Observation/${oB.id}` } }));
    expect(rel.status).toBe(400);
    expect(rel.body.issue[0].details.coding[0].code).toBe('REFERENCE_NOT_FOUND');
    expect(rel.body.issue[0].expression).toEqual(['Observation.subject.reference']);
    const abs = await a.api.post(`${a.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `${b.base}/Patient/${pB.id}` } }));
    expect(abs.status).toBe(400);
    expect(abs.body.issue[0].details.coding[0].code).toBe('REFERENCE_OTHER_TENANT');
    await expectBUntouched();
  });

  it('$validate in A treats B ids as unknown', async () => {
    const del = await a.api.post(`${a.path}/Observation/${oB.id}/$validate?mode=delete`).set('Content-Type', FHIR_JSON).send('{"resourceType":"Parameters"}');
    expect(del.status).toBe(200);
    expect(del.body.issue[0]).toMatchObject({ severity: 'error', code: 'not-found' });
    const ref = await a.api.post(`${a.path}/Observation/$validate`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Observation/${oB.id}` } }));
    expect(ref.body.issue[0].details.coding[0].code).toBe('REFERENCE_NOT_FOUND');
  });

  it('a transaction in A writing B ids creates A\'s own resources only', async () => {
    const tx = await a.api
      .post(a.path)
      .set('Content-Type', FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Observation', id: oB.id, status: 'preliminary', code: { text: 'tx' } }, request: { method: 'PUT', url: `Observation/${oB.id}` } },
            { request: { method: 'DELETE', url: `Patient/${pB.id}` } },
          ],
        }),
      );
    expect(tx.status).toBe(200);
    expect(tx.body.entry[0].response.status).toBe('201 Created');
    await expectBUntouched();
  });
});
