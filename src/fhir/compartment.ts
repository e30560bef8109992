// The Patient compartment (compartmentdefinition-patient.html): which parameters of which types put a resource
// in a patient's compartment. Used by compartment search, Patient/$everything (and, later, patient/ scopes).
import type { Compartment } from '../search/plan.js';
import { patientCompartmentDefinition } from './definitions.js';

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

/** The compartment restriction for `types` (or every member type) of Patient/`id`. */
export function patientCompartment(id: string, types?: string[]): Compartment {
  const m = patientCompartmentMembers();
  const params: string[] = [];
  for (const [type, codes] of m) {
    if (types && !types.includes(type)) continue;
    for (const code of codes) if (code !== '{def}') params.push(`${type}:${code}`);
  }
  return { type: 'Patient', id, params };
}

export function isInPatientCompartment(type: string): boolean {
  return patientCompartmentMembers().has(type);
}
