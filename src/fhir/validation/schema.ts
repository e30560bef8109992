// Structural validation with the official R4 JSON Schema, compiled with ajv once per resource type (lazily).
// Nested resources (contained, Bundle.entry.resource, Parameters.parameter.resource) are validated
// against their own type's schema, so compiling one type never compiles all 145.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { fhirSchema, isResourceType } from '../../core/definitions.js';
import { dateRange } from '../../search/date-range.js';
import { issue } from '../../core/errors.js';
import { requiredIssues } from './required.js';
import { baseRuleIssues } from './base-rules.js';

const NESTED_RESOURCE = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function createAjv(): Ajv {
  const doc = structuredClone(fhirSchema()) as unknown as { definitions: Record<string, unknown> };
  // Every $ref to ResourceList (a oneOf over all resource types) becomes a shallow check;
  // the nested resource is validated separately with its own compiled schema.
  doc.definitions.ResourceList = NESTED_RESOURCE;
  // "Dates SHALL be valid dates": the schema's patterns accept 2024-02-30; a format checks the calendar.
  // Choice-type properties (effectiveDateTime, ...) repeat the pattern inline instead of a $ref, so match on it.
  const datePatterns = new Set(['date', 'dateTime', 'instant'].map((t) => (doc.definitions[t] as { pattern: string }).pattern));
  const markDates = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (typeof n.pattern === 'string' && datePatterns.has(n.pattern)) n.format = 'fhir-date';
    for (const v of Object.values(n)) if (v && typeof v === 'object') markDates(v);
  };
  markDates(doc.definitions);
  const a = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false, validateSchema: false, code: { optimize: 1 } });
  a.addFormat('fhir-date', (v: string) => dateRange(v) !== undefined);
  a.addSchema({ $id: 'fhir', definitions: doc.definitions }, 'fhir');
  return a;
}

function validatorFor(type: string): ValidateFunction {
  let fn = compiled.get(type);
  if (!fn) {
    ajv ??= createAjv();
    fn = ajv.getSchema(`fhir#/definitions/${type}`);
    if (!fn) throw new Error(`no schema for ${type}`);
    compiled.set(type, fn);
  }
  return fn;
}

/** "/name/0/family" -> "Patient.name[0].family" */
function toFhirPath(root: string, instancePath: string): string {
  let out = root;
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return out;
}

function describe(e: ErrorObject): { path: string; message: string } {
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      return { path: `${e.instancePath}/${prop}`, message: `Unknown element '${prop}'` };
    }
    case 'required': {
      const prop = (e.params as { missingProperty: string }).missingProperty;
      return { path: `${e.instancePath}/${prop}`, message: `Missing required element '${prop}'` };
    }
    case 'pattern':
      return { path: e.instancePath, message: `Invalid value format (does not match ${(e.params as { pattern: string }).pattern})` };
    case 'const':
      return { path: e.instancePath, message: `Value must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` };
    case 'enum':
      return {
        path: e.instancePath,
        message: `Value must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}`,
      };
    case 'type':
      return { path: e.instancePath, message: `Value must be of type ${(e.params as { type: string }).type}` };
    case 'format':
      return { path: e.instancePath, message: 'Invalid date: not a real calendar date or time' };
    default:
      return { path: e.instancePath, message: e.message ?? e.keyword };
  }
}

/**
 * Validates `resource` structurally. Returns every issue found (empty when valid), each with the
 * FHIRPath of the failing element in `expression`.
 */
export function validateSchema(resource: Record<string, unknown>, pathPrefix?: string): OperationOutcomeIssue[] {
  const type = resource.resourceType;
  const root = pathPrefix ?? String(type);
  if (typeof type !== 'string' || !isResourceType(type)) {
    return [issue('error', 'structure', `Unknown resourceType ${JSON.stringify(type)}`, { expression: [`${root}.resourceType`], code: 'UNKNOWN_RESOURCE_TYPE' })];
  }
  const fn = validatorFor(type);
  // the base rules name the precise problem; the schema's issue at the same element would only repeat it
  const base = baseRuleIssues(resource, root);
  const issues: OperationOutcomeIssue[] = [];
  if (!fn(resource)) {
    const seen = new Set<string>();
    // a value that already fails its pattern needs no second "not a real date" issue
    const patternFailed = new Set((fn.errors ?? []).filter((e) => e.keyword === 'pattern').map((e) => e.instancePath));
    for (const e of fn.errors ?? []) {
      if (e.keyword === 'format' && patternFailed.has(e.instancePath)) continue;
      // oneOf/anyOf wrappers repeat the inner failures; keep the concrete ones.
      if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
      const d = describe(e);
      const expression = toFhirPath(root, d.path);
      // null in a primitive array is how JSON lines values up with their `_name` extensions (json.html#primitive)
      if (base.paths.has(expression) || base.allowedNulls.has(expression)) continue;
      const key = `${expression}|${d.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      issues.push(issue('error', e.keyword === 'required' ? 'required' : 'structure', `${d.message} at ${expression}`, {
        expression: [expression],
        code: 'SCHEMA_VIOLATION',
      }));
      if (issues.length >= 50) break;
    }
  }
  for (const i of requiredIssues(resource, root)) if (!base.paths.has(i.expression?.[0] ?? '')) issues.push(i);
  issues.push(...base.issues);
  for (const [path, nested] of nestedResources(resource)) {
    issues.push(...validateSchema(nested, `${root}${path}`));
  }
  return issues;
}

/** Resources nested in a resource, with their FHIRPath-ish location relative to the parent. */
function* nestedResources(resource: Record<string, unknown>): Generator<[string, Record<string, unknown>]> {
  const contained = resource.contained;
  if (Array.isArray(contained)) {
    for (let i = 0; i < contained.length; i++) if (isObject(contained[i])) yield [`.contained[${i}]`, contained[i]];
  }
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    for (let i = 0; i < resource.entry.length; i++) {
      const e = resource.entry[i];
      if (!isObject(e)) continue;
      if (isObject(e.resource)) yield [`.entry[${i}].resource`, e.resource];
      if (isObject(e.response) && isObject(e.response.outcome)) yield [`.entry[${i}].response.outcome`, e.response.outcome];
    }
  }
  if (resource.resourceType === 'Parameters' && Array.isArray(resource.parameter)) {
    yield* nestedParameters(resource.parameter, '.parameter');
  }
}

function* nestedParameters(params: unknown[], path: string): Generator<[string, Record<string, unknown>]> {
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (!isObject(p)) continue;
    if (isObject(p.resource)) yield [`${path}[${i}].resource`, p.resource];
    if (Array.isArray(p.part)) yield* nestedParameters(p.part, `${path}[${i}].part`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
