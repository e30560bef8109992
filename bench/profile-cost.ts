// Micro-benchmark of profile validation (issue 13: the lab profiles may cost W1 ingest at most 30%): the founders'
// lab Observations and DiagnosticReports (bench/synth.ts, 10 + 2 per patient bundle) validated in-process with the
// base schema only, then with the schema and the US Core lab profiles they are required to meet, as a write does.
// Tenant look-ups are answered empty (no database): the profiles are the shipped ones, and the value sets they bind
// (US Core's) are not known to the terminology service, so each binding costs one terminology call answering "cannot tell".
//
//   node --import ./scripts/register-ts.mjs bench/profile-cost.ts [--patients 200] [--rounds 5]
import { parseArgs } from 'node:util';
import type { FhirContext } from '../src/fhir/context.js';
import type { TenantSession } from '../src/store/session.js';
import { SearchParamRegistry } from '../src/core/search-registry.js';
import { validateProfiles } from '../src/fhir/validation/profile/index.js';
import { validateSchema } from '../src/fhir/validation/schema.js';
import { patientBundle, resolveBundle } from './synth.js';

const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';
const REQUIRED = { DiagnosticReport: [`${US_CORE}us-core-diagnosticreport-lab`], Observation: [`${US_CORE}us-core-observation-lab`] };

const { values } = parseArgs({ options: { patients: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } } });
const patients = Number(values.patients);
const rounds = Number(values.rounds);

const resources: Record<string, unknown>[] = [];
for (let i = 0; i < patients; i++) {
  for (const r of resolveBundle(patientBundle(i))) if (r.resourceType === 'Observation' || r.resourceType === 'DiagnosticReport') resources.push(r.resource as Record<string, unknown>);
}

const empty = { rows: [], more: false };
const session = { searchPage: async () => empty, searchIds: async () => [], readCurrent: async () => undefined, existing: async () => new Set() } as unknown as TenantSession;
const registry = new SearchParamRegistry();

/** A fresh request context per resource (as each write of a transaction shares one: this is the pessimistic case). */
function context(): FhirContext {
  return { tenant: { id: 'bench', name: 'bench', status: 'active', settings: { requiredProfiles: REQUIRED } }, deps: { clock: () => new Date() }, registry } as unknown as FhirContext;
}

async function pass(withProfiles: boolean): Promise<{ us: number; errors: number }> {
  let errors = 0;
  const start = performance.now();
  for (const r of resources) {
    errors += validateSchema(r).filter((i) => i.severity === 'error').length;
    if (withProfiles) errors += (await validateProfiles(context(), session, r, { mode: 'write' })).filter((i) => i.severity === 'error').length;
  }
  return { us: ((performance.now() - start) * 1000) / resources.length, errors };
}

const first = performance.now();
await pass(true);
console.log(`${resources.length} lab resources (${patients} patients); first pass, with loading the definitions: ${(performance.now() - first).toFixed(0)} ms`);
const schema: number[] = [];
const profiles: number[] = [];
for (let i = 0; i < rounds; i++) {
  const a = await pass(false);
  const b = await pass(true);
  if (a.errors || b.errors) throw new Error(`unexpected errors: schema ${a.errors}, profiles ${b.errors}`);
  schema.push(a.us);
  profiles.push(b.us);
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const s = median(schema);
const p = median(profiles);
console.log(`schema only:           ${s.toFixed(1)} µs/resource (median of ${rounds})`);
console.log(`schema + lab profiles: ${p.toFixed(1)} µs/resource`);
console.log(`profiles add:          ${(p - s).toFixed(1)} µs per lab resource`);
