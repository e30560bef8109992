// Index rows after updates and patches (issue 14): an update rewrites only the index tables whose rows change, so
// every search must find the new version by what it says now (changed or not), and never by what it said before.
// A tenant with its own SearchParameters keeps the full rewrite: an update indexes a parameter defined after the
// version it replaces, although the element did not change. Another tenant's identical data stays as it was.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let patient: string;
let otherPatient: string;

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

function observation(subject: string, o: { value?: number; code?: string; date?: string; category?: boolean; note?: string; rev?: number } = {}) {
  return {
    resourceType: 'Observation',
    status: 'final',
    ...(o.category === false ? {} : { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }] }),
    code: { coding: [{ system: LOINC, code: o.code ?? '2345-7' }] },
    subject: { reference: `Patient/${subject}` },
    effectiveDateTime: o.date ?? '2024-03-01',
    valueQuantity: { value: o.value ?? 5.4, unit: 'mmol/L', system: UCUM, code: 'mmol/L' },
    ...(o.note ? { note: [{ text: o.note }] } : {}),
    ...(o.rev !== undefined ? { extension: [{ url: 'urn:example:rev', valueInteger: o.rev }] } : {}),
  };
}

async function ids(tenant: TestTenant, query: string): Promise<string[]> {
  const res = await tenant.api.get(`${tenant.path}/${query}`).set('Prefer', 'handling=strict');
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode !== 'include').map((e: any) => e.resource.id).sort();
}

async function put(tenant: TestTenant, id: string, body: Record<string, unknown>) {
  const res = await tenant.api.put(`${tenant.path}/Observation/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...body, id }));
  expect(res.status).toBe(200);
  return res.body;
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'updidx');
  other = await newTenant(server, 'updidx-other');
  patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Index' }] })).id;
  otherPatient = (await create(other, { resourceType: 'Patient', name: [{ family: 'Index' }] })).id;
});
afterAll(async () => server.close());

describe('an update changes exactly what searches find', () => {
  let id: string;
  let otherId: string;
  beforeAll(async () => {
    id = (await create(t, observation(patient, { note: 'hemolysed' }))).id;
    otherId = (await create(other, observation(otherPatient))).id;
  });

  it('an update that changes no searchable element keeps every match', async () => {
    await put(t, id, observation(patient, { note: 'hemolysed', rev: 1 }));
    expect(await ids(t, `Observation?code=${LOINC}|2345-7`)).toEqual([id]);
    expect(await ids(t, 'Observation?value-quantity=5.4')).toEqual([id]);
    expect(await ids(t, 'Observation?date=2024-03-01')).toEqual([id]);
    expect(await ids(t, `Observation?subject=Patient/${patient}`)).toEqual([id]);
    expect(await ids(t, 'Observation?category=laboratory')).toEqual([id]);
    expect(await ids(t, 'Observation?_content=hemolysed')).toEqual([id]);
  });

  it('a changed value is found by its new value only; the unchanged ones still match', async () => {
    await put(t, id, observation(patient, { value: 7.1, note: 'hemolysed', rev: 2 }));
    expect(await ids(t, 'Observation?value-quantity=5.4')).toEqual([]);
    expect(await ids(t, 'Observation?value-quantity=7.1')).toEqual([id]);
    expect(await ids(t, `Observation?code=${LOINC}|2345-7`)).toEqual([id]);
    expect(await ids(t, `Observation?code-value-quantity=${LOINC}|2345-7$7.1`)).toEqual([id]);
    expect(await ids(t, `Observation?code-value-quantity=${LOINC}|2345-7$5.4`)).toEqual([]);
  });

  it('a changed date, code and text; a removed category', async () => {
    await put(t, id, observation(patient, { value: 7.1, code: '2339-0', date: '2025-01-02', category: false, note: 'fasting sample' }));
    expect(await ids(t, 'Observation?date=2024-03-01')).toEqual([]);
    expect(await ids(t, 'Observation?date=2025-01-02')).toEqual([id]);
    expect(await ids(t, `Observation?code=${LOINC}|2345-7`)).toEqual([]);
    expect(await ids(t, `Observation?code=${LOINC}|2339-0`)).toEqual([id]);
    expect(await ids(t, 'Observation?category=laboratory')).toEqual([]);
    expect(await ids(t, 'Observation?category:missing=true')).toEqual([id]);
    expect(await ids(t, 'Observation?_content=fasting')).toEqual([id]);
    expect(await ids(t, 'Observation?_content=hemolysed')).toEqual([]);
  });

  it('a JSON Patch is indexed the same way', async () => {
    const res = await t.api
      .patch(`${t.path}/Observation/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/valueQuantity/value', value: 9.9 }, { op: 'remove', path: '/note' }]));
    expect(res.status).toBe(200);
    expect(await ids(t, 'Observation?value-quantity=7.1')).toEqual([]);
    expect(await ids(t, 'Observation?value-quantity=9.9')).toEqual([id]);
    expect(await ids(t, 'Observation?_content=fasting')).toEqual([]);
    expect(await ids(t, `Observation?code=${LOINC}|2339-0`)).toEqual([id]);
  });

  it('a delete and a re-create by update index the new content from scratch', async () => {
    expect((await t.api.delete(`${t.path}/Observation/${id}`)).status).toBe(204);
    expect(await ids(t, 'Observation?value-quantity=9.9')).toEqual([]);
    const res = await t.api.put(`${t.path}/Observation/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...observation(patient, { value: 9.9 }), id }));
    expect(res.status).toBe(201);
    expect(await ids(t, 'Observation?value-quantity=9.9')).toEqual([id]);
    expect(await ids(t, `Observation?code=${LOINC}|2345-7`)).toEqual([id]);
    expect(await ids(t, 'Observation?category=laboratory')).toEqual([id]);
  });

  it("another tenant's identical observation kept its own rows and sees none of these", async () => {
    expect(await ids(other, 'Observation?value-quantity=5.4')).toEqual([otherId]);
    expect(await ids(other, `Observation?code=${LOINC}|2345-7`)).toEqual([otherId]);
    expect(await ids(other, 'Observation?value-quantity=9.9')).toEqual([]);
    expect(await ids(t, 'Observation?value-quantity=5.4')).toEqual([]);
  });
});

describe("a tenant's own SearchParameter", () => {
  it('is indexed by the next update of a resource stored before it, though that element did not change', async () => {
    const id = (await create(t, observation(patient, { note: 'spun' }))).id;
    await create(t, {
      resourceType: 'SearchParameter',
      url: 'urn:example:SearchParameter/Observation-note',
      name: 'NoteText',
      status: 'active',
      description: 'The text of the notes',
      code: 'note-text',
      base: ['Observation'],
      type: 'string',
      expression: 'Observation.note.text',
    });
    // indexed from scratch by the update (the tenant's registry is not the official one)
    for (let i = 0; i < 100 && (await t.api.get(`${t.path}/Observation?note-text=spun`).set('Prefer', 'handling=strict')).status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await ids(t, 'Observation?note-text=spun')).toEqual([]);
    await put(t, id, observation(patient, { note: 'spun', rev: 1 }));
    expect(await ids(t, 'Observation?note-text=spun')).toEqual([id]);
    expect(await ids(other, 'Observation?_id=' + id)).toEqual([]);
  });
});
