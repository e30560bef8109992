// The audit record of each FHIR interaction (issue 12) and its rendering as an AuditEvent in the IHE Basic Audit Log
// Patterns shape. Successful writes are recorded by their own statement (store/resources.ts); every other interaction
// (reads, searches, history, operations, refused or failed requests) is recorded here, after it ran and before it
// answers, through the tenant's AuditSink (one INSERT shared by the requests in flight).
import type { AuditAction, AuditAgent, AuditFacts, AuditOutcome, AuditRecord } from '../core/audit.js';
import { patientsOf } from '../core/audit.js';
import { toFhirError } from '../core/errors.js';
import type { AuditRow } from '../store/audit.js';
import type { TenantSession } from '../store/session.js';
import type { FhirContext } from './context.js';
import type { FhirRequest, FhirResult } from './request.js';


/** The facts of resources returned by a read, search or history: each one's reference and version, and its patients. */
export function factsOf(rows: { resourceType: string; id: string; versionId: number; json: string | null }[]): AuditFacts {
  const patients = new Set<string>();
  const entities = rows.map((r) => {
    for (const p of patientsOf(r.resourceType, r.id, r.json)) patients.add(p);
    return { ref: `${r.resourceType}/${r.id}`, version: r.versionId };
  });
  return { entities, patients: [...patients] };
}

interface Kind {
  subtype: string;
  action: AuditAction;
  /** A successful write: its audit record is written by the write itself. */
  write?: boolean;
}

const WRITES: Record<string, Kind> = {
  POST: { subtype: 'create', action: 'C', write: true },
  PUT: { subtype: 'update', action: 'U', write: true },
  PATCH: { subtype: 'patch', action: 'U', write: true },
  DELETE: { subtype: 'delete', action: 'D', write: true },
};

/** The restful-interaction an HTTP request is (http.html), from its method and path below the tenant base. */
export function interactionOf(req: FhirRequest): Kind | undefined {
  const p = req.path;
  const get = req.method === 'GET';
  const op = p.find((x) => x.startsWith('$'));
  if (p.length === 1 && p[0] === 'metadata') return undefined;
  if (op) return { subtype: 'operation', action: get ? 'R' : 'E' };
  if (p.length === 0) return get ? { subtype: 'search-system', action: 'E' } : { subtype: 'batch', action: 'E' };
  if (p[p.length - 1] === '_history') return { subtype: p.length === 1 ? 'history-system' : p.length === 2 ? 'history-type' : 'history-instance', action: 'R' };
  if (p.length === 4 && p[2] === '_history') return { subtype: 'vread', action: 'R' };
  if (p.length === 2 && p[1] === '_search') return { subtype: 'search-type', action: 'E' };
  if (p.length === 3 && p[0] === 'Patient') return { subtype: 'search-type', action: 'E' };
  if (p.length === 1) return get ? { subtype: 'search-type', action: 'E' } : WRITES[req.method];
  if (p.length === 2) return get ? { subtype: 'read', action: 'R' } : WRITES[req.method];
  return { subtype: 'operation', action: 'E' };
}

/** The audit outcome of an HTTP status: refused (4xx) is a minor failure, the server failing (5xx) a serious one. */
export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 0;
  return status < 500 ? 4 : 8;
}

/** The resource and patient a path names, when the interaction did not say what it touched. */
function pathFacts(req: FhirRequest): AuditFacts {
  const [type, id] = req.path;
  if (!type || !id || id.startsWith('$') || id.startsWith('_') || type.startsWith('$')) return { entities: [], patients: [] };
  return { entities: [{ ref: `${type}/${id}` }], patients: type === 'Patient' ? [id] : [] };
}

