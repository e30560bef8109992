// The Patient compartment (compartmentdefinition-patient.html): which parameters of which types put a resource
// in a patient's compartment. Used by compartment search, Patient/$everything (and, later, patient/ scopes).
import { patientCompartmentMembers } from '../core/definitions.js';
import type { Compartment } from '../search/plan.js';

export { isInPatientCompartment } from '../core/definitions.js';

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
