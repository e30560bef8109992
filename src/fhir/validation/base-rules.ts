// Base R4 rules the JSON Schema does not express, checked in one walk over a resource (it runs on every write):
// base64Binary content, no empty arrays, objects or strings (ele-1 and json.html), null only where a primitive
// array's `_name` twin carries that entry, extension url and ext-1, and the narrative rules txt-1/txt-2.
// Element types come from the R4 JSON Schema's definitions; a nested resource (contained, Bundle.entry.resource, ...)
// is not entered: validateSchema calls this again for it with its own path.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { fhirSchema } from '../../core/definitions.js';
import { issue } from '../../core/errors.js';
import { checkNarrativeDiv } from './narrative.js';

/** A property of a schema definition: the type of its values, whether it repeats and whether that type is primitive. */
interface Prop {
  type: string;
  isArray: boolean;
  isPrimitive: boolean;
}

interface Problem {
  code: string;
  type: OperationOutcomeIssue['code'];
  message: string;
}

export interface BaseRuleResult {
  issues: OperationOutcomeIssue[];
  /** Expressions the issues name (one issue per expression). */
  paths: Set<string>;
  /** Array entries that are null legitimately (the `_name` twin has that entry): not schema errors either. */
  allowedNulls: Set<string>;
}

const RESOURCE = 'ResourceList';
const MAX_ISSUES = 50;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const CHOICE_VALUE = /^_?value[A-Z]/;

let primitives: Set<string> | undefined;
const shapes = new Map<string, Map<string, Prop> | undefined>();

function primitiveTypes(): Set<string> {
  if (!primitives) {
    primitives = new Set();
    for (const [name, def] of Object.entries(fhirSchema().definitions)) if (!def.properties && name !== RESOURCE) primitives.add(name);
  }
  return primitives;
}

/** The primitive type of a choice property the schema spells inline (valueBase64Binary -> base64Binary). */
function inlineType(name: string, schema: Record<string, unknown>): string {
  const items = schema.items as Record<string, unknown> | undefined;
  if (schema.enum || schema.const !== undefined || items?.enum) return 'code';
  let best: string | undefined;
  for (const p of primitiveTypes()) {
    const suffix = p[0].toUpperCase() + p.slice(1);
    if (name.length > suffix.length && name.endsWith(suffix) && (!best || p.length > best.length)) best = p;
  }
  return best ?? 'string';
}

function shapeOf(def: string): Map<string, Prop> | undefined {
  if (shapes.has(def)) return shapes.get(def);
  const properties = fhirSchema().definitions[def]?.properties as Record<string, Record<string, unknown>> | undefined;
  let shape: Map<string, Prop> | undefined;
  if (properties) {
    shape = new Map();
    for (const [name, schema] of Object.entries(properties)) {
      const items = schema.items as Record<string, unknown> | undefined;
      const ref = (schema.$ref ?? items?.$ref) as string | undefined;
      const type = ref ? ref.slice(ref.lastIndexOf('/') + 1) : inlineType(name, schema);
      shape.set(name, { type, isArray: schema.type === 'array' || items !== undefined, isPrimitive: primitiveTypes().has(type) });
    }
  }
  shapes.set(def, shape);
  return shape;
}

/** The type the walk gives a property of a schema definition: ('Attachment', 'data') -> 'base64Binary'. */
export function propertyType(def: string, name: string): string | undefined {
  return shapeOf(def)?.get(name)?.type;
}

/** RFC 4648 base64 (standard alphabet, padded), whitespace tolerated as the HL7 validator does. */
export function isBase64(value: string): boolean {
  const s = /\s/.test(value) ? value.replace(/\s+/g, '') : value;
  return s.length > 0 && s.length % 4 === 0 && BASE64.test(s);
}

class Walk {
  readonly issues: OperationOutcomeIssue[] = [];
  readonly paths = new Set<string>();
  readonly allowedNulls = new Set<string>();

  report(path: string, p: Problem): void {
    if (this.paths.has(path) || this.issues.length >= MAX_ISSUES) return;
    this.paths.add(path);
    this.issues.push(issue('error', p.type, `${path}: ${p.message}`, { code: p.code, expression: [path] }));
  }

