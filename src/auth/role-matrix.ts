// THE role matrix: each role's ceiling as SMART scope grants, written from the "SMART-on-FHIR authorization" issue's
// role table (ARCHITECTURE.md "Auth"). Effective access = requested ∩ client-allowed ∩ this ceiling (scopes.ts).
// Every judgement call on a vague cell is a `why` below and is listed in docs/auth-design.md.
import { OTHER_SCOPES, parseScopes, type OtherScopeName, type Scope } from './scopes.js';

export const ROLES = ['platform-admin', 'tenant-admin', 'practitioner', 'receptionist', 'lab-technician', 'patient', 'system'] as const;
export type Role = (typeof ROLES)[number];

export interface CeilingGrant {
  /** One SMART v2 scope. Staff ceilings use `user/`, which also covers `patient/` requests (patient ⊂ user). */
  scope: string;
  /** Elements the role may see of this type (a forced `_elements`; id/meta/resourceType always stay). */
  elements?: string[];
  /** Which sentence of the issue this grant comes from, or the decision taken where the table is vague. */
  why: string;
}

export interface RoleCeiling {
  summary: string;
  grants: CeilingGrant[];
  /** Context/identity scopes the role may be granted (openid, launch/patient, offline_access, ...). */
  otherScopes: readonly OtherScopeName[];
}

const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const VITAL_SIGNS = `category=${OBSERVATION_CATEGORY}|vital-signs`;
const LABORATORY = `category=${OBSERVATION_CATEGORY}|laboratory`;

/** Staff directory: not patient data, needed to resolve performers, requesters, locations. */
const DIRECTORY = ['Organization', 'Location', 'Practitioner', 'PractitionerRole'];
/**
 * A patient's record as the product uses it ("patients and their history"). An explicit list, not `*`: a type added
 * to the server later stays closed to clinical staff until someone adds it here.
 */
const CLINICAL_RECORD = [
  'Patient', 'Encounter', 'EpisodeOfCare', 'Observation', 'Condition', 'AllergyIntolerance', 'Procedure', 'Immunization',
  'MedicationRequest', 'MedicationStatement', 'MedicationAdministration', 'MedicationDispense', 'ServiceRequest',
  'DiagnosticReport', 'Specimen', 'DocumentReference', 'CarePlan', 'CareTeam', 'Goal', 'FamilyMemberHistory', 'Appointment',
];

const each = (types: string[], letters: string, why: string): CeilingGrant[] => types.map((t) => ({ scope: `user/${t}.${letters}`, why }));

