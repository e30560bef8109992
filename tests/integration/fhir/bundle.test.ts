// transaction Bundles (http.html#transaction, bundle.html#references): processing order, urn:uuid rewriting,
// per-entry responses, conditional create/update/delete, conditional references, and all-or-nothing storage.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server);
});
afterAll(async () => server.close());

const SYS = 'urn:test:mrn';
const urn = () => `urn:uuid:${randomUUID()}`;
const tag = () => randomUUID().slice(0, 8);

type Entry = Record<string, unknown>;

function submit(tenant: TestTenant, entry: Entry[], opts: { type?: string; prefer?: string } = {}) {
  const req = tenant.api.post(tenant.path).set('Content-Type', FHIR_JSON);
  if (opts.prefer) req.set('Prefer', opts.prefer);
  return req.send(JSON.stringify({ resourceType: 'Bundle', type: opts.type ?? 'transaction', entry }));
}

const post = (resource: Entry, fullUrl?: string, ifNoneExist?: string): Entry => ({
  ...(fullUrl ? { fullUrl } : {}),
  resource,
  request: { method: 'POST', url: resource.resourceType, ...(ifNoneExist ? { ifNoneExist } : {}) },
});
const put = (url: string, resource: Entry, request: Entry = {}): Entry => ({ resource, request: { method: 'PUT', url, ...request } });
const get = (url: string): Entry => ({ request: { method: 'GET', url } });
const del = (url: string): Entry => ({ request: { method: 'DELETE', url } });
const patient = (value: string, extra: Entry = {}): Entry => ({ resourceType: 'Patient', identifier: [{ system: SYS, value }], ...extra });
const observation = (subject: string, text = 'Hb'): Entry => ({ resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: subject } });

/** The error code of the first issue (issue.details.coding[0].code). */
const errorCode = (body: any) => body.issue?.[0]?.details?.coding?.[0]?.code;
/** "Patient/abc/_history/1" -> "abc" */
const idOf = (location: string) => location.split('/')[1];

async function read(tenant: TestTenant, ref: string) {
  return tenant.api.get(`${tenant.path}/${ref}`);
}

/** How many Patients carry the identifier SYS|value. */
async function countByIdentifier(tenant: TestTenant, value: string, system = SYS): Promise<number> {
  const res = await tenant.api.get(`${tenant.path}/Patient?identifier=${encodeURIComponent(`${system}|${value}`)}`);
  expect(res.status).toBe(200);
  return res.body.total;
}

