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
  // --- security policies (issue 11; src/tenancy/security-policy.ts) ---
  /** CIDR blocks (IPv4 and IPv6) allowed to sign in, get tokens and call the tenant's API; unset or empty: any. */
  ipAllowList?: string[];
  /** Minutes a sign-in session may sit unused before the user signs in again (at most AUTH_SESSION_IDLE_MINUTES). */
  idleTimeoutMinutes?: number;
  /** Shortest password accepted for the tenant's users (at least the server's own minimum). */
  passwordMinLength?: number;
  /** Refuse passwords found in the breached-password list of BREACHED_PASSWORDS_FILE (docs/security-policies.md). */
  breachedPasswordCheck?: boolean;
  /** Longest access-token lifetime issued for the tenant (seconds; at most the server's). */
  maxTokenLifetimeSeconds?: number;
  /** Break-glass support access to this tenant needs one of its tenant admins to approve it first. */
  breakGlassApproval?: boolean;
}

/**
 * Where a tenant is in its life (issue 11): trial -> active -> suspended -> active; active|suspended -> archived
 * (read-only); -> terminated (erased after a grace period). src/tenancy/lifecycle.ts decides what each allows.
 */
export type TenantStatus = 'trial' | 'active' | 'suspended' | 'archived' | 'terminated';

export interface Tenant {
  id: TenantId;
  name: string;
  status: string;
  settings: TenantSettings;
  /** The plan (src/tenancy/plans.ts) whose quotas apply; undefined for tenants made before plans existed. */
  plan?: string;
  /** solo-practice | multi-branch | diagnostic-centre | hospital-group | lab (free text checked at create). */
  type?: string;
  /** The tenant's own host name (host-based tenants), if any. */
  host?: string | null;
  /** A trial's end (ISO); past it the tenant is read-only. */
  trialEndsAt?: string | null;
}

/** A tenant that exists for its users (any status but terminated): requests reach lifecycle checks, not 404. */
export function isServing(t: Tenant | undefined): t is Tenant {
  return !!t && t.status !== 'terminated';
}
