// JSON Patch (RFC 6902) applied to a resource: add, remove, replace, move, copy, test.
import { FhirError } from '../core/errors.js';

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function invalid(msg: string, index: number): FhirError {
  return new FhirError('invalid', `JSON Patch operation ${index}: ${msg}`, { code: 'PATCH_INVALID', expression: [`[${index}]`] });
}

function parsePointer(pointer: string, index: number): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw invalid(`path ${JSON.stringify(pointer)} must start with '/'`, index);
  const parts = pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  // No FHIR element is called __proto__; assigning it would swap the object's prototype.
  if (parts.includes('__proto__')) throw invalid(`path ${JSON.stringify(pointer)} names no element`, index);
  return parts;
}

/** Own properties only: walking into inherited ones (constructor, prototype) would let a patch write to Object.prototype. */
function child(node: unknown, key: string): unknown {
  if (Array.isArray(node)) return /^(0|[1-9]\d*)$/.test(key) ? node[Number(key)] : undefined;
  if (node && typeof node === 'object') return Object.prototype.hasOwnProperty.call(node, key) ? (node as Record<string, unknown>)[key] : undefined;
  return undefined;
}

function parentOf(doc: unknown, parts: string[], index: number): { parent: Record<string, unknown> | unknown[]; key: string } {
  let node: unknown = doc;
  for (const p of parts.slice(0, -1)) {
    node = child(node, p);
    if (node === undefined || node === null || typeof node !== 'object') throw invalid(`path /${parts.join('/')} does not exist`, index);
  }
  return { parent: node as Record<string, unknown> | unknown[], key: parts[parts.length - 1] };
}

function get(doc: unknown, parts: string[], index: number): unknown {
  let node: unknown = doc;
  for (const p of parts) {
    node = child(node, p);
    if (node === undefined) throw invalid(`path /${parts.join('/')} does not exist`, index);
  }
  return node;
}

function arrayIndex(arr: unknown[], key: string, index: number, forAdd: boolean): number {
  if (forAdd && key === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw invalid(`bad array index '${key}'`, index);
  const i = Number(key);
  if (i > arr.length || (!forAdd && i === arr.length)) throw invalid(`array index ${i} out of bounds`, index);
  return i;
}

function add(doc: unknown, parts: string[], value: unknown, index: number): unknown {
  if (parts.length === 0) return value;
  const { parent, key } = parentOf(doc, parts, index);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, index, true), 0, value);
  else parent[key] = value;
  return doc;
}

function remove(doc: unknown, parts: string[], index: number): unknown {
  if (parts.length === 0) throw invalid('cannot remove the whole resource', index);
  get(doc, parts, index);
  const { parent, key } = parentOf(doc, parts, index);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, index, false), 1);
  else delete parent[key];
  return doc;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * Removing the last item of an array leaves the element absent, not `[]`: FHIR JSON has no empty arrays
 * (json.html), so "remove /name/0" of a one-name Patient removes its name.
 */
function dropEmptied(doc: unknown, removed: string[], index: number): unknown {
  if (removed.length < 2) return doc;
  const arrayPath = removed.slice(0, -1);
  const arr = get(doc, arrayPath, index);
  return Array.isArray(arr) && arr.length === 0 ? remove(doc, arrayPath, index) : doc;
}

/** Applies `patch` to a deep copy of `doc`. Throws 400 naming the failing operation. */
export function applyJsonPatch(doc: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (!Array.isArray(patch)) {
    throw new FhirError('invalid', 'A JSON Patch body must be an array of operations', { code: 'PATCH_INVALID' });
  }
  let out: unknown = structuredClone(doc);
  patch.forEach((raw, i) => {
    if (!raw || typeof raw !== 'object') throw invalid('not an object', i);
    const op = raw as Op;
    if (typeof op.path !== 'string') throw invalid("missing 'path'", i);
    const parts = parsePointer(op.path, i);
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw invalid("missing 'value'", i);
        out = add(out, parts, structuredClone(op.value), i);
        break;
      case 'remove':
        out = dropEmptied(remove(out, parts, i), parts, i);
        break;
      case 'replace':
        if (!('value' in op)) throw invalid("missing 'value'", i);
        if (parts.length === 0) {
          out = structuredClone(op.value); // replacing the whole document (RFC 6902 §4.3 with path "")
          break;
        }
        out = remove(out, parts, i);
        out = add(out, parts, structuredClone(op.value), i);
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw invalid("missing 'from'", i);
        const from = parsePointer(op.from, i);
        if (op.op === 'move' && op.path.startsWith(op.from + '/')) throw invalid('cannot move a value into itself', i);
        const value = structuredClone(get(out, from, i));
        if (op.op === 'move') out = dropEmptied(remove(out, from, i), from, i);
        out = add(out, parts, value, i);
        break;
      }
      case 'test': {
        // A test against a missing location fails like a test against a different value (RFC 6902 §4.6).
        let actual: unknown;
        try {
          actual = get(out, parts, i);
        } catch {
          actual = undefined;
        }
        if (actual === undefined || !deepEqual(actual, op.value)) {
          throw new FhirError('unprocessable', `JSON Patch operation ${i}: test failed at ${op.path}`, { code: 'PATCH_TEST_FAILED', expression: [`[${i}]`] });
        }
        break;
      }
      default:
        throw invalid(`unknown op ${JSON.stringify(op.op)}`, i);
    }
  });
  if (!out || typeof out !== 'object' || Array.isArray(out)) throw new FhirError('invalid', 'The patch result is not a resource', { code: 'PATCH_INVALID' });
  return out as Record<string, unknown>;
}
