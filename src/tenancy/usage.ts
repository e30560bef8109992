// Usage per tenant (issue 11, "Usage metrics"): admitted FHIR requests and last activity counted in memory (one Map
// update per request, admission slot "usage") and added to tenant_activity every USAGE_FLUSH_INTERVAL_MS, so every
// process's counts add up; tenantUsage() for the admin API; the per-tenant Prometheus series' source.
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { QUOTA_NAMES, type Plan, type QuotaName } from '../core/plans.js';
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import type { TenantFigures, TenantSeriesSource } from '../platform/metrics.js';
import { quotaUsage } from '../store/quotas.js';
import { findTenant, listTenants } from '../store/tenants.js';
import { activeSessions, addActivity, readActivity, resourceCounts, storageBytes, tenantTotals } from '../store/usage.js';

/** What the admin API shows of a tenant's use (GET /admin/api/tenants/:slug/usage, tenant lists). */
export interface TenantUsage {
  /** Current (not deleted) resources by type. */
  resources: Record<string, number>;
  /** Stored size of the resource bodies, current rows and history (a process reuses its reading for a minute; on a plan: fresh). */
  storageBytes: number;
  /** Admitted FHIR requests today (UTC) and in the last 30 days (today included), across every process. */
  requestsToday: number;
  requests30d: number;
  /** Sign-in sessions of the tenant's users that have not expired. */
  activeSessions: number;
  /** The last admitted FHIR request (ISO), or null. */
  lastActivity: string | null;
  /** Each quota of the tenant's plan (limit null: unlimited) with its current usage, when plans are known. */
  quotas?: Record<QuotaName, { limit: number | null; usage: number }>;
}

/** How long a tenant's stored bytes, and the per-tenant Prometheus figures, are reused. */
const FIGURES_TTL_MS = 60_000;
const DAY_MS = 86_400_000;

/** Requests counted and not yet stored, and the time of the last (ms). */
interface Counts {
  requests: number;
  last: number;
}

/** The UTC day (YYYY-MM-DD) of a time in ms. */
function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Counts admitted requests per tenant in memory and stores them every `flushIntervalMs` (one upsert per tenant that
 * was active), so a request costs one Map update and no I/O. Counts that could not be stored stay for the next flush.
 * Also caches the costly figures: a tenant's stored bytes, and every tenant's figures for the Prometheus series.
 */
export class UsageTracker implements TenantSeriesSource {
  private current = new Map<string, Counts>();
  /** The counts a running flush is storing, removed tenant by tenant as they are stored. */
  private flushing = new Map<string, Counts>();
  /** Requests this process stored per tenant since it started. */
  private readonly stored = new Map<string, number>();
  private running: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly bytes = new Map<string, { bytes: number; at: number }>();
  private allFigures: { at: number; figures: Promise<Map<string, TenantFigures>> } | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly clock: () => Date,
    flushIntervalMs: number,
  ) {
    this.timer = setInterval(() => {
      if (!this.running) void this.flush();
    }, flushIntervalMs);
    this.timer.unref();
  }

  /** One admitted request of the tenant. */
  count(tenantId: string): void {
    const now = this.clock().getTime();
    const c = this.current.get(tenantId);
    if (c) {
      c.requests++;
      c.last = now;
    } else this.current.set(tenantId, { requests: 1, last: now });
  }

  /** The tenant's requests counted here and not stored yet, and the time of the last one (ms). */
  pending(tenantId: string): { requests: number; lastActivity: number | undefined } {
    const a = this.current.get(tenantId);
    const b = this.flushing.get(tenantId);
    const lastActivity = Math.max(a?.last ?? -Infinity, b?.last ?? -Infinity);
    return { requests: (a?.requests ?? 0) + (b?.requests ?? 0), lastActivity: Number.isFinite(lastActivity) ? lastActivity : undefined };
  }

  /** Stores the counts made so far (after a flush that is under way). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.store().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer and stores what is left: before the database closes. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async store(): Promise<void> {
    if (!this.current.size) return;
    this.flushing = this.current;
    this.current = new Map();
    for (const [tenantId, c] of this.flushing) {
      try {
        await addActivity(this.db, tenantId, utcDay(c.last), c.requests, new Date(c.last));
        this.stored.set(tenantId, (this.stored.get(tenantId) ?? 0) + c.requests);
      } catch (err) {
        // counted again with the next flush: nothing is lost while the process lives
        const now = this.current.get(tenantId);
        this.current.set(tenantId, { requests: c.requests + (now?.requests ?? 0), last: Math.max(c.last, now?.last ?? c.last) });
        this.log.warn({ err, tenantId }, 'could not store usage counts');
      }
      this.flushing.delete(tenantId);
    }
  }

  /** The tenant's stored bytes, computed at most once a minute (it reads every body's size). */
  async storageBytes(tenantId: string): Promise<number> {
    const now = this.clock().getTime();
    const hit = this.bytes.get(tenantId);
    if (hit && now - hit.at < FIGURES_TTL_MS) return hit.bytes;
    const bytes = await storageBytes(this.db, tenantId);
    this.bytes.set(tenantId, { bytes, at: now });
    return bytes;
  }

  /** TenantSeriesSource: requests this process admitted per tenant since it started. */
  requestTotals(): ReadonlyMap<string, number> {
    const totals = new Map(this.stored);
    for (const m of [this.flushing, this.current]) for (const [t, c] of m) totals.set(t, (totals.get(t) ?? 0) + c.requests);
    return totals;
  }

  /** TenantSeriesSource: every tenant's figures, read at most once a minute; last activity includes unstored counts. */
  async figures(): Promise<ReadonlyMap<string, TenantFigures>> {
    const now = this.clock().getTime();
    if (!this.allFigures || now - this.allFigures.at >= FIGURES_TTL_MS) {
      const previous = this.allFigures;
      const figures = this.readFigures().catch((err: unknown) => {
        // a scrape still answers: with the figures read before, or none
        this.log.warn({ err }, 'could not read the per-tenant usage figures');
        this.allFigures = previous;
        return previous?.figures ?? new Map<string, TenantFigures>();
      });
      this.allFigures = { at: now, figures };
    }
    const out = new Map<string, TenantFigures>();
    for (const [tenantId, f] of await this.allFigures.figures) {
      const live = this.pending(tenantId).lastActivity;
      out.set(tenantId, { ...f, lastActivity: live === undefined ? f.lastActivity : Math.max(live, f.lastActivity ?? live) });
    }
    return out;
  }

  /** Every tenant's totals, one tenant at a time (row-level security: each on a connection bound to it). */
  private async readFigures(): Promise<Map<string, TenantFigures>> {
    const sessions = await activeSessions(this.db);
    const out = new Map<string, TenantFigures>();
    for (const { id } of await listTenants(this.db)) {
      const t = await tenantTotals(this.db, id);
      this.bytes.set(id, { bytes: t.storageBytes, at: this.clock().getTime() });
      out.set(id, { resources: t.resources, storageBytes: t.storageBytes, activeSessions: sessions.get(id) ?? 0, lastActivity: t.lastActivity?.getTime() });
    }
    return out;
  }
}

