// The US Core 6.1 profiles shipped in profiles/: the examples written here (tests/fixtures/us-core) validate and are
// stored; a laboratory DiagnosticReport without its LAB category or without a LOINC code is refused at the right
// element; $validate takes `profile` at type and instance level and reports absent must-support elements; a claimed
// profile the server does not know is not enforced (a warning on $validate).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, issuesOf, LOINC, problemsOf, send, US_CORE, validate } from './helpers.js';

const FIXTURES = new URL('../../fixtures/us-core/', import.meta.url);
const fixtures: Record<string, Record<string, any>> = Object.fromEntries(
  readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8'))]),
);
const LAB = `${US_CORE}us-core-diagnosticreport-lab`;
const OBS_LAB = `${US_CORE}us-core-observation-lab`;

let server: TestServer;
let t: TestTenant;

/** Every fixture in one transaction of PUTs (ids kept, references between them resolved). */
function transaction(): Record<string, unknown> {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Object.values(fixtures).map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })),
  };
}

const labReport = (): Record<string, any> => structuredClone(fixtures['diagnosticreport-lab']);

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'uscore');
});
afterAll(async () => server.close());

describe('the CapabilityStatement', () => {
  it('lists the shipped profiles as supportedProfile of their types', async () => {
    const res = await t.api.get(`${t.path}/metadata`);
    expect(res.status).toBe(200);
    const of = (type: string) => res.body.rest[0].resource.find((r: Record<string, any>) => r.type === type)?.supportedProfile;
    expect(of('DiagnosticReport')).toEqual([LAB]);
    expect(of('Observation')).toEqual(expect.arrayContaining([OBS_LAB, `${US_CORE}us-core-observation-clinical-result`]));
    for (const type of ['Patient', 'Encounter', 'ServiceRequest', 'MedicationRequest', 'Organization']) expect(of(type)).toEqual([`${US_CORE}us-core-${type.toLowerCase()}`]);
    expect(of('Practitioner')).toBeUndefined();
  });
});

describe('US Core examples', () => {
  it('validate against the profiles they claim: no errors, no warnings', async () => {
    for (const [name, r] of Object.entries(fixtures)) {
      const res = await validate(t, `${r.resourceType}/$validate`, r);
      const problems = problemsOf(res).filter((p) => !p.includes('REFERENCE_NOT_FOUND'));
      expect({ name, problems }).toEqual({ name, problems: [] });
    }
  });

  it('are stored in one transaction, every one claiming its profile', async () => {
    const res = await send(t, 'post', '', transaction());
    expect({ status: res.status, entries: res.body.entry?.map((e: any) => e.response.status) }).toEqual({ status: 200, entries: Object.keys(fixtures).map(() => '201 Created') });
    const report = await t.api.get(`${t.path}/DiagnosticReport/uscore-dr-bmp`);
    expect(report.body.meta.profile).toEqual([LAB]);
  });
});

describe('US Core DiagnosticReport for laboratory results', () => {
  it('refuses a report without its LAB category, naming the category and the profile', async () => {
    const r = labReport();
    r.id = 'no-category';
    delete r.category;
    const res = await send(t, 'put', 'DiagnosticReport/no-category', r);
    // the element's minimum and its LAB slice's
    expectRefused(res, ['error PROFILE_CARDINALITY DiagnosticReport.category', 'error PROFILE_CARDINALITY DiagnosticReport.category'], LAB);
    expect(res.body.issue.map((i: any) => i.diagnostics)).toEqual([
      `Element DiagnosticReport.category requires at least 1 value(s), found 0 at DiagnosticReport.category (profile ${LAB})`,
      `Slice 'LaboratorySlice' of DiagnosticReport.category requires at least 1 value(s), found 0 at DiagnosticReport.category (profile ${LAB})`,
    ]);
    expect((await t.api.get(`${t.path}/DiagnosticReport/no-category`)).status).toBe(404);
  });

  it('refuses a report whose category is not LAB', async () => {
    const r = labReport();
    r.category = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] }];
    expectRefused(await send(t, 'post', 'DiagnosticReport', r), ['error PROFILE_CARDINALITY DiagnosticReport.category'], LAB);
  });

  it('refuses a report coded without LOINC, at DiagnosticReport.code', async () => {
    const r = labReport();
    r.code = { coding: [{ system: 'urn:local:tests', code: 'BMP' }], text: 'BMP' };
    const res = await send(t, 'post', 'DiagnosticReport', r);
    expectRefused(res, ['error PROFILE_INVARIANT DiagnosticReport.code'], LAB);
    expect(res.body.issue[0].diagnostics).toContain('lab-loinc-1');
  });

  it('refuses a final report without effective[x] and issued (us-core-8, us-core-9) and a subject that is not a Patient', async () => {
    const r = labReport();
    delete r.effectiveDateTime;
    delete r.issued;
    r.subject = { reference: 'Group/g1' };
    const res = await validate(t, 'DiagnosticReport/$validate', r);
    expect(problemsOf(res).filter((p) => p.startsWith('error PROFILE')).sort()).toEqual([
      'error PROFILE_INVARIANT DiagnosticReport',
      'error PROFILE_INVARIANT DiagnosticReport',
      'error PROFILE_TYPE DiagnosticReport.subject',
    ]);
  });
});

