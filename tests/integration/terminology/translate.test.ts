// ConceptMap/$translate (conceptmap-operation-translate.html): through a tenant ConceptMap (by url, by id, or found
// by the code's system) and through the shipped R4 maps; reverse; unmapped modes; errors.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectError, paramsOf } from './answers.js';

let server: TestServer;
let t: TestTenant;
let map: Record<string, any>;

const LOCAL = 'http://lab.example.org/CodeSystem/local-tests';
const MAP_URL = 'http://lab.example.org/ConceptMap/local-to-loinc';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'tr');
  map = await create(t, {
    resourceType: 'ConceptMap',
    url: MAP_URL,
    status: 'active',
    group: [
      {
        source: LOCAL,
        target: 'http://loinc.org',
        element: [
          { code: 'GLU', target: [{ code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', equivalence: 'equivalent' }] },
          { code: 'HB', target: [{ code: '718-7', equivalence: 'wider' }] },
          { code: 'XX', target: [{ equivalence: 'unmatched' }] },
        ],
        unmapped: { mode: 'fixed', code: '99999-9', display: 'Unmapped test' },
      },
    ],
  });
});
afterAll(async () => server.close());

const q = encodeURIComponent;
const translate = (query: string) => t.api.get(`${t.path}/ConceptMap/$translate?${query}`);

function matchesOf(res: Response): { equivalence: string; concept?: Record<string, string>; source?: string }[] {
  expect(res.status).toBe(200);
  return res.body.parameter
    .filter((p: any) => p.name === 'match')
    .map((p: any) => Object.fromEntries(p.part.map((x: any) => [x.name, x.valueCode ?? x.valueCoding ?? x.valueUri])));
}

describe('$translate', () => {
  it("translates through the tenant's ConceptMap named by url, by id, and found by the code's system", async () => {
    const byUrl = await translate(`url=${q(MAP_URL)}&system=${q(LOCAL)}&code=GLU`);
    expect(paramsOf(byUrl).result).toBe(true);
    expect(matchesOf(byUrl)).toEqual([{ equivalence: 'equivalent', concept: { system: 'http://loinc.org', code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }, source: MAP_URL }]);
    expect(matchesOf(await t.api.get(`${t.path}/ConceptMap/${map.id}/$translate?system=${q(LOCAL)}&code=HB`))).toEqual([{ equivalence: 'wider', concept: { system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' }, source: MAP_URL }]);
    expect(matchesOf(await translate(`system=${q(LOCAL)}&code=GLU&targetsystem=http://loinc.org`))[0].concept?.code).toBe('2345-7');
  });

  it('answers unmatched codes with result false, and applies the unmapped fixed code', async () => {
    const unmatched = await translate(`url=${q(MAP_URL)}&system=${q(LOCAL)}&code=XX`);
    expect(paramsOf(unmatched).result).toBe(false);
    expect(matchesOf(unmatched)).toEqual([{ equivalence: 'unmatched', source: MAP_URL }]);
    expect(matchesOf(await translate(`url=${q(MAP_URL)}&system=${q(LOCAL)}&code=NEW`))).toEqual([{ equivalence: 'equivalent', concept: { system: 'http://loinc.org', code: '99999-9', display: 'Unmapped test' }, source: MAP_URL }]);
  });

  it('translates in reverse (target to source), inverting wider/narrower', async () => {
    const res = await translate(`url=${q(MAP_URL)}&system=http://loinc.org&code=718-7&reverse=true`);
    expect(matchesOf(res)).toEqual([{ equivalence: 'narrower', concept: { system: LOCAL, code: 'HB' }, source: MAP_URL }]);
  });

  it('translates through a shipped R4 ConceptMap (administrative-gender to v2 and v3)', async () => {
    const res = await translate('system=http://hl7.org/fhir/administrative-gender&code=female');
    expect(paramsOf(res).result).toBe(true);
    const targets = matchesOf(res).map((m) => `${m.concept?.system}|${m.concept?.code}`).sort();
    expect(targets).toEqual(['http://terminology.hl7.org/CodeSystem/v2-0001|F', 'http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender|F']);
    const v2only = await translate('system=http://hl7.org/fhir/administrative-gender&code=female&targetsystem=http://terminology.hl7.org/CodeSystem/v2-0001');
    expect(matchesOf(v2only).map((m) => m.concept?.code)).toEqual(['F']);
    const byUrl = await t.api
      .post(`${t.path}/ConceptMap/$translate`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: 'http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v3' }, { name: 'coding', valueCoding: { system: 'http://hl7.org/fhir/administrative-gender', code: 'male' } }] }));
    expect(matchesOf(byUrl)).toEqual([{ equivalence: 'equal', concept: { system: 'http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender', code: 'M', display: 'Male' }, source: 'http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v3' }]);
  });

  it('answers result false with a message when nothing maps the code', async () => {
    const p = paramsOf(await translate('system=http://example.org/nothing&code=x'));
    expect(p).toEqual({ result: false, message: 'No mapping found for the code' });
  });

  it('rejects a missing code, a missing system, an unknown map', async () => {
    expectError(await translate(`url=${q(MAP_URL)}`), 400, 'TERMINOLOGY_CODE_MISSING', 'code');
    expectError(await translate('code=GLU'), 400, 'TERMINOLOGY_SYSTEM_MISSING', 'system');
    expectError(await translate(`url=http://nowhere.org/cm&system=${q(LOCAL)}&code=GLU`), 404, 'TERMINOLOGY_CONCEPTMAP_UNKNOWN', 'url');
    expectError(await translate(`url=${q(MAP_URL)}&system=${q(LOCAL)}&code=GLU&reverse=maybe`), 400, 'PARAMETERS_INVALID', 'reverse');
  });
});
