// Authorization as every layer sees it: a Guard decides each FHIR interaction (src/auth builds one from a verified
// token; the server's own work uses the named SYSTEM guard), and its decisions carry the regions (patient
// compartment, granular filters) and element limits the FHIR layer and the store apply (SMART.md §7).

export type GuardLetter = 'c' | 'r' | 'u' | 'd' | 's';

/** One interaction to decide (src/auth/access.ts decides it). */
export interface GuardRequest {
  interaction:
    | 'read' | 'vread' | 'history-instance' | 'history-type' | 'history-system' | 'search-type' | 'search-system'
    | 'search-compartment' | 'create' | 'update' | 'patch' | 'delete' | 'operation';
  /** Required for every type- and instance-level interaction. */
  resourceType?: string;
  id?: string;
  /** Conditional create/update/patch/delete (If-None-Exist or a search URL): the server searches for the client. */
  conditional?: boolean;
  /** `_type` of a system-level search/history or $export. */
  types?: string[];
  /** For interaction 'operation': the name with its `$` (`$everything`, `$export`, `$validate`, `$reindex`). */
  operation?: string;
  /** For 'search-compartment' (`Patient/[compartmentId]/[resourceType]`). */
  compartmentId?: string;
  /** Searches: the types reached through chained parameters and `_has` (`subject:Patient.name=x` -> Patient). */
  chainedTypes?: string[];
}

export interface GuardDecision {
  allow: boolean;
  denial?: 'forbidden' | 'not-found';
  reason?: string;
  searchFilters?: { params: readonly (readonly [string, string])[]; compartment?: { patientId: string } }[];
  compartment?: { patientId: string };
  elements?: string[];
  types?: '*' | string[];
}

/** What the caller may do: a verified token's access (src/auth/verify.ts), or the server's own (SYSTEM_GUARD). */
export interface Guard {
  decide(request: GuardRequest): GuardDecision;
  forType(resourceType: string, letter: GuardLetter): GuardDecision;
}


const ALLOWED: GuardDecision = { allow: true };

/**
 * The server's own work (tenant creation, background jobs, index maintenance): unrestricted, and named, so that
 * every interaction is decided by some guard and none runs unguarded by accident.
 */
export const SYSTEM_GUARD: Guard = {
  decide: () => ALLOWED,
  forType: () => ALLOWED,
};