describe('transaction processing order (http.html#transaction: DELETE, POST, PUT/PATCH, GET)', () => {
  it('runs GETs after the writes whatever the entry order: a GET sees the POSTed, PUT and DELETEd resources', async () => {
    const k = tag();
    const victim = await create(t, patient(`victim-${k}`));
    const updated = await create(t, patient(`upd-${k}`, { gender: 'female' }));
    const res = await submit(t, [
      get(`Patient?identifier=${SYS}|new-${k}`),
      get(`Patient/${victim.id}`),
      get(`Patient/${updated.id}`),
      put(`Patient/${updated.id}`, { ...updated, gender: 'male' }),
      post(patient(`new-${k}`)),
      del(`Patient/${victim.id}`),
    ]);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    const e = res.body.entry;
    expect(e.map((x: any) => x.response.status)).toEqual(['200 OK', '410 Gone', '200 OK', '200 OK', '201 Created', '204 No Content']);
    // the search ran after the POST
    expect(e[0].resource.resourceType).toBe('Bundle');
    expect(e[0].resource.total).toBe(1);
    expect(e[0].resource.entry[0].resource.id).toBe(idOf(e[4].response.location));
    // the read ran after the DELETE; a failed read is that entry's answer, not a rollback
    expect(e[1].resource).toBeUndefined();
    expect(e[1].response.outcome.issue[0].code).toBe('deleted');
    expect(errorCode(e[1].response.outcome)).toBe('RESOURCE_DELETED');
    expect(e[1].response.outcome.issue[0].expression).toEqual(['Bundle.entry[1]']);
    // the read ran after the PUT
    expect(e[2].resource).toMatchObject({ id: updated.id, gender: 'male', meta: { versionId: '2' } });
    expect(e[2].response.etag).toBe('W/"2"');
    expect(e[2].response.lastModified).toBe(new Date(Math.floor(Date.parse(e[3].response.lastModified) / 1000) * 1000).toISOString());
    expect((await read(t, `Patient/${victim.id}`)).status).toBe(410);
  });

  it('processes a DELETE and a POST of different resources: a conditional DELETE matches only what existed before', async () => {
    const k = tag();
    const old = await create(t, patient(`dp-${k}`));
    const res = await submit(t, [post(patient(`dp-${k}`, { gender: 'other' })), del(`Patient?identifier=${SYS}|dp-${k}`)]);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((x: any) => x.response.status)).toEqual(['201 Created', '204 No Content']);
    const created = idOf(res.body.entry[0].response.location);
    expect(created).not.toBe(old.id);
    expect((await read(t, `Patient/${old.id}`)).status).toBe(410);
    expect((await read(t, `Patient/${created}`)).body.gender).toBe('other');
    expect(await countByIdentifier(t, `dp-${k}`)).toBe(1);
  });

  it('applies a PATCH entry (JSON Patch in a Binary) before a GET of the same resource', async () => {
    const p = await create(t, patient(`patch-${tag()}`, { gender: 'female' }));
    const ops = [{ op: 'replace', path: '/gender', value: 'unknown' }];
    const res = await submit(t, [
      get(`Patient/${p.id}`),
      {
        resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(ops)).toString('base64') },
        request: { method: 'PATCH', url: `Patient/${p.id}` },
      },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.entry[1].response).toMatchObject({ status: '200 OK', location: `Patient/${p.id}/_history/2`, etag: 'W/"2"' });
    expect(res.body.entry[0].resource).toMatchObject({ gender: 'unknown', meta: { versionId: '2' } });
  });
});

