// Plans (issue 11): what a tenant may use. Plans are data (the `plan` table, editable by platform admins); these are
// their shapes as every layer sees them. src/store/plans.ts reads and caches them.

/** The quotas a plan sets; null = unlimited. */
export interface Quotas {
  staffUsers: number | null;
  patients: number | null;
  /** Locations and branch Organizations (partOf the root) together. */
  locations: number | null;
  storageBytes: number | null;
  requestsPerMinute: number | null;
  /** Concurrent sign-in sessions. */
  sessions: number | null;
  subscriptions: number | null;
  /** Registered OAuth clients (apps and backend services). */
  clients: number | null;
}

export type QuotaName = keyof Quotas;

export const QUOTA_NAMES: readonly QuotaName[] = ['staffUsers', 'patients', 'locations', 'storageBytes', 'requestsPerMinute', 'sessions', 'subscriptions', 'clients'];

export interface Plan {
  id: string;
  name: string;
  description: string;
  /** A trial plan's length in days (the tenant's trialEndsAt is set from it); null for paid plans. */
  trialDays: number | null;
  /** Tenant types the plan is sold to (empty: any). */
  tenantTypes: string[];
  quotas: Quotas;
}

/** The plans as the server reads them (src/store/plans.ts PlanCatalog): cached for a few seconds. */
export interface PlanLookup {
  get(id: string): Promise<Plan | undefined>;
  list(): Promise<Plan[]>;
  /** A plan changed (this process): forget the cache. */
  invalidate(): void;
}
