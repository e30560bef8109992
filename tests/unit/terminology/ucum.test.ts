// UCUM canonical forms (src/terminology/ucum.ts): quantities in different units of the same kind compare equal,
// different kinds never do, and terminology/ucum.json's common units agree with the parser.
import { describe, expect, it } from '@jest/globals';
import { canonicalQuantity, canonicalUnit, isValidUcum, parseUcum, ucumData } from '../../../src/terminology/ucum.js';

describe('canonicalQuantity', () => {
  it('makes mg/dL and g/L comparable (100 mg/dL = 1 g/L)', () => {
    expect(canonicalQuantity(100, 'mg/dL')).toEqual({ value: 1000, unit: 'g.m-3' });
    expect(canonicalQuantity(1, 'g/L')).toEqual(canonicalQuantity(100, 'mg/dL'));
    expect(canonicalQuantity(1, 'mg/L')).toEqual({ value: 1, unit: 'g.m-3' });
    expect(canonicalQuantity(7, 'g/dL')?.value).toBe(canonicalQuantity(70, 'g/L')?.value);
  });

  it('converts substance concentrations, which never compare with mass or counts', () => {
    expect(canonicalQuantity(5.5, 'mmol/L')).toEqual({ value: 5.5, unit: 'm-3.mol' });
    expect(canonicalQuantity(5500, 'umol/L')).toEqual({ value: 5.5, unit: 'm-3.mol' });
    expect(canonicalQuantity(1, 'mmol/L')?.unit).not.toBe(canonicalQuantity(1, 'mg/dL')?.unit);
    expect(canonicalQuantity(1, 'mmol/L')?.unit).not.toBe(canonicalQuantity(1, '10*9/L')?.unit);
  });

  it('makes 10*3/uL and 10*9/L the same count concentration', () => {
    expect(canonicalQuantity(4.5, '10*3/uL')).toEqual(canonicalQuantity(4.5, '10*9/L'));
    expect(canonicalQuantity(250, '10*3/uL')).toEqual({ value: 2.5e14, unit: 'm-3' });
    expect(canonicalQuantity(5, '10*6/uL')).toEqual(canonicalQuantity(5, '10*12/L'));
    expect(canonicalQuantity(4500, '/uL')).toEqual(canonicalQuantity(4.5, '10*9/L'));
  });

  it('handles prefixes, exponents, parentheses, annotations and arbitrary units', () => {
    expect(canonicalQuantity(1, 'mL/min/{1.73_m2}')).toEqual(canonicalQuantity(60, 'mL/h'));
    expect(canonicalQuantity(1, 'kg/m2')).toEqual({ value: 1000, unit: 'g.m-2' });
    expect(canonicalQuantity(1, 'mg/(24.h)')).toEqual(canonicalQuantity(1 / 24, 'mg/h'));
    expect(canonicalQuantity(2, '{cells}/uL')).toEqual(canonicalQuantity(2, '/uL'));
    expect(canonicalQuantity(50, 'U/L')?.unit).toBe('m-3.mol.s-1');
    expect(canonicalQuantity(1, 'U/L')?.value).toBeCloseTo(canonicalQuantity(1000 / 60, 'nkat/L')!.value, 10);
    expect(canonicalQuantity(3, 'm[IU]/mL')).toEqual(canonicalQuantity(3, '[IU]/L'));
    expect(canonicalQuantity(12, '%')).toEqual({ value: 0.12, unit: '1' });
    expect(canonicalQuantity(1, 'mm[Hg]')?.value).toBeCloseTo(canonicalQuantity(0.133322, 'kPa')!.value, 6);
  });

  it('converts Celsius and Fahrenheit by value (offset scales)', () => {
    expect(canonicalQuantity(37, 'Cel')).toEqual({ value: 310.15, unit: 'K' });
    expect(canonicalQuantity(98.6, '[degF]')).toEqual({ value: 310.15, unit: 'K' });
  });

  it('answers undefined for what is not a UCUM expression', () => {
    for (const u of ['', 'mg/', 'foo', 'mg dL', 'Cel/s', 'mg/{', '10*', '(mg', 'kk']) expect(canonicalQuantity(1, u)).toBeUndefined();
    expect(isValidUcum('mg/dL')).toBe(true);
    expect(isValidUcum('mcg')).toBe(false);
  });
});

describe('terminology/ucum.json', () => {
  it("lists common units whose canonical forms match the parser's", () => {
    const { common } = ucumData();
    expect(common.length).toBeGreaterThan(50);
    for (const c of common) {
      const u = parseUcum(c.code)!;
      expect(u).toBeDefined();
      if (u.special) continue;
      expect({ code: c.code, unit: c.canonical.unit, factor: c.canonical.factor }).toEqual({ code: c.code, unit: canonicalUnit(u.dims), factor: Number(u.factor.toPrecision(12)) });
    }
  });
});
