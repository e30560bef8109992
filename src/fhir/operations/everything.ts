// Patient/[id]/$everything (patient-operation-everything): the patient, every resource in its compartment and
// the resources they reference, as a paged searchset Bundle; _since, _type and _count as the spec defines them.
import { patientCompartment, isInPatientCompartment } from '../compartment.js';
import type { FhirContext } from '../context.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { r4ResourceTypes } from '../../core/definitions.js';
import { FhirError } from '../../core/errors.js';
import { assertId, assertResourceType } from '../ids.js';
import { readResource } from '../interactions/read.js';
import { runSearch } from '../interactions/search.js';

// _include and _lastUpdated come back in this operation's own paging links
const ALLOWED = new Set(['_since', '_type', '_count', '_cursor', '_format', '_pretty', '_elements', '_summary', '_include', '_lastUpdated']);

/** GET|POST Patient/[id]/$everything */
export async function patientEverything(ctx: FhirContext, req: FhirRequest, patientId: string): Promise<FhirResult> {
  const params = req.params;
  assertId(patientId, 'URL');
  // 404/410 exactly like a read of the patient
  await readResource(ctx, 'Patient', patientId);
  for (const [k] of params) {
    if (!ALLOWED.has(k)) throw new FhirError('invalid', `$everything does not take '${k}' (supported: _since, _type, _count)`, { code: 'EVERYTHING_PARAM_INVALID' });
  }
  const typeParam = params.filter(([k]) => k === '_type').map(([, v]) => v).join(',');
  let types = [...r4ResourceTypes()].filter((t) => t === 'Patient' || isInPatientCompartment(t));
  if (typeParam) {
    const wanted = typeParam.split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of wanted) assertResourceType(t);
    types = types.filter((t) => wanted.includes(t));
  }
  const searchParams: [string, string][] = params.filter(([k]) => k !== '_type' && k !== '_since');
  const since = params.find(([k]) => k === '_since')?.[1];
  if (since !== undefined) searchParams.push(['_lastUpdated', `ge${since}`]);
  if (!searchParams.some(([k]) => k === '_include')) searchParams.push(['_include', '*']);
  const compartment = { ...patientCompartment(patientId, types), includeSelf: types.includes('Patient') };
  // every returned resource is a read on the caller's behalf ('r' on its type, inside its region)
  const access = { request: { interaction: 'operation' as const, operation: '$everything', resourceType: 'Patient', id: patientId }, letter: 'r' as const };
  return runSearch(ctx, { path: `Patient/${patientId}/$everything`, types, compartment, typeParam: typeParam || undefined, access }, searchParams, true);
}
