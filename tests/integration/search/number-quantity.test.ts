// number and quantity search (search.html#number, #quantity; REST.md §9): implicit precision ("100" is
// [99.5, 100.5), "100.00" is [99.995, 100.005), "1e2" is [95, 105)), the prefixes, and quantity units
// (`|system|code`, `||code`, where the unit may be the code or the human unit).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const UCUM = 'http://unitsofmeasure.org';

// RiskAssessment.prediction.probabilityDecimal is the `probability` number parameter.
const PROBABILITY: Record<string, number> = { r99_5: 99.5, r100: 100, r100_004: 100.004, r100_4: 100.4, r100_5: 100.5, r98: 98, r60: 60 };
const QUANTITY: Record<string, Record<string, unknown>> = {
  mgdl: { value: 5.4, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
  mmol: { value: 5.4, unit: 'mmol/L', system: UCUM, code: 'mmol/L' },
  milligram: { value: 100, unit: 'milligram', system: UCUM, code: 'mg' },
  unitOnly: { value: 99.6, unit: 'mg' },
  gdl: { value: 100.004, unit: 'g/dL', system: UCUM, code: 'g/dL' },
  low: { value: 12, unit: 'g/dL', system: UCUM, code: 'g/dL' },
  negative: { value: -3.25, unit: 'Cel', system: UCUM, code: 'Cel' },
  sixty: { value: 60, unit: 'mg', system: UCUM, code: 'mg' },
};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'snum');
  const patient = (await create(t, { resourceType: 'Patient' })).id;
  for (const [key, probability] of Object.entries(PROBABILITY)) {
    ids[key] = (await create(t, { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${patient}` }, prediction: [{ probabilityDecimal: probability }] })).id;
  }
  ids.rNone = (await create(t, { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${patient}` } })).id;
  for (const [key, valueQuantity] of Object.entries(QUANTITY)) {
    ids[key] = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'q' }, valueQuantity })).id;
  }
  ids.qNone = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'q' }, valueString: '100' })).id;
});
afterAll(async () => server.close());

describe('number: implicit precision and prefixes (RiskAssessment?probability=)', () => {
  it.each([
    ['100', ['r99_5', 'r100', 'r100_004', 'r100_4']],
    ['eq100', ['r99_5', 'r100', 'r100_004', 'r100_4']],
    ['100.0', ['r100', 'r100_004']],
    ['100.00', ['r100', 'r100_004']],
    ['100.000', ['r100']],
    ['100.5', ['r100_5']],
    ['99.5', ['r99_5']],
    ['98', ['r98']],
    ['ne100', ['r100_5', 'r98', 'r60']],
    ['gt100', ['r100_004', 'r100_4', 'r100_5']],
    ['ge100', ['r100', 'r100_004', 'r100_4', 'r100_5']],
    ['lt100', ['r99_5', 'r98', 'r60']],
    ['le100', ['r99_5', 'r100', 'r98', 'r60']],
    ['ge100.4', ['r100_4', 'r100_5']],
    ['le99.5', ['r99_5', 'r98', 'r60']],
    ['sa100.4', ['r100_5']],
    ['eb98', ['r60']],
    ['ap100', ['r99_5', 'r100', 'r100_004', 'r100_4', 'r100_5', 'r98']],
    ['60,98', ['r60', 'r98']],
    ['0.6e2', ['r60']],
    ['1000', []],
  ])('probability=%s', async (value, expected) => {
    expect(await found(`RiskAssessment?probability=${value}`)).toEqual(keys(...expected));
  });

  it('AND of two prefixes is a range', async () => {
    expect(await found('RiskAssessment?probability=gt99&probability=lt100.1')).toEqual(keys('r99_5', 'r100', 'r100_004'));
  });

  it(':missing', async () => {
    expect(await found('RiskAssessment?probability:missing=true')).toEqual(keys('rNone'));
  });

  // REST.md §9 / search.html#number: "1e2" has one significant figure and means [95, 105); 60 is far outside.
  it('exponent notation keeps the precision of its mantissa: 1e2 is [95, 105)', async () => {
    expect(await found('RiskAssessment?probability=1e2')).toEqual(keys('r99_5', 'r100', 'r100_004', 'r100_4', 'r100_5', 'r98'));
  });
});

describe('quantity (Observation?value-quantity=)', () => {
  it.each([
    ['5.4', ['mgdl', 'mmol']],
    [`5.4|${UCUM}|mg/dL`, ['mgdl']],
    [`5.4|${UCUM}|mmol/L`, ['mmol']],
    [`5.4|http://other.org|mg/dL`, []],
    ['5.4||mmol/L', ['mmol']],
    ['5.4||mg/dL', ['mgdl']],
    ['100', ['milligram', 'unitOnly', 'gdl']],
    ['100.00', ['milligram', 'gdl']],
    ['100||mg', ['milligram', 'unitOnly']],
    [`100|${UCUM}|mg`, ['milligram']],
    ['gt100', ['gdl']],
    ['ge100', ['milligram', 'gdl']],
    ['lt13', ['mgdl', 'mmol', 'low', 'negative']],
    ['le12', ['mgdl', 'mmol', 'low', 'negative']],
    [`gt13|${UCUM}|g/dL`, ['gdl']],
    [`lt13|${UCUM}|g/dL`, ['low', 'mgdl']], // UCUM units compare canonically: 5.4 mg/dL < 13 g/dL
    ['ne100', ['mgdl', 'mmol', 'low', 'negative', 'sixty']],
    ['ap100', ['milligram', 'unitOnly', 'gdl']],
    ['-3.25', ['negative']],
    ['lt0', ['negative']],
    ['5.4,12', ['mgdl', 'mmol', 'low']],
  ])('value-quantity=%s', async (value, expected) => {
    expect(await found(`Observation?value-quantity=${enc(value)}`)).toEqual(keys(...expected));
  });

  it('AND of two prefixes with units', async () => {
    expect(await found(`Observation?value-quantity=${enc(`gt10|${UCUM}|g/dL`)}&value-quantity=lt50`)).toEqual(keys('low'));
  });

  it(':missing', async () => {
    expect(await found('Observation?value-quantity:missing=true')).toEqual(keys('qNone'));
  });

  // REST.md §9: "[number]||[code] (unit code or unit)". The milligram Quantity has unit "milligram", code "mg".
  it('||unit matches Quantity.unit (the human unit) as well as Quantity.code', async () => {
    expect(await found('Observation?value-quantity=100||milligram')).toEqual(keys('milligram'));
  });

  it('exponent notation: 1e2 is [95, 105), so 60 mg does not match', async () => {
    expect(await found('Observation?value-quantity=1e2')).toEqual(keys('milligram', 'unitOnly', 'gdl'));
  });
});
