// The values every FHIR interaction receives: dependencies, the tenant, and the request's identity.
import type { Config } from '../config/index.js';
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import type { KeyRing } from '../auth/keys.js';
import type { Guard } from './guard.js';
import type { SearchParamRegistry } from '../search/registry.js';
import type { TenantSearchParams } from '../search/tenant-registry.js';
import type { JobRunner } from '../jobs/runner.js';

export interface TenantSettings {
  /** Reject references to resources that do not exist in the tenant (default true). */
  referentialIntegrity?: boolean;
  /** Every user must sign in with a second factor (TOTP); users without one enrol at their next sign-in. */
  mfaRequired?: boolean;
}

export interface Tenant {
  id: string;
  name: string;
  status: string;
  settings: TenantSettings;
}

/** Everything main.ts builds once and passes down (no module-level singletons). */
export interface Deps {
  config: Config;
  db: Db;
  log: Logger;
  /** The official R4 search parameters. */
  registry: SearchParamRegistry;
  /** Per-tenant registries (official + the tenant's SearchParameter resources). */
  searchParams: TenantSearchParams;
  clock: () => Date;
  newId: () => string;
  /** The authorization server's signing keys and cookie secrets (loaded from the database at start). */
  auth: { keys: KeyRing; cookieKeys: string[] };
  /** Background jobs of this process. */
  jobs: JobRunner;
}

export interface FhirContext {
  deps: Deps;
  tenant: Tenant;
  /** Absolute FHIR base of the tenant, e.g. https://fhir.example.org/fhir/acme */
  baseUrl: string;
  /** This tenant's search parameters (official + custom). */
  registry: SearchParamRegistry;
  requestId: string;
  log: Logger;
  /** What the caller's token allows; absent for the server's own work (tenant creation, background jobs). */
  guard?: Guard;
  /** Fires when the client goes away (or the server cuts the request at shutdown): cancels its database work. */
  signal?: AbortSignal;
}

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

export interface RequestHeaders {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifNoneExist?: string;
  preferReturn?: PreferReturn;
  preferStrict?: boolean;
}

/** A successful FHIR answer; http/ turns it into a response. `body` may be pre-serialized JSON. */
export interface FhirResult {
  status: number;
  body?: Record<string, unknown> | string;
  headers?: Record<string, string>;
}