describe('transaction references (bundle.html#references: urn:uuid placeholders)', () => {
  it('rewrites urn:uuid in every Reference (nested, arrays), in uri elements and narrative, not in canonical or string elements', async () => {
    const [p, o1, o2, sr, dr] = [urn(), urn(), urn(), urn(), urn()];
    const res = await submit(t, [
      post(
        {
          resourceType: 'DiagnosticReport',
          status: 'final',
          code: { text: 'CBC' },
          subject: { reference: p },
          basedOn: [{ reference: sr }],
          result: [{ reference: o1 }, { reference: o2, display: 'WBC' }],
          contained: [{ resourceType: 'Specimen', id: 'blood', subject: { reference: p } }],
          specimen: [{ reference: '#blood' }],
          text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${p}">the patient</a></div>` },
        },
        dr,
      ),
      post(observation(p, 'Hb'), o1),
      post({ ...observation(p, 'WBC'), hasMember: [{ reference: o1 }], performer: [{ reference: p }] }, o2),
      post(
        {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          subject: { reference: p },
          instantiatesUri: [p],
          instantiatesCanonical: [p],
          identifier: [{ system: 'urn:ietf:rfc:3986', value: p }],
          extension: [
            { url: 'http://example.org/fhir/StructureDefinition/x-uri', valueUri: p },
            { url: 'http://example.org/fhir/StructureDefinition/x-canonical', valueCanonical: p },
          ],
        },
        sr,
      ),
      post(patient(`refs-${tag()}`), p),
    ]);
    expect(res.status).toBe(200);
    const [drId, o1Id, o2Id, srId, pId] = res.body.entry.map((x: any) => idOf(x.response.location));
    const report = (await read(t, `DiagnosticReport/${drId}`)).body;
    expect(report.subject.reference).toBe(`Patient/${pId}`);
    expect(report.basedOn).toEqual([{ reference: `ServiceRequest/${srId}` }]);
    expect(report.result).toEqual([{ reference: `Observation/${o1Id}` }, { reference: `Observation/${o2Id}`, display: 'WBC' }]);
    expect(report.text.div).toContain(`href="Patient/${pId}"`);
    expect(report.contained[0].subject.reference).toBe(`Patient/${pId}`);
    expect(report.specimen).toEqual([{ reference: '#blood' }]);
    const wbc = (await read(t, `Observation/${o2Id}`)).body;
    expect(wbc.hasMember).toEqual([{ reference: `Observation/${o1Id}` }]);
    expect(wbc.performer).toEqual([{ reference: `Patient/${pId}` }]);
    const order = (await read(t, `ServiceRequest/${srId}`)).body;
    expect(order.subject.reference).toBe(`Patient/${pId}`);
    expect(order.instantiatesUri).toEqual([`Patient/${pId}`]); // uri: rewritten
    expect(order.instantiatesCanonical).toEqual([p]); // canonical: never rewritten
    expect(order.identifier[0].value).toBe(p); // string: not a reference
    expect(order.extension[0].valueUri).toBe(`Patient/${pId}`);
    expect(order.extension[1].valueCanonical).toBe(p);
  });

  it('resolves circular references between two POSTed entries (ids are assigned before anything is written)', async () => {
    const [a, b] = [urn(), urn()];
    const res = await submit(t, [
      post(patient(`circ-a-${tag()}`, { link: [{ other: { reference: b }, type: 'seealso' }] }), a),
      post(patient(`circ-b-${tag()}`, { link: [{ other: { reference: a }, type: 'seealso' }] }), b),
    ]);
    expect(res.status).toBe(200);
    const [aId, bId] = res.body.entry.map((x: any) => idOf(x.response.location));
    expect((await read(t, `Patient/${aId}`)).body.link[0].other.reference).toBe(`Patient/${bId}`);
    expect((await read(t, `Patient/${bId}`)).body.link[0].other.reference).toBe(`Patient/${aId}`);
  });

  it('maps an absolute fullUrl of a POST on this tenant, and its relative form, to the new id', async () => {
    const res = await submit(t, [
      post(observation('Patient/client-chosen-1'), undefined),
      post(observation(`${t.base}/Patient/client-chosen-1`), undefined),
      post(patient(`abs-${tag()}`, { id: 'client-chosen-1' }), `${t.base}/Patient/client-chosen-1`),
    ]);
    expect(res.status).toBe(200);
    const pId = idOf(res.body.entry[2].response.location);
    expect(pId).not.toBe('client-chosen-1');
    for (const i of [0, 1]) {
      const obs = (await read(t, `Observation/${idOf(res.body.entry[i].response.location)}`)).body;
      expect(obs.subject.reference).toBe(`Patient/${pId}`);
    }
  });

  it('stores a lab report (DiagnosticReport + 5 Observations + Patient) whose references resolve to real ids', async () => {
    const k = tag();
    const p = urn();
    const obs = ['Hb', 'WBC', 'PLT', 'MCV', 'HCT'].map((code) => ({ fullUrl: urn(), code }));
    const res = await submit(t, [
      post(
        { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' }, subject: { reference: p }, result: obs.map((o) => ({ reference: o.fullUrl })) },
        urn(),
      ),
      ...obs.map((o) => post({ ...observation(p, o.code), valueQuantity: { value: 1, unit: 'g/dL' } }, o.fullUrl)),
      post(patient(`lab-${k}`, { name: [{ family: 'Lab' }] }), p),
    ]);
    expect(res.status).toBe(200);
    const ids = res.body.entry.map((x: any) => idOf(x.response.location));
    const pId = ids[6];
    const report = (await read(t, `DiagnosticReport/${ids[0]}`)).body;
    expect(report.subject.reference).toBe(`Patient/${pId}`);
    expect(report.result.map((r: any) => r.reference)).toEqual(ids.slice(1, 6).map((id: string) => `Observation/${id}`));
    for (const [i, ref] of report.result.entries()) {
      const o = await read(t, ref.reference);
      expect(o.status).toBe(200);
      expect(o.body.code.text).toBe(obs[i].code);
      expect(o.body.subject.reference).toBe(`Patient/${pId}`);
    }
    expect((await read(t, `Patient/${pId}`)).body.identifier[0].value).toBe(`lab-${k}`);
    const search = await t.api.get(`${t.path}/Observation?subject=Patient/${pId}`);
    expect(search.body.total).toBe(5);
  });
});

describe('transaction references to resources that are not the server\'s (bundle.html#references)', () => {
  it('stores a collection Bundle whose urn:uuid references point at its own entries, untouched', async () => {
    const [p, o] = [urn(), urn()];
    const doc = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: p, resource: { resourceType: 'Patient', name: [{ family: 'Inner' }] } },
        { fullUrl: o, resource: observation(p) },
      ],
    };
    const res = await submit(t, [post(doc), post(patient(`doc-${tag()}`), urn())]);
    expect(res.status).toBe(200);
    const stored = (await read(t, res.body.entry[0].response.location)).body;
    expect(stored.entry[1].resource.subject.reference).toBe(p);
    const direct = await t.api.post(`${t.path}/Bundle`).set('Content-Type', FHIR_JSON).send(JSON.stringify(doc));
    expect(direct.status).toBe(201);
  });
});

