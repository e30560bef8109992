// What the FHIR layer asks of Bulk Data export (Bulk 2.0 export.html; implemented in src/export/service.ts, which sits
// above auth and subscriptions): the kick-off at system, Patient and Group level, the status URL (poll, DELETE) and
// the output files, each answered for the client that started the export only.
import type { FhirContext } from './context.js';
import type { FhirRequest, FhirResult } from './request.js';

export type ExportLevel = { level: 'system' } | { level: 'patient' } | { level: 'group'; groupId: string };

export interface ExportService {
  /** GET|POST [base]/$export, Patient/$export, Group/[id]/$export: 202 + Content-Location, or an OperationOutcome. */
  kickOff(ctx: FhirContext, req: FhirRequest, level: ExportLevel): Promise<FhirResult>;
  /** GET [base]/$export-status/[id]: 202 while running, 200 + manifest when complete; DELETE cancels (202). */
  status(ctx: FhirContext, req: FhirRequest, id: string): Promise<FhirResult>;
  cancel(ctx: FhirContext, id: string): Promise<FhirResult>;
  /** GET [base]/$export-file/[id]/[name]: one NDJSON file of the manifest. */
  file(ctx: FhirContext, id: string, name: string): Promise<FhirResult>;
}
