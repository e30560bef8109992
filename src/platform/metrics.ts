// Prometheus metrics (prom-client, text exposition format 0.0.4), served at /metrics by src/http/app.ts.
// Label values come from small fixed sets only: never subscription or resource ids, nor URLs (cardinality, PHI), and
// tenant ids only in the per-tenant series that METRICS_TENANT_SERIES switches on, capped (issue 11).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const PREFIX = 'tenfhir_';

/** Request methods counted by name; anything else (WebDAV verbs, garbage) is `other`, so the label set stays small. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The `method` label for an HTTP request method. */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'other';
}

/** The `status` label for an HTTP status: its class (`2xx`, `4xx`, `5xx`). */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** The `tenant` label of the tenants beyond the cap of the per-tenant series: their figures summed (no slug has `_`). */
export const OTHER_TENANTS = '_other';

/** One tenant's figures for the per-tenant gauges. */
export interface TenantFigures {
  /** Current (not deleted) resources. */
  resources: number;
  storageBytes: number;
  activeSessions: number;
  /** Milliseconds since the epoch; undefined: never active. */
  lastActivity: number | undefined;
}

/** Where the per-tenant series come from (src/tenancy/usage.ts UsageTracker). */
export interface TenantSeriesSource {
  /** Requests this process admitted per tenant since it started (a counter: never goes down). */
  requestTotals(): ReadonlyMap<string, number>;
  /** Every tenant's figures (the source refreshes them at most every minute: a scrape must stay cheap). */
  figures(): Promise<ReadonlyMap<string, TenantFigures>>;
}

/**
 * The `tenant` label of each tenant, at most `max` distinct slugs: the first `max` tenants met keep their own label
 * for the life of the process (a counter's series must not change hands), every later one is `_other`.
 */
class TenantLabels {
  private readonly own = new Set<string>();
  constructor(private readonly max: number) {}

  of(tenantId: string): string {
    if (this.own.has(tenantId)) return tenantId;
    if (this.own.size >= this.max) return OTHER_TENANTS;
    this.own.add(tenantId);
    return tenantId;
  }

  /** Sums `values` per label (`combine` folds two tenants' values under `_other`). */
  group<V>(values: Iterable<[string, V]>, combine: (a: V, b: V) => V): Map<string, V> {
    const out = new Map<string, V>();
    // sorted: which tenants get their own label does not depend on the order the source lists them in
    for (const [tenantId, v] of [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const label = this.of(tenantId);
      const had = out.get(label);
      out.set(label, had === undefined ? v : combine(had, v));
    }
    return out;
  }
}

/**
 * The server's metrics, in a registry of their own (not prom-client's global one): a process may build several
 * servers (tests do), and each counts only its own work. Built once in src/compose.ts and passed down as `deps.metrics`.
 */
export class Metrics {
  readonly registry = new Registry();

