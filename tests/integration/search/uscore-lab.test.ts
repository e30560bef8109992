// US Core 6.1.0 lab searches as the Inferno US Core kit runs them (requirements/uscore-lab-searches.md):
// DiagnosticReport (lab) and Observation (lab) by patient, category, code, date (gt/ge/lt/le from a returned
// resource's date -/+ one day), status (all codes comma-joined), patient=id vs patient=Patient/id, POST _search,
// system|code forms, paging, and _revinclude=Provenance:target.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keyFor, keys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);
const enc = encodeURIComponent;

const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';
const LOINC = 'http://loinc.org';
const DR_STATUSES = ['registered', 'partial', 'preliminary', 'final', 'amended', 'corrected', 'appended', 'cancelled', 'entered-in-error', 'unknown'];
const OBS_STATUSES = ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'];

/** Follows next links like the kit does and returns every match resource. */
async function searchAll(query: string): Promise<{ first: Response; resources: any[]; included: any[] }> {
  let url: string | undefined = `${t.path}/${query}`;
  const resources: any[] = [];
  const included: any[] = [];
  let first: Response | undefined;
  while (url) {
    const res: Response = await t.api.get(url);
    expect({ url, status: res.status, type: res.body.resourceType }).toEqual({ url, status: 200, type: 'Bundle' });
    first ??= res;
    for (const e of res.body.entry ?? []) (e.search?.mode === 'include' ? included : e.search?.mode === 'match' ? resources : []).push(e.resource);
    const next: string | undefined = res.body.link?.find((l: any) => l.relation === 'next')?.url;
    url = next ? new URL(next).pathname + new URL(next).search : undefined;
  }
  return { first: first!, resources, included };
}
const keysOf = (resources: any[]) => resources.map((r) => keyOf(r.id)).sort();

/** The [low, high] instants (ms) of a FHIR date/dateTime or Period, by precision. */
function range(v: any): [number, number] {
  if (typeof v === 'object') return [v.start ? range(v.start)[0] : -Infinity, v.end ? range(v.end)[1] : Infinity];
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return [Date.parse(`${v}T00:00:00Z`), Date.parse(`${v}T00:00:00Z`) + 86_399_999];
  const ms = Date.parse(v);
  return /\.\d+/.test(v) ? [ms, ms] : [ms, ms + 999];
}
const effectiveOf = (r: any) => r.effectiveDateTime ?? r.effectivePeriod;

/** The kit's date_comparator_value: the resource's date (a Period's start) -1 day for gt/ge, +1 day for lt/le, as xmlschema. */
function kitDate(comparator: string, effective: any): string {
  const date = typeof effective === 'object' ? effective.start ?? effective.end : effective;
  const base = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : Date.parse(date);
  const shifted = new Date(base + (comparator === 'lt' || comparator === 'le' ? 1 : -1) * 86_400_000);
  return `${comparator}${shifted.toISOString().replace(/\.\d{3}Z$/, '+00:00')}`;
}

