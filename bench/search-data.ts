// Deterministic synthetic data for the search benchmark (bench/search.ts): many tenants, each with a few shared
// Practitioners and a laboratory Organization, and patients that each come as one transaction Bundle of
// PER_PATIENT (23) resources linked through `urn:uuid:` fullUrls:
//
//   1 Patient, 4 Encounter, 11 laboratory Observation (a basic metabolic panel, a CBC, and one extra test),
//   2 DiagnosticReport (one per panel, category LAB, result -> its 5 Observations), 3 MedicationRequest,
//   2 ServiceRequest.
//
// Everything is a pure function of (seed, tenant index, patient index), so the benchmark can regenerate what a
// patient holds (names, codes, dates) to draw query parameters without keeping the data, and a second load of
// the same options produces the same resources (with new server-assigned ids).
//
// Print one patient's bundle:  node --import ./scripts/register-ts.mjs bench/search-data.ts [tenant] [patient] [seed]

import { pathToFileURL } from 'node:url';
import { ENCOUNTER_TYPES, MEDICATIONS, Rng, SERVICES, fhirDateTime, type Json, type Resource } from './synth.js';

export const SEARCH_SEED = 20250301;
/** Resources in every patient bundle. */
export const PER_PATIENT = 23;
export const PRACTITIONERS_PER_TENANT = 20;
/** Resources in every tenant's setup bundle (Practitioners + the laboratory Organization). */
export const SETUP_RESOURCES = PRACTITIONERS_PER_TENANT + 1;
export const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.19.5.99999.1';

export const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const NPI = 'http://hl7.org/fhir/sid/us-npi';
const INTERP = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

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

// ---------------------------------------------------------------------------------------------------------
// Vocabularies

// Surnames with a Zipf-like weight (rank^-0.9): a few are common, most are rare, as in a real registry.
const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
  'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts',
  'Okafor', 'Nakamura', 'Novak', 'Larsen', 'Haddad', 'Schmidt', 'Kowalski', 'Rossi', 'Dubois', 'Jansen',
  'Ivanova', 'Tanaka', 'Kim', 'Park', 'Chen', 'Wang', 'Singh', 'Patel', 'Kumar', 'Ali',
  'Mensah', 'Diallo', 'Silva', 'Santos', 'Costa', 'Ferreira', 'Murphy', "O'Brien", 'Kelly', 'Byrne',
  'Andersson', 'Johansson', 'Virtanen', 'Nieminen', 'Horvat', 'Kovac', 'Popescu', 'Papadopoulos', 'Yilmaz', 'Kaya',
  'Cohen', 'Levi', 'Mendoza', 'Castillo', 'Vargas', 'Morales', 'Ortiz', 'Gutierrez', 'Chavez', 'Ramos',
];
const FAMILY_CUM: number[] = (() => {
  let sum = 0;
  const cum = FAMILY.map((_, i) => (sum += 1 / Math.pow(i + 1, 0.9)));
  return cum.map((c) => c / sum);
})();

const GIVEN_F = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Nancy', 'Amara', 'Ingrid', 'Mei', 'Lucia', 'Fatima', 'Aiko', 'Zofia', 'Noor', 'Elena', 'Grace'];
const GIVEN_M = ['James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Daniel', 'Kwame', 'Lars', 'Hiro', 'Mateo', 'Omar', 'Ivan', 'Arjun', 'Tomasz', 'Samuel', 'Leon'];
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

export interface LabTest {
  code: string;
  display: string;
  unit: string;
  low: number;
  high: number;
  decimals: number;
}

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
export const PANELS = [
  { code: '51990-0', display: 'Basic metabolic panel - Blood', tests: BMP },
  { code: '58410-2', display: 'CBC panel - Blood by Automated count', tests: CBC },
];
/** The 11th Observation: half the patients get a second glucose, the rest one of the other tests. */
export const EXTRA_TESTS: LabTest[] = [
  BMP[0],
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', low: 4, high: 6, decimals: 1 },
  { code: '3016-3', display: 'Thyrotropin [Units/volume] in Serum or Plasma', unit: 'm[IU]/L', low: 0.4, high: 4.5, decimals: 2 },
  { code: '2089-1', display: 'Cholesterol in LDL [Mass/volume] in Serum or Plasma', unit: 'mg/dL', low: 50, high: 160, decimals: 0 },
  { code: '1989-3', display: '25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma', unit: 'ng/mL', low: 20, high: 60, decimals: 0 },
];
/** The most frequent LOINC code (1.5 Observations per patient on average): the deep-paging query uses it. */
export const COMMON_LOINC = '2345-7';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function coding(system: string, code: string, display: string): { [key: string]: Json } {
  return { system, code, display };
}

