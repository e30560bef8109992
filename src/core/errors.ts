// One error type for the whole server (STYLE.md §3): FhirError(kind, message, { code, expression, issues, cause }).
// The http error middleware, the bundle loop and job runners render it as an OperationOutcome.
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'gone'
  | 'not-allowed'
  | 'not-acceptable'
  | 'conflict'
  | 'precondition-failed'
  | 'too-large'
  | 'unsupported-media'
  | 'unprocessable'
  | 'unsupported'
  | 'too-many-requests'
  | 'unavailable'
  | 'internal';

/** kind -> HTTP status and default OperationOutcome issue type. */
export const ERROR_KINDS: Record<ErrorKind, { status: number; issueType: OperationOutcomeIssue['code'] }> = {
  invalid: { status: 400, issueType: 'invalid' },
  unauthenticated: { status: 401, issueType: 'login' },
  forbidden: { status: 403, issueType: 'forbidden' },
  'not-found': { status: 404, issueType: 'not-found' },
  gone: { status: 410, issueType: 'deleted' },
  'not-allowed': { status: 405, issueType: 'not-supported' },
  'not-acceptable': { status: 406, issueType: 'not-supported' },
  conflict: { status: 409, issueType: 'conflict' },
  'precondition-failed': { status: 412, issueType: 'conflict' },
  'too-large': { status: 413, issueType: 'too-costly' },
  'unsupported-media': { status: 415, issueType: 'not-supported' },
  unprocessable: { status: 422, issueType: 'processing' },
  unsupported: { status: 501, issueType: 'not-supported' },
  'too-many-requests': { status: 429, issueType: 'throttled' },
  unavailable: { status: 503, issueType: 'transient' },
  internal: { status: 500, issueType: 'exception' },
};

export interface FhirErrorOptions {
  /** Stable UPPER_SNAKE code, listed in docs/errors.md; carried in issue.details.coding. */
  code?: string;
  /** FHIRPath of the failing element(s). */
  expression?: string[];
  /** Several issues at once (validation gathers all, then throws once). */
  issues?: OperationOutcomeIssue[];
  issueType?: OperationOutcomeIssue['code'];
  /** Response headers the failure needs (e.g. `Allow` on 405, RFC 9110 §15.5.6). */
  headers?: Record<string, string>;
  cause?: unknown;
}

const ERROR_CODE_SYSTEM = 'urn:tenfhir:error-code';

export class FhirError extends Error {
  readonly kind: ErrorKind;
  readonly code: string | undefined;
  readonly expression: string[] | undefined;
  readonly issues: OperationOutcomeIssue[] | undefined;
  readonly issueType: OperationOutcomeIssue['code'];
  readonly headers: Record<string, string> | undefined;

  constructor(kind: ErrorKind, message: string, opts: FhirErrorOptions = {}) {
    super(message, { cause: opts.cause });
    this.name = 'FhirError';
    this.kind = kind;
    this.code = opts.code;
    this.expression = opts.expression;
    this.issues = opts.issues;
    this.issueType = opts.issueType ?? ERROR_KINDS[kind].issueType;
    this.headers = opts.headers;
  }

  get status(): number {
    return ERROR_KINDS[this.kind].status;
  }

  toOutcome(): OperationOutcome {
    if (this.issues?.length) return { resourceType: 'OperationOutcome', issue: this.issues };
    return {
      resourceType: 'OperationOutcome',
      issue: [issue('error', this.issueType, this.message, { code: this.code, expression: this.expression })],
    };
  }
}

export function issue(
  severity: OperationOutcomeIssue['severity'],
  code: OperationOutcomeIssue['code'],
  diagnostics: string,
  opts: { code?: string; expression?: string[] } = {},
): OperationOutcomeIssue {
  const out: OperationOutcomeIssue = { severity, code, diagnostics };
  if (opts.code) out.details = { coding: [{ system: ERROR_CODE_SYSTEM, code: opts.code }], text: diagnostics };
  if (opts.expression?.length) out.expression = opts.expression;
  return out;
}

export function outcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** An informational outcome for successful operations (e.g. `Prefer: return=OperationOutcome`). */
export function okOutcome(diagnostics: string): OperationOutcome {
  return outcome([issue('information', 'informational', diagnostics)]);
}

/**
 * Anything that is not a FhirError becomes a generic 500: no stack, SQL or driver detail leaves the server. Database
 * errors are translated by the store first (src/store/db-errors.ts asFhirError).
 */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  return new FhirError('internal', 'Internal server error.', { cause: err, code: 'INTERNAL' });
}
