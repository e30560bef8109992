// A fast evaluator for the plain-path FHIRPath expressions that make up ~97% of the R4 SearchParameter
// branches ("Observation.code", "(Observation.value as Quantity)", "Encounter.subject.where(resolve() is Patient)").
// Choice elements are resolved against the R4 JSON Schema at compile time. Anything else returns undefined and
// the caller falls back to the full FHIRPath engine.
import { fhirSchema } from './definitions.js';

export type Extractor = (resource: Record<string, unknown>) => unknown[];

interface SchemaProp {
  $ref?: string;
  items?: { $ref?: string };
}

const SIMPLE = /^\(?([A-Z][A-Za-z]+)((?:\.[a-zA-Z]+)+)(?: as ([A-Za-z]+))?\)?(?:\.as\(([A-Za-z]+)\))?(?:\.where\(resolve\(\) is ([A-Za-z]+)\))?$/;

function refType(p: SchemaProp | undefined): string | undefined {
  const ref = p?.$ref ?? p?.items?.$ref;
  return ref?.startsWith('#/definitions/') ? ref.slice('#/definitions/'.length) : undefined;
}

function ucfirst(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/** Compiles one union branch for `type`, or returns undefined when it is not a plain path. */
export function compileBranch(branch: string, type: string): Extractor | undefined {
  const m = SIMPLE.exec(branch.trim());
  if (!m) return undefined;
  const [, root, pathPart, castA, castB, resolveIs] = m;
  if (root !== type && root !== 'Resource' && root !== 'DomainResource') return undefined;
  const cast = castA ?? castB;
  const defs = fhirSchema().definitions as Record<string, { properties?: Record<string, SchemaProp> }>;
  const segments = pathPart.slice(1).split('.');
  // Each step is the list of JSON keys to read at that level (several for an uncast choice element).
  const steps: string[][] = [];
  let current: string | undefined = type;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const props: Record<string, SchemaProp> | undefined = current ? defs[current]?.properties : undefined;
    if (!props) return undefined;
    const last = i === segments.length - 1;
    if (props[seg]) {
      if (last && cast) return undefined; // "as" on a non-choice element: leave it to the engine
      steps.push([seg]);
      current = refType(props[seg]);
      continue;
    }
    const choices = Object.keys(props).filter((k) => k.length > seg.length && k.startsWith(seg) && /[A-Z]/.test(k[seg.length]));
    if (choices.length === 0) return undefined;
    if (last && cast) {
      const key = seg + ucfirst(cast);
      // Casting to a type the element cannot hold yields nothing, as in FHIRPath.
      steps.push(choices.includes(key) ? [key] : []);
      current = undefined;
    } else if (!last) {
      return undefined;
    } else {
      steps.push(choices);
      current = undefined;
    }
  }
  const prefix = resolveIs ? `${resolveIs}/` : undefined;
  return (resource) => {
    let values: unknown[] = [resource];
    for (const keys of steps) {
      const next: unknown[] = [];
      for (const v of values) {
        if (typeof v !== 'object' || v === null) continue;
        for (const k of keys) {
          const child = (v as Record<string, unknown>)[k];
          if (child === undefined || child === null) continue;
          if (Array.isArray(child)) for (const c of child) next.push(c);
          else next.push(child);
        }
      }
      values = next;
      if (values.length === 0) return values;
    }
    if (prefix) {
      values = values.filter((v) => {
        const ref = (v as { reference?: unknown })?.reference;
        return typeof ref === 'string' && (ref.startsWith(prefix) || ref.includes(`/${prefix}`));
      });
    }
    return values;
  };
}
