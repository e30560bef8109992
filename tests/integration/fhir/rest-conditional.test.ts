// Conditional create, update, delete and patch, and version-aware writes (http.html#ccreate, #cond-update,
// #cdelete, #patch, #concurrency; REST.md §4).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer({ dbPoolSize: 8 });
  t = await newTenant(server, 'cond');
});
afterAll(async () => server.close());

const SYS = 'urn:oid:1.2.3.4';
const JSON_PATCH = 'application/json-patch+json';

function fresh(): string {
  return randomBytes(6).toString('hex');
}

function patientWith(value: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Patient', identifier: [{ system: SYS, value }], name: [{ family: 'Cond' }], ...extra };
}

function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string, expression?: string): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0].severity).toBe('error');
  expect(res.body.issue[0].code).toBe(issueCode);
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  if (expression) expect(res.body.issue[0].expression).toContain(expression);
  expect(res.text).not.toMatch(/\n\s+at |node_modules/);
}

/** Ids of the Patients carrying the identifier (search, so deleted ones are excluded). */
async function idsFor(value: string): Promise<string[]> {
  const res = await t.api.get(`${t.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}&_count=100`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
}

async function historyCount(): Promise<number> {
  const res = await t.api.get(`${t.path}/Patient/_history?_count=1000`);
  return (res.body.entry ?? []).length;
}

const postWithCondition = (body: Record<string, unknown>, condition: string) =>
  t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).set('If-None-Exist', condition).send(JSON.stringify(body));

describe('conditional create (http.html#ccreate: If-None-Exist)', () => {
  it('creates when nothing matches (201)', async () => {
    const v = fresh();
    const res = await postWithCondition(patientWith(v), `identifier=${SYS}|${v}`);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(await idsFor(v)).toEqual([res.body.id]);
  });

  it('answers 200 with the existing resource when exactly one matches, and writes nothing', async () => {
    const v = fresh();
    const first = await create(t, patientWith(v, { gender: 'female' }));
    const before = await historyCount();
    const res = await postWithCondition(patientWith(v, { gender: 'male' }), `identifier=${SYS}|${v}`);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(first.id);
    expect(res.body.gender).toBe('female');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.etag).toBe('W/"1"');
    expect(await historyCount()).toBe(before);
    expect(await idsFor(v)).toEqual([first.id]);
  });

  it('accepts the condition with a leading "Patient?" and with percent-encoding', async () => {
    const v = fresh();
    const first = await create(t, patientWith(v));
    const a = await postWithCondition(patientWith(v), `Patient?identifier=${SYS}|${v}`);
    expect([a.status, a.body.id]).toEqual([200, first.id]);
    const b = await postWithCondition(patientWith(v), `identifier=${encodeURIComponent(`${SYS}|${v}`)}`);
    expect([b.status, b.body.id]).toEqual([200, first.id]);
  });

  it('answers 412 CONDITION_MULTIPLE_MATCHES when two or more match, and writes nothing', async () => {
    const v = fresh();
    await create(t, patientWith(v));
    await create(t, patientWith(v));
    const before = await historyCount();
    const res = await postWithCondition(patientWith(v), `identifier=${SYS}|${v}`);
    expectOutcome(res, 412, 'multiple-matches', 'CONDITION_MULTIPLE_MATCHES');
    expect(await historyCount()).toBe(before);
    expect(await idsFor(v)).toHaveLength(2);
  });

  it('answers 400 to a condition with no usable criteria or an unknown parameter', async () => {
    expectOutcome(await postWithCondition(patientWith(fresh()), ''), 400, 'invalid', 'CONDITION_EMPTY');
    expectOutcome(await postWithCondition(patientWith(fresh()), '_count=1'), 400, 'invalid', 'CONDITION_EMPTY');
    expectOutcome(await postWithCondition(patientWith(fresh()), 'favourite-colour=blue'), 400, 'not-supported', 'SEARCH_PARAM_UNKNOWN');
  });

  it('still validates the body when nothing matches', async () => {
    const v = fresh();
    const res = await postWithCondition(patientWith(v, { birthDate: 'never' }), `identifier=${SYS}|${v}`);
    expectOutcome(res, 400, 'structure', 'SCHEMA_VIOLATION', 'Patient.birthDate');
    expect(await idsFor(v)).toEqual([]);
  });

  it('8 concurrent conditional creates with the same identifier produce exactly one resource', async () => {
    const v = fresh();
    const results = await Promise.all(Array.from({ length: 8 }, () => postWithCondition(patientWith(v), `identifier=${SYS}|${v}`)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    const ids = new Set(results.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(await idsFor(v)).toEqual([...ids]);
  });

  it('8 concurrent conditional creates spelling the same condition differently still produce one resource', async () => {
    const v = fresh();
    const spellings = [`identifier=${SYS}|${v}`, `identifier=${encodeURIComponent(`${SYS}|${v}`)}`, `Patient?identifier=${SYS}|${v}`, `identifier=${SYS}%7C${v}`];
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => postWithCondition(patientWith(v), spellings[i % spellings.length])));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(7);
    expect(await idsFor(v)).toHaveLength(1);
  });

  it('concurrent conditional creates and conditional updates on the same identifier produce one resource', async () => {
    const v = fresh();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0
          ? postWithCondition(patientWith(v), `identifier=${SYS}|${v}`)
          : t.api.put(`${t.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${v}`)}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patientWith(v))),
      ),
    );
    for (const r of results) expect([200, 201]).toContain(r.status);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(await idsFor(v)).toHaveLength(1);
  });
});

