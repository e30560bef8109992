// ValueSet.compose.include.filter (valueset.html#filters) compiled into predicates over a code system's concepts:
// hierarchy filters (is-a, descendent-of, is-not-a, generalizes) on `concept`/`code`, and =, in, not-in, regex,
// exists on the code, the display or any concept property. A predicate answers undefined when the code system
// cannot tell (a property a fragment does not carry).
import { FhirError } from '../core/errors.js';
import { isComplete, type CodeSystemProvider, type Concept, type PropertyValue } from './model.js';

export type ConceptTest = (c: Concept) => boolean | undefined;

export interface FilterSpec {
  property?: string;
  op?: string;
  value?: string;
}

const HIERARCHY_OPS = new Set(['is-a', 'descendent-of', 'is-not-a', 'generalizes']);
const MAX_REGEX_LENGTH = 256;

/** A regular expression from a client or a stored ValueSet, matched against whole values; 400 when unsafe or bad. */
export function compileRegex(pattern: string, expression: string): RegExp {
  const bad = (why: string) => new FhirError('invalid', `Filter regex ${JSON.stringify(pattern.slice(0, 80))} ${why}`, { code: 'TERMINOLOGY_FILTER_INVALID', expression: [expression] });
  if (pattern.length > MAX_REGEX_LENGTH) throw bad(`is longer than ${MAX_REGEX_LENGTH} characters`);
  // quantified groups that contain quantifiers, and back-references, can take exponential time: refused
  if (/\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)[*+{]/.test(pattern) || /\\[1-9]/.test(pattern)) throw bad('nests quantifiers or uses back-references, which this server does not evaluate');
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch {
    throw bad('is not a valid regular expression');
  }
}

/** The value of a concept property as text (code, string, coding code, boolean, number, dateTime). */
export function propertyText(p: PropertyValue): string | undefined {
  if (p.valueCode !== undefined) return p.valueCode;
  if (p.valueString !== undefined) return p.valueString;
  if (p.valueCoding?.code !== undefined) return p.valueCoding.code;
  if (p.valueBoolean !== undefined) return String(p.valueBoolean);
  if (p.valueInteger !== undefined) return String(p.valueInteger);
  if (p.valueDecimal !== undefined) return String(p.valueDecimal);
  return p.valueDateTime;
}

const valuesOf = (c: Concept, property: string) => (c.property ?? []).filter((p) => p.code === property).map(propertyText).filter((v): v is string => v !== undefined);
const listOf = (value: string) => value.split(',').map((v) => v.trim()).filter(Boolean);

/** Compiles one filter of an include/exclude on `cs`; `path` is its FHIRPath (for errors). */
export function compileFilter(cs: CodeSystemProvider, f: FilterSpec, path: string): ConceptTest {
  const { property, op, value } = f;
  if (!property || !op || value === undefined) {
    throw new FhirError('invalid', 'A filter needs property, op and value', { code: 'TERMINOLOGY_FILTER_INVALID', expression: [path] });
  }
  const own = cs.filter?.(property, op, value);
  if (own) return own;
  const unsupported = () => new FhirError('invalid', `Filter '${property} ${op}' is not supported on ${cs.url}`, { code: 'TERMINOLOGY_FILTER_INVALID', expression: [`${path}.op`] });
  if (property === 'concept' || property === 'code') {
    switch (op) {
      case 'is-a':
        return (c) => cs.isA(c.code, value);
      case 'descendent-of':
        return (c) => c.code !== value && cs.isA(c.code, value);
      case 'is-not-a':
        return (c) => !cs.isA(c.code, value);
      case 'generalizes':
        return (c) => cs.isA(value, c.code);
      case '=':
        return (c) => c.code === value;
      case 'in': {
        const set = new Set(listOf(value));
        return (c) => set.has(c.code);
      }
      case 'not-in': {
        const set = new Set(listOf(value));
        return (c) => !set.has(c.code);
      }
      case 'regex': {
        const re = compileRegex(value, `${path}.value`);
        return (c) => re.test(c.code);
      }
      default:
        throw unsupported();
    }
  }
  if (HIERARCHY_OPS.has(op)) throw unsupported();
  const textOf: (c: Concept) => string[] = property === 'display' ? (c) => (c.display !== undefined ? [c.display] : []) : (c) => valuesOf(c, property);
  // a property the code system does not declare, on a code system that holds only part of its content: unknown
  const unknowable = property !== 'display' && !isComplete(cs) && !cs.properties.has(property);
  const test = (pred: (values: string[]) => boolean): ConceptTest => (c) => (unknowable ? undefined : pred(textOf(c)));
  switch (op) {
    case '=':
      return test((vs) => vs.includes(value));
    case 'in': {
      const set = new Set(listOf(value));
      return test((vs) => vs.some((v) => set.has(v)));
    }
    case 'not-in': {
      const set = new Set(listOf(value));
      return test((vs) => !vs.some((v) => set.has(v)));
    }
    case 'regex': {
      const re = compileRegex(value, `${path}.value`);
      return test((vs) => vs.some((v) => re.test(v)));
    }
    case 'exists': {
      if (value !== 'true' && value !== 'false') throw new FhirError('invalid', `Filter 'exists' takes true or false, not ${JSON.stringify(value.slice(0, 40))}`, { code: 'TERMINOLOGY_FILTER_INVALID', expression: [`${path}.value`] });
      const want = value === 'true';
      return test((vs) => vs.length > 0 === want);
    }
    default:
      throw unsupported();
  }
}

/** The codes a filter can start from (is-a / descendent-of on the hierarchy), instead of every concept. */
export function filterSeed(cs: CodeSystemProvider, f: FilterSpec): string[] | undefined {
  if ((f.property === 'concept' || f.property === 'code') && (f.op === 'is-a' || f.op === 'descendent-of') && f.value !== undefined) return cs.descendantsOrSelf(f.value);
  if ((f.property === 'concept' || f.property === 'code') && (f.op === '=' || f.op === 'in') && f.value !== undefined) return f.op === '=' ? [f.value] : listOf(f.value);
  return undefined;
}
