// Invariants (ElementDefinition.constraint): FHIRPath expressions evaluated on each value of their element, with the
// fast evaluator (fhirpath-lite.ts) for the common subset and @medplum/core's engine otherwise, each expression
// compiled once per process. The engine lacks a few functions (children(), descendants(), memberOf(), resolve() cannot
// reach other resources): constraints needing them are not evaluated but counted. Those every resource carries are
// handled here: ele-1 and txt-1/txt-2 are the base validation's (base-rules.ts, narrative.ts, run before profiles),
// dom-3 (a contained resource is referenced from its container) and ref-1 (a local reference names a contained
// resource; the engine's version refuses "#", the container itself) are done natively.
import { evalFhirPathTyped, parseFhirPath, type FhirPathAtom, type TypedValue } from '@medplum/core';
import type { ElementDefinitionConstraint } from '@medplum/fhirtypes';
import { BEST_PRACTICE } from './definitions.js';
import { compileLite, Fallback, type LiteExpression } from './fhirpath-lite.js';

export interface Invariant {
  key: string;
  /** A best-practice constraint (elementdefinition-bestpractice) is information, whatever its severity. */
  severity: 'error' | 'warning' | 'information';
  human: string;
  expression: string;
  /** The profile that declares it (for the issue). */
  source: string;
  /** The fast evaluator's compiled form, when the expression is inside its subset. */
  lite?: LiteExpression;
  /** The full engine's parsed form; undefined when the engine cannot evaluate it (or it is done natively). */
  atom?: FhirPathAtom;
  native?: 'dom-3' | 'ref-1' | 'base';
}

const UNSUPPORTED = /\b(children|descendants|memberOf|htmlChecks|conformsTo|resolve|checkModifiers|hasTemplateIdOf|elementDefinition|slice|comparable|lowBoundary|highBoundary)\s*\(|%(?!resource\b|rootResource\b|context\b|ucum\b)[a-zA-Z`'"]/;

const parsed = new Map<string, FhirPathAtom | null>();

/** Parses an expression once per process; null when it does not parse. */
export function parseOnce(expression: string): FhirPathAtom | null {
  let atom = parsed.get(expression);
  if (atom === undefined) {
    try {
      atom = parseFhirPath(expression);
    } catch {
      atom = null;
    }
    parsed.set(expression, atom);
  }
  return atom;
}

/** Does the expression use what the engine cannot evaluate? */
export function isUnsupported(expression: string): boolean {
  return UNSUPPORTED.test(expression);
}

export function compileInvariant(c: ElementDefinitionConstraint, profileUrl: string): Invariant | undefined {
  if (!c.key || !c.expression) return undefined;
  const bestPractice = c.extension?.some((e) => e.url === BEST_PRACTICE && e.valueBoolean === true);
  const severity = bestPractice ? 'information' : c.severity === 'warning' ? 'warning' : 'error';
  const base = { key: c.key, severity, human: c.human ?? c.key, expression: c.expression, source: c.source ?? profileUrl } as const;
  // natives replace the core definitions' own constraints only (a profile may reuse a key for something else)
  // ele-1 (an element has a value or children) is the base validation's (validation/base-rules.ts), run before profiles
  if (c.key === 'ele-1' && c.expression.startsWith('hasValue() or (children()')) return { ...base, native: 'base' };
  if (c.key === 'dom-3' && c.expression.startsWith('contained.where(')) return { ...base, native: 'dom-3' };
  if (c.key === 'ref-1' && c.expression.startsWith("reference.startsWith('#').not()")) return { ...base, native: 'ref-1' };
  // the narrative's rules are the base validation's (validation/narrative.ts), run on every write before profiles
  if ((c.key === 'txt-1' || c.key === 'txt-2') && c.expression === 'htmlChecks()') return { ...base, native: 'base' };
  if (isUnsupported(c.expression)) return { ...base };
  const atom = parseOnce(c.expression);
  if (!atom) return { ...base };
  const lite = compileLite(c.expression);
  return lite ? { ...base, lite, atom } : { ...base, atom };
}

export interface InvariantScope {
  /** The resource holding the value (%resource) and the outermost one (%rootResource). */
  resource: Record<string, unknown>;
  rootResource: Record<string, unknown>;
}

/** true / false, or undefined when it could not be evaluated (the engine failed on it). */
export function evaluateInvariant(inv: Invariant, value: unknown, type: string, scope: InvariantScope): boolean | undefined {
  if (inv.native === 'base') return true;
  if (inv.native === 'dom-3') return containedAreReferenced(value);
  if (inv.native === 'ref-1') return localReferenceResolves(value, scope.rootResource);
  if (!inv.atom) return undefined;
  if (inv.lite) {
    try {
      return verdict(inv.lite(value, { resource: scope.resource, rootResource: scope.rootResource, context: value }));
    } catch (err) {
      if (!(err instanceof Fallback)) return undefined;
    }
  }
  const input: TypedValue = { type, value };
  const res = scope.resource;
  const variables: Record<string, TypedValue> = {
    '%resource': { type: String(res.resourceType), value: res },
    '%rootResource': { type: String(scope.rootResource.resourceType), value: scope.rootResource },
    '%context': input,
    '%ucum': { type: 'string', value: 'http://unitsofmeasure.org' },
  };
  try {
    return verdict(evalFhirPathTyped(inv.atom, [input], variables).map((v) => v.value));
  } catch {
    return undefined;
  }
}

/** An invariant holds unless it yields false ("empty" is not a violation: the HL7 validator reads it the same way). */
function verdict(out: unknown[]): boolean {
  return out.every((v) => v !== false);
}

/** ref-1: a local reference ("#id") names a resource contained in the root resource ("#" names the container). */
function localReferenceResolves(value: unknown, root: Record<string, unknown>): boolean {
  const ref = (value as { reference?: unknown })?.reference;
  if (typeof ref !== 'string' || !ref.startsWith('#') || ref === '#') return true;
  return Array.isArray(root.contained) && root.contained.some((c) => (c as { id?: unknown })?.id === ref.slice(1));
}

/**
 * dom-3: every contained resource is referenced from elsewhere in the resource ("#id"), or refers to its container
 * ("#"). References inside contained resources count too.
 */
function containedAreReferenced(value: unknown): boolean {
  const r = value as { contained?: unknown };
  if (!Array.isArray(r?.contained) || r.contained.length === 0) return true;
  const refs = new Set<string>();
  collectLocalRefs(value, refs, true);
  if (refs.has('#')) return true;
  return r.contained.every((c) => {
    const id = (c as { id?: unknown })?.id;
    return typeof id === 'string' && (refs.has(`#${id}`) || containsSelfRef(c));
  });
}

function containsSelfRef(c: unknown): boolean {
  const refs = new Set<string>();
  collectLocalRefs(c, refs, false);
  return refs.has('#');
}

function collectLocalRefs(node: unknown, out: Set<string>, top: boolean): void {
  if (typeof node === 'string') {
    if (node.startsWith('#')) out.add(node);
    return;
  }
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectLocalRefs(n, out, false);
    return;
  }
  for (const [k, v] of Object.entries(node)) {
    if (top && k === 'contained') {
      // references from one contained resource to another count; a contained resource naming only itself does not
      if (Array.isArray(v)) for (const c of v) collectLocalRefs(c, out, false);
      continue;
    }
    if (k === 'div') continue;
    collectLocalRefs(v, out, false);
  }
}
