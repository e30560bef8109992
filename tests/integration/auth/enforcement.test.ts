// Scope enforcement beyond single interactions (SMART.md §7, scopes-and-launch-context.html): included and chained
// results, _has, system and compartment search, $everything, batch and transaction entries, conditional writes,
// history, and granular (category) scopes — each through real tokens over HTTP.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newUser, OBSERVATION_CATEGORY, serverWithApp } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };
const ids: Record<string, string> = {};
const CAT = OBSERVATION_CATEGORY;

beforeAll(async () => {
  ({ server, t, app } = await serverWithApp('enf', 'openid fhirUser launch/patient user/*.cruds patient/*.cruds'));
  ids.doc = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Doc' }] })).id;
  ids.me = (await create(t, { resourceType: 'Patient', name: [{ family: 'Mine' }], generalPractitioner: [{ reference: `Practitioner/${ids.doc}` }] })).id;
  ids.you = (await create(t, { resourceType: 'Patient', name: [{ family: 'Yours' }] })).id;
  const obs = (subject: string, cat: string, code: string) => ({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CAT, code: cat }] }], code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${subject}` }, performer: [{ reference: `Practitioner/${ids.doc}` }] });
  ids.myLab = (await create(t, obs(ids.me, 'laboratory', '718-7'))).id;
  ids.myVital = (await create(t, obs(ids.me, 'vital-signs', '8867-4'))).id;
  ids.yourLab = (await create(t, obs(ids.you, 'laboratory', '718-7'))).id;
  ids.myEnc = (await create(t, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.me}` } })).id;
  ids.myRx = (await create(t, { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationCodeableConcept: { text: 'aspirin' }, subject: { reference: `Patient/${ids.me}` } })).id;
  ids.myReport = (await create(t, { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' }, subject: { reference: `Patient/${ids.me}` }, result: [{ reference: `Observation/${ids.myLab}` }] })).id;
  await newUser(server, t.slug, 'enf-patient', 'patient', `Patient/${ids.me}`);
  await newUser(server, t.slug, 'enf-lab', 'lab-technician');
  await newUser(server, t.slug, 'enf-desk', 'receptionist');
  await newUser(server, t.slug, 'enf-doc', 'practitioner', `Practitioner/${ids.doc}`);
});
afterAll(async () => server.close());

async function as(username: string, scope: string): Promise<Api> {
  return authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username, scope }));
}
const idsOf = (bundle: { entry?: { resource: { resourceType: string; id: string }; search?: { mode: string } }[] }, mode?: string) =>
  (bundle.entry ?? []).filter((e) => !mode || e.search?.mode === mode).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();

describe('included and chained results', () => {
  it('_include of a type the token may not read is left out silently; allowed ones stay', async () => {
    const api = await as('enf-doc', 'user/DiagnosticReport.rs'); // may not read Observation with this token
    const res = await api.get(`${t.path}/DiagnosticReport?_id=${ids.myReport}&_include=DiagnosticReport:result&_include=DiagnosticReport:subject`);
    expect(res.status).toBe(200);
    expect(idsOf(res.body, 'match')).toEqual([`DiagnosticReport/${ids.myReport}`]);
    expect(idsOf(res.body, 'include')).toEqual([]);
    const wider = await (await as('enf-doc', 'user/DiagnosticReport.rs user/Observation.rs')).get(`${t.path}/DiagnosticReport?_id=${ids.myReport}&_include=DiagnosticReport:result`);
    expect(idsOf(wider.body, 'include')).toEqual([`Observation/${ids.myLab}`]);
  });

  it('_revinclude under a patient/ scope brings only the patient\'s own resources', async () => {
    const api = await as('enf-patient', 'patient/*.rs');
    const res = await api.get(`${t.path}/Practitioner?_id=${ids.doc}&_revinclude=Observation:performer`);
    // Practitioner is outside the patient compartment: refused
    expect(res.status).toBe(403);
    const own = await api.get(`${t.path}/Patient?_id=${ids.me}&_revinclude=Observation:subject`);
    expect(idsOf(own.body, 'include')).toEqual([`Observation/${ids.myLab}`, `Observation/${ids.myVital}`].sort());
  });

  it('a chain or _has through a type the token may not search is 403; through an allowed one it is restricted', async () => {
    const desk = await as('enf-desk', 'user/*.rs'); // receptionist: no Observation at all
    const chain = await desk.get(`${t.path}/Encounter?subject:Patient.name=Mine`);
    expect(chain.status).toBe(200);
    expect(idsOf(chain.body)).toEqual([`Encounter/${ids.myEnc}`]);
    const has = await desk.get(`${t.path}/Patient?_has:Observation:subject:code=718-7`);
    expect(has.status).toBe(403);
    expect(has.body.issue[0].code).toBe('forbidden');
    // a lab technician's _has over Observations sees laboratory ones only: vital-signs codes find no patient
    const lab = await as('enf-lab', 'user/*.rs');
    expect(idsOf((await lab.get(`${t.path}/Patient?_has:Observation:subject:code=718-7`)).body)).toEqual([`Patient/${ids.me}`, `Patient/${ids.you}`].sort());
    expect(idsOf((await lab.get(`${t.path}/Patient?_has:Observation:subject:code=8867-4`)).body)).toEqual([]);
  });
});

