// The input of a terminology operation, from the query string (GET) or a Parameters resource (POST), read the same
// way: typed accessors that answer 400 with the parameter's FHIRPath (Parameters.parameter[i].value[x]) or its
// query name when a value is missing, repeated, of the wrong type or out of range.
import { FhirError } from '../core/errors.js';
import type { CodingValue } from './model.js';

export type InputKind = 'string' | 'integer' | 'boolean' | 'coding' | 'codeableConcept' | 'resource';

interface Given {
  value: unknown;
  /** FHIRPath (POST) or query parameter name (GET), for errors */
  where: string;
}

/** Parameter value[x] names that carry a string-like value. */
const STRING_TYPES = ['valueString', 'valueCode', 'valueUri', 'valueUrl', 'valueCanonical', 'valueId', 'valueDateTime', 'valueDate', 'valueMarkdown'];
const MAX_TEXT = 4096;

function bad(message: string, where: string, code = 'PARAMETERS_INVALID'): FhirError {
  return new FhirError('invalid', message, { code, expression: [where] });
}

export class OperationInput {
  private constructor(
    private readonly op: string,
    private readonly given: Map<string, Given[]>,
    private readonly kinds: Record<string, InputKind>,
  ) {}

  /** GET: every value is text; a coding may be spelled system|code. Parameters not in `kinds` are ignored. */
  static fromQuery(op: string, params: [string, string][], kinds: Record<string, InputKind>): OperationInput {
    const given = new Map<string, Given[]>();
    for (const [name, value] of params) {
      if (!Object.hasOwn(kinds, name)) continue;
      if (kinds[name] === 'resource' || kinds[name] === 'codeableConcept') throw bad(`${op}: parameter '${name}' can only be sent in a Parameters body (POST)`, name);
      given.set(name, [...(given.get(name) ?? []), { value, where: name }]);
    }
    return new OperationInput(op, given, kinds);
  }

  /** POST: a Parameters resource; each parameter's value[x] (or resource) is checked against its kind. */
  static fromParameters(op: string, body: unknown, kinds: Record<string, InputKind>): OperationInput {
    const b = body as { resourceType?: unknown; parameter?: unknown } | null;
    if (!b || typeof b !== 'object' || b.resourceType !== 'Parameters') {
      throw bad(`${op} takes a Parameters resource in the body`, 'Parameters', 'PARAMETERS_INVALID');
    }
    if (b.parameter !== undefined && !Array.isArray(b.parameter)) throw bad('Parameters.parameter must be an array', 'Parameters.parameter');
    const given = new Map<string, Given[]>();
    ((b.parameter as unknown[] | undefined) ?? []).forEach((raw, i) => {
      const at = `Parameters.parameter[${i}]`;
      const p = raw as Record<string, unknown> | null;
      if (!p || typeof p !== 'object' || typeof p.name !== 'string' || !p.name) throw bad('Every parameter needs a name', `${at}.name`);
      if (!Object.hasOwn(kinds, p.name)) return;
      const valueKeys = Object.keys(p).filter((k) => k.startsWith('value') || k === 'resource');
      if (valueKeys.length !== 1) throw bad(`Parameter '${p.name}' needs exactly one value`, at);
      const key = valueKeys[0];
      given.set(p.name, [...(given.get(p.name) ?? []), { value: checkKind(p.name, kinds[p.name], key, p[key], `${at}.${key}`), where: `${at}.${key}` }]);
    });
    return new OperationInput(op, given, kinds);
  }

  has(name: string): boolean {
    return this.given.has(name);
  }

  private one(name: string): Given | undefined {
    const list = this.given.get(name);
    if (!list) return undefined;
    if (list.length > 1) throw bad(`${this.op}: parameter '${name}' may be given only once`, list[1].where);
    return list[0];
  }

  /** Where a parameter was given (for errors about its value). */
  where(name: string): string {
    return this.given.get(name)?.[0].where ?? name;
  }

  string(name: string): string | undefined {
    const g = this.one(name);
    if (!g) return undefined;
    const v = g.value as string;
    if (v === '' || v.length > MAX_TEXT) throw bad(`${this.op}: parameter '${name}' must be a non-empty text of at most ${MAX_TEXT} characters`, g.where);
    return v;
  }

  strings(name: string): string[] {
    return (this.given.get(name) ?? []).map((g) => g.value as string);
  }

  integer(name: string, min: number, max: number): number | undefined {
    const g = this.one(name);
    if (!g) return undefined;
    const n = typeof g.value === 'number' ? g.value : /^-?\d{1,9}$/.test(g.value as string) ? Number(g.value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw bad(`${this.op}: parameter '${name}' must be an integer from ${min} to ${max}`, g.where, 'PARAMETER_OUT_OF_RANGE');
    return n;
  }

  boolean(name: string): boolean | undefined {
    const g = this.one(name);
    if (!g) return undefined;
    if (typeof g.value === 'boolean') return g.value;
    if (g.value === 'true' || g.value === 'false') return g.value === 'true';
    throw bad(`${this.op}: parameter '${name}' must be true or false`, g.where);
  }

  coding(name: string): CodingValue | undefined {
    const g = this.one(name);
    if (!g) return undefined;
    if (typeof g.value !== 'string') return g.value as CodingValue;
    const bar = g.value.indexOf('|');
    return bar < 0 ? { code: g.value } : { system: g.value.slice(0, bar) || undefined, code: g.value.slice(bar + 1) };
  }

  codings(name: string): CodingValue[] | undefined {
    const g = this.one(name);
    return g ? (((g.value as { coding?: CodingValue[] }).coding ?? []) as CodingValue[]) : undefined;
  }

  resource<T>(name: string, type: string): T | undefined {
    const g = this.one(name);
    if (!g) return undefined;
    const r = g.value as { resourceType?: string };
    if (r.resourceType !== type) throw bad(`${this.op}: parameter '${name}' must be a ${type}`, g.where);
    return g.value as T;
  }
}

function isCoding(v: unknown): boolean {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const c = v as Record<string, unknown>;
  return ['system', 'version', 'code', 'display'].every((k) => c[k] === undefined || (typeof c[k] === 'string' && (c[k] as string).length <= MAX_TEXT));
}

function checkKind(name: string, kind: InputKind, key: string, value: unknown, where: string): unknown {
  const wrong = () => bad(`Parameter '${name}' has the wrong type (${key})`, where);
  switch (kind) {
    case 'string':
      if (!STRING_TYPES.includes(key) || typeof value !== 'string') throw wrong();
      return value;
    case 'integer':
      if ((key !== 'valueInteger' && key !== 'valuePositiveInt' && key !== 'valueUnsignedInt') || typeof value !== 'number') throw wrong();
      return value;
    case 'boolean':
      if (key !== 'valueBoolean' || typeof value !== 'boolean') throw wrong();
      return value;
    case 'coding':
      if (key !== 'valueCoding' || !isCoding(value)) throw wrong();
      return value;
    case 'codeableConcept': {
      const coding = (value as { coding?: unknown } | null)?.coding;
      if (key !== 'valueCodeableConcept' || !value || typeof value !== 'object' || (coding !== undefined && (!Array.isArray(coding) || !coding.every(isCoding)))) throw wrong();
      return value;
    }
    case 'resource':
      if (key !== 'resource' || !value || typeof value !== 'object' || Array.isArray(value)) throw wrong();
      return value;
  }
}
