// The audit trail as every layer sees it (issue 12): what one audit record says, and the sink that stores records
// outside a write's transaction (src/store/audit-spool.ts AuditSpool). A write's own record is stored by the write's
// statement (TenantSession.commit), so it exists exactly when the write does.
import type { Queryable } from '../platform/db.js';

/** Who acted: the user and/or client of a verified token, their role and network address. */
export interface AuditAgent {
  /** The user as a FHIR reference (the token's fhirUser), e.g. Practitioner/12. */
  userRef?: string;
  /** The account: the token's subject or the name typed at sign-in. */
  userSub?: string;
  clientId?: string;
  role?: string;
  address?: string;
  /** v3-ActReason codes (BTG: break-glass), and URIs of the policies that authorized the act (rendered as agent.policy). */
  purposeOfUse?: string[];
}

/** AuditEvent.type (src/fhir/audit.ts renders each as a Coding). */
export type AuditCategory = 'rest' | 'login' | 'logout' | 'token' | 'authorization' | 'admin' | 'maintenance';
export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** 0 success, 4 minor failure (the request was refused), 8 serious failure (the server failed), 12 major failure. */
export type AuditOutcome = 0 | 4 | 8 | 12;

export interface AuditRecord {
  recorded: string;
  category: AuditCategory;
  /** restful-interaction code (read, search-type, create, ...) or the event's own (sign-in, token-issue, purge, ...). */
  subtype: string;
  action: AuditAction;
  outcome: AuditOutcome;
  outcomeDesc?: string;
  agent: AuditAgent;
  /** 'Type/id' of each resource touched, with its version (0: none). */
  entities?: { ref: string; version?: number }[];
  /** Ids of the patients those resources belong to. */
  patients?: string[];
  query?: string;
  requestId?: string;
  detail?: Record<string, unknown>;
  /** Where the spool keeps it (file, line, position): a record recovered twice is stored once. */
  origin?: string;
}

export interface AuditSink {
  /**
   * Keeps records of a tenant: resolves once they are safe from the process dying (spooled to a local file, stored
   * in the database shortly after). `q`: store them on this connection instead (a transaction's own reads, rolled
   * back with it).
   */
  record(tenantId: string, records: AuditRecord[], q?: Queryable): Promise<void>;
  /** Resolves once every record kept before the call is in the database (the AuditEvent API reads after it). */
  settle(): Promise<void>;
  /** Stores what is left (shutdown). */
  close(): Promise<void>;
}

/** What an interaction tells the audit about what it touched (set on its FhirResult). */
export interface AuditFacts {
  entities: { ref: string; version?: number }[];
  patients: string[];
  query?: string;
  /** The interaction's name where its path cannot say it (a posted Bundle: transaction or batch). */
  subtype?: string;
}

/** The server acting for itself (tenant creation, background jobs, maintenance). */
export const SERVER_AGENT: AuditAgent = { userSub: 'tenfhir-server', role: 'server' };

/** Patient ids a resource's JSON refers to ("reference": "Patient/x", relative or absolute), and its own for a Patient. */
export function patientsOf(type: string, id: string, json: string | null): string[] {
  const out = new Set<string>();
  if (type === 'Patient') out.add(id);
  if (json) {
    PATIENT_REF.lastIndex = 0;
    for (let m = PATIENT_REF.exec(json); m; m = PATIENT_REF.exec(json)) out.add(m[1]);
  }
  return [...out];
}
const PATIENT_REF = /"reference":\s*"(?:[^"]*\/)?Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^"]*)?"/g;
