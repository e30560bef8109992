// The job row of one Bulk Data export: what the kick-off settled (level, types, filters, snapshot time, the caller)
// and what the run has produced so far (files, errors). Stored as the job table's params (kind 'export').
import type { Caller } from '../fhir/subscription-service.js';

export interface ExportOutput {
  type: string;
  name: string;
  count: number;
}

export interface ExportParams {
  level: 'system' | 'patient' | 'group';
  groupId?: string;
  /** Group export: the member patients' ids, as the Group listed them at kick-off. */
  members?: string[];
  types: string[];
  since?: string;
  typeFilter?: Record<string, [string, string][][]>;
  elements?: string[];
  outputFormat: string;
  /** The kick-off URL (manifest `request`). */
  request: string;
  /** Who started it: the worker rebuilds this caller's access, and only this client may see the export. */
  caller: Caller;
  /** The snapshot (the database's now() at kick-off). */
  transactionTime: string;
  output: ExportOutput[];
  /**
   * With _since: the files of deletions (Bulk 2.0 manifest `deleted`), each item `type: 'Bundle'` (transaction Bundles
   * of DELETE entries); absent in jobs started before it existed.
   */
  deleted?: ExportOutput[];
  /** OperationOutcome resources for the manifest's `error` file. */
  errors: Record<string, unknown>[];
  completedAt?: string;
}

/** An OperationOutcome for the `error` file. */
export function outcome(severity: 'error' | 'warning' | 'information', code: string, diagnostics: string): Record<string, unknown> {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}