describe('transaction response (http.html#transaction-response)', () => {
  it('answers transaction-response with one entry per request, in request order, with status, location, etag and lastModified only', async () => {
    const put1 = `resp-${tag()}`;
    const res = await submit(t, [
      post(observation('Patient/' + put1)),
      put(`Patient/${put1}`, patient(put1, { id: put1 })),
      post({ resourceType: 'Organization', name: 'Lab' }),
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'transaction-response' });
    expect(res.body.entry).toHaveLength(3);
    const [o, p, org] = res.body.entry;
    expect(o.response.location).toMatch(/^Observation\/[A-Za-z0-9\-.]{1,64}\/_history\/1$/);
    expect(p.response.location).toBe(`Patient/${put1}/_history/1`);
    expect(org.response.location).toMatch(/^Organization\/[A-Za-z0-9\-.]{1,64}\/_history\/1$/);
    for (const e of res.body.entry) {
      expect(e.response.status).toBe('201 Created');
      expect(e.response.etag).toBe('W/"1"');
      expect(e.resource).toBeUndefined();
      const stored = (await read(t, e.response.location.replace(/\/_history\/1$/, ''))).body;
      expect(e.response.lastModified).toBe(stored.meta.lastUpdated);
    }
  });

  it('includes each written resource (and its fullUrl) with Prefer: return=representation', async () => {
    const p = urn();
    const res = await submit(t, [post(patient(`rep-${tag()}`), p), post(observation(p))], { prefer: 'return=representation' });
    expect(res.status).toBe(200);
    for (const [i, type] of [[0, 'Patient'], [1, 'Observation']] as const) {
      const e = res.body.entry[i];
      const id = idOf(e.response.location);
      expect(e.resource).toMatchObject({ resourceType: type, id, meta: { versionId: '1', lastUpdated: e.response.lastModified } });
      expect(e.fullUrl).toBe(`${t.base}/${type}/${id}`);
    }
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${idOf(res.body.entry[0].response.location)}`);
  });

  it('gives an informational outcome per entry with Prefer: return=OperationOutcome', async () => {
    const res = await submit(t, [post(patient(`oo-${tag()}`))], { prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].resource).toBeUndefined();
    expect(res.body.entry[0].response.outcome).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'information' }] });
  });

  it('answers a HEAD entry with status and ETag but no resource', async () => {
    const p = await create(t, patient(`head-${tag()}`));
    const res = await submit(t, [{ request: { method: 'HEAD', url: `Patient/${p.id}` } }]);
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response).toMatchObject({ status: '200 OK', etag: 'W/"1"', lastModified: new Date(Math.floor(Date.parse(p.meta.lastUpdated) / 1000) * 1000).toISOString() });
    expect(res.body.entry[0].resource).toBeUndefined();
  });
});

describe('conditional create in a transaction (http.html#ccreate: ifNoneExist)', () => {
  it('creates when nothing matches', async () => {
    const k = `cc0-${tag()}`;
    const res = await submit(t, [post(patient(k), urn(), `identifier=${SYS}|${k}`)]);
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(await countByIdentifier(t, k)).toBe(1);
  });

  it('answers 200 with the existing resource when one matches, creates nothing, and points references at it', async () => {
    const k = `cc1-${tag()}`;
    const existing = await create(t, patient(k));
    const p = urn();
    const res = await submit(
      t,
      [post(patient(k, { gender: 'male' }), p, `identifier=${SYS}|${k}`), post(observation(p))],
      { prefer: 'return=representation' },
    );
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response).toMatchObject({ status: '200 OK', location: `Patient/${existing.id}/_history/1`, etag: 'W/"1"' });
    expect(res.body.entry[0].resource).toMatchObject({ id: existing.id, meta: { versionId: '1' } });
    expect(res.body.entry[0].resource.gender).toBeUndefined(); // the existing resource, not the entry's body
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${existing.id}`);
    expect(await countByIdentifier(t, k)).toBe(1);
    // a client that sends the search URL with its type ("Patient?identifier=...") is understood the same way
    const again = await submit(t, [post(patient(k), urn(), `Patient?identifier=${SYS}|${k}`)]);
    expect(again.body.entry[0].response.status).toBe('200 OK');
    expect(await countByIdentifier(t, k)).toBe(1);
  });

  it('fails the whole transaction with 412 when several resources match', async () => {
    const k = `cc2-${tag()}`;
    await create(t, patient(k));
    await create(t, patient(k));
    const other = `cc2-other-${tag()}`;
    const res = await submit(t, [post(patient(other)), post(patient(k), urn(), `identifier=${SYS}|${k}`)]);
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('multiple-matches');
    expect(errorCode(res.body)).toBe('CONDITION_MULTIPLE_MATCHES');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1]']);
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[1\]/);
    expect(await countByIdentifier(t, other)).toBe(0);
    expect(await countByIdentifier(t, k)).toBe(2);
  });
});

