// Reading a resource's JSON the way its definition names it: the values of one element (arrays, choice types named by
// their suffix, primitives whose value travels in the `_name` twin) and the type of each value.
import { isKnownType, isPrimitiveType } from './definitions.js';
import type { ElementNode } from './compile.js';

/**
 * The FHIRPath of a value, built only when an issue names it: the parent's path, the JSON name and the array index
 * ("DiagnosticReport.category[0]", "Observation.valueQuantity"). A walk makes one per value, and most are never read.
 */
export class Loc {
  private text?: string;

  constructor(
    readonly parent: Path,
    readonly name: string,
    readonly index = -1,
  ) {}

  toString(): string {
    this.text ??= `${String(this.parent)}.${this.name}${this.index >= 0 ? `[${this.index}]` : ''}`;
    return this.text;
  }
}

export type Path = string | Loc;

export interface Item {
  value: unknown;
  /** The FHIR type of the value (the choice suffix's type, a nested resource's resourceType). */
  type: string;
  path: Path;
}

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The type a choice suffix names: "Quantity" -> Quantity, "DateTime" -> dateTime. */
export function suffixType(suffix: string): string | undefined {
  if (!suffix || suffix[0] < 'A' || suffix[0] > 'Z') return undefined;
  if (isKnownType(suffix) && !isPrimitiveType(suffix)) return suffix;
  const lower = suffix[0].toLowerCase() + suffix.slice(1);
  return isKnownType(lower) ? lower : undefined;
}

/** Values of `node` in `obj` (with their paths under `path`), and how many there are (primitive twins count). */
export function itemsOf(node: ElementNode, obj: Json, path: Path, siblings: ReadonlySet<string>): { items: Item[]; count: number } {
  if (node.choicePrefix !== undefined) return choiceItems(node.choicePrefix, obj, path, siblings);
  const name = node.name;
  const v = obj[name];
  const twin = obj[`_${name}`];
  const type = node.types.length === 1 ? node.types[0].code : node.types[0]?.code ?? 'Element';
  const items: Item[] = [];
  if (Array.isArray(v) || Array.isArray(twin)) {
    const arr = Array.isArray(v) ? v : [];
    const tw = Array.isArray(twin) ? twin : [];
    const n = Math.max(arr.length, tw.length);
    for (let i = 0; i < n; i++) if (arr[i] !== undefined && arr[i] !== null) items.push({ value: arr[i], type: typeOfValue(type, arr[i]), path: new Loc(path, name, i) });
    return { items, count: n };
  }
  if (v !== undefined && v !== null) items.push({ value: v, type: typeOfValue(type, v), path: new Loc(path, name) });
  return { items, count: v !== undefined && v !== null ? 1 : twin !== undefined && twin !== null ? 1 : 0 };
}

/** A nested resource is typed by its resourceType. */
function typeOfValue(declared: string, v: unknown): string {
  if ((declared === 'Resource' || declared === 'DomainResource') && isObject(v) && typeof v.resourceType === 'string') return v.resourceType;
  return declared;
}

function choiceItems(prefix: string, obj: Json, path: Path, siblings: ReadonlySet<string>): { items: Item[]; count: number } {
  const items: Item[] = [];
  let count = 0;
  for (const key of Object.keys(obj)) {
    const twin = key.startsWith('_');
    const prop = twin ? key.slice(1) : key;
    if (!prop.startsWith(prefix) || prop.length === prefix.length || siblings.has(prop)) continue;
    const type = suffixType(prop.slice(prefix.length));
    if (!type) continue;
    if (twin) {
      if (obj[prop] === undefined) count++;
      continue;
    }
    const v = obj[key];
    if (v === undefined || v === null) continue;
    count++;
    items.push({ value: v, type, path: new Loc(path, key) });
  }
  return { items, count };
}

/**
 * The values at a simple FHIRPath below a value, as slicing discriminators name them: "$this", "code", "coding.system",
 * "value" (any type of value[x]), "extension('url')", "ofType(Quantity)". Returns undefined when the path uses
 * something else (resolve() is handled by the caller).
 */
export function valuesAt(value: unknown, path: string): unknown[] | undefined {
  let current: unknown[] = [value];
  const segs = splitPath(path);
  // "value.ofType(Quantity)" reads valueQuantity
  for (let i = 0; i + 1 < segs.length; i++) {
    const t = /^ofType\((\w+)\)$/.exec(segs[i + 1]);
    if (t && /^\w+$/.test(segs[i])) segs.splice(i, 2, segs[i] + t[1][0].toUpperCase() + t[1].slice(1));
  }
  for (const seg of segs) {
    if (seg === '$this') continue;
    const ext = /^extension\((['"])(.*)\1\)$/.exec(seg);
    const ofType = /^ofType\((\w+)\)$/.exec(seg);
    const next: unknown[] = [];
    for (const c of current) {
      if (!isObject(c)) continue;
      if (ext) {
        for (const e of asArray(c.extension)) if (isObject(e) && e.url === ext[2]) next.push(e);
      } else if (ofType) {
        next.push(c);
      } else if (/^\w+$/.test(seg)) {
        if (c[seg] !== undefined) next.push(...asArray(c[seg]));
        else for (const k of Object.keys(c)) if (k.startsWith(seg) && suffixType(k.slice(seg.length))) next.push(...asArray(c[k]));
      } else {
        return undefined;
      }
    }
    current = next.filter((x) => x !== null && x !== undefined);
  }
  return current;
}

export function asArray(v: unknown): unknown[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}

/** Splits a path on dots outside parentheses and quotes. */
export function splitPath(path: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (const ch of path) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '.' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out.filter((s) => s.length);
}
