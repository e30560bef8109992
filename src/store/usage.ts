// Usage figures of one tenant (issue 11): its requests and last activity per day (tenant_activity, migrations/0013),
// its current resources, the space its resource bodies take, and its live sign-in sessions. Read by
// src/tenancy/usage.ts for the admin API and the per-tenant Prometheus series.
import type { Db } from '../platform/db.js';
import { STORED_BYTES_SQL } from './quotas.js';

/**
 * Adds `requests` to the tenant's row of `day` (YYYY-MM-DD, UTC) and moves its last activity forward. Nothing for a
 * tenant that is gone or terminated: counts a process still held must not bring rows back after an erasure.
 */
export async function addActivity(db: Db, tenantId: string, day: string, requests: number, lastActivity: Date): Promise<void> {
  await db.withTenant(tenantId, (q) =>
    q.query(
      `INSERT INTO tenant_activity (tenant_id, day, requests, last_activity)
       SELECT $1, $2::date, $3, $4 WHERE EXISTS (SELECT 1 FROM tenant WHERE id = $1 AND status <> 'terminated')
       ON CONFLICT (tenant_id, day) DO UPDATE
         SET requests = tenant_activity.requests + EXCLUDED.requests,
             last_activity = greatest(tenant_activity.last_activity, EXCLUDED.last_activity)`,
      [tenantId, day, requests, lastActivity.toISOString()],
    ),
  );
}

export interface StoredActivity {
  /** Requests on `today`. */
  today: number;
  /** Requests from `from` to `today`, both included. */
  since: number;
  lastActivity: Date | null;
}

/** The tenant's stored requests of `today` and of the days from `from` (YYYY-MM-DD, UTC), and its last activity. */
export async function readActivity(db: Db, tenantId: string, today: string, from: string): Promise<StoredActivity> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ today: string; since: string; last: Date | null }>(
      `SELECT coalesce(sum(requests) FILTER (WHERE day = $2::date), 0)::text AS today,
              coalesce(sum(requests) FILTER (WHERE day >= $3::date AND day <= $2::date), 0)::text AS since,
              max(last_activity) AS last
         FROM tenant_activity WHERE tenant_id = $1`,
      [tenantId, today, from],
    ),
  );
  const row = r.rows[0]!;
  return { today: Number(row.today), since: Number(row.since), lastActivity: row.last };
}

/** Current (not deleted) resources of the tenant, by type. */
export async function resourceCounts(db: Db, tenantId: string): Promise<Record<string, number>> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ resource_type: string; n: string }>(
      'SELECT resource_type, count(*)::text AS n FROM resource WHERE tenant_id = $1 AND NOT deleted GROUP BY resource_type ORDER BY resource_type',
      [tenantId],
    ),
  );
  return Object.fromEntries(r.rows.map((row) => [row.resource_type, Number(row.n)]));
}

/**
 * Bytes the tenant's resource bodies take as stored (pg_column_size of the jsonb, after compression): the current
 * rows and every version in the history. Reads every body's header: costly on large tenants (callers cache it).
 */
export async function storageBytes(db: Db, tenantId: string): Promise<number> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ bytes: string }>(
      `SELECT ${STORED_BYTES_SQL}::text AS bytes`,
      [tenantId],
    ),
  );
  return Number(r.rows[0]!.bytes);
}

/**
 * Live sign-in sessions per tenant: oidc-provider Session artifacts (a platform table, src/store/auth-payloads.ts)
 * that have not expired and belong to a signed-in account, whose id names the tenant ("tenant|userId",
 * src/auth/claims.ts). `tenantId` narrows it to one tenant.
 */
export async function activeSessions(db: Db, tenantId?: string): Promise<Map<string, number>> {
  const r = await db.platform((q) =>
    q.query<{ tenant: string; n: string }>(
      `SELECT split_part(payload->>'accountId', '|', 1) AS tenant, count(*)::text AS n
         FROM oidc_payload
        WHERE model = 'Session' AND payload->>'accountId' LIKE $1 AND (expires_at IS NULL OR expires_at > now())
        GROUP BY 1`,
      // slugs hold no LIKE wildcards ([a-z0-9-])
      [tenantId === undefined ? '%|%' : `${tenantId}|%`],
    ),
  );
  return new Map(r.rows.map((row) => [row.tenant, Number(row.n)]));
}

/** A tenant's totals for the per-tenant Prometheus series: current resources, stored bytes, last stored activity. */
export async function tenantTotals(db: Db, tenantId: string): Promise<{ resources: number; storageBytes: number; lastActivity: Date | null }> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ resources: string; bytes: string; last: Date | null }>(
      `SELECT (SELECT count(*) FROM resource WHERE tenant_id = $1 AND NOT deleted)::text AS resources,
              ${STORED_BYTES_SQL}::text AS bytes,
              (SELECT max(last_activity) FROM tenant_activity WHERE tenant_id = $1) AS last`,
      [tenantId],
    ),
  );
  const row = r.rows[0]!;
  return { resources: Number(row.resources), storageBytes: Number(row.bytes), lastActivity: row.last };
}
