// Prometheus metrics (prom-client, text exposition format 0.0.4), served at /metrics by src/http/app.ts.
// Label values come from small fixed sets only: never tenant, subscription or resource ids, nor URLs (cardinality, PHI).
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

  /** The exposition for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
