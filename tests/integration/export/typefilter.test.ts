// Bulk Data 2.0 _typeFilter (export.html#query-parameters; docs/bulk-conformance.md row 103) on resources changed after
// kick-off: they are exported in their kick-off version, which is judged in memory (src/export/criteria.ts) on the
// index rows that version would have. Each case: the resources of one type are put in state A, the search answers the
// query (SQL), the export is kicked off and held at its first file while every resource of the type changes to state
// B (which would answer the query differently), then the export must contain exactly what the search answered.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { downloadAll, holdExportCommits, kickOff, waitForManifest } from './helpers.js';

let server: TestServer;
let t: TestTenant;
const UCUM = 'http://unitsofmeasure.org';

/** Per type: each resource's state A (the kick-off version) and state B (written after kick-off). */
const STATES: Record<string, { a: Record<string, unknown>; b: Record<string, unknown> }[]> = {
  Patient: [
    { family: 'Müller', given: ['Anna'], birthDate: '1980-02-03', gender: 'female' },
    { family: 'Mueller', given: ['Bert'], birthDate: '1980-02', gender: 'male' },
    { family: 'Muller-Lüdenscheidt', given: ['Anna-Lena'], birthDate: '1975-06-15', gender: 'female' },
    { family: 'Smith', given: ['Carl'] },
  ].map(({ family, given, birthDate, gender }) => ({
    a: { resourceType: 'Patient', name: [{ family, given }], ...(birthDate ? { birthDate } : {}), ...(gender ? { gender } : {}) },
    b: { resourceType: 'Patient', name: [{ family: 'Zzz', given: ['Zed'] }], birthDate: '1900-01-01', gender: 'other' },
  })),
  Observation: [
    { valueQuantity: { value: 5.4, unit: 'mg/dL', system: UCUM, code: 'mg/dL' }, effectiveDateTime: '2020-06-01T10:00:00Z', subject: { reference: 'Patient/ra-subject' } },
    { valueQuantity: { value: 12, unit: 'g/dL', system: UCUM, code: 'g/dL' }, effectivePeriod: { start: '2019-01-01', end: '2019-12-31' }, subject: { reference: 'Patient/ra-subject' } },
    { valueQuantity: { value: 100.004, unit: 'g/dL', system: UCUM, code: 'g/dL' }, effectiveDateTime: '2021-03-04' },
    { valueQuantity: { value: 99.6, unit: 'mg' } },
  ].map((x) => ({
    a: { resourceType: 'Observation', status: 'final', code: { text: 'q' }, ...x },
    b: { resourceType: 'Observation', status: 'final', code: { text: 'q' }, valueQuantity: { value: 0, unit: 'zz' }, effectiveDateTime: '1900-01-01' },
  })),
  RiskAssessment: [99.5, 100, 100.5, 60].map((probabilityDecimal) => ({
    a: { resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/ra-subject' }, prediction: [{ probabilityDecimal }] },
    b: { resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/ra-subject' }, prediction: [{ probabilityDecimal: 0 }] },
  })),
};
/** Per type: the ids of its resources, in the order of STATES. */
const ids: Record<string, string[]> = {};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'exptf');
  // the export's first file (Group) holds the run while the resources change
  await create(t, { resourceType: 'Group', type: 'person', actual: true });
  const subject = await t.api.put(`${t.path}/Patient/ra-subject`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', id: 'ra-subject' }));
  expect(subject.status).toBe(201);
  for (const [type, states] of Object.entries(STATES)) {
    ids[type] = [];
    for (const s of states) ids[type].push((await create(t, s.a)).id);
  }
}, 60_000);

afterAll(async () => server?.close());

async function writeAll(type: string, state: 'a' | 'b'): Promise<void> {
  for (const [i, s] of STATES[type].entries()) {
    const id = ids[type][i];
    const res = await t.api.put(`${t.path}/${type}/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...s[state], id }));
    expect(res.status).toBe(200);
  }
}

/** The ids of `type` the search answers for `query` (SQL). */
async function searched(type: string, query: string): Promise<string[]> {
  const params = new URLSearchParams([...new URLSearchParams(query), ['_count', '1000']]);
  const res = await t.api.get(`${t.path}/${type}?${params}`);
  expect(res.status).toBe(200);
  return ((res.body.entry ?? []) as { resource: { id: string } }[]).map((e) => e.resource.id).filter((id) => ids[type].includes(id)).sort();
}

describe('_typeFilter on resources changed after kick-off (judged in memory on their kick-off version)', () => {
  it.each([
    // token (plain, :not: also resources without a value), reference
    'Patient?gender=female',
    'Patient?gender:not=male',
    'Observation?subject=Patient/ra-subject',
    // string: prefix, accent- and case-insensitive; :exact; :contains; a HumanName's given
    'Patient?family=mul',
    'Patient?family:exact=Müller',
    'Patient?family:contains=LER',
    'Patient?name=anna',
    // date: ranges and prefixes; :missing
    'Patient?birthdate=1980-02',
    'Patient?birthdate=ge1980-02-03',
    'Patient?birthdate=lt1980',
    'Patient?birthdate=ne1980-02-03',
    'Patient?birthdate:missing=true',
    'Patient?family=mul&birthdate=le1980-02-10',
    // quantity: implied precision, prefixes, system and code
    'Observation?value-quantity=5.4',
    `Observation?value-quantity=gt10|${UCUM}|g/dL`,
    'Observation?value-quantity=ap100',
    // date over dateTime and Period
    'Observation?date=sa2020-01-01',
    'Observation?date=eb2021',
    // number
    'RiskAssessment?probability=100',
    'RiskAssessment?probability=ne100',
    'RiskAssessment?probability=le99.5',
  ])('exports what the search answered at kick-off for %s', async (filter) => {
    const [type, query] = filter.split('?');
    await writeAll(type, 'a');
    const expected = await searched(type, query);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(ids[type].length);
    const hold = holdExportCommits(server);
    try {
      const status = await kickOff(t.api, `${t.path}/$export?_type=Group,${type}&_typeFilter=${encodeURIComponent(filter)}`);
      await new Promise((r) => setTimeout(r, 20));
      await writeAll(type, 'b');
      // state B answers the query differently: judging the current version would be caught
      expect(await searched(type, query)).not.toEqual(expected);
      hold.release();
      const m = await waitForManifest(t.api, status);
      const exported = (await downloadAll(t.api, m)).filter((r) => r.resourceType === type && ids[type].includes(r.id));
      expect(exported.map((r) => r.id).sort()).toEqual(expected);
      expect(exported.every((r) => r.meta.versionId !== undefined && r.name?.[0]?.family !== 'Zzz')).toBe(true);
    } finally {
      hold.restore();
    }
  });
});
