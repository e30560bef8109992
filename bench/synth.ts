// Deterministic synthetic clinical data for the benchmark: one FHIR R4 transaction Bundle per patient.
//
// Every bundle holds 23 entries (1 Patient, 1 Practitioner, 4 Encounter, 10 Observation, 2 DiagnosticReport,
// 3 MedicationRequest, 2 ServiceRequest) that point at each other through `urn:uuid:` fullUrls.
// Bundle i for a given seed is always the same, and can be produced on its own (no shared generator state),
// so the server ingest and the raw PostgreSQL ingest can regenerate identical data without holding it all.
//
// Print one bundle:  node --import ./scripts/register-ts.mjs bench/synth.ts [index] [seed]

import { pathToFileURL } from 'node:url';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Resource = { resourceType: string; id?: string; [key: string]: Json | undefined };

export interface BundleEntry {
  fullUrl: string;
  resource: Resource;
  request: { method: 'POST'; url: string };
}

export interface TransactionBundle {
  resourceType: 'Bundle';
  type: 'transaction';
  entry: BundleEntry[];
}

/** Entries in every generated bundle. */
export const ENTRIES_PER_BUNDLE = 23;
export const DEFAULT_SEED = 20240601;
export const MRN_SYSTEM = 'urn:bench:mrn';