describe('$validate with profile=', () => {
  const unclaimed = () => {
    const r = labReport();
    delete r.meta;
    return r;
  };

  it('checks a profile the resource does not claim (type level, query parameter)', async () => {
    const plain = await validate(t, 'DiagnosticReport/$validate', { ...unclaimed(), category: undefined });
    expect(problemsOf(plain)).toEqual([]);
    const res = await validate(t, `DiagnosticReport/$validate?profile=${encodeURIComponent(LAB)}`, { ...unclaimed(), category: undefined });
    expect(problemsOf(res)).toEqual(['error PROFILE_CARDINALITY DiagnosticReport.category', 'error PROFILE_CARDINALITY DiagnosticReport.category']);
  });

  it('takes the profile in a Parameters body, at instance level', async () => {
    const body = { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...unclaimed(), category: undefined } }, { name: 'mode', valueCode: 'update' }, { name: 'profile', valueUri: LAB }] };
    const res = await validate(t, 'DiagnosticReport/uscore-dr-bmp/$validate', body);
    expect(res.status).toBe(200);
    expect(problemsOf(res)).toEqual(['error PROFILE_CARDINALITY DiagnosticReport.category', 'error PROFILE_CARDINALITY DiagnosticReport.category']);
    const ok = await validate(t, 'DiagnosticReport/uscore-dr-bmp/$validate', { ...body, parameter: [{ name: 'resource', resource: unclaimed() }, ...body.parameter.slice(1)] });
    expect(problemsOf(ok)).toEqual([]);
  });

  it('reports an unknown profile asked for as an error, and a profile of another type', async () => {
    const res = await validate(t, `DiagnosticReport/$validate?profile=${encodeURIComponent('http://example.org/nope')}`, unclaimed());
    expect(problemsOf(res)).toEqual(['error PROFILE_UNKNOWN DiagnosticReport']);
    const other = await validate(t, `DiagnosticReport/$validate?profile=${encodeURIComponent(OBS_LAB)}`, unclaimed());
    expect(problemsOf(other)).toEqual(['error PROFILE_TYPE DiagnosticReport']);
  });

  it('reports absent must-support elements as information', async () => {
    const r = unclaimed();
    delete r.performer;
    delete r.encounter;
    const res = await validate(t, `DiagnosticReport/$validate?profile=${encodeURIComponent(LAB)}`, r);
    expect(problemsOf(res)).toEqual([]);
    const info = res.body.issue.filter((i: any) => i.details?.coding?.[0]?.code === 'PROFILE_MUST_SUPPORT');
    expect(info.map((i: any) => `${i.severity} ${i.code} ${i.expression[0]}`)).toEqual(['information informational DiagnosticReport.performer']);
    expect(info[0].diagnostics).toBe(`Must-support element DiagnosticReport.performer is absent at DiagnosticReport.performer (profile ${LAB})`);
  });
});

describe('claimed profiles the server does not know', () => {
  const claim = (url: string) => ({ resourceType: 'Observation', meta: { profile: [url] }, status: 'final', code: { coding: [{ system: LOINC, code: '2345-7' }] } });

  it('are not enforced on writes (as HAPI does by default)', async () => {
    const res = await t.api.post(`${t.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify(claim('http://example.org/fhir/StructureDefinition/unknown')));
    expect(res.status).toBe(201);
  });

  it('are a warning on $validate, at the meta.profile entry', async () => {
    const res = await validate(t, 'Observation/$validate', claim('http://example.org/fhir/StructureDefinition/unknown'));
    expect(issuesOf(res)).toEqual(['warning PROFILE_UNKNOWN Observation.meta.profile[0]']);
  });

  it('a known profile of another type claimed is an error', async () => {
    const res = await t.api.post(`${t.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify(claim(LAB)));
    expectRefused(res, ['error PROFILE_TYPE Observation.meta.profile[0]'], LAB);
  });
});
