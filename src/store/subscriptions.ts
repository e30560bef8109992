// Subscription storage (migrations/0006_subscriptions.sql): the outbox the write statement fills, the state the
// server keeps per Subscription, its numbered events and the delivery log. Every function runs on a connection bound
// to the tenant (row-level security), except the two tenant scans, which answer tenant ids only.
import type { Db, Queryable } from '../platform/db.js';
import { ROUTED_INSERT } from './audit.js';
import { sealerOf } from './auth-sealing.js';
import type { ChangeAction } from './resources.js';

export type SubscriptionStatus = 'requested' | 'active' | 'error' | 'off';
export type EventStatus = 'pending' | 'delivered' | 'failed' | 'withheld';
export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification';

export interface OutboxEvent {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  action: ChangeAction;
  createdAt: Date;
}

/** Tenants with change events waiting (ids only: a SECURITY DEFINER scan, the rows stay hidden). */
export async function outboxTenants(db: Db): Promise<string[]> {
  const r = await db.platform((q) => q.query<{ t: string }>('SELECT outbox_tenants() AS t'));
  return r.rows.map((x) => x.t);
}

/** Tenants with subscriptions that are not off, or events still to deliver. */
export async function subscriptionTenants(db: Db): Promise<string[]> {
  const r = await db.platform((q) => q.query<{ t: string }>('SELECT subscription_tenants() AS t'));
  return r.rows.map((x) => x.t);
}

/**
 * Takes (deletes) up to `limit` of the tenant's oldest change events inside the caller's transaction: events another
 * dispatcher holds are skipped, and a rollback puts them back.
 */
export async function claimOutbox(q: Queryable, tenantId: string, limit: number): Promise<OutboxEvent[]> {
  const r = await q.query<{ seq: string; resource_type: string; resource_id: string; version_id: number; action: ChangeAction; created_at: Date }>(
    `DELETE FROM outbox WHERE tenant_id = $1 AND seq IN (
       SELECT seq FROM outbox WHERE tenant_id = $1 ORDER BY seq LIMIT ${Math.floor(limit)} FOR UPDATE SKIP LOCKED)
     RETURNING seq, resource_type, resource_id, version_id, action, created_at`,
    [tenantId],
  );
  return r.rows
    .map((x) => ({ seq: Number(x.seq), resourceType: x.resource_type, id: x.resource_id, versionId: x.version_id, action: x.action, createdAt: x.created_at }))
    .sort((a, b) => a.seq - b.seq);
}

/** Who created a subscription: deliveries are checked against this owner's access as it is at delivery time. */
export interface SubscriptionOwner {
  clientId: string;
  /** The token's subject: a user account id, or the client id for backend clients. */
  sub: string;
  role: string;
  scope: string;
  patient?: string;
  fhirUser?: string;
}

export interface SubscriptionState<Spec = unknown> {
  id: string;
  status: SubscriptionStatus;
  resourceType: string;
  spec: Spec;
  owner: SubscriptionOwner;
  eventsSinceStart: number;
  error: string | null;
  lastSentAt: Date | null;
  createdAt: Date;
}

type StateRow = {
  id: string; status: SubscriptionStatus; resource_type: string; spec: unknown; owner: SubscriptionOwner; events_since_start: string;
  error: string | null; last_sent_at: Date | null; created_at: Date;
};

function toState<Spec>(r: StateRow): SubscriptionState<Spec> {
  return {
    id: r.id, status: r.status, resourceType: r.resource_type, spec: r.spec as Spec, owner: r.owner, eventsSinceStart: Number(r.events_since_start),
    error: r.error, lastSentAt: r.last_sent_at, createdAt: r.created_at,
  };
}

const STATE_COLS = 'id, status, resource_type, spec, owner, events_since_start, error, last_sent_at, created_at';
const secretContext = (tenantId: string, id: string) => `subscription_state.secret:${tenantId}/${id}`;

