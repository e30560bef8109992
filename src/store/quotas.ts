// What counts against each quota of a tenant's plan (issue 11, docs/plans.md), in SQL: the counts, the advisory lock
// per tenant and quota that a check holds until COMMIT (so two parallel creates never both take the last slot), the
// stored size of the tenant's resources (recomputed at most once a minute: too costly for every write), and
// quotaUsage, every figure at once for the admin API.
import type { Deps } from '../core/deps.js';
import type { QuotaName } from '../core/plans.js';
import type { Db, Queryable } from '../platform/db.js';
import { bindSealer, sealerOf } from './auth-sealing.js';
import { advisoryXactLock } from './locks.js';

/** The quotas counted row by row (storageBytes is a size; requestsPerMinute a rate, src/tenancy/rate-limits.ts). */
export type CountedQuota = Exclude<QuotaName, 'storageBytes' | 'requestsPerMinute'>;

/**
 * The resources that count, by type: Patients; Locations and branch Organizations (any Organization with `partOf`);
 * Subscriptions. `where` narrows the rows of the type that count (the current, not deleted version).
 */
export const COUNTED_TYPES: Readonly<Record<string, { quota: 'patients' | 'locations' | 'subscriptions'; where: string }>> = {
  Patient: { quota: 'patients', where: '' },
  Location: { quota: 'locations', where: '' },
  Organization: { quota: 'locations', where: " AND content ? 'partOf'" },
  Subscription: { quota: 'subscriptions', where: '' },
};

/** Counted rows of one type, tenant $1 (the primary key's index answers all but the Organization test). */
const countOf = (type: string) => `(SELECT count(*) FROM resource WHERE tenant_id = $1 AND resource_type = '${type}' AND NOT deleted${COUNTED_TYPES[type].where})`;
const resourceCount = (quota: string) =>
  Object.keys(COUNTED_TYPES)
    .filter((t) => COUNTED_TYPES[t].quota === quota)
    .map(countOf)
    .join(' + ');

/** Each counted quota's usage of tenant $1, as one SQL expression. */
const USAGE_SQL: Record<CountedQuota, string> = {
  patients: resourceCount('patients'),
  locations: resourceCount('locations'),
  subscriptions: resourceCount('subscriptions'),
  // staff: every user of the tenant but patients (disabled accounts included: enabling one again takes no check)
  staffUsers: "(SELECT count(*) FROM app_user WHERE tenant_id = $1 AND role <> 'patient')",
  clients: '(SELECT count(*) FROM oauth_client WHERE tenant_id = $1)',
  // live sign-in sessions: oidc-provider Session artifacts of an account of the tenant ("tenant|userId")
  sessions: `(SELECT count(*) FROM oidc_payload WHERE model = 'Session' AND payload->>'accountId' LIKE $1 || '|%'
               AND (expires_at IS NULL OR expires_at > now()))`,
};

/**
 * The stored size of tenant $1's resource bodies (pg_column_size, after compression): current rows plus the history.
 * The one definition of "storage": the quota checks here and the usage figures (src/store/usage.ts) both use it.
 */
export const STORED_BYTES_SQL = `((SELECT coalesce(sum(pg_column_size(content)), 0) FROM resource WHERE tenant_id = $1)
  + (SELECT coalesce(sum(pg_column_size(content)), 0) FROM resource_history WHERE tenant_id = $1))`;

/** Holds the tenant's lock of `quota` until the caller's transaction ends (a check, then the write that it allowed). */
export function lockQuota(q: Queryable, tenantId: string, quota: QuotaName): Promise<void> {
  return advisoryXactLock(q, `${tenantId}\0quota\0${quota}`);
}

/** One quota's usage, on the caller's connection (inside the transaction that holds its lock: what is committed, and its own writes). */
export async function countUsage(q: Queryable, tenantId: string, quota: CountedQuota): Promise<number> {
  const r = await q.query<{ n: string }>(`SELECT (${USAGE_SQL[quota]})::text AS n`, [tenantId]);
  return Number(r.rows[0]!.n);
}

/** How many of the resources `type`/`ids` count now (their current version exists and, for Organizations, is a branch). */
export async function countedAmong(q: Queryable, tenantId: string, type: string, ids: string[]): Promise<number> {
  const r = await q.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM resource WHERE tenant_id = $1 AND resource_type = $2 AND id = ANY($3::text[]) AND NOT deleted${COUNTED_TYPES[type].where}`,
    [tenantId, type, ids],
  );
  return Number(r.rows[0]!.n);
}

/** Live sign-in sessions of the tenant, leaving out the session with `exceptUid` (the one signing in again). */
export async function countSessions(db: Db, tenantId: string, exceptUid: string | undefined): Promise<number> {
  const r = await db.platform((q) =>
    q.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM oidc_payload WHERE model = 'Session' AND payload->>'accountId' LIKE $1 || '|%'
          AND (expires_at IS NULL OR expires_at > now()) AND uid IS DISTINCT FROM $2`,
      // slugs hold no LIKE wildcards ([a-z0-9-])
      [tenantId, exceptUid ?? null],
    ),
  );
  return Number(r.rows[0]!.n);
}

