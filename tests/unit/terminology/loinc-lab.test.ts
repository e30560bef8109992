// terminology/loinc-lab.json: the LOINC laboratory subset is well formed (check digits, every axis present, unique
// codes) and indexed as the fragment code system http://loinc.org.
import { describe, expect, it } from '@jest/globals';
import { loincCodeSystem, loincRows } from '../../../src/terminology/loinc.js';

/** LOINC's mod 10 check digit. */
function checkDigit(base: string): number {
  let sum = 0;
  [...base].reverse().forEach((ch, i) => {
    let d = Number(ch);
    if (i % 2 === 0) d *= 2;
    sum += d > 9 ? d - 9 : d;
  });
  return (10 - (sum % 10)) % 10;
}

describe('the LOINC laboratory subset', () => {
  const file = loincRows();

  it('holds a few hundred unique codes, each with a valid check digit and every axis', () => {
    expect(file.codes.length).toBeGreaterThanOrEqual(200);
    expect(new Set(file.codes.map((c) => c.code)).size).toBe(file.codes.length);
    for (const c of file.codes) {
      const [base, check] = c.code.split('-');
      expect({ code: c.code, check: Number(check) }).toEqual({ code: c.code, check: checkDigit(base) });
      for (const field of ['display', 'component', 'property', 'time', 'system', 'scale', 'class'] as const) expect(c[field]).toBeTruthy();
    }
    expect(file.copyright).toContain('Regenstrief Institute');
  });

  it('is the code system http://loinc.org, content fragment, with the axes as properties', () => {
    const cs = loincCodeSystem();
    expect(cs).toMatchObject({ url: 'http://loinc.org', content: 'fragment', size: file.codes.length });
    expect(cs.lookup('4548-4')?.property).toEqual(expect.arrayContaining([{ code: 'COMPONENT', valueString: 'Hemoglobin A1c/Hemoglobin.total' }, { code: 'SCALE_TYP', valueString: 'Qn' }]));
  });
});