describe('conditional update (http.html#cond-update: PUT [type]?[search])', () => {
  const putWhere = (value: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.api
      .put(`${t.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}`)
      .set({ 'Content-Type': FHIR_JSON, ...headers })
      .send(JSON.stringify(body));

  it('creates when nothing matches and the body has no id (201)', async () => {
    const v = fresh();
    const res = await putWhere(v, patientWith(v));
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.location).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(await idsFor(v)).toEqual([res.body.id]);
  });

  it('creates with the body id when nothing matches and the body has an id (update as create)', async () => {
    const v = fresh();
    const id = `cu-${v}`;
    const res = await putWhere(v, patientWith(v, { id }));
    expect(res.status).toBe(201);
    expect(res.body.id).toBe(id);
    expect(await idsFor(v)).toEqual([id]);
  });

  it('updates the single match (200, next version), with or without the matching id in the body', async () => {
    const v = fresh();
    const p = await create(t, patientWith(v));
    const a = await putWhere(v, patientWith(v, { gender: 'male' }));
    expect(a.status).toBe(200);
    expect(a.body.id).toBe(p.id);
    expect(a.body.meta.versionId).toBe('2');
    expect(a.headers.etag).toBe('W/"2"');
    const b = await putWhere(v, patientWith(v, { id: p.id, gender: 'other' }));
    expect(b.status).toBe(200);
    expect(b.body.meta.versionId).toBe('3');
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.gender).toBe('other');
    expect(await idsFor(v)).toEqual([p.id]);
  });

  it('answers 400 RESOURCE_ID_MISMATCH when the body id differs from the single match, and changes nothing', async () => {
    const v = fresh();
    const p = await create(t, patientWith(v));
    const before = await historyCount();
    const res = await putWhere(v, patientWith(v, { id: 'someone-else', gender: 'male' }));
    expectOutcome(res, 400, 'invalid', 'RESOURCE_ID_MISMATCH', 'Patient.id');
    expect(await historyCount()).toBe(before);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
    expect((await t.api.get(`${t.path}/Patient/someone-else`)).status).toBe(404);
  });

  it('answers 409 CONDITION_ID_CONFLICT when nothing matches but the body id names another live resource', async () => {
    const other = await create(t, patientWith(fresh()));
    const v = fresh();
    const before = await historyCount();
    const res = await putWhere(v, patientWith(v, { id: other.id }));
    expectOutcome(res, 409, 'conflict', 'CONDITION_ID_CONFLICT', 'Patient.id');
    expect(await historyCount()).toBe(before);
    expect((await t.api.get(`${t.path}/Patient/${other.id}`)).body).toEqual(other);
  });

  it('answers 412 CONDITION_MULTIPLE_MATCHES when two or more match, and changes nothing', async () => {
    const v = fresh();
    await create(t, patientWith(v));
    await create(t, patientWith(v));
    const before = await historyCount();
    const res = await putWhere(v, patientWith(v, { gender: 'male' }));
    expectOutcome(res, 412, 'multiple-matches', 'CONDITION_MULTIPLE_MATCHES');
    expect(await historyCount()).toBe(before);
  });

  it('honours If-Match on the matched resource (412 when stale)', async () => {
    const v = fresh();
    await create(t, patientWith(v));
    expectOutcome(await putWhere(v, patientWith(v), { 'If-Match': 'W/"5"' }), 412, 'conflict', 'VERSION_CONFLICT');
    expect((await putWhere(v, patientWith(v), { 'If-Match': 'W/"1"' })).status).toBe(200);
  });

  it('answers 400 CONDITION_EMPTY to PUT on the type without criteria', async () => {
    const res = await t.api.put(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patientWith(fresh())));
    expectOutcome(res, 400, 'invalid', 'CONDITION_EMPTY');
    const onlyFormat = await t.api.put(`${t.path}/Patient?_format=json`).set('Content-Type', FHIR_JSON).send(JSON.stringify(patientWith(fresh())));
    expectOutcome(onlyFormat, 400, 'invalid', 'CONDITION_EMPTY');
  });

  it('8 concurrent conditional updates on a fresh identifier produce exactly one resource', async () => {
    const v = fresh();
    const results = await Promise.all(Array.from({ length: 8 }, () => putWhere(v, patientWith(v))));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(await idsFor(v)).toHaveLength(1);
    const [id] = await idsFor(v);
    expect((await t.api.get(`${t.path}/Patient/${id}`)).body.meta.versionId).toBe('8');
  });
});