// ---------------------------------------------------------------------------------------------------------
// Seeded PRNG: a 32-bit string hash picks the state of a small xorshift generator with a multiplicative output mix.

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche so nearby inputs diverge
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39) >>> 0;
  h ^= h >>> 15;
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;

  constructor(seedText: string) {
    this.a = hash32(`a:${seedText}`) || 0x9e3779b9;
    this.b = hash32(`b:${seedText}`) || 0x85ebca6b;
    for (let i = 0; i < 8; i++) this.u32(); // discard the first outputs
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    // two xorshift32 streams combined; period is ample for benchmark data
    let a = this.a;
    a ^= a << 13;
    a ^= a >>> 17;
    a ^= a << 5;
    this.a = a >>> 0;
    let b = this.b;
    b ^= b << 7;
    b ^= b >>> 9;
    b ^= b << 8;
    this.b = b >>> 0;
    let out = (this.a + Math.imul(this.b, 0x6c8e9cf5)) >>> 0;
    out ^= out >>> 16;
    out = Math.imul(out, 0x7feb352d) >>> 0;
    out ^= out >>> 15;
    return out >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Float in [min, max) rounded to `decimals`. */
  float(min: number, max: number, decimals: number): number {
    const f = 10 ** decimals;
    return Math.round((min + this.next() * (max - min)) * f) / f;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** `n` distinct items, in random order. */
  sample<T>(items: readonly T[], n: number): T[] {
    const copy = items.slice();
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.slice(0, n);
  }

  /** RFC 4122 version-4 UUID built from this generator. */
  uuid(): string {
    const bytes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const v = this.u32();
      bytes.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Vocabularies

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const NPI = 'http://hl7.org/fhir/sid/us-npi';

const GIVEN_F = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Nancy', 'Amara', 'Ingrid', 'Mei', 'Lucia', 'Fatima'];
const GIVEN_M = ['James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Daniel', 'Kwame', 'Lars', 'Hiro', 'Mateo', 'Omar'];
const FAMILY = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Okafor', 'Nakamura', 'Novak', 'Larsen', 'Haddad', 'Schmidt'];
const STREETS = ['Main St', 'Oak Ave', 'Maple Dr', 'Cedar Ln', 'Pine St', 'Elm St', 'Washington Ave', 'Lake Rd', 'Hill St', 'Park Blvd'];
const CITIES: [string, string, string][] = [
  ['Springfield', 'IL', '627'],
  ['Madison', 'WI', '537'],
  ['Portland', 'OR', '972'],
  ['Austin', 'TX', '787'],
  ['Boston', 'MA', '021'],
  ['Denver', 'CO', '802'],
  ['Raleigh', 'NC', '276'],
  ['Columbus', 'OH', '432'],
];

interface LabTest {
  code: string;
  display: string;
  unit: string; // UCUM code (also used as the human unit)
  low: number;
  high: number;
  decimals: number;
}

/** Basic metabolic panel members (5) and complete blood count members (5): the 10 Observations of a bundle. */
const BMP: LabTest[] = [
  { code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', unit: 'mg/dL', low: 70, high: 140, decimals: 0 },
  { code: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', unit: 'mg/dL', low: 0.6, high: 1.4, decimals: 2 },
  { code: '2951-2', display: 'Sodium [Moles/volume] in Serum or Plasma', unit: 'mmol/L', low: 134, high: 146, decimals: 0 },
  { code: '2823-3', display: 'Potassium [Moles/volume] in Serum or Plasma', unit: 'mmol/L', low: 3.4, high: 5.2, decimals: 1 },
  { code: '3094-0', display: 'Urea nitrogen [Mass/volume] in Serum or Plasma', unit: 'mg/dL', low: 6, high: 24, decimals: 0 },
];
const CBC: LabTest[] = [
  { code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', unit: 'g/dL', low: 11, high: 17.5, decimals: 1 },
  { code: '6690-2', display: 'Leukocytes [#/volume] in Blood by Automated count', unit: '10*3/uL', low: 3.8, high: 11.5, decimals: 1 },
  { code: '777-3', display: 'Platelets [#/volume] in Blood by Automated count', unit: '10*3/uL', low: 140, high: 420, decimals: 0 },
  { code: '4544-3', display: 'Hematocrit [Volume Fraction] of Blood by Automated count', unit: '%', low: 34, high: 52, decimals: 1 },
  { code: '789-8', display: 'Erythrocytes [#/volume] in Blood by Automated count', unit: '10*6/uL', low: 3.9, high: 6, decimals: 2 },
];
const PANELS = [
  { code: '51990-0', display: 'Basic metabolic panel - Blood', tests: BMP },
  { code: '58410-2', display: 'CBC panel - Blood by Automated count', tests: CBC },
];

export const MEDICATIONS: [string, string][] = [
  ['314076', 'lisinopril 10 MG Oral Tablet'],
  ['197361', 'amlodipine 5 MG Oral Tablet'],
  ['860975', '24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet'],
  ['617312', 'atorvastatin 10 MG Oral Tablet'],
  ['198211', 'simvastatin 40 MG Oral Tablet'],
  ['313782', 'acetaminophen 325 MG Oral Tablet'],
  ['310965', 'ibuprofen 200 MG Oral Tablet'],
  ['308136', 'amlodipine 2.5 MG Oral Tablet'],
];

export const SERVICES: [string, string][] = [
  ['168731009', 'Standard chest X-ray'],
  ['29303009', 'Electrocardiographic procedure'],
  ['73761001', 'Colonoscopy'],
  ['71651007', 'Mammography'],
  ['241615005', 'Magnetic resonance imaging of knee'],
];

export const ENCOUNTER_TYPES: [string, string][] = [
  ['185349003', 'Encounter for check up'],
  ['390906007', 'Follow-up encounter'],
  ['185345009', 'Encounter for symptom'],
];

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** FHIR dateTime/instant with second precision and a Z offset, e.g. 2021-03-04T10:00:00Z. */
export function fhirDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fhirDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function ref(fullUrl: string, display?: string): { [key: string]: Json } {
  return display ? { reference: fullUrl, display } : { reference: fullUrl };
}

function coding(system: string, code: string, display: string): { [key: string]: Json } {
  return { system, code, display };
}

// ---------------------------------------------------------------------------------------------------------
// The generator

/**
 * The transaction Bundle for synthetic patient `index` under `seed`. Deterministic: equal inputs give equal
 * output (including the urn:uuid fullUrls, which are valid UUIDs and double as ids for the raw SQL phase).
 */
export function patientBundle(index: number, seed: number = DEFAULT_SEED): TransactionBundle {
  const rng = new Rng(`${seed}/${index}`);
  const entries: BundleEntry[] = [];
  const add = (resource: Resource): string => {
    const fullUrl = `urn:uuid:${rng.uuid()}`;
    entries.push({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
    return fullUrl;
  };

  // Patient
  const gender = rng.next() < 0.5 ? 'female' : 'male';
  const given = rng.pick(gender === 'female' ? GIVEN_F : GIVEN_M);
  const family = rng.pick(FAMILY);
  const birthMs = Date.UTC(1935, 0, 1) + rng.int(0, 80 * 365) * DAY;
  const [city, state, zip3] = rng.pick(CITIES);
  const mrn = `MRN-${seed.toString(36)}-${String(index).padStart(7, '0')}`;
  const patientUrl = add({
    resourceType: 'Patient',
    identifier: [
      {
        use: 'usual',
        type: { coding: [coding(V2_0203, 'MR', 'Medical record number')] },
        system: MRN_SYSTEM,
        value: mrn,
      },
    ],
    active: true,
    name: [{ use: 'official', family, given: rng.next() < 0.3 ? [given, rng.pick(gender === 'female' ? GIVEN_F : GIVEN_M)] : [given] }],
    telecom: [{ system: 'phone', value: `555-${String(rng.int(100, 999))}-${String(rng.int(1000, 9999))}`, use: 'home' }],
    gender,
    birthDate: fhirDate(birthMs),
    address: [
      {
        use: 'home',
        line: [`${rng.int(1, 9999)} ${rng.pick(STREETS)}`],
        city,
        state,
        postalCode: `${zip3}${String(rng.int(0, 99)).padStart(2, '0')}`,
        country: 'US',
      },
    ],
  });
  const patientName = `${given} ${family}`;

  // Practitioner
  const drGiven = rng.pick(rng.next() < 0.5 ? GIVEN_F : GIVEN_M);
  const drFamily = rng.pick(FAMILY);
  const practitionerUrl = add({
    resourceType: 'Practitioner',
    identifier: [{ system: NPI, value: String(1000000000 + rng.int(0, 899999999)) }],
    active: true,
    name: [{ family: drFamily, given: [drGiven], prefix: ['Dr.'] }],
  });
  const drName = `Dr. ${drGiven} ${drFamily}`;

  // 4 Encounters, in chronological order between 2018 and 2024
  let cursor = Date.UTC(2018, 0, 1) + rng.int(0, 700) * DAY;
  const encounters: { url: string; start: number; end: number }[] = [];
  for (let i = 0; i < 4; i++) {
    cursor += rng.int(20, 300) * DAY;
    const start = Math.floor(cursor / DAY) * DAY + rng.int(7, 17) * HOUR + rng.pick([0, 15, 30, 45]) * 60_000;
    const end = start + rng.int(1, 6) * 15 * 60_000;
    const [typeCode, typeDisplay] = rng.pick(ENCOUNTER_TYPES);
    const url = add({
      resourceType: 'Encounter',
      status: 'finished',
      class: coding(ACT_CODE, 'AMB', 'ambulatory'),
      type: [{ coding: [coding(SNOMED, typeCode, typeDisplay)], text: typeDisplay }],
      subject: ref(patientUrl, patientName),
      participant: [{ individual: ref(practitionerUrl, drName) }],
      period: { start: fhirDateTime(start), end: fhirDateTime(end) },
    });
    encounters.push({ url, start, end });
  }

  // 10 lab Observations (two panels of 5), each panel drawn during one encounter
  const panelEncounters = rng.sample(encounters, 2);
  const panelResults: { obs: string[]; effective: number; encounter: string }[] = [];
  PANELS.forEach((panel, p) => {
    const enc = panelEncounters[p];
    const effective = enc.start + rng.int(0, 3) * 5 * 60_000;
    const obs: string[] = [];
    for (const t of panel.tests) {
      const value = rng.float(t.low * 0.85, t.high * 1.15, t.decimals);
      const interpretation = value < t.low ? 'L' : value > t.high ? 'H' : 'N';
      obs.push(
        add({
          resourceType: 'Observation',
          status: 'final',
          category: [{ coding: [coding(OBS_CATEGORY, 'laboratory', 'Laboratory')] }],
          code: { coding: [coding(LOINC, t.code, t.display)], text: t.display },
          subject: ref(patientUrl, patientName),
          encounter: ref(enc.url),
          effectiveDateTime: fhirDateTime(effective),
          issued: fhirDateTime(effective + 4 * HOUR),
          valueQuantity: { value, unit: t.unit, system: UCUM, code: t.unit },
          interpretation: [
            {
              coding: [
                coding(
                  'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
                  interpretation,
                  interpretation === 'L' ? 'Low' : interpretation === 'H' ? 'High' : 'Normal',
                ),
              ],
            },
          ],
          referenceRange: [
            {
              low: { value: t.low, unit: t.unit, system: UCUM, code: t.unit },
              high: { value: t.high, unit: t.unit, system: UCUM, code: t.unit },
            },
          ],
        }),
      );
    }
    panelResults.push({ obs, effective, encounter: enc.url });
  });

  // 2 DiagnosticReports, one per panel, each pointing at its 5 Observations
  PANELS.forEach((panel, p) => {
    const r = panelResults[p];
    add({
      resourceType: 'DiagnosticReport',
      status: 'final',
      category: [{ coding: [coding(V2_0074, 'LAB', 'Laboratory')] }],
      code: { coding: [coding(LOINC, panel.code, panel.display)], text: panel.display },
      subject: ref(patientUrl, patientName),
      encounter: ref(r.encounter),
      effectiveDateTime: fhirDateTime(r.effective),
      issued: fhirDateTime(r.effective + 5 * HOUR),
      performer: [ref(practitionerUrl, drName)],
      result: r.obs.map((o) => ref(o)),
    });
  });

  // 3 MedicationRequests
  const meds = rng.sample(MEDICATIONS, 3);
  meds.forEach(([code, display], i) => {
    const enc = encounters[Math.min(i + 1, encounters.length - 1)];
    add({
      resourceType: 'MedicationRequest',
      status: i === 0 ? 'completed' : rng.next() < 0.7 ? 'active' : 'completed',
      intent: 'order',
      medicationCodeableConcept: { coding: [coding(RXNORM, code, display)], text: display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      authoredOn: fhirDateTime(enc.start + 30 * 60_000),
      requester: ref(practitionerUrl, drName),
      dosageInstruction: [{ sequence: 1, text: rng.pick(['Take 1 tablet by mouth daily', 'Take 1 tablet by mouth twice daily', 'Take 1 tablet by mouth as needed']) }],
    });
  });

  // 2 ServiceRequests
  const services = rng.sample(SERVICES, 2);
  services.forEach(([code, display], i) => {
    const enc = encounters[i * 2];
    add({
      resourceType: 'ServiceRequest',
      status: i === 0 ? 'completed' : rng.pick(['active', 'completed']),
      intent: 'order',
      code: { coding: [coding(SNOMED, code, display)], text: display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      authoredOn: fhirDateTime(enc.start + 20 * 60_000),
      requester: ref(practitionerUrl, drName),
    });
  });

  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

// ---------------------------------------------------------------------------------------------------------
// Resolution for the raw SQL phase and self-checks

export interface ResolvedResource {
  resourceType: string;
  /** The entry's urn:uuid value, used as the resource id. */
  id: string;
  resource: Resource;
}

function rewriteRefs(value: Json | undefined, map: Map<string, string>): Json | undefined {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, map) as Json);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string' && map.has(v)) out[k] = map.get(v)!;
      else out[k] = rewriteRefs(v, map) as Json;
    }
    return out;
  }
  return value;
}

/**
 * What a server would store for this bundle: each resource with `id` = its urn:uuid, references rewritten to
 * `Type/id`, and a version-1 `meta`. The raw PostgreSQL phase inserts exactly these.
 */
export function resolveBundle(bundle: TransactionBundle, lastUpdated: string = fhirDateTime(Date.now())): ResolvedResource[] {
  const map = new Map<string, string>();
  for (const e of bundle.entry) map.set(e.fullUrl, `${e.resource.resourceType}/${e.fullUrl.slice('urn:uuid:'.length)}`);
  return bundle.entry.map((e) => {
    const id = e.fullUrl.slice('urn:uuid:'.length);
    const { resourceType, ...body } = rewriteRefs(e.resource as unknown as Json, map) as Resource;
    const resource: Resource = { resourceType, id, meta: { versionId: '1', lastUpdated }, ...body };
    return { resourceType: e.resource.resourceType, id, resource };
  });
}

function collectRefs(value: Json | undefined, out: string[]): void {
  if (Array.isArray(value)) for (const v of value) collectRefs(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
}

/** Problems with a generated bundle (empty when fine): entry count, fullUrl form and uniqueness, dangling references. */
export function checkBundle(bundle: TransactionBundle): string[] {
  const problems: string[] = [];
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') problems.push('not a transaction Bundle');
  if (bundle.entry.length !== ENTRIES_PER_BUNDLE) problems.push(`expected ${ENTRIES_PER_BUNDLE} entries, got ${bundle.entry.length}`);
  const urls = new Set<string>();
  const uuid = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  for (const e of bundle.entry) {
    if (!uuid.test(e.fullUrl)) problems.push(`bad fullUrl ${e.fullUrl}`);
    if (urls.has(e.fullUrl)) problems.push(`duplicate fullUrl ${e.fullUrl}`);
    urls.add(e.fullUrl);
    if (e.request.method !== 'POST' || e.request.url !== e.resource.resourceType) problems.push(`bad request for ${e.fullUrl}`);
  }
  for (const e of bundle.entry) {
    const refs: string[] = [];
    collectRefs(e.resource as unknown as Json, refs);
    for (const r of refs) if (!urls.has(r)) problems.push(`${e.resource.resourceType} ${e.fullUrl} references unknown ${r}`);
  }
  return problems;
}

/** Count of each resource type in a bundle. */
export function typeCounts(bundle: TransactionBundle): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of bundle.entry) out[e.resource.resourceType] = (out[e.resource.resourceType] ?? 0) + 1;
  return out;
}

// Run directly: print one bundle (and its self-check) for inspection.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const index = Number(process.argv[2] ?? 0);
  const seed = Number(process.argv[3] ?? DEFAULT_SEED);
  const bundle = patientBundle(index, seed);
  process.stdout.write(JSON.stringify(bundle, null, 2) + '\n');
  const problems = checkBundle(bundle);
  process.stderr.write(`${bundle.entry.length} entries ${JSON.stringify(typeCounts(bundle))}; ${problems.length ? problems.join('; ') : 'references OK'}\n`);
  if (problems.length) process.exitCode = 1;
}