/** A new subscription (with its secret), or a re-specified one (secret and counter kept; owner replaced when given). */
export async function saveState(
  db: Db, q: Queryable, tenantId: string,
  s: { id: string; status: SubscriptionStatus; resourceType: string; spec: unknown; owner?: SubscriptionOwner; secret?: string },
): Promise<void> {
  if (s.secret === undefined) {
    await q.query(
      `UPDATE subscription_state SET status = $3, resource_type = $4, spec = $5, owner = COALESCE($6::jsonb, owner), error = NULL, updated_at = now()
        WHERE tenant_id = $1 AND id = $2`,
      [tenantId, s.id, s.status, s.resourceType, JSON.stringify(s.spec), s.owner ? JSON.stringify(s.owner) : null],
    );
    return;
  }
  await q.query(
    // the time goes in VALUES: Citus refuses now() in DO UPDATE SET (issue 16)
    `INSERT INTO subscription_state (tenant_id, id, status, resource_type, spec, owner, secret, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())
     ON CONFLICT (tenant_id, id) DO UPDATE SET status = EXCLUDED.status, resource_type = EXCLUDED.resource_type, spec = EXCLUDED.spec,
       owner = EXCLUDED.owner, secret = EXCLUDED.secret, error = NULL, updated_at = EXCLUDED.updated_at`,
    [tenantId, s.id, s.status, s.resourceType, JSON.stringify(s.spec), JSON.stringify(s.owner ?? {}), sealerOf(db).seal(s.secret, secretContext(tenantId, s.id))],
  );
}

/** A deleted Subscription: its state, events and log go with it. */
export async function dropState(q: Queryable, tenantId: string, id: string): Promise<void> {
  await q.query(
    `WITH a AS (DELETE FROM subscription_event WHERE tenant_id = $1 AND subscription_id = $2),
          b AS (DELETE FROM delivery_log WHERE tenant_id = $1 AND subscription_id = $2)
     DELETE FROM subscription_state WHERE tenant_id = $1 AND id = $2`,
    [tenantId, id],
  );
}

