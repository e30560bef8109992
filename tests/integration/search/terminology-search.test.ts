// Search backed by the terminology service (search.html#token, #quantity): token :in / :not-in (a value set by
// canonical URL or ValueSet/[id], the tenant's own first, then the shipped R4 ones), :below / :above (the code system's
// hierarchy), the same in conditional requests and _has, the refusals (unknown or too large value set, malformed
// values), tenant isolation; and quantity search compared in canonical UCUM units, precision range included.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
let u: TestTenant;
const ids: Record<string, string> = {};
const bIds: Record<string, string> = {};
const uIds: Record<string, string> = {};
const codeOf: Record<string, string> = {};
const vsIds: Record<string, string> = {};

const enc = encodeURIComponent;
const CS = 'http://lab.example.org/CodeSystem/orderables';
const VS_CHEM = 'http://lab.example.org/ValueSet/chemistry';
const VS_LOINC = 'http://lab.example.org/ValueSet/loinc-pair';
const VS_FINAL = 'http://lab.example.org/ValueSet/final-only';
const VS_BIG = 'http://lab.example.org/ValueSet/big';
const VITALS = 'http://hl7.org/fhir/ValueSet/observation-vitalsignresult';
const LOINC = 'http://loinc.org';
const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const UCUM = 'http://unitsofmeasure.org';

const found = (query: string) => searchKeys(a, ids, query);

/** The whole failure: status, error code and the parameter named as the expression; nothing leaks. */
function expectRefusal(res: Response, status: number, code: string, param: string): void {
  expect({ status: res.status, type: res.body?.resourceType, code: res.body?.issue?.[0]?.details?.coding?.[0]?.code, expression: res.body?.issue?.[0]?.expression }).toEqual({
    status,
    type: 'OperationOutcome',
    code,
    expression: [param],
  });
  expect(res.text).not.toMatch(/\n\s+at |node_modules|SELECT|sp_/);
}

/** The system|code pairs $expand lists for a value set (all of them: the sets here are small). */
async function expansionOf(t: TestTenant, url: string): Promise<Set<string>> {
  const res = await t.api.get(`${t.path}/ValueSet/$expand?url=${enc(url)}&count=1000`);
  expect(res.status).toBe(200);
  return new Set((res.body.expansion.contains ?? []).map((c: { system: string; code: string }) => `${c.system}|${c.code}`));
}

/** The test's Observations whose code is in `codes`. */
const observationsIn = (codes: Set<string>) => keys(...Object.keys(codeOf).filter((k) => codes.has(codeOf[k])));