  object(node: Record<string, unknown>, def: string, path: string, isResource: boolean): void {
    if (def === 'Extension') this.extension(node, path);
    const shape = shapeOf(def);
    let hasChildren = false;
    for (const key in node) {
      if (key !== 'id') hasChildren = true;
      const prop = shape?.get(key);
      if (!prop) continue; // unknown elements are the schema's to report
      const value = node[key];
      const at = `${path}.${key}`;
      if (value === null) this.report(at, { code: 'NULL_VALUE', type: 'structure', message: `'${key}' is null; leave an absent element out` });
      else if (Array.isArray(value)) {
        if (prop.isArray) this.array(node, key, value, prop, at);
      } else this.value(value, prop, at);
    }
    if (!isResource && !hasChildren) this.report(path, { code: 'ELEMENT_EMPTY', type: 'invariant', message: 'ele-1: an element must have a value or children; this one is empty' });
  }

  array(node: Record<string, unknown>, key: string, values: unknown[], prop: Prop, path: string): void {
    if (values.length === 0) {
      this.report(path, { code: 'ARRAY_EMPTY', type: 'structure', message: `'${key}' is an empty array; leave an absent element out` });
      return;
    }
    // a primitive array and its `_name` twin line up entry by entry; either may hold null where the other has the entry
    const isTwin = key.startsWith('_');
    const twin = prop.isPrimitive || isTwin ? node[isTwin ? key.slice(1) : `_${key}`] : undefined;
    const twinValues = Array.isArray(twin) ? twin : undefined;
    if (twinValues && !isTwin && twinValues.length !== values.length) {
      this.report(path, { code: 'ARRAY_LENGTH_MISMATCH', type: 'structure', message: `'${key}' has ${values.length} entries but '_${key}' has ${twinValues.length}; they must line up` });
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      const at = `${path}[${i}]`;
      if (v === null) {
        if (twinValues?.[i] !== null && twinValues?.[i] !== undefined) this.allowedNulls.add(at);
        else if (isTwin && twinValues?.[i] === null) continue; // both null: reported once, on the value array
        else this.report(at, { code: 'ARRAY_NULL_ENTRY', type: 'structure', message: `null entry in '${key}'${prop.isPrimitive || isTwin ? ` without a matching entry in '${isTwin ? key.slice(1) : `_${key}`}'` : ''}` });
      } else if (!Array.isArray(v)) this.value(v, prop, at);
    }
  }

  value(value: unknown, prop: Prop, path: string): void {
    if (typeof value === 'object') {
      // a primitive given as an object is a schema type error; a nested resource is validated on its own
      if (!prop.isPrimitive && prop.type !== RESOURCE) this.object(value as Record<string, unknown>, prop.type, path, false);
      return;
    }
    if (typeof value !== 'string') return;
    if (value === '') {
      this.report(path, { code: 'VALUE_EMPTY', type: 'value', message: 'empty string; a primitive value must not be empty (leave the element out)' });
    } else if (prop.type === 'base64Binary') {
      if (!isBase64(value)) this.report(path, { code: 'BASE64_INVALID', type: 'value', message: 'not valid base64 (RFC 4648 alphabet A-Z a-z 0-9 + /, padded with = to a multiple of 4)' });
    } else if (prop.type === 'xhtml') {
      const problem = checkNarrativeDiv(value);
      if (problem) this.report(path, { ...problem, type: problem.code === 'NARRATIVE_UNSAFE' ? 'security' : 'invariant' });
    }
  }

  /** Extension.url must be present and ext-1: nested extensions or a value[x], not both and not neither. */
  extension(node: Record<string, unknown>, path: string): void {
    if (typeof node.url !== 'string' || node.url === '') {
      this.report(`${path}.url`, { code: 'EXTENSION_URL_MISSING', type: 'required', message: 'an extension must have a url' });
    }
    const hasNested = Array.isArray(node.extension) && node.extension.length > 0;
    let hasValue = false;
    for (const key in node) if (CHOICE_VALUE.test(key) && node[key] !== null && node[key] !== undefined) hasValue = true;
    if (hasNested === hasValue) {
      this.report(path, {
        code: 'EXTENSION_CONTENT_INVALID',
        type: 'invariant',
        message: hasValue ? 'ext-1: an extension has either nested extensions or a value[x], not both' : 'ext-1: an extension must have either nested extensions or a value[x]',
      });
    }
  }
}

/**
 * Base-rule issues of one resource (not of the resources nested in it), rooted at `root` (e.g. "Patient" or
 * "Bundle.entry[1].resource"), one per expression.
 */
export function baseRuleIssues(resource: Record<string, unknown>, root: string): BaseRuleResult {
  const walk = new Walk();
  walk.object(resource, String(resource.resourceType), root, true);
  return { issues: walk.issues, paths: walk.paths, allowedNulls: walk.allowedNulls };
}