describe('granular scopes (category filters)', () => {
  it('a lab technician searches and reads laboratory Observations only', async () => {
    const lab = await as('enf-lab', 'user/Observation.rs');
    expect(idsOf((await lab.get(`${t.path}/Observation`)).body)).toEqual([`Observation/${ids.myLab}`, `Observation/${ids.yourLab}`].sort());
    expect((await lab.get(`${t.path}/Observation/${ids.myVital}`)).status).toBe(404);
    expect((await lab.get(`${t.path}/Observation/${ids.myLab}`)).status).toBe(200);
  });

  it('an explicit granular scope is ANDed into the search too', async () => {
    const doc = await as('enf-doc', `user/Observation.rs?category=${CAT}|vital-signs`);
    expect(idsOf((await doc.get(`${t.path}/Observation?subject=Patient/${ids.me}`)).body)).toEqual([`Observation/${ids.myVital}`]);
  });

  it('a write outside the granted category is 403 and stores nothing', async () => {
    // (Patient read too: a reference to a resource the token may not read counts as absent, issue 8)
    const doc = await as('enf-doc', 'user/Observation.cruds user/Patient.rs');
    const before = (await t.api.get(`${t.path}/Observation?_summary=count`)).body.total;
    const res = await doc.post(`${t.path}/Observation`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CAT, code: 'laboratory' }] }], code: { text: 'Hb' }, subject: { reference: `Patient/${ids.me}` } });
    expect(res.status).toBe(403);
    expect(res.body.issue[0].details.coding[0].code).toBe('SCOPE_CONTENT_FORBIDDEN');
    expect((await t.api.get(`${t.path}/Observation?_summary=count`)).body.total).toBe(before);
    const ok = await doc.post(`${t.path}/Observation`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CAT, code: 'vital-signs' }] }], code: { text: 'HR' }, subject: { reference: `Patient/${ids.me}` } });
    expect(ok.status).toBe(201);
    // and an update may not move a vital sign into another category
    const moved = await doc.put(`${t.path}/Observation/${ok.body.id}`).set('Content-Type', FHIR_JSON).send({ ...ok.body, category: [{ coding: [{ system: CAT, code: 'laboratory' }] }] });
    expect(moved.status).toBe(403);
  });
});

describe('patient/ scopes confine everything to the compartment', () => {
  it('system search, compartment search of another patient, $everything', async () => {
    const api = await as('enf-patient', 'patient/*.rs');
    const all = await api.get(`${t.path}?_type=Observation,Encounter,MedicationRequest`);
    expect(all.status).toBe(200);
    // exactly what the system token finds for this patient (other tests of this file add to it)
    const mine = idsOf((await t.api.get(`${t.path}?_type=Observation,Encounter,MedicationRequest&patient=Patient/${ids.me}&_count=100`)).body);
    expect(mine).toEqual(expect.arrayContaining([`Encounter/${ids.myEnc}`, `MedicationRequest/${ids.myRx}`, `Observation/${ids.myLab}`, `Observation/${ids.myVital}`]));
    expect(idsOf(all.body)).toEqual(mine);
    expect((await api.get(`${t.path}/Patient/${ids.you}/Observation`)).status).toBe(404);
    const compartment = idsOf((await api.get(`${t.path}/Patient/${ids.me}/Observation`)).body);
    expect(compartment).toContain(`Observation/${ids.myLab}`);
    expect(compartment).not.toContain(`Observation/${ids.yourLab}`);
    expect((await api.get(`${t.path}/Patient/${ids.you}/$everything`)).status).toBe(404);
    const everything = idsOf((await api.get(`${t.path}/Patient/${ids.me}/$everything`)).body);
    expect(everything).toContain(`Patient/${ids.me}`);
    expect(everything).toContain(`Observation/${ids.myLab}`);
    expect(everything).not.toContain(`Observation/${ids.yourLab}`);
    expect(everything).not.toContain(`Practitioner/${ids.doc}`); // referenced, but outside the compartment
  });

  it('vread, instance history and type history of another patient\'s data show nothing', async () => {
    const api = await as('enf-patient', 'patient/*.rs');
    expect((await api.get(`${t.path}/Observation/${ids.yourLab}/_history/1`)).status).toBe(404);
    expect((await api.get(`${t.path}/Observation/${ids.yourLab}/_history`)).status).toBe(404);
    const history = await api.get(`${t.path}/Observation/_history`);
    expect(history.status).toBe(200);
    expect(idsOf(history.body)).not.toContain(`Observation/${ids.yourLab}`);
    expect(idsOf(history.body)).toContain(`Observation/${ids.myLab}`);
  });
});