async function observation(t: TestTenant, into: Record<string, string>, key: string, coding: { system: string; code: string } | undefined, extra: Record<string, unknown> = {}): Promise<void> {
  if (coding && into === ids) codeOf[key] = `${coding.system}|${coding.code}`;
  into[key] = (await create(t, { resourceType: 'Observation', status: 'final', code: coding ? { coding: [coding] } : { text: 'no code' }, ...extra })).id;
}

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'tsa');
  b = await newTenant(server, 'tsb');
  u = await newTenant(server, 'tsu');
  // three levels: lab > chem > glu, na; lab > hem > hgb, tmp
  await create(a, {
    resourceType: 'CodeSystem',
    url: CS,
    status: 'active',
    content: 'complete',
    concept: [
      {
        code: 'lab',
        display: 'Laboratory',
        concept: [
          { code: 'chem', display: 'Chemistry', concept: [{ code: 'glu', display: 'Glucose' }, { code: 'na', display: 'Sodium' }] },
          { code: 'hem', display: 'Hematology', concept: [{ code: 'hgb', display: 'Hemoglobin' }, { code: 'tmp', display: 'Temporary' }] },
        ],
      },
    ],
  });
  vsIds.chem = (await create(a, { resourceType: 'ValueSet', url: VS_CHEM, status: 'active', compose: { include: [{ system: CS, filter: [{ property: 'concept', op: 'is-a', value: 'chem' }] }] } })).id;
  vsIds.loinc = (await create(a, { resourceType: 'ValueSet', url: VS_LOINC, status: 'active', compose: { include: [{ system: LOINC, concept: [{ code: '2345-7' }, { code: '718-7' }] }] } })).id;
  await create(a, { resourceType: 'ValueSet', url: VS_FINAL, status: 'active', compose: { include: [{ system: 'http://hl7.org/fhir/observation-status', concept: [{ code: 'final' }] }] } });
  await create(a, { resourceType: 'CodeSystem', url: 'http://lab.example.org/CodeSystem/big', status: 'active', content: 'complete', concept: Array.from({ length: 1001 }, (_, i) => ({ code: `c${i}` })) });
  await create(a, { resourceType: 'ValueSet', url: VS_BIG, status: 'active', compose: { include: [{ system: 'http://lab.example.org/CodeSystem/big' }] } });

  ids.patient = (await create(a, { resourceType: 'Patient', name: [{ family: 'Chem' }] })).id;
  ids.other = (await create(a, { resourceType: 'Patient', name: [{ family: 'Other' }] })).id;
  for (const code of ['lab', 'chem', 'glu', 'na', 'hgb']) await observation(a, ids, code, { system: CS, code }, code === 'na' ? { subject: { reference: `Patient/${ids.patient}` } } : {});
  await observation(a, ids, 'loincGlu', { system: LOINC, code: '2345-7' });
  await observation(a, ids, 'loincHgb', { system: LOINC, code: '718-7' }, { subject: { reference: `Patient/${ids.other}` } });
  await observation(a, ids, 'heartRate', { system: LOINC, code: '8867-4' });
  await observation(a, ids, 'bpPanel', { system: LOINC, code: '85354-9' });
  await observation(a, ids, 'preliminary', { system: LOINC, code: '1558-6' }, { status: 'preliminary' });
  await observation(a, ids, 'noCode', undefined);
  for (const [key, code] of [['imp', 'IMP'], ['acute', 'ACUTE'], ['amb', 'AMB']]) {
    ids[key] = (await create(a, { resourceType: 'Encounter', status: 'finished', class: { system: ACT, code } })).id;
  }

  // tenant B: a code of A's code system, but neither its hierarchy nor A's value sets
  await observation(b, bIds, 'glu', { system: CS, code: 'glu' });
});
afterAll(async () => server.close());

describe(':in / :not-in', () => {
  it('a shipped R4 value set (observation-vitalsignresult): what $expand lists', async () => {
    const expected = observationsIn(await expansionOf(a, VITALS));
    expect(expected).toEqual(keys('heartRate', 'bpPanel'));
    expect(await found(`Observation?code:in=${enc(VITALS)}`)).toEqual(expected);
  });

  it("the tenant's own value set, by canonical URL, as ValueSet/[id] and as an absolute URL on the tenant's base", async () => {
    const expected = observationsIn(await expansionOf(a, VS_CHEM));
    expect(expected).toEqual(keys('chem', 'glu', 'na'));
    expect(await found(`Observation?code:in=${enc(VS_CHEM)}`)).toEqual(expected);
    expect(await found(`Observation?code:in=ValueSet/${vsIds.chem}`)).toEqual(expected);
    expect(await found(`Observation?code:in=${enc(`${a.base}/ValueSet/${vsIds.chem}`)}`)).toEqual(expected);
    expect(await found(`Observation?code:in=${enc(`${VS_LOINC}|`)}`)).toEqual(keys('loincGlu', 'loincHgb'));
  });

  it('several value sets OR-ed; AND with another parameter', async () => {
    expect(await found(`Observation?code:in=${enc(VS_CHEM)},${enc(VS_LOINC)}`)).toEqual(keys('chem', 'glu', 'na', 'loincGlu', 'loincHgb'));
    expect(await found(`Observation?code:in=${enc(VS_CHEM)}&subject=Patient/${ids.patient}`)).toEqual(keys('na'));
  });

  it(':not-in: no code in the value set (resources without a code too)', async () => {
    const all = Object.keys(codeOf).concat('noCode');
    const inChem = new Set(observationsIn(await expansionOf(a, VS_CHEM)));
    expect(await found(`Observation?code:not-in=${enc(VS_CHEM)}`)).toEqual(keys(...all.filter((k) => !inChem.has(k))));
  });

  it('an element of type code (indexed without a system) matches by its code', async () => {
    expect(await found(`Observation?status:in=${enc(VS_FINAL)}&code:in=${enc(VS_LOINC)}`)).toEqual(keys('loincGlu', 'loincHgb'));
    expect(await found(`Observation?status:not-in=${enc(VS_FINAL)}`)).toEqual(keys('preliminary'));
    expect(await found(`Observation?status:in=${enc('http://hl7.org/fhir/ValueSet/observation-status')}&code=${enc(`${LOINC}|1558-6`)}`)).toEqual(keys('preliminary'));
  });

  it('inside _has and chains', async () => {
    const patients = (q: string) => searchKeys(a, ids, q);
    expect(await patients(`Patient?_has:Observation:subject:code:in=${enc(VS_CHEM)}`)).toEqual(keys('patient'));
    expect(await patients(`Patient?_has:Observation:subject:code:below=${enc(`${CS}|lab`)}`)).toEqual(keys('patient'));
    expect(await found(`Observation?subject:Patient.family=other&code:in=${enc(VS_LOINC)}`)).toEqual(keys('loincHgb'));
  });
});