/** Builds the process's tracker (src/compose.ts) and, with METRICS_TENANT_SERIES, the per-tenant series it feeds. */
export function trackUsage(deps: Pick<Deps, 'config' | 'db' | 'log' | 'clock' | 'metrics'>): UsageTracker {
  const tracker = new UsageTracker(deps.db, deps.log, deps.clock, deps.config.usageFlushIntervalMs);
  if (deps.config.metricsTenantSeries) deps.metrics.addTenantSeries(tracker, deps.config.metricsTenantSeriesMax);
  return tracker;
}

/**
 * A tenant's usage: resources by type, stored bytes, requests today and in the last 30 days (stored by every process,
 * plus this process's counts not stored yet), live sessions, last activity, and the quotas of its plan (limit and
 * usage, src/store/quotas.ts) when it has one. The caller has authorized the reader (src/admin/tenants.ts).
 */
export async function tenantUsage(deps: Deps, slug: string): Promise<TenantUsage> {
  const tenant = await findTenant(deps.db, slug);
  if (!tenant) throw new FhirError('not-found', `Unknown tenant '${slug.slice(0, 64)}'`, { code: 'TENANT_UNKNOWN' });
  const now = deps.clock().getTime();
  const plan = tenant.plan ? await deps.plans.get(tenant.plan) : undefined;
  const [resources, activity, measured] = await Promise.all([
    resourceCounts(deps.db, tenant.id),
    readActivity(deps.db, tenant.id, utcDay(now), utcDay(now - 29 * DAY_MS)),
    measure(deps, tenant.id, plan !== undefined),
  ]);
  const live = deps.usage.pending(tenant.id);
  const last = Math.max(activity.lastActivity?.getTime() ?? -Infinity, live.lastActivity ?? -Infinity);
  return {
    resources,
    storageBytes: measured.storageBytes,
    requestsToday: activity.today + live.requests,
    requests30d: activity.since + live.requests,
    activeSessions: measured.sessions,
    lastActivity: Number.isFinite(last) ? new Date(last).toISOString() : null,
    ...(plan && measured.quotas ? { quotas: quotasOf(plan, measured.quotas) } : {}),
  };
}

/**
 * Stored bytes and live sessions. With a plan, every quota's usage too: quotaUsage computes the stored size afresh,
 * and that one figure answers both (the quota and the size shown never disagree).
 */
async function measure(deps: Deps, tenantId: string, withQuotas: boolean): Promise<{ storageBytes: number; sessions: number; quotas?: Record<QuotaName, number> }> {
  if (withQuotas) {
    const quotas = await quotaUsage(deps, tenantId);
    return { storageBytes: quotas.storageBytes, sessions: quotas.sessions, quotas };
  }
  const [storageBytes, sessions] = await Promise.all([deps.usage.storageBytes(tenantId), activeSessions(deps.db, tenantId)]);
  return { storageBytes, sessions: sessions.get(tenantId) ?? 0 };
}

/** Each quota of `plan` (limit null: unlimited) with its usage (requestsPerMinute: a rate the limiter spends, 0 here). */
function quotasOf(plan: Plan, usage: Record<QuotaName, number>): Record<QuotaName, { limit: number | null; usage: number }> {
  return Object.fromEntries(QUOTA_NAMES.map((q) => [q, { limit: plan.quotas[q], usage: usage[q] }])) as Record<QuotaName, { limit: number | null; usage: number }>;
}