  /** Every HTTP request, by method and status class. */
  readonly httpRequests = new Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'HTTP requests answered, by method and status class.',
    labelNames: ['method', 'status'] as const,
    registers: [this.registry],
  });

  /** Request handling time, 1 ms to 10 s. */
  readonly httpDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'Time from request to response finished, by method.',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** Change events the outbox dispatcher handed on (action: create|update|delete). */
  readonly outboxEvents = new Counter({
    name: `${PREFIX}outbox_events_total`,
    help: 'Change events dispatched from the outbox, by action.',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  /** From the commit of a change to its dispatch, 1 ms to 60 s. */
  readonly outboxLag = new Histogram({
    name: `${PREFIX}outbox_dispatch_lag_seconds`,
    help: 'Time from a change event commit to its dispatch.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  /** Subscriptions a change event matched (kind: topic|criteria). */
  readonly subscriptionMatches = new Counter({
    name: `${PREFIX}subscription_matches_total`,
    help: 'Subscription matches of change events, by kind (topic or criteria).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /**
   * Notifications by channel (rest-hook|websocket), type (handshake|heartbeat|event-notification) and
   * outcome (delivered|retry|failed|withheld).
   */
  readonly notifications = new Counter({
    name: `${PREFIX}notifications_total`,
    help: 'Subscription notifications, by channel, notification type and outcome.',
    labelNames: ['channel', 'type', 'outcome'] as const,
    registers: [this.registry],
  });

  /** From the event's commit to its successful delivery: 5 ms to a day (deliveries retry for about 24 h). */
  readonly notificationLatency = new Histogram({
    name: `${PREFIX}notification_latency_seconds`,
    help: 'Time from a change event commit to the successful delivery of its notification, by channel.',
    labelNames: ['channel'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300, 600, 3600, 14400, 86400],
    registers: [this.registry],
  });

  /** One delivery attempt (one HTTP request to a rest-hook endpoint, or one websocket send). */
  readonly deliveryAttempt = new Histogram({
    name: `${PREFIX}delivery_attempt_seconds`,
    help: 'Duration of one notification delivery attempt, by channel.',
    labelNames: ['channel'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /** Open subscription websockets of this process. */
  readonly websocketConnections = new Gauge({
    name: `${PREFIX}websocket_connections`,
    help: 'Open subscription websocket connections.',
    registers: [this.registry],
  });

  /** Job runs by queue name (a fixed set of names in src/jobs) and outcome (completed|failed|retried|delayed). */
  readonly jobs = new Counter({
    name: `${PREFIX}jobs_total`,
    help: 'Background job runs, by queue and outcome.',
    labelNames: ['queue', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    // Process metrics (CPU, memory, event loop lag, GC), read at scrape time.
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Records one answered HTTP request. */
  observeRequest(method: string, status: number, seconds: number): void {
    const m = methodLabel(method);
    this.httpRequests.inc({ method: m, status: statusClass(status) });
    this.httpDuration.observe({ method: m }, seconds);
  }

  /**
   * Adds the per-tenant series (METRICS_TENANT_SERIES), read from `source` at scrape time: requests (counter),
   * resources, stored bytes, live sessions and last activity (gauges), labelled `tenant` for at most `max` tenants.
   */
  addTenantSeries(source: TenantSeriesSource, max: number): void {
    const labels = new TenantLabels(max);
    const registers = [this.registry];
    const sum = (a: number, b: number) => a + b;
    new Counter({
      name: `${PREFIX}tenant_requests_total`,
      help: `FHIR requests admitted by this process, by tenant (beyond ${max} tenants: tenant="${OTHER_TENANTS}").`,
      labelNames: ['tenant'] as const,
      registers,
      collect() {
        this.reset();
        for (const [tenant, n] of labels.group(source.requestTotals(), sum)) this.inc({ tenant }, n);
      },
    });
    const gauge = (name: string, help: string, value: (f: TenantFigures) => number | undefined, combine: (a: number, b: number) => number) =>
      new Gauge({
        name: `${PREFIX}tenant_${name}`,
        help: `${help} (refreshed at most every minute; beyond ${max} tenants: tenant="${OTHER_TENANTS}").`,
        labelNames: ['tenant'] as const,
        registers,
        async collect() {
          this.reset();
          const values: [string, number][] = [];
          for (const [tenant, f] of await source.figures()) {
            const v = value(f);
            if (v !== undefined) values.push([tenant, v]);
          }
          for (const [tenant, v] of labels.group(values, combine)) this.set({ tenant }, v);
        },
      });
    gauge('resources', 'Current (not deleted) resources, by tenant', (f) => f.resources, sum);
    gauge('storage_bytes', 'Stored size of resource bodies (current and history), by tenant', (f) => f.storageBytes, sum);
    gauge('active_sessions', 'Live sign-in sessions, by tenant', (f) => f.activeSessions, sum);
    gauge('last_activity_timestamp_seconds', 'Time of the last admitted FHIR request, by tenant', (f) => (f.lastActivity === undefined ? undefined : f.lastActivity / 1000), Math.max);
  }

  /** The exposition for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
