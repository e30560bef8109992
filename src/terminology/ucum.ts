// UCUM (https://ucum.org/ucum): unit expressions parsed into a factor over base units, so that quantities in
// different units compare (100 mg/dL = 1 g/L; 10*3/uL = 10*9/L), and the code system http://unitsofmeasure.org
// as a grammar: every well-formed expression over the atoms of terminology/ucum.json is a code.
// Departure from UCUM, on purpose: the mole is a base unit (UCUM defines it as 6.0221367e23, a pure number), so
// that substance concentrations (mmol/L) never compare equal to counts (10*9/L).
import { readFileSync } from 'node:fs';
import type { CodeSystemProvider, Concept, PropertyDef } from './model.js';

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

interface AtomDef {
  name: string;
  metric?: boolean;
  def?: string;
  factor?: number;
  special?: 'Cel' | 'degF';
}

interface UcumData {
  base: Record<string, string>;
  prefixes: Record<string, number>;
  atoms: Record<string, AtomDef>;
  common: { code: string; display: string; canonical: { factor: number; unit: string } }[];
}

/** A parsed unit: value in base units = value × factor; dims: base unit -> exponent. */
export interface UnitValue {
  factor: number;
  dims: Record<string, number>;
  /** Celsius or Fahrenheit alone: an offset scale, converted by value rather than by factor. */
  special?: 'Cel' | 'degF';
}

let data: UcumData | undefined;
const resolved = new Map<string, UnitValue>();

export function ucumData(): UcumData {
  data ??= JSON.parse(readFileSync(new URL('../../terminology/ucum.json', import.meta.url), 'utf8')) as UcumData;
  return data;
}

const MAX_UNIT_LENGTH = 200;

/** Parses a UCUM expression; undefined when it is not one. */
export function parseUcum(unit: string): UnitValue | undefined {
  if (!unit || unit.length > MAX_UNIT_LENGTH || /\s/.test(unit)) return undefined;
  const cached = parsedCache.get(unit);
  if (cached !== undefined) return cached ?? undefined;
  let out: UnitValue | undefined;
  try {
    const p = new Parser(unit);
    out = p.term();
    if (!p.done()) out = undefined;
  } catch {
    out = undefined;
  }
  if (parsedCache.size > 5000) parsedCache.clear();
  parsedCache.set(unit, out ?? null);
  return out;
}
const parsedCache = new Map<string, UnitValue | null>();

export function isValidUcum(unit: string): boolean {
  return parseUcum(unit) !== undefined;
}

/** "g.m-3": base units in a fixed order with their exponents; "1" when dimensionless. */
export function canonicalUnit(dims: Record<string, number>): string {
  const parts = Object.keys(dims)
    .filter((k) => dims[k] !== 0)
    .sort()
    .map((k) => (dims[k] === 1 ? k : `${k}${dims[k]}`));
  return parts.length ? parts.join('.') : '1';
}

const round = (x: number) => Number(x.toPrecision(12));

/**
 * The quantity in canonical base units: `canonicalQuantity(100, 'mg/dL')` and `canonicalQuantity(1, 'g/L')` both give
 * { value: 1000, unit: 'g.m-3' }. Undefined when the unit is not a UCUM expression.
 */
export function canonicalQuantity(value: number, unit: string): { value: number; unit: string } | undefined {
  const u = parseUcum(unit);
  if (!u || !Number.isFinite(value)) return undefined;
  if (u.special === 'Cel') return { value: round(value + 273.15), unit: 'K' };
  if (u.special === 'degF') return { value: round(((value - 32) * 5) / 9 + 273.15), unit: 'K' };
  return { value: round(value * u.factor), unit: canonicalUnit(u.dims) };
}

function multiply(a: UnitValue, b: UnitValue, exp = 1): UnitValue {
  if (a.special || b.special) throw new Error('special units cannot be combined');
  const dims = { ...a.dims };
  for (const [k, v] of Object.entries(b.dims)) dims[k] = (dims[k] ?? 0) + v * exp;
  return { factor: a.factor * b.factor ** exp, dims };
}

function power(u: UnitValue, exp: number): UnitValue {
  if (u.special && exp !== 1) throw new Error('special units cannot take exponents');
  if (exp === 1) return u;
  const dims: Record<string, number> = {};
  for (const [k, v] of Object.entries(u.dims)) dims[k] = v * exp;
  return { factor: u.factor ** exp, dims };
}

const UNITY: UnitValue = { factor: 1, dims: {} };

/** The value of one atom (no prefix), from its definition in ucum.json. */
function atomValue(symbol: string, depth = 0): UnitValue | undefined {
  const hit = resolved.get(symbol);
  if (hit) return hit;
  const d = ucumData();
  const atom = Object.hasOwn(d.atoms, symbol) ? d.atoms[symbol] : undefined;
  if (!atom || depth > 10) return undefined;
  let v: UnitValue;
  if (atom.special) v = { factor: 1, dims: { K: 1 }, special: atom.special };
  else if (atom.def === undefined) v = { factor: 1, dims: { [symbol]: 1 } };
  else {
    const p = new Parser(atom.def, depth + 1);
    const inner = p.term();
    if (!p.done()) throw new Error(`bad definition of ${symbol}`);
    v = { factor: inner.factor * (atom.factor ?? 1), dims: inner.dims };
  }
  resolved.set(symbol, v);
  return v;
}