/** Does a target range satisfy comparator+instant (second precision)? The kit's "every returned resource must match". */
function satisfies(effective: any, value: string): boolean {
  const comparator = value.slice(0, 2);
  const [lo, hi] = range(effective);
  const sLo = Date.parse(value.slice(2));
  const sHi = sLo + 999;
  switch (comparator) {
    case 'gt':
      return hi > sHi;
    case 'ge':
      return hi >= sLo;
    case 'lt':
      return lo < sLo;
    default:
      return lo <= sHi;
  }
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'susc');
  ids.patient = (await create(t, { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: 'US-1' }], name: [{ family: 'Core', given: ['Lab'] }], gender: 'female' })).id;
  ids.otherPatient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Other' }], gender: 'male' })).id;
  ids.performer = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Pathologist' }] })).id;
  const subject = (key = 'patient') => ({ reference: `Patient/${ids[key]}` });
  const labObs = (code: string, status: string, effectiveDateTime: string, value: Record<string, unknown>, who = 'patient', category = 'laboratory') => ({
    resourceType: 'Observation',
    status,
    category: [{ coding: [{ system: OBS_CAT, code: category }] }],
    code: { coding: [{ system: LOINC, code }] },
    subject: subject(who),
    effectiveDateTime,
    ...value,
  });
  ids.ol1 = (await create(t, labObs('718-7', 'final', '2023-03-10T09:00:00Z', { valueQuantity: { value: 13.2, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' } }))).id;
  ids.ol2 = (await create(t, labObs('2345-7', 'amended', '2023-06-15T08:00:00+02:00', { valueString: 'Borderline' }))).id;
  ids.ol3 = (await create(t, labObs('718-7', 'preliminary', '2023-09-01', { valueCodeableConcept: { text: 'Normal' } }))).id;
  ids.ol4 = (await create(t, labObs('718-7', 'entered-in-error', '2024-01-01T00:00:00Z', { valueString: 'n/a' }))).id;
  ids.oVital = (await create(t, labObs('8867-4', 'final', '2023-03-10T09:00:00Z', { valueQuantity: { value: 70 } }, 'patient', 'vital-signs'))).id;
  ids.oOther = (await create(t, labObs('718-7', 'final', '2023-03-10T09:00:00Z', { valueString: 'x' }, 'otherPatient'))).id;
  const dr = (code: string, status: string, effective: Record<string, unknown>, results: string[], who = 'patient', category = 'LAB') => ({
    resourceType: 'DiagnosticReport',
    status,
    category: [{ coding: [{ system: V2_0074, code: category }] }],
    code: { coding: [{ system: LOINC, code }] },
    subject: subject(who),
    ...effective,
    issued: '2024-02-01T00:00:00Z',
    performer: [{ reference: `Practitioner/${ids.performer}` }],
    // an empty array is not valid FHIR JSON (json.html): a report without results leaves `result` out
    ...(results.length ? { result: results.map((k) => ({ reference: `Observation/${ids[k]}` })) } : {}),
  });
  ids.dr1 = (await create(t, dr('58410-2', 'final', { effectiveDateTime: '2023-03-10T09:00:00Z' }, ['ol1']))).id;
  ids.dr2 = (await create(t, dr('24323-8', 'amended', { effectiveDateTime: '2023-06-15' }, ['ol2']))).id;
  ids.dr3 = (await create(t, dr('58410-2', 'preliminary', { effectiveDateTime: '2023-09-01T23:30:00-04:00' }, ['ol3']))).id;
  ids.dr4 = (await create(t, dr('24323-8', 'corrected', { effectivePeriod: { start: '2023-12-01T00:00:00Z', end: '2023-12-02T00:00:00Z' } }, []))).id;
  ids.drRad = (await create(t, dr('24627-2', 'final', { effectiveDateTime: '2023-06-15' }, [], 'patient', 'RAD'))).id;
  ids.drOther = (await create(t, dr('58410-2', 'final', { effectiveDateTime: '2023-03-10T09:00:00Z' }, ['oOther'], 'otherPatient'))).id;
  const provenance = (target: string) => ({ resourceType: 'Provenance', target: [{ reference: target }], recorded: '2024-02-01T00:00:00Z', agent: [{ who: { reference: `Practitioner/${ids.performer}` } }] });
  ids.pvDr1 = (await create(t, provenance(`DiagnosticReport/${ids.dr1}`))).id;
  ids.pvDr3 = (await create(t, provenance(`DiagnosticReport/${ids.dr3}`))).id;
  ids.pvOl2 = (await create(t, provenance(`Observation/${ids.ol2}`))).id;
  ids.pvOther = (await create(t, provenance(`DiagnosticReport/${ids.drOther}`))).id;
  ids.pvRad = (await create(t, provenance(`DiagnosticReport/${ids.drRad}`))).id;
});
afterAll(async () => server.close());

const LAB_DRS = ['dr1', 'dr2', 'dr3', 'dr4'];
const LAB_OBS = ['ol1', 'ol2', 'ol3', 'ol4'];

describe('DiagnosticReport (us-core-diagnosticreport-lab)', () => {
  it('patient', async () => {
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}`)).resources)).toEqual(keys(...LAB_DRS, 'drRad'));
  });

  it('patient + category (the first search): LAB and system|LAB, patient=id and patient=Patient/id agree, POST agrees', async () => {
    const plain = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB`);
    expect(keysOf(plain.resources)).toEqual(keys(...LAB_DRS));
    const withSystem = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=${enc(`${V2_0074}|LAB`)}`);
    expect(keysOf(withSystem.resources)).toEqual(keys(...LAB_DRS));
    const typed = await searchAll(`DiagnosticReport?patient=${enc(`Patient/${ids.patient}`)}&category=LAB`);
    expect(keysOf(typed.resources)).toEqual(keysOf(plain.resources));
    const post = await t.api.post(`${t.path}/DiagnosticReport/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(`patient=${ids.patient}&category=LAB`);
    expect(post.status).toBe(200);
    expect(post.body.entry.filter((e: any) => e.search.mode === 'match')).toHaveLength(plain.resources.length);
  });

  it.each(['gt', 'ge', 'lt', 'le'])('patient + category + date=%s (a returned date -/+ one day): every result matches', async (comparator) => {
    const { resources } = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB`);
    for (const r of resources) {
      const value = kitDate(comparator, effectiveOf(r));
      const res = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB&date=${enc(value)}`);
      expect(keysOf(res.resources)).toContain(keyOf(r.id));
      for (const m of res.resources) expect({ value, id: keyOf(m.id), ok: satisfies(effectiveOf(m), value) }).toEqual({ value, id: keyOf(m.id), ok: true });
      for (const m of res.resources) expect(LAB_DRS).toContain(keyOf(m.id));
    }
  });

  it('patient + category + date: exact sets', async () => {
    const q = (date: string) => searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB&date=${enc(date)}`).then((r) => keysOf(r.resources));
    expect(await q('gt2023-06-14T00:00:00+00:00')).toEqual(keys('dr2', 'dr3', 'dr4'));
    expect(await q('ge2023-06-15')).toEqual(keys('dr2', 'dr3', 'dr4'));
    expect(await q('lt2023-06-16T00:00:00+00:00')).toEqual(keys('dr1', 'dr2'));
    expect(await q('le2023-03-11T09:00:00+00:00')).toEqual(keys('dr1'));
    expect(await q('2023-12-01')).toEqual([]);
    expect(await q('ge2023-12-01')).toEqual(keys('dr4'));
  });

  it('patient + code (and system|code), patient + code + date', async () => {
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}&code=58410-2`)).resources)).toEqual(keys('dr1', 'dr3'));
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}&code=${enc(`${LOINC}|24323-8`)}`)).resources)).toEqual(keys('dr2', 'dr4'));
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}&code=${enc(`${LOINC}|58410-2`)}&date=${enc('gt2023-03-11T09:00:00+00:00')}`)).resources)).toEqual(keys('dr3'));
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}&code=58410-2,24323-8&date=${enc('lt2023-07-01T00:00:00+00:00')}`)).resources)).toEqual(keys('dr1', 'dr2'));
  });

  it('patient + status with every status comma-joined returns every status seen for the patient', async () => {
    const all = await searchAll(`DiagnosticReport?patient=${ids.patient}`);
    const statuses = await searchAll(`DiagnosticReport?patient=${ids.patient}&status=${DR_STATUSES.join(',')}`);
    expect(keysOf(statuses.resources)).toEqual(keysOf(all.resources));
    expect(new Set(statuses.resources.map((r) => r.status))).toEqual(new Set(all.resources.map((r) => r.status)));
    expect(keysOf((await searchAll(`DiagnosticReport?patient=${ids.patient}&status=final`)).resources)).toEqual(keys('dr1', 'drRad'));
  });

  it('_revinclude=Provenance:target with patient + category', async () => {
    const res = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB&_revinclude=Provenance:target`);
    expect(keysOf(res.resources)).toEqual(keys(...LAB_DRS));
    expect(keysOf(res.included)).toEqual(keys('pvDr1', 'pvDr3'));
    for (const pv of res.included) expect(res.resources.map((r) => `DiagnosticReport/${r.id}`)).toContain(pv.target[0].reference);
  });

  it('the kit follows paging: _count=1 pages give the same set', async () => {
    const paged = await searchAll(`DiagnosticReport?patient=${ids.patient}&category=LAB&_count=1&_revinclude=Provenance:target`);
    expect(keysOf(paged.resources)).toEqual(keys(...LAB_DRS));
    expect(keysOf(paged.included)).toEqual(keys('pvDr1', 'pvDr3'));
  });
});

