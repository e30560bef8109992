// Fills the `common` list of terminology/ucum.json: the units laboratories report most, each with its display name
// and its canonical form (factor over base units) as src/terminology/ucum.ts computes it from the atoms above it.
// Run: node --import ./scripts/register-ts.mjs scripts/gen-ucum-common.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { canonicalUnit, parseUcum } from '../src/terminology/ucum.js';

const COMMON: [string, string][] = [
  ['%', 'percent'],
  ['1', 'one (unity)'],
  ['g/L', 'gram per liter'],
  ['g/dL', 'gram per deciliter'],
  ['mg/dL', 'milligram per deciliter'],
  ['mg/L', 'milligram per liter'],
  ['ug/dL', 'microgram per deciliter'],
  ['ug/L', 'microgram per liter'],
  ['ug/mL', 'microgram per milliliter'],
  ['ng/mL', 'nanogram per milliliter'],
  ['ng/dL', 'nanogram per deciliter'],
  ['ng/L', 'nanogram per liter'],
  ['pg/mL', 'picogram per milliliter'],
  ['mmol/L', 'millimole per liter'],
  ['umol/L', 'micromole per liter'],
  ['nmol/L', 'nanomole per liter'],
  ['pmol/L', 'picomole per liter'],
  ['mol/L', 'mole per liter'],
  ['meq/L', 'milliequivalent per liter'],
  ['mosm/kg', 'milliosmole per kilogram'],
  ['U/L', 'enzyme unit per liter'],
  ['U/mL', 'enzyme unit per milliliter'],
  ['[IU]/L', 'international unit per liter'],
  ['[IU]/mL', 'international unit per milliliter'],
  ['m[IU]/L', 'milli international unit per liter'],
  ['m[IU]/mL', 'milli international unit per milliliter'],
  ['u[IU]/mL', 'micro international unit per milliliter'],
  ['[iU]/L', 'international unit per liter'],
  ['10*3/uL', 'thousand per microliter'],
  ['10*6/uL', 'million per microliter'],
  ['10*9/L', 'billion per liter'],
  ['10*12/L', 'trillion per liter'],
  ['/uL', 'per microliter'],
  ['/mm3', 'per cubic millimeter'],
  ['/[HPF]', 'per high power field'],
  ['/[LPF]', 'per low power field'],
  ['fL', 'femtoliter'],
  ['pg', 'picogram'],
  ['s', 'second'],
  ['min', 'minute'],
  ['h', 'hour'],
  ['d', 'day'],
  ['mm/h', 'millimeter per hour'],
  ['mL/min', 'milliliter per minute'],
  ['mL/min/{1.73_m2}', 'milliliter per minute per 1.73 square meter'],
  ['mL/min/1.73.m2', 'milliliter per minute per 1.73 square meter'],
  ['mm[Hg]', 'millimeter of mercury'],
  ['kPa', 'kilopascal'],
  ['[pH]', 'pH'],
  ['g', 'gram'],
  ['kg', 'kilogram'],
  ['mg', 'milligram'],
  ['L', 'liter'],
  ['mL', 'milliliter'],
  ['dL', 'deciliter'],
  ['m', 'meter'],
  ['cm', 'centimeter'],
  ['kg/m2', 'kilogram per square meter'],
  ['Cel', 'degree Celsius'],
  ['[degF]', 'degree Fahrenheit'],
  ['/min', 'per minute'],
  ['{ratio}', 'ratio'],
  ['{titer}', 'titer'],
  ['{cells}/uL', 'cells per microliter'],
  ['mg/(24.h)', 'milligram per 24 hours'],
  ['g/(24.h)', 'gram per 24 hours'],
  ['mg/g{creat}', 'milligram per gram of creatinine'],
  ['mg/mmol{creat}', 'milligram per millimole of creatinine'],
  ['mmol/mol', 'millimole per mole'],
  ["[arb'U]/mL", 'arbitrary unit per milliliter'],
  ['k[IU]/L', 'kilo international unit per liter'],
];

const path = new URL('../terminology/ucum.json', import.meta.url);
const data = JSON.parse(readFileSync(path, 'utf8'));
data.common = [];
for (const [code, display] of COMMON) {
  const u = parseUcum(code);
  if (!u) throw new Error(`not a UCUM expression this parser reads: ${code}`);
  const canonical = u.special ? { factor: 1, unit: 'K', offset: u.special } : { factor: Number(u.factor.toPrecision(12)), unit: canonicalUnit(u.dims) };
  data.common.push({ code, display, canonical });
}
writeFileSync(path, `${JSON.stringify(data, null, 2).replace(/\n {6,}/g, ' ').replace(/\n {4}\}/g, ' }')}\n`);
console.log(`terminology/ucum.json: ${data.common.length} common units`);