describe('conditional delete (http.html#cdelete: DELETE [type]?[search])', () => {
  const deleteWhere = (value: string) => t.api.delete(`${t.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}`);

  it('answers 204 and does nothing when nothing matches', async () => {
    const before = await historyCount();
    const res = await deleteWhere(fresh());
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await historyCount()).toBe(before);
  });

  it('deletes the single match: read answers 410 and search no longer finds it', async () => {
    const v = fresh();
    const p = await create(t, patientWith(v));
    const res = await deleteWhere(v);
    expect(res.status).toBe(204);
    expect(res.headers.etag).toBe('W/"2"');
    const read = await t.api.get(`${t.path}/Patient/${p.id}`);
    expectOutcome(read, 410, 'deleted', 'RESOURCE_DELETED');
    expect(await idsFor(v)).toEqual([]);
    const h = await t.api.get(`${t.path}/Patient/${p.id}/_history`);
    expect(h.body.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'POST']);
  });

  it('answers 412 CONDITION_MULTIPLE_MATCHES when two or more match, and deletes none', async () => {
    const v = fresh();
    const a = await create(t, patientWith(v));
    const b = await create(t, patientWith(v));
    const before = await historyCount();
    const res = await deleteWhere(v);
    expectOutcome(res, 412, 'multiple-matches', 'CONDITION_MULTIPLE_MATCHES');
    expect(await historyCount()).toBe(before);
    expect(await idsFor(v)).toEqual([a.id, b.id].sort());
  });

  it('answers 400 CONDITION_EMPTY to DELETE on the type without criteria, and 400 to unknown criteria', async () => {
    expectOutcome(await t.api.delete(`${t.path}/Patient`), 400, 'invalid', 'CONDITION_EMPTY');
    expectOutcome(await t.api.delete(`${t.path}/Patient?favourite-colour=blue`), 400, 'not-supported', 'SEARCH_PARAM_UNKNOWN');
  });
});