describe('Observation (us-core-observation-lab)', () => {
  it('patient + category=laboratory (the first search), with system|code, Patient/id and POST', async () => {
    const plain = await searchAll(`Observation?patient=${ids.patient}&category=laboratory`);
    expect(keysOf(plain.resources)).toEqual(keys(...LAB_OBS));
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&category=${enc(`${OBS_CAT}|laboratory`)}`)).resources)).toEqual(keys(...LAB_OBS));
    expect(keysOf((await searchAll(`Observation?patient=${enc(`Patient/${ids.patient}`)}&category=laboratory`)).resources)).toEqual(keys(...LAB_OBS));
    const post = await t.api.post(`${t.path}/Observation/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(`patient=${ids.patient}&category=laboratory`);
    expect(post.body.entry.filter((e: any) => e.search.mode === 'match')).toHaveLength(LAB_OBS.length);
  });

  it.each(['gt', 'ge', 'lt', 'le'])('patient + category + date=%s: every result matches', async (comparator) => {
    const { resources } = await searchAll(`Observation?patient=${ids.patient}&category=laboratory`);
    for (const r of resources) {
      const value = kitDate(comparator, effectiveOf(r));
      const res = await searchAll(`Observation?patient=${ids.patient}&category=laboratory&date=${enc(value)}`);
      expect(keysOf(res.resources)).toContain(keyOf(r.id));
      for (const m of res.resources) expect({ value, id: keyOf(m.id), ok: satisfies(effectiveOf(m), value) }).toEqual({ value, id: keyOf(m.id), ok: true });
    }
  });

  it('patient + code (and system|code), patient + code + date', async () => {
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&code=718-7`)).resources)).toEqual(keys('ol1', 'ol3', 'ol4'));
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&code=${enc(`${LOINC}|2345-7`)}`)).resources)).toEqual(keys('ol2'));
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&code=718-7&date=${enc('ge2023-08-31T00:00:00+00:00')}`)).resources)).toEqual(keys('ol3', 'ol4'));
    // 2023-06-15T08:00:00+02:00 is 06:00Z
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&code=2345-7&date=${enc('2023-06-15T06:00:00Z')}`)).resources)).toEqual(keys('ol2'));
  });

  it('patient + category + status with every status comma-joined', async () => {
    const all = await searchAll(`Observation?patient=${ids.patient}&category=laboratory`);
    const res = await searchAll(`Observation?patient=${ids.patient}&category=laboratory&status=${OBS_STATUSES.join(',')}`);
    expect(keysOf(res.resources)).toEqual(keysOf(all.resources));
    expect(keysOf((await searchAll(`Observation?patient=${ids.patient}&category=laboratory&status=final,amended`)).resources)).toEqual(keys('ol1', 'ol2'));
  });

  it('_revinclude=Provenance:target with patient + category', async () => {
    const res = await searchAll(`Observation?patient=${ids.patient}&category=laboratory&_revinclude=Provenance:target`);
    expect(keysOf(res.resources)).toEqual(keys(...LAB_OBS));
    expect(keysOf(res.included)).toEqual(keys('pvOl2'));
  });

  it('the must-support value[x] forms are all returned', async () => {
    const { resources } = await searchAll(`Observation?patient=${ids.patient}&category=laboratory`);
    for (const form of ['valueQuantity', 'valueCodeableConcept', 'valueString']) expect(resources.some((r) => r[form] !== undefined)).toBe(true);
  });
});