/** A prefixed or plain atom: "mg" -> m + g; "mm[Hg]" -> m + m[Hg]. */
function symbolValue(symbol: string, depth: number): UnitValue | undefined {
  const d = ucumData();
  if (Object.hasOwn(d.atoms, symbol)) return atomValue(symbol, depth);
  for (const len of [2, 1]) {
    const prefix = symbol.slice(0, len);
    const rest = symbol.slice(len);
    if (!rest || !Object.hasOwn(d.prefixes, prefix) || !Object.hasOwn(d.atoms, rest) || !d.atoms[rest].metric) continue;
    const a = atomValue(rest, depth);
    if (!a || a.special) return undefined;
    return { factor: a.factor * d.prefixes[prefix], dims: a.dims };
  }
  return undefined;
}

/** Recursive descent over the UCUM grammar: term = ["/"] component (("." | "/") component)*. */
class Parser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly depth = 0,
  ) {}

  done(): boolean {
    return this.i >= this.s.length;
  }

  term(): UnitValue {
    let v: UnitValue;
    if (this.s[this.i] === '/') {
      this.i++;
      v = multiply(UNITY, this.component(), -1);
    } else v = this.component();
    while (!this.done() && (this.s[this.i] === '.' || this.s[this.i] === '/')) {
      const op = this.s[this.i++];
      v = multiply(v, this.component(), op === '/' ? -1 : 1);
    }
    return v;
  }

  private component(): UnitValue {
    const c = this.s[this.i];
    if (c === '(') {
      this.i++;
      const v = this.term();
      if (this.s[this.i++] !== ')') throw new Error('unbalanced parenthesis');
      return this.annotated(power(v, this.exponent() ?? 1));
    }
    if (c === '{') return this.annotation();
    const v = this.simple();
    return this.annotated(v);
  }

  /** An annotation right after a unit ("mL{total}") changes nothing. */
  private annotated(v: UnitValue): UnitValue {
    if (this.s[this.i] === '{') this.annotation();
    return v;
  }

  private annotation(): UnitValue {
    const end = this.s.indexOf('}', this.i);
    if (end < 0) throw new Error('unterminated annotation');
    const text = this.s.slice(this.i + 1, end);
    if (text.includes('{') || /[^\x21-\x7e]/.test(text)) throw new Error('bad annotation');
    this.i = end + 1;
    return UNITY;
  }

  private exponent(): number | undefined {
    const m = /^[+-]?\d{1,3}/.exec(this.s.slice(this.i));
    if (!m) return undefined;
    this.i += m[0].length;
    return Number(m[0]);
  }

  /** A number ("1000"), a power of ten ("10*3", "10^-2"), or a (prefixed) atom with an optional exponent. */
  private simple(): UnitValue {
    const rest = this.s.slice(this.i);
    const ten = /^10[*^]([+-]?\d{1,3})/.exec(rest);
    if (ten) {
      this.i += ten[0].length;
      return { factor: 10 ** Number(ten[1]), dims: {} };
    }
    const num = /^\d+(?![\d[a-zA-Z%])/.exec(rest);
    if (num) {
      this.i += num[0].length;
      return { factor: Number(num[0]), dims: {} };
    }
    // the symbol runs to the next operator, parenthesis or annotation; square brackets are part of it
    let j = this.i;
    while (j < this.s.length && !'./(){}'.includes(this.s[j])) {
      if (this.s[j] === '[') {
        const close = this.s.indexOf(']', j);
        if (close < 0) throw new Error('unbalanced bracket');
        j = close + 1;
      } else j++;
    }
    const token = this.s.slice(this.i, j);
    this.i = j;
    const m = /^(.*?[^\d+-])([+-]?\d{1,3})?$/.exec(token);
    if (!m) throw new Error(`not a unit: ${token}`);
    const v = symbolValue(m[1], this.depth);
    if (!v) throw new Error(`unknown unit: ${m[1]}`);
    return power(v, m[2] === undefined ? 1 : Number(m[2]));
  }
}

/** The UCUM code system: a grammar, with the common units of ucum.json as named concepts. */
export class UcumCodeSystem implements CodeSystemProvider {
  readonly url = UCUM_SYSTEM;
  readonly name = 'UCUM';
  readonly content = 'grammar' as const;
  readonly enumerable = false;
  readonly size = 0;
  readonly properties = new Map<string, PropertyDef>([['canonical', { code: 'canonical', type: 'string', description: 'The unit in canonical base units (factor and unit)' }]]);
  private readonly named = new Map<string, string>();

  constructor() {
    for (const c of ucumData().common) this.named.set(c.code, c.display);
  }

  lookup(code: string): Concept | undefined {
    const u = parseUcum(code);
    if (!u) return undefined;
    const canonical = u.special ? 'K' : `${round(u.factor)} ${canonicalUnit(u.dims)}`;
    return { code, display: this.named.get(code) ?? code, property: [{ code: 'canonical', valueString: canonical }], parents: [], children: [], inactive: false, abstract: false };
  }

  concepts(): Iterable<Concept> {
    return [];
  }

  isA(code: string, ancestor: string): boolean {
    return code === ancestor && isValidUcum(code);
  }

  descendantsOrSelf(code: string): string[] {
    return isValidUcum(code) ? [code] : [];
  }

  /** `canonical = <unit>`: units of the same kind (mg/dL, g/L and kg/m3 all share g.m-3). */
  filter(property: string, op: string, value: string): ((c: Concept) => boolean) | undefined {
    if (property !== 'canonical' || op !== '=') return undefined;
    const target = parseUcum(value);
    const want = target ? canonicalUnit(target.dims) : value;
    return (c) => {
      const u = parseUcum(c.code);
      return !!u && !u.special && canonicalUnit(u.dims) === want;
    };
  }
}