/** The plan a tenant is on (null: none), read on the caller's connection. */
export async function tenantPlan(q: Queryable, tenantId: string): Promise<string | null> {
  const r = await q.query<{ plan: string | null }>('SELECT plan FROM tenant WHERE id = $1', [tenantId]);
  return r.rows[0]?.plan ?? null;
}

/** How old a tenant's stored size may be before it is recomputed (behind the write that found it old). */
export const STORAGE_REFRESH_MS = 60_000;

/** The last stored size computed per tenant, per database handle (each server its own). */
const storedSizes = new WeakMap<Db, Map<string, { bytes: number; at: number; refreshing?: boolean }>>();

function sizesOf(db: Db): Map<string, { bytes: number; at: number; refreshing?: boolean }> {
  let sizes = storedSizes.get(db);
  if (!sizes) storedSizes.set(db, (sizes = new Map()));
  return sizes;
}

async function computeStoredBytes(q: Queryable, tenantId: string): Promise<number> {
  const r = await q.query<{ bytes: string }>(`SELECT ${STORED_BYTES_SQL}::text AS bytes`, [tenantId]);
  return Number(r.rows[0]!.bytes);
}

/**
 * The tenant's stored size as last computed. The first time, it is computed on `q` (the caller's transaction: the
 * embedded database has no other connection to give while it is held); older than STORAGE_REFRESH_MS, the old figure
 * is answered and a new one computed in the background. Not atomic (docs/plans.md): writes are refused once the
 * figure reaches the quota.
 */
export async function storedBytes(deps: Pick<Deps, 'db' | 'log' | 'clock'>, q: Queryable, tenantId: string): Promise<number> {
  const sizes = sizesOf(deps.db);
  const now = deps.clock().getTime();
  const known = sizes.get(tenantId);
  if (!known) {
    const bytes = await computeStoredBytes(q, tenantId);
    sizes.set(tenantId, { bytes, at: now });
    return bytes;
  }
  if (now - known.at >= STORAGE_REFRESH_MS && !known.refreshing) {
    known.refreshing = true;
    void deps.db
      .withTenant(tenantId, (bg) => computeStoredBytes(bg, tenantId))
      .then((bytes) => sizes.set(tenantId, { bytes, at: deps.clock().getTime() }))
      .catch((err: unknown) => {
        known.refreshing = false;
        deps.log.warn({ err, tenantId }, 'stored size could not be recomputed');
      });
  }
  return known.bytes;
}

/**
 * Every quota's usage of a tenant now: resources, users, clients and live sessions counted, the stored size computed
 * (and remembered for the write path). requestsPerMinute is a rate the rate limiter spends (src/tenancy/rate-limits.ts),
 * not a stored figure: 0 here.
 */
export async function quotaUsage(deps: Pick<Deps, 'db' | 'clock'>, tenantId: string): Promise<Record<QuotaName, number>> {
  const counted = Object.keys(USAGE_SQL) as CountedQuota[];
  const r = await deps.db.withTenant(tenantId, (q) =>
    q.query<Record<string, string>>(`SELECT ${counted.map((k) => `(${USAGE_SQL[k]})::text AS "${k}"`).join(', ')}, ${STORED_BYTES_SQL}::text AS "storageBytes"`, [tenantId]),
  );
  const row = r.rows[0]!;
  const bytes = Number(row.storageBytes);
  sizesOf(deps.db).set(tenantId, { bytes, at: deps.clock().getTime() });
  return { ...(Object.fromEntries(counted.map((k) => [k, Number(row[k])])) as Record<CountedQuota, number>), storageBytes: bytes, requestsPerMinute: 0 };
}

/**
 * `db` narrowed to one open transaction: every call of the store functions given it runs on `q` (bound to `tenantId`;
 * the platform tables they touch, oauth_client, carry no tenant wall); the admin connection is out of reach (on the
 * embedded database it would wait for this very transaction). The secrets key of `db` stays bound to it.
 */
export function onTransaction(db: Db, q: Queryable, tenantId: string): Db {
  const here = <T>(id: string, fn: (q: Queryable) => Promise<T>): Promise<T> => {
    if (id !== tenantId) throw new Error(`a write inside tenant ${tenantId}'s quota check reached tenant ${id}`);
    return fn(q);
  };
  const outside = (): never => {
    throw new Error('only statements of the tenant and the platform tables run inside a quota check');
  };
  const bound: Db = {
    kind: db.kind,
    withTenant: here,
    tx: here,
    platform: (fn) => fn(q),
    platformTx: (fn) => fn(q),
    admin: outside,
    listen: outside,
    ping: outside,
    close: outside,
  };
  bindSealer(bound, sealerOf(db));
  return bound;
}