export async function findState<Spec>(q: Queryable, tenantId: string, id: string, lock = false): Promise<SubscriptionState<Spec> | undefined> {
  const r = await q.query<StateRow>(`SELECT ${STATE_COLS} FROM subscription_state WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [tenantId, id]);
  return r.rows[0] ? toState<Spec>(r.rows[0]) : undefined;
}

/** The sealed secret, opened. */
export async function stateSecret(db: Db, q: Queryable, tenantId: string, id: string): Promise<string | undefined> {
  const r = await q.query<{ secret: string }>('SELECT secret FROM subscription_state WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  return r.rows[0] ? sealerOf(db).open(r.rows[0].secret, secretContext(tenantId, id)) : undefined;
}

/** Subscriptions that count events (every status but off), optionally only those about `types`. */
export async function liveStates<Spec>(q: Queryable, tenantId: string, types?: string[]): Promise<SubscriptionState<Spec>[]> {
  const r = await q.query<StateRow>(
    `SELECT ${STATE_COLS} FROM subscription_state WHERE tenant_id = $1 AND status <> 'off' AND ($2::text[] IS NULL OR resource_type = ANY($2::text[])) ORDER BY id`,
    [tenantId, types ?? null],
  );
  return r.rows.map((x) => toState<Spec>(x));
}

/** Every state of the tenant in `ids` (all when empty) and `statuses` (all when empty); at most 10,000. */
export async function listStates<Spec>(q: Queryable, tenantId: string, ids: string[], statuses: string[]): Promise<SubscriptionState<Spec>[]> {
  const r = await q.query<StateRow>(
    `SELECT ${STATE_COLS} FROM subscription_state WHERE tenant_id = $1 AND (cardinality($2::text[]) = 0 OR id = ANY($2::text[]))
       AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[])) ORDER BY id LIMIT 10000`,
    [tenantId, ids, statuses],
  );
  return r.rows.map((x) => toState<Spec>(x));
}

export async function setStatus(q: Queryable, tenantId: string, id: string, status: SubscriptionStatus, error: string | null): Promise<void> {
  await q.query('UPDATE subscription_state SET status = $3, error = $4, updated_at = now() WHERE tenant_id = $1 AND id = $2', [tenantId, id, status, error]);
}

export async function markSent(q: Queryable, tenantId: string, id: string): Promise<void> {
  await q.query('UPDATE subscription_state SET last_sent_at = now() WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
}

export interface NewEvent {
  subscriptionId: string;
  resourceType: string;
  id: string;
  versionId: number;
  occurredAt: Date;
}

export interface StoredEvent extends NewEvent {
  eventNumber: number;
  status: EventStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  deliveredAt: Date | null;
}

/**
 * Numbers and stores new events in the caller's transaction (the dispatcher's, which also took them from the outbox):
 * the counter row is locked while it is advanced, so numbers are gapless and never reused.
 */
export async function addEvents(q: Queryable, tenantId: string, events: NewEvent[]): Promise<{ subscriptionId: string; eventNumber: number }[]> {
  const out: { subscriptionId: string; eventNumber: number }[] = [];
  const bySub = new Map<string, NewEvent[]>();
  for (const e of events) bySub.set(e.subscriptionId, [...(bySub.get(e.subscriptionId) ?? []), e]);
  for (const [sub, list] of [...bySub].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const r = await q.query<{ n: string }>(
      'UPDATE subscription_state SET events_since_start = events_since_start + $3 WHERE tenant_id = $1 AND id = $2 RETURNING events_since_start AS n',
      [tenantId, sub, list.length],
    );
    if (!r.rows[0]) continue;
    const first = Number(r.rows[0].n) - list.length + 1;
    const numbers = list.map((_, i) => first + i);
    await q.query(
      `INSERT INTO subscription_event (tenant_id, subscription_id, event_number, resource_type, resource_id, version_id, occurred_at)
       SELECT $1, $2, n, t, i, v, o FROM unnest($3::bigint[], $4::text[], $5::text[], $6::int[], $7::timestamptz[]) AS u(n, t, i, v, o)
       ${ROUTED_INSERT}`,
      [tenantId, sub, numbers, list.map((e) => e.resourceType), list.map((e) => e.id), list.map((e) => e.versionId), list.map((e) => e.occurredAt)],
    );
    numbers.forEach((n) => out.push({ subscriptionId: sub, eventNumber: n }));
  }
  return out;
}

type EventRow = {
  subscription_id: string; event_number: string; resource_type: string; resource_id: string; version_id: number; occurred_at: Date; status: EventStatus;
  attempts: number; next_attempt_at: Date; last_error: string | null; delivered_at: Date | null;
};

const EVENT_COLS = 'subscription_id, event_number, resource_type, resource_id, version_id, occurred_at, status, attempts, next_attempt_at, last_error, delivered_at';

function toEvent(r: EventRow): StoredEvent {
  return {
    subscriptionId: r.subscription_id, eventNumber: Number(r.event_number), resourceType: r.resource_type, id: r.resource_id, versionId: r.version_id,
    occurredAt: r.occurred_at, status: r.status, attempts: r.attempts, nextAttemptAt: r.next_attempt_at, lastError: r.last_error, deliveredAt: r.delivered_at,
  };
}

/** The earliest event of the subscription still waiting for delivery (deliveries go in event order). */
export async function firstPending(q: Queryable, tenantId: string, sub: string): Promise<StoredEvent | undefined> {
  const r = await q.query<EventRow>(
    `SELECT ${EVENT_COLS} FROM subscription_event WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'pending' ORDER BY event_number LIMIT 1`,
    [tenantId, sub],
  );
  return r.rows[0] ? toEvent(r.rows[0]) : undefined;
}

/** Events of a subscription between two numbers (inclusive), oldest first. */
export async function eventRange(q: Queryable, tenantId: string, sub: string, from: number, to: number, limit: number): Promise<StoredEvent[]> {
  const r = await q.query<EventRow>(
    `SELECT ${EVENT_COLS} FROM subscription_event WHERE tenant_id = $1 AND subscription_id = $2 AND event_number BETWEEN $3 AND $4
      ORDER BY event_number LIMIT ${Math.floor(limit)}`,
    [tenantId, sub, from, to],
  );
  return r.rows.map(toEvent);
}

/**
 * The first pending event of each active subscription of the tenant, when it is due (the sweep queues it again:
 * deliveries go in order, so only the head of each subscription's line is ever queued by the sweep).
 */
export async function duePending(q: Queryable, tenantId: string, olderThanMs: number, limit: number): Promise<StoredEvent[]> {
  // one index probe per active subscription (subscription_event_pending_idx), however long its history or its line
  const r = await q.query<EventRow>(
    `SELECT ${EVENT_COLS.split(', ').map((c) => `e.${c}`).join(', ')}
       FROM subscription_state s
       CROSS JOIN LATERAL (
         SELECT * FROM subscription_event x WHERE x.tenant_id = s.tenant_id AND x.subscription_id = s.id AND x.status = 'pending'
          ORDER BY x.event_number LIMIT 1) e
      WHERE s.tenant_id = $1 AND s.status = 'active' AND e.next_attempt_at <= now() - make_interval(secs => $2::float8 / 1000)
      LIMIT ${Math.floor(limit)}`,
    [tenantId, olderThanMs],
  );
  return r.rows.map(toEvent);
}

/**
 * Takes a due pending event for one delivery attempt: its next attempt moves `leaseSeconds` ahead, so no other
 * worker (a duplicate job, a sweep) sends it meanwhile; a worker that dies lets the lease run out and the sweep
 * queues it again. False when it is not pending, not due, or already taken.
 */
export async function leaseEvent(q: Queryable, tenantId: string, sub: string, n: number, leaseSeconds: number): Promise<boolean> {
  const r = await q.query(
    `UPDATE subscription_event SET next_attempt_at = now() + make_interval(secs => $4)
      WHERE tenant_id = $1 AND subscription_id = $2 AND event_number = $3 AND status = 'pending' AND next_attempt_at <= now() + interval '50 milliseconds'`,
    [tenantId, sub, n, leaseSeconds],
  );
  return (r.rowCount ?? 0) > 0;
}

/** The event waits until `at` without an attempt counted (a websocket subscription with no client bound). */
export async function parkEvent(q: Queryable, tenantId: string, sub: string, n: number, at: Date): Promise<void> {
  await q.query(`UPDATE subscription_event SET next_attempt_at = $4 WHERE tenant_id = $1 AND subscription_id = $2 AND event_number = $3 AND status = 'pending'`, [tenantId, sub, n, at]);
}

export async function finishEvent(q: Queryable, tenantId: string, sub: string, n: number, status: EventStatus, error: string | null): Promise<void> {
  // two statements rather than a CASE around now(), which Citus refuses in a write (issue 16)
  await q.query(
    status === 'delivered'
      ? `UPDATE subscription_event SET status = $4, last_error = $5, delivered_at = now() WHERE tenant_id = $1 AND subscription_id = $2 AND event_number = $3`
      : `UPDATE subscription_event SET status = $4, last_error = $5 WHERE tenant_id = $1 AND subscription_id = $2 AND event_number = $3`,
    [tenantId, sub, n, status, error],
  );
}

/** A failed attempt: counted, and the next one scheduled. */
export async function retryEvent(q: Queryable, tenantId: string, sub: string, n: number, error: string, nextAt: Date): Promise<number> {
  const r = await q.query<{ attempts: number }>(
    `UPDATE subscription_event SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5
      WHERE tenant_id = $1 AND subscription_id = $2 AND event_number = $3 RETURNING attempts`,
    [tenantId, sub, n, error, nextAt],
  );
  return r.rows[0]?.attempts ?? 0;
}

/** Pending events become due now (a subscription re-activated, or an operator's redelivery). */
export async function rescheduleEvents(q: Queryable, tenantId: string, sub: string, from?: number, to?: number): Promise<number> {
  const r = await q.query(
    `UPDATE subscription_event SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
      WHERE tenant_id = $1 AND subscription_id = $2 AND ($3::bigint IS NULL OR event_number >= $3) AND ($4::bigint IS NULL OR event_number <= $4)
        AND (status = 'pending' OR $3::bigint IS NOT NULL)`,
    [tenantId, sub, from ?? null, to ?? null],
  );
  return r.rowCount ?? 0;
}

export interface DeliveryLogEntry {
  at: Date;
  type: NotificationType;
  eventNumber: number | null;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
}

export async function logDelivery(q: Queryable, tenantId: string, sub: string, e: Omit<DeliveryLogEntry, 'at'>): Promise<void> {
  await q.query(
    'INSERT INTO delivery_log (tenant_id, subscription_id, type, event_number, attempt, status_code, latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [tenantId, sub, e.type, e.eventNumber, e.attempt, e.statusCode, Math.round(e.latencyMs), e.error],
  );
}

export async function deliveryLog(q: Queryable, tenantId: string, sub: string, limit: number): Promise<DeliveryLogEntry[]> {
  const r = await q.query<{ at: Date; type: NotificationType; event_number: string | null; attempt: number; status_code: number | null; latency_ms: number; error: string | null }>(
    `SELECT at, type, event_number, attempt, status_code, latency_ms, error FROM delivery_log WHERE tenant_id = $1 AND subscription_id = $2 ORDER BY seq DESC LIMIT ${Math.floor(limit)}`,
    [tenantId, sub],
  );
  return r.rows.map((x) => ({ at: x.at, type: x.type, eventNumber: x.event_number === null ? null : Number(x.event_number), attempt: x.attempt, statusCode: x.status_code, latencyMs: x.latency_ms, error: x.error }));
}

/** Forgets finished events and log lines older than the retention. */
export async function pruneEvents(q: Queryable, tenantId: string, retentionDays: number): Promise<number> {
  const r = await q.query(
    `WITH l AS (DELETE FROM delivery_log WHERE tenant_id = $1 AND at < now() - make_interval(days => $2)),
          -- an event still pending after the whole retention (a websocket nobody binds to) is given up, then forgotten
          x AS (UPDATE subscription_event SET status = 'failed', last_error = 'not delivered within the retention period'
                 WHERE tenant_id = $1 AND status = 'pending' AND occurred_at < now() - make_interval(days => $2))
     DELETE FROM subscription_event WHERE tenant_id = $1 AND status <> 'pending' AND occurred_at < now() - make_interval(days => $2)`,
    [tenantId, retentionDays],
  );
  return r.rowCount ?? 0;
}
