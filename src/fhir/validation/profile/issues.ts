// The issues profile validation reports: each names the profile (diagnostics, details.text and an extension), the
// element as a FHIRPath expression, a severity and a stable code.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../../../core/errors.js';

/** Extension on each issue carrying the canonical URL of the profile that raised it. */
export const PROFILE_EXTENSION = 'urn:tenfhir:profile';

export type ProfileIssueCode =
  | 'PROFILE_CARDINALITY'
  | 'PROFILE_TYPE'
  | 'PROFILE_FIXED'
  | 'PROFILE_PATTERN'
  | 'PROFILE_SLICE'
  | 'PROFILE_BINDING'
  | 'PROFILE_INVARIANT'
  | 'PROFILE_UNKNOWN'
  | 'PROFILE_MUST_SUPPORT'
  | 'PROFILE_NOT_CHECKED'
  | 'PROFILE_DEFINITION_INVALID';

export interface ProfileProblem {
  severity: OperationOutcomeIssue['severity'];
  /** OperationOutcome issue type. */
  type: OperationOutcomeIssue['code'];
  code: ProfileIssueCode;
  expression: string;
  message: string;
}

export function profileIssue(profile: string, p: ProfileProblem): OperationOutcomeIssue {
  const out = issue(p.severity, p.type, `${p.message} at ${p.expression} (profile ${profile})`, { code: p.code, expression: [p.expression] });
  out.extension = [{ url: PROFILE_EXTENSION, valueCanonical: profile }];
  return out;
}

/** Drops repeated issues (a slice re-checks what its sliced element checks). */
export function dedupeIssues(issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.details?.coding?.[0]?.code}|${i.diagnostics}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