export const ROLE_MATRIX: Record<Role, RoleCeiling> = {
  'platform-admin': {
    summary: 'tenant administration; clinical data only through explicit, audited access',
    grants: [
      { scope: 'user/Organization.cruds', why: 'tenant administration: a tenant is its root Organization and the branches under it' },
      { scope: 'user/AuditEvent.rs', why: 'decision: oversight of the audit trail is part of administering the platform' },
      { scope: 'user/Subscription.rs', why: 'decision: operators inspect notification status/errors; creating them is the tenant admin\'s' },
      // Decision: NO clinical type (Patient, Encounter, Observation, ...) in the ceiling. "Explicit, audited access" is a
      // separate break-glass grant (time-limited, reasoned, AuditEvent written) to be designed with the audit issue; it
      // is never part of the standing ceiling. Practitioner/PractitionerRole/Location belong to the tenant admin.
    ],
    otherScopes: OTHER_SCOPES,
  },
  'tenant-admin': {
    summary: 'staff and settings, read all patients and clinical records, upload lab reports, run reports/exports',
    grants: [
      { scope: 'user/*.rs', why: 'read all of the tenant\'s patients and clinical records; reports/exports ($export) need rs on every exported type' },
      ...each(['Organization', 'Location', 'Practitioner', 'PractitionerRole'], 'cruds', 'staff and settings'),
      // "users" are accounts in PostgreSQL (ARCHITECTURE.md), not FHIR resources: managed by the auth module, not by a scope.
      { scope: 'user/Subscription.cruds', why: 'decision: notification subscriptions are tenant settings' },
      { scope: 'user/DiagnosticReport.c', why: 'upload lab reports (decision: create only; corrections are the lab technician\'s)' },
      { scope: `user/Observation.c?${LABORATORY}`, why: 'upload lab reports: the result Observations travel with the report; laboratory category only' },
    ],
    otherScopes: OTHER_SCOPES,
  },
  practitioner: {
    summary: 'read patients and their history; write encounters, vitals, conditions, allergies, prescriptions, test orders',
    grants: [
      ...each(CLINICAL_RECORD, 'rs', 'read patients and their history (includes "read DiagnosticReport")'),
      ...each([...DIRECTORY, 'Medication'], 'rs', 'decision: directory and medication catalog, to resolve references and prescribe'),
      ...each(['Encounter', 'Condition', 'AllergyIntolerance', 'MedicationRequest', 'ServiceRequest'], 'cu', 'create/update (decision: no delete; errors are corrected with status entered-in-error)'),
      { scope: `user/Observation.cu?${VITAL_SIGNS}`, why: 'create/update Observation (vitals): writes limited to the vital-signs category' },
    ],
    otherScopes: OTHER_SCOPES,
  },
  receptionist: {
    summary: 'register/update Patient, check-in (Encounter), appointments, read visit history; no Observation, DiagnosticReport, MedicationRequest',
    grants: [
      { scope: 'user/Patient.crus', why: 'register/update Patient (decision: read/search to find the patient first; no delete)' },
      { scope: 'user/Encounter.crus', why: 'check-in = Encounter create/update; read visit history' },
      { scope: 'user/Appointment.cruds', why: 'decision: "appointments" = full Appointment management incl. cancel/delete' },
      ...each(['Schedule', 'Slot'], 'rs', 'decision: booking needs the schedules and free slots'),
      ...each(DIRECTORY, 'rs', 'decision: directory, to book with a practitioner at a location'),
      // Nothing else: the issue denies Observation, DiagnosticReport, MedicationRequest; ServiceRequest, Condition, ... are
      // not mentioned and stay closed (least privilege).
    ],
    otherScopes: OTHER_SCOPES,
  },
  'lab-technician': {
    summary: 'read ServiceRequest and minimal Patient data; create/update DiagnosticReport, Observation, Specimen',
    grants: [
      { scope: 'user/ServiceRequest.rs', why: 'read ServiceRequest (the test orders)' },
      {
        scope: 'user/Patient.rs',
        elements: ['identifier', 'name', 'birthDate', 'gender'],
        why: 'decision: "minimal Patient data" = identifier, name, birthDate, gender (enough to match sample to patient)',
      },
      { scope: 'user/DiagnosticReport.crus', why: 'create/update DiagnosticReport (decision: read/search too, to find the preliminary report to finalize)' },
      { scope: `user/Observation.crus?${LABORATORY}`, why: 'create/update Observation (decision: laboratory category only, for reads too)' },
      { scope: 'user/Specimen.crus', why: 'create/update Specimen (decision: read/search too)' },
      ...each(DIRECTORY, 'rs', 'decision: directory, for the ordering practitioner and performing organization'),
    ],
    otherScopes: OTHER_SCOPES,
  },
  patient: {
    summary: 'read-only access to their own compartment; may book an Appointment',
    grants: [
      { scope: 'patient/*.rs', why: 'read-only access to their own compartment (types outside the compartment stay closed)' },
      { scope: 'patient/Appointment.c', why: 'may book an Appointment (decision: create only; cancelling goes through the clinic)' },
    ],
    otherScopes: OTHER_SCOPES,
  },
  system: {
    summary: 'backend clients (SMART Backend Services): the client registration is the real limit',
    grants: [{ scope: 'system/*.cruds', why: 'decision: system/ scopes are pre-authorized per client; the role adds no limit beyond system/ context' }],
    // client_credentials has no user and no launch: no identity, launch or refresh scopes.
    otherScopes: [],
  },
};

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** A role's ceiling as parsed scopes (resource grants with their element limits, plus the allowed other scopes). */
export function roleCeiling(role: Role): Scope[] {
  const def = ROLE_MATRIX[role];
  const scopes: Scope[] = [];
  for (const g of def.grants) {
    const { scopes: parsed, rejected } = parseScopes(g.scope);
    if (rejected.length || parsed.length !== 1) throw new Error(`role-matrix: ${role} grant '${g.scope}' is not one valid scope`);
    const s = parsed[0];
    if (g.elements && s.kind === 'resource') s.elements = [...g.elements];
    scopes.push(s);
  }
  for (const name of def.otherScopes) scopes.push({ kind: 'other', name });
  return scopes;
}