describe('conditional update and delete in a transaction (http.html#cond-update, #cdelete)', () => {
  it('updates the single match of PUT Type?criteria and creates when nothing matches', async () => {
    const k = tag();
    const existing = await create(t, patient(`cu-${k}`, { gender: 'female' }));
    const res = await submit(t, [
      put(`Patient?identifier=${SYS}|cu-${k}`, patient(`cu-${k}`, { gender: 'male' })),
      put(`Patient?identifier=${SYS}|cu-new-${k}`, patient(`cu-new-${k}`)),
    ]);
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response).toMatchObject({ status: '200 OK', location: `Patient/${existing.id}/_history/2`, etag: 'W/"2"' });
    expect(res.body.entry[1].response.status).toBe('201 Created');
    expect((await read(t, `Patient/${existing.id}`)).body).toMatchObject({ gender: 'male', meta: { versionId: '2' } });
    expect(await countByIdentifier(t, `cu-new-${k}`)).toBe(1);
  });

  it('rejects a conditional update whose body id differs from the match (400 RESOURCE_ID_MISMATCH)', async () => {
    const k = `cu-id-${tag()}`;
    const existing = await create(t, patient(k));
    const res = await submit(t, [put(`Patient?identifier=${SYS}|${k}`, patient(k, { id: 'someone-else', gender: 'male' }))]);
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('RESOURCE_ID_MISMATCH');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[0].resource.id']);
    expect((await read(t, `Patient/${existing.id}`)).body.meta.versionId).toBe('1');
  });

  it('creates with the body id when nothing matches, but never overwrites a live resource outside the condition (409)', async () => {
    const k = tag();
    const bystander = await create(t, patient(`cu-by-${k}`, { gender: 'female' }));
    const clash = await submit(t, [put(`Patient?identifier=${SYS}|cu-none-${k}`, patient(`cu-none-${k}`, { id: bystander.id }))]);
    expect(clash.status).toBe(409);
    expect(errorCode(clash.body)).toBe('CONDITION_ID_CONFLICT');
    expect(clash.body.issue[0].expression).toEqual(['Bundle.entry[0].resource.id']);
    expect((await read(t, `Patient/${bystander.id}`)).body).toMatchObject({ gender: 'female', meta: { versionId: '1' } });
    const fresh = `cu-fresh-${k}`;
    const res = await submit(t, [put(`Patient?identifier=${SYS}|${fresh}`, patient(fresh, { id: fresh }))]);
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response).toMatchObject({ status: '201 Created', location: `Patient/${fresh}/_history/1` });
  });

  it('deletes the single match of DELETE Type?criteria; no match has no effect; several fail with 412', async () => {
    const k = tag();
    const one = await create(t, patient(`cd-${k}`));
    await create(t, patient(`cd2-${k}`));
    await create(t, patient(`cd2-${k}`));
    const res = await submit(t, [del(`Patient?identifier=${SYS}|cd-${k}`), del(`Patient?identifier=${SYS}|nobody-${k}`)]);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['204 No Content', '204 No Content']);
    expect((await read(t, `Patient/${one.id}`)).status).toBe(410);
    const several = await submit(t, [del(`Patient?identifier=${SYS}|cd2-${k}`)]);
    expect(several.status).toBe(412);
    expect(errorCode(several.body)).toBe('CONDITION_MULTIPLE_MATCHES');
    expect(await countByIdentifier(t, `cd2-${k}`)).toBe(2);
  });
});

