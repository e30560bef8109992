// A tenant as every layer sees it, and the one grammar of tenant ids (slugs): lowercase letters, digits and '-',
// 1-63 characters, starting with a letter or digit. TenantId is branded, so a raw string (a URL segment, a claim)
// becomes one only through isTenantSlug, which checks the grammar (or a cast where the database gave it).

export type TenantId = string & { readonly __brand: 'TenantId' };

/** The slug grammar (the URL segment of /fhir/{tenant}, a token's tenant claim, a database binding). */
export const TENANT_SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Slugs no tenant may take (paths of this server, and the platform administrators' pseudo-tenant). */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set(['metadata', 'admin', 'auth', 'shared', 'platform', 'fhir', 'healthz', 'readyz']);

/** The platform administrators' pseudo-tenant: users who sign in to any tenant, never a tenant itself. */
export const PLATFORM = 'platform' as TenantId;

export function isTenantSlug(value: unknown): value is TenantId {
  return typeof value === 'string' && TENANT_SLUG.test(value);
}


export interface TenantSettings {
  /** Reject references to resources that do not exist in the tenant (default true). */
  referentialIntegrity?: boolean;
  /** Every user must sign in with a second factor (TOTP); users without one enrol at their next sign-in. */
  mfaRequired?: boolean;
  /** Days the tenant's audit records are kept (default AUDIT_RETENTION_DAYS). */
  auditRetentionDays?: number;
  /**
   * Profiles (canonical URLs) every resource of a type must meet on create and update, whatever it claims in
   * meta.profile: { DiagnosticReport: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab'] }.
   */
  requiredProfiles?: Record<string, string[]>;
  /** A write breaking a required binding of a profile is refused (default true); false: it is stored with a warning. */
  requiredBindings?: boolean;
}

export interface Tenant {
  id: TenantId;
  name: string;
  status: string;
  settings: TenantSettings;
}