describe('conditional patch (http.html#patch: PATCH [type]?[search])', () => {
  const patchWhere = (value: string, ops: unknown[]) =>
    t.api.patch(`${t.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}`).set('Content-Type', JSON_PATCH).send(JSON.stringify(ops));

  it('answers 404 CONDITION_NO_MATCH when nothing matches', async () => {
    expectOutcome(await patchWhere(fresh(), [{ op: 'add', path: '/gender', value: 'male' }]), 404, 'not-found', 'CONDITION_NO_MATCH');
  });

  it('patches the single match', async () => {
    const v = fresh();
    const p = await create(t, patientWith(v));
    const res = await patchWhere(v, [{ op: 'add', path: '/gender', value: 'male' }]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: p.id, gender: 'male', meta: { versionId: '2' } });
  });

  it('answers 412 when two or more match', async () => {
    const v = fresh();
    await create(t, patientWith(v));
    await create(t, patientWith(v));
    expectOutcome(await patchWhere(v, [{ op: 'add', path: '/gender', value: 'male' }]), 412, 'multiple-matches', 'CONDITION_MULTIPLE_MATCHES');
  });
});

describe('version-aware PATCH and DELETE (http.html#concurrency: If-Match)', () => {
  it('answers 412 VERSION_CONFLICT to PATCH with a stale If-Match, and applies it with the current one', async () => {
    const p = await create(t, patientWith(fresh()));
    await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'female' }));
    const stale = await t.api.patch(`${t.path}/Patient/${p.id}`).set('Content-Type', JSON_PATCH).set('If-Match', 'W/"1"').send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]));
    expectOutcome(stale, 412, 'conflict', 'VERSION_CONFLICT');
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body).toMatchObject({ gender: 'female', meta: { versionId: '2' } });
    const ok = await t.api.patch(`${t.path}/Patient/${p.id}`).set('Content-Type', JSON_PATCH).set('If-Match', 'W/"2"').send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]));
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('3');
  });

  it('answers 412 VERSION_CONFLICT to DELETE with a stale If-Match, and deletes with the current one', async () => {
    const p = await create(t, patientWith(fresh()));
    await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, gender: 'female' }));
    const stale = await t.api.delete(`${t.path}/Patient/${p.id}`).set('If-Match', 'W/"1"');
    expectOutcome(stale, 412, 'conflict', 'VERSION_CONFLICT');
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(200);
    const ok = await t.api.delete(`${t.path}/Patient/${p.id}`).set('If-Match', 'W/"2"');
    expect(ok.status).toBe(204);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(410);
  });

  it('answers 412 to If-Match on a resource that does not exist', async () => {
    expectOutcome(await t.api.delete(`${t.path}/Patient/nobody-${fresh()}`).set('If-Match', 'W/"1"'), 412, 'conflict', 'VERSION_CONFLICT');
    const body = patientWith(fresh(), { id: `new-${fresh()}` });
    const put = await t.api.put(`${t.path}/Patient/${body.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"1"').send(JSON.stringify(body));
    expectOutcome(put, 412, 'conflict', 'VERSION_CONFLICT');
    expect((await t.api.get(`${t.path}/Patient/${body.id}`)).status).toBe(404);
  });

  it('answers 400 ETAG_INVALID to a malformed If-Match', async () => {
    const p = await create(t, patientWith(fresh()));
    expectOutcome(await t.api.delete(`${t.path}/Patient/${p.id}`).set('If-Match', 'version one'), 400, 'invalid', 'ETAG_INVALID');
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).status).toBe(200);
  });

  it('accepts If-Match as W/"n", "n" and n', async () => {
    const p = await create(t, patientWith(fresh()));
    for (const [i, tag] of ['W/"1"', '"2"', '3'].entries()) {
      const res = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).set('If-Match', tag).send(JSON.stringify({ ...p, meta: undefined, gender: 'unknown' }));
      expect({ tag, status: res.status }).toEqual({ tag, status: 200 });
      expect(res.body.meta.versionId).toBe(String(i + 2));
    }
  });
});