describe(':below / :above', () => {
  it("the tenant's code system hierarchy (three levels)", async () => {
    expect(await found(`Observation?code:below=${enc(`${CS}|lab`)}`)).toEqual(keys('lab', 'chem', 'glu', 'na', 'hgb'));
    expect(await found(`Observation?code:below=${enc(`${CS}|chem`)}`)).toEqual(keys('chem', 'glu', 'na'));
    expect(await found(`Observation?code:below=${enc(`${CS}|glu`)}`)).toEqual(keys('glu'));
    expect(await found(`Observation?code:above=${enc(`${CS}|glu`)}`)).toEqual(keys('glu', 'chem', 'lab'));
    expect(await found(`Observation?code:above=${enc(`${CS}|lab`)}`)).toEqual(keys('lab'));
  });

  it('what $expand says for is-a (below) and the same set through :in', async () => {
    const expected = observationsIn(await expansionOf(a, VS_CHEM)); // is-a chem
    expect(await found(`Observation?code:below=${enc(`${CS}|chem`)}`)).toEqual(expected);
  });

  it('an HL7 code system with a hierarchy (v3 ActCode: IMP > ACUTE, NONAC)', async () => {
    expect(await found(`Encounter?class:below=${enc(`${ACT}|IMP`)}`)).toEqual(keys('imp', 'acute'));
    expect(await found(`Encounter?class:above=${enc(`${ACT}|ACUTE`)}`)).toEqual(keys('imp', 'acute'));
    expect(await found(`Encounter?class:below=${enc(`${ACT}|AMB`)}`)).toEqual(keys('amb'));
  });

  it('a code system without hierarchy (the LOINC subset) or unknown to the server: the code itself', async () => {
    expect(await found(`Observation?code:below=${enc(`${LOINC}|2345-7`)}`)).toEqual(keys('loincGlu'));
    expect(await found(`Observation?code:above=${enc(`${LOINC}|718-7`)}`)).toEqual(keys('loincHgb'));
    expect(await found(`Observation?code:below=${enc('http://nowhere.example.org/cs|x')}`)).toEqual([]);
  });
});

describe('conditional requests', () => {
  it('If-None-Exist with :in finds the existing resource and creates nothing', async () => {
    const res = await a.api
      .post(`${a.path}/Observation`)
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', `subject=Patient/${ids.other}&code:in=ValueSet/${vsIds.loinc}`)
      .send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '718-7' }] } }));
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(ids.loincHgb);
    expect(await found(`Observation?code=${enc(`${LOINC}|718-7`)}`)).toEqual(keys('loincHgb'));
  });

  it('conditional delete with :below deletes what the hierarchy names', async () => {
    ids.tmp = (await create(a, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: CS, code: 'tmp' }] } })).id;
    expect(await found(`Observation?code:below=${enc(`${CS}|hem`)}`)).toEqual(keys('hgb', 'tmp'));
    const res = await a.api.delete(`${a.path}/Observation?code:above=${enc(`${CS}|tmp`)}&_id=${ids.tmp}`);
    expect([200, 204]).toContain(res.status);
    expect(await found(`Observation?code:below=${enc(`${CS}|hem`)}`)).toEqual(keys('hgb'));
  });

  it('a conditional request with an unknown value set is refused, and nothing is written', async () => {
    const res = await a.api
      .post(`${a.path}/Observation`)
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', `code:in=${enc('http://nowhere.example.org/ValueSet/x')}`)
      .send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'should not exist' } }));
    expectRefusal(res, 400, 'SEARCH_VALUESET_UNKNOWN', 'code:in');
    expect(await found('Observation?code:text=should')).toEqual([]);
  });
});