function ref(reference: string, display?: string): { [key: string]: Json } {
  return display ? { reference, display } : { reference };
}

function pickFamily(rng: Rng): string {
  const u = rng.next();
  let lo = 0;
  let hi = FAMILY_CUM.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (FAMILY_CUM[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return FAMILY[lo];
}

// ---------------------------------------------------------------------------------------------------------
// Dataset shape

export interface DatasetShape {
  tenants: number;
  patientsPerTenant: number;
  /** Resources the benchmark posts per tenant (setup + patients); the tenant's root Organization comes on top. */
  resourcesPerTenant: number;
  /** Resources the benchmark posts in all. */
  resources: number;
}

/** The smallest patient count per tenant that reaches at least `resources` in all. */
export function datasetShape(resources: number, tenants: number): DatasetShape {
  const perTenant = resources / tenants;
  const patientsPerTenant = Math.max(1, Math.ceil((perTenant - SETUP_RESOURCES) / PER_PATIENT));
  const resourcesPerTenant = SETUP_RESOURCES + patientsPerTenant * PER_PATIENT;
  return { tenants, patientsPerTenant, resourcesPerTenant, resources: resourcesPerTenant * tenants };
}

// ---------------------------------------------------------------------------------------------------------
// Tenant setup: the shared Practitioners and the laboratory Organization

/** The laboratory Organization is the setup bundle's last entry; the Practitioners come first. */
export function tenantSetupBundle(tenant: number, tenantName: string, seed: number = SEARCH_SEED): TransactionBundle {
  const rng = new Rng(`search/${seed}/setup/${tenant}`);
  const entry: BundleEntry[] = [];
  for (let i = 0; i < PRACTITIONERS_PER_TENANT; i++) {
    const female = rng.next() < 0.5;
    entry.push({
      fullUrl: `urn:uuid:${rng.uuid()}`,
      resource: {
        resourceType: 'Practitioner',
        identifier: [{ system: NPI, value: String(1000000000 + rng.int(0, 899999999)) }],
        active: true,
        name: [{ family: pickFamily(rng), given: [rng.pick(female ? GIVEN_F : GIVEN_M)], prefix: ['Dr.'] }],
        gender: female ? 'female' : 'male',
      },
      request: { method: 'POST', url: 'Practitioner' },
    });
  }
  entry.push({
    fullUrl: `urn:uuid:${rng.uuid()}`,
    resource: {
      resourceType: 'Organization',
      identifier: [{ system: 'urn:bench:search:org', value: `LAB-${tenant}` }],
      active: true,
      type: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider')] }],
      name: `${tenantName} Laboratory`,
    },
    request: { method: 'POST', url: 'Organization' },
  });
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

/** Server ids of a tenant's shared resources, which the patient bundles reference. */
export interface TenantRefs {
  /** The tenant's root Organization (created with the tenant; its id is the slug). */
  rootOrganization: string;
  laboratory: string;
  practitioners: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Patients

/** What a patient holds, for drawing query parameters (all regenerated from the seed). */
export interface PatientFacts {
  family: string;
  mrn: string;
  /** Every Observation: LOINC code and effectiveDateTime (ms). */
  observations: { code: string; effective: number }[];
  /** DiagnosticReport effective times (ms). */
  reports: number[];
  medicationStatuses: string[];
}

export interface GeneratedPatient {
  bundle: TransactionBundle;
  facts: PatientFacts;
}

export function mrnOf(tenant: number, index: number): string {
  return `MRN-${String(tenant).padStart(3, '0')}-${String(index).padStart(6, '0')}`;
}

/**
 * Patient `index` of tenant `tenant`: its transaction Bundle (PER_PATIENT entries) and its facts. `refs` fills the
 * references to the tenant's shared resources; without it they are placeholders (facts are the same either way).
 */
export function generatePatient(tenant: number, index: number, refs?: TenantRefs, seed: number = SEARCH_SEED): GeneratedPatient {
  const rng = new Rng(`search/${seed}/${tenant}/${index}`);
  const entries: BundleEntry[] = [];
  const add = (resource: Resource): string => {
    const fullUrl = `urn:uuid:${rng.uuid()}`;
    entries.push({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
    return fullUrl;
  };
  const practitionerIds = refs?.practitioners ?? Array.from({ length: PRACTITIONERS_PER_TENANT }, (_, i) => `practitioner-${i}`);
  const rootOrg = `Organization/${refs?.rootOrganization ?? 'root'}`;
  const lab = `Organization/${refs?.laboratory ?? 'laboratory'}`;

  // Patient
  const female = rng.next() < 0.5;
  const given = rng.pick(female ? GIVEN_F : GIVEN_M);
  const family = pickFamily(rng);
  const birthMs = Date.UTC(1935, 0, 1) + rng.int(0, 85 * 365) * DAY;
  const [city, state, zip3] = rng.pick(CITIES);
  const mrn = mrnOf(tenant, index);
  const gp = `Practitioner/${practitionerIds[rng.int(0, practitionerIds.length - 1)]}`;
  const patientName = `${given} ${family}`;
  const patientUrl = add({
    resourceType: 'Patient',
    identifier: [{ use: 'usual', type: { coding: [coding(V2_0203, 'MR', 'Medical record number')] }, system: MRN_SYSTEM, value: mrn }],
    active: true,
    name: [{ use: 'official', family, given: rng.next() < 0.3 ? [given, rng.pick(female ? GIVEN_F : GIVEN_M)] : [given] }],
    telecom: [{ system: 'phone', value: `555-${rng.int(100, 999)}-${rng.int(1000, 9999)}`, use: 'home' }],
    gender: female ? 'female' : 'male',
    birthDate: new Date(birthMs).toISOString().slice(0, 10),
    address: [{ use: 'home', line: [`${rng.int(1, 9999)} ${rng.pick(STREETS)}`], city, state, postalCode: `${zip3}${String(rng.int(0, 99)).padStart(2, '0')}`, country: 'US' }],
    generalPractitioner: [ref(gp)],
    managingOrganization: ref(rootOrg),
  });

  // 4 Encounters between 2016 and 2025
  let cursor = Date.UTC(2016, 0, 1) + rng.int(0, 1500) * DAY;
  const encounters: { url: string; start: number; practitioner: string }[] = [];
  for (let i = 0; i < 4; i++) {
    cursor += rng.int(15, 400) * DAY;
    const start = Math.floor(cursor / DAY) * DAY + rng.int(7, 17) * HOUR + rng.pick([0, 15, 30, 45]) * 60_000;
    const end = start + rng.int(1, 6) * 15 * 60_000;
    const [typeCode, typeDisplay] = rng.pick(ENCOUNTER_TYPES);
    const practitioner = rng.next() < 0.7 ? gp : `Practitioner/${practitionerIds[rng.int(0, practitionerIds.length - 1)]}`;
    const url = add({
      resourceType: 'Encounter',
      status: 'finished',
      class: coding(ACT_CODE, 'AMB', 'ambulatory'),
      type: [{ coding: [coding(SNOMED, typeCode, typeDisplay)], text: typeDisplay }],
      subject: ref(patientUrl, patientName),
      participant: [{ individual: ref(practitioner) }],
      period: { start: fhirDateTime(start), end: fhirDateTime(end) },
      serviceProvider: ref(rootOrg),
    });
    encounters.push({ url, start, practitioner });
  }

  const observations: PatientFacts['observations'] = [];
  const observation = (t: LabTest, enc: { url: string }, effective: number): string => {
    const value = rng.float(t.low * 0.85, t.high * 1.15, t.decimals);
    const interpretation = value < t.low ? 'L' : value > t.high ? 'H' : 'N';
    observations.push({ code: t.code, effective });
    return add({
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [coding(OBS_CATEGORY, 'laboratory', 'Laboratory')] }],
      code: { coding: [coding(LOINC, t.code, t.display)], text: t.display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      effectiveDateTime: fhirDateTime(effective),
      issued: fhirDateTime(effective + 4 * HOUR),
      performer: [ref(lab)],
      valueQuantity: { value, unit: t.unit, system: UCUM, code: t.unit },
      interpretation: [{ coding: [coding(INTERP, interpretation, interpretation === 'L' ? 'Low' : interpretation === 'H' ? 'High' : 'Normal')] }],
      referenceRange: [{ low: { value: t.low, unit: t.unit, system: UCUM, code: t.unit }, high: { value: t.high, unit: t.unit, system: UCUM, code: t.unit } }],
    });
  };

  // 10 Observations in two panels, each drawn during one encounter, then the extra test on another
  const panelEncounters = rng.sample(encounters, 3);
  const panels = PANELS.map((panel, p) => {
    const enc = panelEncounters[p];
    const effective = enc.start + rng.int(0, 3) * 5 * 60_000;
    return { panel, enc, effective, obs: panel.tests.map((t) => observation(t, enc, effective)) };
  });
  const extra = rng.next() < 0.5 ? EXTRA_TESTS[0] : EXTRA_TESTS[rng.int(1, EXTRA_TESTS.length - 1)];
  observation(extra, panelEncounters[2], panelEncounters[2].start + rng.int(0, 6) * 5 * 60_000);

  // 2 DiagnosticReports, one per panel
  const reports: number[] = [];
  for (const { panel, enc, effective, obs } of panels) {
    reports.push(effective);
    add({
      resourceType: 'DiagnosticReport',
      status: rng.next() < 0.95 ? 'final' : 'amended',
      category: [{ coding: [coding(V2_0074, 'LAB', 'Laboratory')] }],
      code: { coding: [coding(LOINC, panel.code, panel.display)], text: panel.display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      effectiveDateTime: fhirDateTime(effective),
      issued: fhirDateTime(effective + 5 * HOUR),
      performer: [ref(lab)],
      resultsInterpreter: [ref(enc.practitioner)],
      result: obs.map((o) => ref(o)),
    });
  }

  // 3 MedicationRequests: the oldest is over; the others are mostly still active
  const medicationStatuses: string[] = [];
  rng.sample(MEDICATIONS, 3).forEach(([code, display], i) => {
    const enc = encounters[i + 1];
    const u = rng.next();
    const status = i === 0 ? (u < 0.8 ? 'completed' : 'stopped') : u < 0.6 ? 'active' : u < 0.85 ? 'completed' : 'stopped';
    medicationStatuses.push(status);
    add({
      resourceType: 'MedicationRequest',
      status,
      intent: 'order',
      medicationCodeableConcept: { coding: [coding(RXNORM, code, display)], text: display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      authoredOn: fhirDateTime(enc.start + 30 * 60_000),
      requester: ref(enc.practitioner),
      dosageInstruction: [{ sequence: 1, text: rng.pick(['Take 1 tablet by mouth daily', 'Take 1 tablet by mouth twice daily', 'Take 1 tablet by mouth as needed']) }],
    });
  });

  // 2 ServiceRequests
  rng.sample(SERVICES, 2).forEach(([code, display], i) => {
    const enc = encounters[i * 2];
    add({
      resourceType: 'ServiceRequest',
      status: i === 0 ? 'completed' : rng.pick(['active', 'completed']),
      intent: 'order',
      code: { coding: [coding(SNOMED, code, display)], text: display },
      subject: ref(patientUrl, patientName),
      encounter: ref(enc.url),
      authoredOn: fhirDateTime(enc.start + 20 * 60_000),
      requester: ref(enc.practitioner),
      performer: [ref(rootOrg)],
    });
  });

  return {
    bundle: { resourceType: 'Bundle', type: 'transaction', entry: entries },
    facts: { family, mrn, observations, reports, medicationStatuses },
  };
}

/** Problems with a generated bundle (empty when fine): entry count and dangling urn:uuid references. */
export function checkPatientBundle(bundle: TransactionBundle): string[] {
  const problems: string[] = [];
  if (bundle.entry.length !== PER_PATIENT) problems.push(`expected ${PER_PATIENT} entries, got ${bundle.entry.length}`);
  const urls = new Set(bundle.entry.map((e) => e.fullUrl));
  if (urls.size !== bundle.entry.length) problems.push('duplicate fullUrl');
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'reference' && typeof x === 'string' && x.startsWith('urn:uuid:') && !urls.has(x)) problems.push(`dangling ${x}`);
        else walk(x);
      }
    }
  };
  for (const e of bundle.entry) walk(e.resource);
  return problems;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tenant = Number(process.argv[2] ?? 0);
  const index = Number(process.argv[3] ?? 0);
  const seed = Number(process.argv[4] ?? SEARCH_SEED);
  const { bundle, facts } = generatePatient(tenant, index, undefined, seed);
  process.stdout.write(JSON.stringify(bundle, null, 2) + '\n');
  const counts: Record<string, number> = {};
  for (const e of bundle.entry) counts[e.resource.resourceType] = (counts[e.resource.resourceType] ?? 0) + 1;
  const problems = checkPatientBundle(bundle);
  process.stderr.write(`${bundle.entry.length} entries ${JSON.stringify(counts)}; facts ${JSON.stringify(facts)}; ${problems.length ? problems.join('; ') : 'OK'}\n`);
  if (problems.length) process.exitCode = 1;
}