describe('conditional references in a transaction (http.html#trules: "Patient?identifier=...")', () => {
  it('replaces a conditional reference with its single match', async () => {
    const k = `cr-${tag()}`;
    const p = await create(t, patient(k));
    const res = await submit(t, [post(observation(`Patient?identifier=${SYS}|${k}`)), post({ resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${SYS}|${k}` } })]);
    expect(res.status).toBe(200);
    const obs = (await read(t, res.body.entry[0].response.location)).body;
    expect(obs.subject.reference).toBe(`Patient/${p.id}`);
    const report = (await read(t, res.body.entry[1].response.location)).body;
    expect(report.subject.reference).toBe(`Patient/${p.id}`);
  });

  it('resolves a conditional reference spelled like the ifNoneExist of a resource created in the same transaction', async () => {
    const k = `crc-${tag()}`;
    const res = await submit(t, [
      post(observation(`Patient?identifier=${SYS}|${k}`)),
      post(observation(`Patient?identifier=${encodeURIComponent(`${SYS}|${k}`)}`)),
      post(patient(k), urn(), `identifier=${SYS}|${k}`),
    ]);
    expect(res.status).toBe(200);
    expect(res.body.entry[2].response.status).toBe('201 Created');
    for (const i of [0, 1]) {
      const obs = (await read(t, res.body.entry[i].response.location)).body;
      expect(obs.subject.reference).toBe(`Patient/${idOf(res.body.entry[2].response.location)}`);
    }
    expect(await countByIdentifier(t, k)).toBe(1);
  });

  it('creates one resource when concurrent transactions conditionally create the same identifier, however spelled', async () => {
    const k = `crx-${tag()}`;
    const spellings = [`identifier=${SYS}|${k}`, `identifier=${encodeURIComponent(`${SYS}|${k}`)}`, `Patient?identifier=${SYS}|${k}`];
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(t, [post(patient(k), urn(), spellings[i % 3])])));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const statuses = results.map((r) => r.body.entry[0].response.status).sort();
    expect(statuses).toEqual(['200 OK', '200 OK', '200 OK', '200 OK', '200 OK', '201 Created']);
    expect(await countByIdentifier(t, k)).toBe(1);
  });

  it('fails with 400 REFERENCE_CONDITIONAL_NO_MATCH when nothing matches, storing nothing', async () => {
    const k = tag();
    const res = await submit(t, [post(patient(`crn-${k}`)), post({ ...observation('Patient/x'), performer: [{ reference: `Patient?identifier=${SYS}|nobody-${k}` }] })]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('not-found');
    expect(errorCode(res.body)).toBe('REFERENCE_CONDITIONAL_NO_MATCH');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.performer[0].reference']);
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[1]');
    expect(await countByIdentifier(t, `crn-${k}`)).toBe(0);
  });

  it('fails with 412 REFERENCE_CONDITIONAL_MULTIPLE when several match, storing nothing', async () => {
    const k = tag();
    await create(t, patient(`crm-${k}`));
    await create(t, patient(`crm-${k}`));
    const res = await submit(t, [post(patient(`crm-new-${k}`)), post(observation(`Patient?identifier=${SYS}|crm-${k}`))]);
    expect(res.status).toBe(412);
    expect(res.body.issue[0].code).toBe('multiple-matches');
    expect(errorCode(res.body)).toBe('REFERENCE_CONDITIONAL_MULTIPLE');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.subject.reference']);
    expect(await countByIdentifier(t, `crm-new-${k}`)).toBe(0);
  });
});

describe('a transaction is one database transaction (http.html#transaction: all or nothing)', () => {
  it('stores nothing when entry 899 of 905 is invalid, and names Bundle.entry[899]', async () => {
    const system = `urn:test:bulk:${tag()}`;
    const entry: Entry[] = [];
    for (let i = 0; i < 905; i++) {
      const p: Entry = { resourceType: 'Patient', identifier: [{ system, value: `p${i}` }] };
      if (i === 899) p.foo = 'not an element';
      entry.push(post(p, urn()));
    }
    // some references between entries, so the failure happens after placeholders were rewritten
    (entry[10].resource as Entry).link = [{ other: { reference: entry[11].fullUrl }, type: 'seealso' }];
    const res = await submit(t, entry);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[899].resource.foo']);
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[899\]/);
    expect(errorCode(res.body)).toBe('SCHEMA_VIOLATION');
    // nothing of the first 899 (nor the last 5) was stored: by system, and one by one for a few
    const all = await t.api.get(`${t.path}/Patient?identifier=${encodeURIComponent(system + '|')}&_summary=count`);
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(0);
    for (const i of [0, 1, 10, 898, 904]) expect(await countByIdentifier(t, `p${i}`, system)).toBe(0);
  }, 120_000);

  it('stores a transaction of MAX_BUNDLE_ENTRIES (1000) entries: a Patient and 999 Observations referencing it', async () => {
    const p = urn();
    const k = `big-${tag()}`;
    const entry = [post(patient(k), p), ...Array.from({ length: 999 }, (_, i) => post(observation(p, `obs-${i}`)))];
    const res = await submit(t, entry);
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(1000);
    const pId = idOf(res.body.entry[0].response.location);
    const count = await t.api.get(`${t.path}/Observation?subject=Patient/${pId}&_summary=count`);
    expect(count.body.total).toBe(999);
  }, 120_000);

  it('answers an empty transaction with an empty transaction-response', async () => {
    const res = await submit(t, []);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ resourceType: 'Bundle', type: 'transaction-response' });
  });

  it('rolls back earlier writes (a DELETE and an update) when a later entry fails', async () => {
    const k = tag();
    const keep = await create(t, patient(`rb-${k}`, { gender: 'female' }));
    const gone = await create(t, patient(`rb2-${k}`));
    const res = await submit(t, [
      del(`Patient/${gone.id}`),
      put(`Patient/${keep.id}`, { ...keep, gender: 'male' }),
      post(observation('Patient/does-not-exist')),
    ]);
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('REFERENCE_NOT_FOUND');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[2].resource.subject.reference']);
    expect((await read(t, `Patient/${gone.id}`)).status).toBe(200);
    expect((await read(t, `Patient/${keep.id}`)).body).toMatchObject({ gender: 'female', meta: { versionId: '1' } });
  });

  it('names the entry that holds a bad reference even when earlier entries have the same type', async () => {
    const p = await create(t, patient(`attr-${tag()}`));
    const res = await submit(t, [post(observation(`Patient/${p.id}`)), post(observation(`Patient/${p.id}`)), post(observation('Patient/missing-one'))]);
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('REFERENCE_NOT_FOUND');
    expect(res.body.issue).toHaveLength(1);
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[2].resource.subject.reference']);
  });
});