describe('refusals', () => {
  it('an unknown value set: 400 naming the parameter', async () => {
    expectRefusal(await a.api.get(`${a.path}/Observation?code:in=${enc('http://nowhere.example.org/ValueSet/x')}`), 400, 'SEARCH_VALUESET_UNKNOWN', 'code:in');
    expectRefusal(await a.api.get(`${a.path}/Observation?code:not-in=ValueSet/no-such-id`), 400, 'SEARCH_VALUESET_UNKNOWN', 'code:not-in');
  });

  it('an expansion beyond 1,000 codes: 400 SEARCH_EXPANSION_TOO_LARGE naming the parameter', async () => {
    expectRefusal(await a.api.get(`${a.path}/Observation?code:in=${enc(VS_BIG)}`), 400, 'SEARCH_EXPANSION_TOO_LARGE', 'code:in');
  });

  it('malformed values: :below without a system, a value set reference that is not one', async () => {
    expectRefusal(await a.api.get(`${a.path}/Observation?code:below=glu`), 400, 'SEARCH_TOKEN_SYSTEM_REQUIRED', 'code:below');
    expectRefusal(await a.api.get(`${a.path}/Observation?code:above=${enc(`${CS}|`)}`), 400, 'SEARCH_TOKEN_SYSTEM_REQUIRED', 'code:above');
    expectRefusal(await a.api.get(`${a.path}/Observation?code:in=not-a-value-set`), 400, 'SEARCH_VALUESET_INVALID', 'code:in');
    expectRefusal(await a.api.get(`${a.path}/Observation?code:in=Patient/${ids.patient}`), 400, 'SEARCH_VALUESET_INVALID', 'code:in');
  });

  it('a value set that cannot be expanded (all of UCUM, a grammar)', async () => {
    expectRefusal(await a.api.get(`${a.path}/Observation?code:in=${enc('http://hl7.org/fhir/ValueSet/ucum-units')}`), 400, 'SEARCH_VALUESET_UNEXPANDABLE', 'code:in');
  });

  it('the modifiers stay refused on other parameter types', async () => {
    const res = await a.api.get(`${a.path}/Observation?date:in=${enc(VS_CHEM)}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SEARCH_MODIFIER_INVALID');
  });
});

describe('tenant isolation', () => {
  it("another tenant's value set is unknown, by URL and by id", async () => {
    expectRefusal(await b.api.get(`${b.path}/Observation?code:in=${enc(VS_CHEM)}`), 400, 'SEARCH_VALUESET_UNKNOWN', 'code:in');
    expectRefusal(await b.api.get(`${b.path}/Observation?code:in=ValueSet/${vsIds.chem}`), 400, 'SEARCH_VALUESET_UNKNOWN', 'code:in');
  });

  it("another tenant's code system hierarchy is not used", async () => {
    expect(await searchKeys(b, bIds, `Observation?code:below=${enc(`${CS}|chem`)}`)).toEqual([]);
    expect(await searchKeys(b, bIds, `Observation?code:below=${enc(`${CS}|glu`)}`)).toEqual(keys('glu'));
    // and A's search never reaches B's resources
    expect(await found(`Observation?code:below=${enc(`${CS}|glu`)}`)).toEqual(keys('glu'));
  });
});

describe('quantity search in canonical UCUM units', () => {
  const q = (query: string) => searchKeys(u, uIds, `Observation?value-quantity=${enc(query)}`);
  const GLU = { system: LOINC, code: '2345-7' };

  beforeAll(async () => {
    const stored: [string, Record<string, unknown>][] = [
      ['gL1', { value: 1, unit: 'g/L', system: UCUM, code: 'g/L' }], // = 100 mg/dL
      ['mg100', { value: 100, unit: 'mg/dL', system: UCUM, code: 'mg/dL' }],
      ['mg150', { value: 150, unit: 'mg/dL', system: UCUM, code: 'mg/dL' }],
      ['gL05', { value: 0.5, unit: 'g/L', system: UCUM, code: 'g/L' }], // = 50 mg/dL
      ['mmol', { value: 5.5, unit: 'mmol/L', system: UCUM, code: 'mmol/L' }],
      ['noSystem', { value: 100, unit: 'mg/dL' }],
      ['tablets', { value: 100, unit: 'tablets', system: 'http://example.org/units', code: 'tablets' }],
    ];
    for (const [key, valueQuantity] of stored) await observation(u, uIds, key, GLU, { valueQuantity });
  });

  it.each([
    [`100|${UCUM}|mg/dL`, ['gL1', 'mg100']],
    [`eq100|${UCUM}|mg/dL`, ['gL1', 'mg100']],
    ['100||mg/dL', ['gL1', 'mg100', 'noSystem']],
    [`1|${UCUM}|g/L`, ['gL1', 'mg100', 'gL05']], // 1 is [0.5, 1.5) g/L
    [`gt100|${UCUM}|mg/dL`, ['mg150']],
    [`ge100|${UCUM}|mg/dL`, ['gL1', 'mg100', 'mg150']],
    [`lt100|${UCUM}|mg/dL`, ['gL05']],
    [`le100|${UCUM}|mg/dL`, ['gL1', 'mg100', 'gL05']],
    [`ap100|${UCUM}|mg/dL`, ['gL1', 'mg100']],
    [`ap1400|${UCUM}|mg/L`, ['mg150']],
    [`ne100|${UCUM}|mg/dL`, ['mg150', 'gL05']],
    [`sa100|${UCUM}|mg/dL`, ['mg150']],
    [`eb100|${UCUM}|mg/dL`, ['gL05']],
    [`5.5|${UCUM}|mmol/L`, ['mmol']],
    [`5500|${UCUM}|umol/L`, ['mmol']],
    [`100|${UCUM}|mg/dL,150|${UCUM}|mg/dL`, ['gL1', 'mg100', 'mg150']],
  ])('value-quantity=%s', async (query, expected) => {
    expect(await q(query)).toEqual(keys(...expected));
  });

  it('the precision range is converted too: 0.10 g/dL is [0.095, 0.105) g/dL = [95, 105) mg/dL', async () => {
    expect(await q(`0.10|${UCUM}|g/dL`)).toEqual(keys('gL1', 'mg100'));
    expect(await q(`1e2|${UCUM}|mg/dL`)).toEqual(keys('gL1', 'mg100'));
    expect(await q(`1.00|${UCUM}|g/L`)).toEqual(keys('gL1', 'mg100'));
    expect(await q(`0.500|${UCUM}|g/L`)).toEqual(keys('gL05'));
  });

  it('a non-UCUM unit still searches exactly as written', async () => {
    expect(await q('100||tablets')).toEqual(keys('tablets'));
    expect(await q('100|http://example.org/units|tablets')).toEqual(keys('tablets'));
    expect(await q('100|http://example.org/units|mg/dL')).toEqual([]);
  });

  it('searches without a unit never see the canonical values', async () => {
    expect(await q('1000')).toEqual([]);
    expect(await q('100')).toEqual(keys('mg100', 'noSystem', 'tablets'));
    expect(await q('ne100')).toEqual(keys('gL1', 'mg150', 'gL05', 'mmol'));
  });

  it('the composite code-value-quantity compares canonically too', async () => {
    const cq = (query: string) => searchKeys(u, uIds, `Observation?code-value-quantity=${enc(query)}`);
    expect(await cq(`${LOINC}|2345-7$100|${UCUM}|mg/dL`)).toEqual(keys('gL1', 'mg100'));
    expect(await cq(`${LOINC}|2345-7$gt0.9|${UCUM}|g/L`)).toEqual(keys('gL1', 'mg100', 'mg150'));
    expect(await cq(`${LOINC}|718-7$100|${UCUM}|mg/dL`)).toEqual([]);
  });

  it('sorting by the quantity reads only the values as written', async () => {
    const res = await u.api.get(`${u.path}/Observation?value-quantity=${enc(`ge1|${UCUM}|g/L`)}&_sort=-value-quantity`);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.resource.valueQuantity.value)).toEqual([150, 100, 1]);
  });
});