describe('old versions are judged on their own content', () => {
  it('a version that was outside the region stays hidden after the resource moved inside it', async () => {
    // version 1: a vital sign of the other patient; version 2: a laboratory result of "me"
    const v1 = await create(t, { resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: CAT, code: 'vital-signs' }] }], code: { text: 'moved' }, subject: { reference: `Patient/${ids.you}` } });
    const v2 = await t.api.put(`${t.path}/Observation/${v1.id}`).set('Content-Type', FHIR_JSON).send({ ...v1, category: [{ coding: [{ system: CAT, code: 'laboratory' }] }], subject: { reference: `Patient/${ids.me}` } });
    expect(v2.status).toBe(200);
    const lab = await as('enf-lab', 'user/Observation.rs');
    expect((await lab.get(`${t.path}/Observation/${v1.id}/_history/2`)).status).toBe(200);
    expect((await lab.get(`${t.path}/Observation/${v1.id}/_history/1`)).status).toBe(404);
    expect((await lab.get(`${t.path}/Observation/${v1.id}/_history`)).body.entry.map((e: { response: { etag: string } }) => e.response.etag)).toEqual(['W/"2"']);
    const patient = await as('enf-patient', 'patient/*.rs');
    expect((await patient.get(`${t.path}/Observation/${v1.id}/_history/1`)).status).toBe(404);
    const typeHistory = (await patient.get(`${t.path}/Observation/_history?_count=100`)).body.entry.filter((e: { fullUrl: string }) => e.fullUrl.endsWith(v1.id));
    expect(typeHistory.map((e: { response: { etag: string } }) => e.response.etag)).toEqual(['W/"2"']);
  });
});

describe('batch and transaction entries are each authorized', () => {
  const entries = () => [
    { request: { method: 'GET', url: `Patient/${ids.me}` } },
    { resource: { resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.me}` } }, request: { method: 'POST', url: 'Encounter' } },
    { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.me}` } }, request: { method: 'POST', url: 'Observation' } },
  ];

  it('a batch answers 403 for the entry the token may not do, and does the others', async () => {
    const desk = await as('enf-desk', 'user/*.cruds');
    const res = await desk.post(t.path).set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'batch', entry: entries() });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['200 OK', '201 Created', '403 Forbidden']);
  });

  it('a transaction with one forbidden entry fails whole, names the entry, and writes nothing', async () => {
    const desk = await as('enf-desk', 'user/*.cruds');
    const before = (await t.api.get(`${t.path}/Encounter?_summary=count`)).body.total;
    const res = await desk.post(t.path).set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'transaction', entry: entries() });
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[2]');
    expect((await t.api.get(`${t.path}/Encounter?_summary=count`)).body.total).toBe(before);
  });
});

describe('conditional writes search on the caller\'s behalf', () => {
  it('need search access, and only match what the caller could find', async () => {
    const createOnly = await as('enf-doc', 'user/Encounter.c');
    const res = await createOnly.post(`${t.path}/Encounter`).set('Content-Type', FHIR_JSON).set('If-None-Exist', `subject=Patient/${ids.me}`).send({ resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.me}` } });
    expect(res.status).toBe(403);
    // a lab technician's conditional update cannot reach a vital sign through its condition: no match -> create path
    const lab = await as('enf-lab', 'user/Observation.crus user/Patient.rs');
    const upd = await lab.put(`${t.path}/Observation?_id=${ids.myVital}`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'amended', code: { text: 'x' }, subject: { reference: `Patient/${ids.me}` } });
    expect(upd.status).toBe(403); // the new content is not a laboratory Observation either
    expect((await t.api.get(`${t.path}/Observation/${ids.myVital}`)).body.status).toBe('final');
  });
});