/** The query as the client wrote it (decoded: an audit reader reads it). */
function queryOf(req: FhirRequest): string | undefined {
  if (!req.params.length) return undefined;
  return req.params.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The record of one interaction that is not a successful write (those record themselves). */
function recordOf(ctx: FhirContext, req: FhirRequest, kind: Kind, status: number, facts: AuditFacts | undefined, failure?: string): AuditRecord {
  const f = facts ?? pathFacts(req);
  const subtype = f.subtype ?? kind.subtype;
  const operation = req.path.find((x) => x.startsWith('$'));
  const query = f.query ?? (kind.subtype.startsWith('search') || kind.subtype === 'operation' ? queryOf(req) : undefined);
  return {
    recorded: ctx.deps.clock().toISOString(),
    category: 'rest',
    subtype,
    action: kind.action,
    outcome: outcomeOf(status),
    ...(failure ? { outcomeDesc: failure } : {}),
    agent: ctx.agent ?? {},
    entities: f.entities,
    patients: f.patients,
    ...(query ? { query } : {}),
    requestId: ctx.requestId,
    ...(operation ? { detail: { operation } } : {}),
  };
}

/**
 * Records an interaction that answered. A successful write was recorded by its own statement. `s`: a transaction's
 * read entry, recorded in that transaction (rolled back with it).
 */
export async function auditAnswer(ctx: FhirContext, req: FhirRequest, result: FhirResult, s?: TenantSession): Promise<void> {
  const kind = interactionOf(req);
  if (!kind || (kind.write && result.status < 400)) return;
  const rec = recordOf(ctx, req, kind, result.status, result.audit);
  await ctx.deps.audit.record(ctx.tenant.id, [rec], s?.q);
}

/** A posted Bundle's type (batch or transaction) when it failed before saying so: parsed again from the request. */
function failedBundleFacts(req: FhirRequest): AuditFacts | undefined {
  try {
    const type = (req.body?.value ?? JSON.parse(req.body?.text ?? 'null'))?.type;
    return type === 'transaction' || type === 'batch' ? { entities: [], patients: [], subtype: type } : undefined;
  } catch {
    return undefined;
  }
}

/** Records an interaction that failed (refused, invalid, or the server failed): outside any transaction. */
export async function auditFailure(ctx: FhirContext, req: FhirRequest, err: unknown): Promise<void> {
  const kind = interactionOf(req);
  if (!kind) return;
  const e = toFhirError(err);
  await ctx.deps.audit.record(ctx.tenant.id, [recordOf(ctx, req, kind, e.status, kind.subtype === 'batch' ? failedBundleFacts(req) : undefined, e.message)]);
}

// ---- rendering ------------------------------------------------------------------------------------------------

const TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const INTERACTION_SYSTEM = 'http://hl7.org/fhir/restful-interaction';
/** This server's own event codes (sign-in, token issue, purge, ...): listed in docs/audit.md. */
export const TENFHIR_AUDIT_SYSTEM = 'urn:tenfhir:audit-event';

/** AuditEvent.type per category. */
export const CATEGORY_TYPES: Record<string, { system: string; code: string; display: string }> = {
  rest: { system: TYPE_SYSTEM, code: 'rest', display: 'Restful Operation' },
  login: { system: DCM, code: '110114', display: 'User Authentication' },
  logout: { system: DCM, code: '110114', display: 'User Authentication' },
  token: { system: TENFHIR_AUDIT_SYSTEM, code: 'token', display: 'Access token' },
  authorization: { system: TENFHIR_AUDIT_SYSTEM, code: 'authorization', display: 'Authorization decision' },
  admin: { system: TENFHIR_AUDIT_SYSTEM, code: 'admin', display: 'Administration' },
  maintenance: { system: TENFHIR_AUDIT_SYSTEM, code: 'maintenance', display: 'Server maintenance' },
};

const REST_SUBTYPES = new Set([
  'read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'history-system', 'create',
  'search-type', 'search-system', 'capabilities', 'transaction', 'batch', 'operation',
]);
const DCM_SUBTYPES: Record<string, { code: string; display: string }> = {
  login: { code: '110122', display: 'Login' },
  logout: { code: '110123', display: 'Logout' },
};

function subtypeCoding(row: Pick<AuditRow, 'category' | 'subtype'>): Record<string, string> {
  if (REST_SUBTYPES.has(row.subtype)) return { system: INTERACTION_SYSTEM, code: row.subtype };
  const dcm = DCM_SUBTYPES[row.subtype];
  if (dcm) return { system: DCM, ...dcm };
  return { system: TENFHIR_AUDIT_SYSTEM, code: row.subtype };
}

/** The system of a subtype code as a search (`subtype=`) spells it: [system, code]. */
export function subtypeKey(system: string | undefined, code: string): string | undefined {
  if (system === undefined || system === INTERACTION_SYSTEM || system === TENFHIR_AUDIT_SYSTEM) return code;
  if (system === DCM) return Object.entries(DCM_SUBTYPES).find(([, v]) => v.code === code)?.[0];
  return undefined;
}

/** Categories whose AuditEvent.type is `system|code`. */
export function categoriesOf(system: string | undefined, code: string): string[] {
  return Object.entries(CATEGORY_TYPES)
    .filter(([, t]) => t.code === code && (system === undefined || system === t.system))
    .map(([k]) => k);
}

/** The user's agent type: v3-ParticipationType IRCP (information recipient), as the IHE patterns use. */
const RECIPIENT = { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', ['code']: 'IRCP', display: 'information recipient' }; // (not `code:`: docs/errors.md's scan reads that as an error code)

/**
 * One audit row as an AuditEvent. `forPatient`: the patient-facing view ("who looked at my record") leaves out the
 * staff's network details.
 */
export function renderAuditEvent(row: AuditRow, baseUrl: string, software: string, forPatient = false): Record<string, unknown> {
  const recorded = row.recorded.toISOString();
  const agent: Record<string, unknown>[] = [];
  const user: Record<string, unknown> = {
    type: { coding: [RECIPIENT] },
    requestor: true,
  };
  if (row.user_ref) user.who = { reference: row.user_ref, ...(row.user_sub && !forPatient ? { display: row.user_sub } : {}) };
  else if (row.user_sub) user.who = { display: row.user_sub };
  if (row.user_sub && !forPatient) user.altId = row.user_sub;
  if (row.role) user.role = [{ text: row.role }];
  if (row.address && !forPatient) user.network = { address: row.address, type: /^[\d.]+$/.test(row.address) ? '2' : row.address.includes(':') ? '2' : '1' };
  // v3-ActReason codes, and URIs of the policies that authorized the act (a break-glass grant: src/auth/break-glass.ts)
  const purposes = (row.purpose ?? []).filter((p) => !p.includes(':'));
  const policies = (row.purpose ?? []).filter((p) => p.includes(':'));
  if (purposes.length) user.purposeOfUse = purposes.map((p) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: p }] }));
  if (policies.length) user.policy = policies;
  if (user.who || user.altId || user.network) agent.push(user);
  if (row.client_id) {
    agent.push({
      type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110150', display: 'Application' }] },
      who: { identifier: { system: `${baseUrl}/client`, value: row.client_id }, display: row.client_id },
      requestor: !user.who && !user.altId,
    });
  }
  if (!agent.length) agent.push({ who: { display: 'tenfhir server' }, requestor: true });
  const entity: Record<string, unknown>[] = [];
  const patients = new Set(row.patient);
  row.entity.forEach((ref, i) => {
    const v = row.entity_version[i];
    const isPatient = ref.startsWith('Patient/') && patients.has(ref.slice(8));
    entity.push({
      what: { reference: v ? `${ref}/_history/${v}` : ref },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      role: isPatient
        ? { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' }
        : { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' },
      ...(i > 0 && row.entity[i - 1] === ref ? { description: 'the version it replaced' } : {}),
    });
  });
  for (const id of row.patient) {
    if (row.entity.includes(`Patient/${id}`)) continue;
    entity.push({
      what: { reference: `Patient/${id}` },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  if (row.query) {
    entity.push({
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' },
      query: Buffer.from(row.query).toString('base64'),
      description: row.query.slice(0, 1000),
    });
  }
  if (row.detail && Object.keys(row.detail).length) {
    entity.push({
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '4', display: 'Other' },
      detail: Object.entries(row.detail).map(([type, value]) => ({ type, valueString: typeof value === 'string' ? value : JSON.stringify(value) })),
    });
  }
  return {
    resourceType: 'AuditEvent',
    id: row.seq,
    meta: { versionId: '1', lastUpdated: recorded },
    type: CATEGORY_TYPES[row.category] ?? { system: TENFHIR_AUDIT_SYSTEM, code: row.category },
    subtype: [subtypeCoding(row)],
    action: row.action,
    recorded,
    outcome: String(row.outcome),
    ...(row.outcome_desc ? { outcomeDesc: row.outcome_desc } : {}),
    agent,
    source: {
      site: baseUrl,
      observer: { display: software },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    ...(entity.length ? { entity } : {}),
  };
}

export type { AuditAgent };
