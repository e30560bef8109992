// Delivery of one queued notification (event, handshake or heartbeat), at least once and in event order per
// subscription. Before sending an event it checks, again, that the subscription's owner may read the version now
// (a revoked client or disabled user stops the subscription: status error). Rest-hook bodies are signed with the
// subscription's secret (HMAC-SHA256 over "<timestamp>.<body>", docs/subscriptions.md); endpoints are reached through
// the SSRF-guarded outbound helper (address checked at every attempt, no redirects, time and size caps). A failure is
// retried with exponential backoff and jitter, counted in the event row, until DELIVERY_ATTEMPTS, then the
// subscription goes to error with the reason.
import { createHmac } from 'node:crypto';
import { JobDelay, type Deps, type QueuedJob } from '../core/deps.js';
import type { FhirContext } from '../fhir/context.js';
import { visibleVersions } from '../fhir/guard.js';
import { outboundFetch, OutboundError } from '../platform/outbound.js';
import {
  findState, leaseEvent, parkEvent, finishEvent, firstPending, logDelivery, markSent, rescheduleEvents, retryEvent, stateSecret,
  type NotificationType, type StoredEvent, type SubscriptionState,
} from '../store/subscriptions.js';
import { as, tenantContext } from './context.js';
import { endpointAllows } from './endpoint.js';
import { notificationBundle, type NotificationEvent } from './notification.js';
import { ownerAccess, type OwnerAccess } from './owner.js';
import { enqueueEvent, type DeliveryJob } from './queue.js';
import type { SubscriptionSpec } from './spec.js';
import { changeStatus } from './status.js';
import type { StoredVersion } from '../store/resources.js';
import { topicUrl, TOPICS } from '../fhir/subscription-topics.js';

/** Sends one body to the subscribers bound to a websocket subscription; answers how many sockets (or processes) took it. */
export interface WebSocketSender {
  send(tenantId: string, subscriptionId: string, body: string): Promise<number>;
}

export const SIGNATURE_HEADER = 'X-Tenfhir-Signature';

/** The signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signature(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** The wait before attempt `attempt + 1`: 1 s, tripling, capped, with +-20% jitter. */
export function backoffMs(attempt: number, maxMs: number): number {
  const base = Math.min(maxMs, 1000 * 3 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** How long one delivery job goes down a subscription's line before handing the rest to a new job. */
const LOOP_MS = 5000;
/** Within one job, the owner's access is looked up again this often. */
const OWNER_RECHECK_MS = 1000;

/** How often an event of an unbound websocket subscription is looked at again (binding sends it at once anyway). */
const UNBOUND_RETRY_MS = 60_000;

/** What the first transaction of an event's delivery found (Deliverer.one). */
type Taken =
  | { kind: 'skip' }
  | { kind: 'handshake' }
  | { kind: 'backoff'; wait: number }
  | { kind: 'revoked'; reason: string }
  | { kind: 'send'; ev: StoredEvent; version: StoredVersion | undefined; secret: string | undefined };

interface Sent {
  ok: boolean;
  /** websocket: no client is bound (not counted as a failed attempt). */
  unbound?: boolean;
  status: number | null;
  error: string | null;
  ms: number;
}

export class Deliverer {
  constructor(
    private readonly deps: Deps,
    private readonly ws?: WebSocketSender,
  ) {}

  async handle(job: QueuedJob<DeliveryJob>, signal: AbortSignal): Promise<void> {
    const { t, s: id, k } = job.data;
    const ctx = await tenantContext(this.deps, t, 'deliver');
    if (!ctx) return;
    const state = await ctx.store.read((s) => findState<SubscriptionSpec>(s.q, t, id));
    if (!state) return;
    if (k === 'hs') return this.handshake(ctx, state, signal);
    if (k === 'hb') return this.heartbeat(ctx, state, signal);
    return this.event(ctx, state, job.data.n!, signal);
  }

  private async handshake(ctx: FhirContext, state: SubscriptionState<SubscriptionSpec>, signal: AbortSignal): Promise<void> {
    if (state.status !== 'requested' || state.spec.channel !== 'rest-hook') return;
    const sent = await this.send(ctx, state, 'handshake', [], 0, signal);
    if (!sent.ok && signal.aborted) throw new JobDelay(0, 'shutting down');
    if (sent.ok) {
      if (await changeStatus(ctx, state.id, 'active', null, ['requested'])) {
        // events that came while it was requested go out now, in order
        const head = await ctx.store.read(async (s) => {
          await rescheduleEvents(s.q, s.tenantId, state.id);
          return firstPending(s.q, s.tenantId, state.id);
        });
        // the first goes now; each delivery queues the next
        if (head) await enqueueEvent(this.deps, ctx.tenant.id, state.id, head.eventNumber, true);
      }
    } else {
      // Backport IG channels.html: a failed handshake SHALL set the subscription to error
      await changeStatus(ctx, state.id, 'error', `handshake failed: ${sent.error}`, ['requested']);
    }
  }

  private async heartbeat(ctx: FhirContext, state: SubscriptionState<SubscriptionSpec>, signal: AbortSignal): Promise<void> {
    if (state.status !== 'active' || !state.spec.heartbeatSeconds) return;
    await this.send(ctx, state, 'heartbeat', [], 0, signal);
  }

  /**
   * Delivers the subscription's line from event `n` on, one event after the other, for up to LOOP_MS: a burst of
   * events costs one job, not one job per event queued behind every other subscription's. What is left when the
   * time is up goes on in a new job.
   */
  private async event(ctx: FhirContext, state: SubscriptionState<SubscriptionSpec>, n: number, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const owner: { access?: OwnerAccess; at: number } = { at: 0 };
    let next: number | undefined = n;
    while (next !== undefined && !signal.aborted) {
      if (Date.now() - started > LOOP_MS) {
        await enqueueEvent(this.deps, ctx.tenant.id, state.id, next, true);
        return;
      }
      next = await this.one(ctx, state, next, signal, owner);
    }
  }

  /**
   * One event; returns the next one to send at once (the new head of the line), if any. Two transactions per
   * notification: one takes the event (it must be the head of the line, due, and not leased by anyone else) with what
   * sending needs (the version, the signing secret); one records the attempt's outcome and reads the next head.
   */
  private async one(ctx: FhirContext, state: SubscriptionState<SubscriptionSpec>, n: number, signal: AbortSignal, owner: { access?: OwnerAccess; at: number }): Promise<number | undefined> {
    const t = ctx.tenant.id;
    // the owner's access as it is now (looked up again at least every OWNER_RECHECK_MS within a burst, on connections
    // of its own): a client removed or a user disabled gets nothing more
    if (!owner.access || Date.now() - owner.at > OWNER_RECHECK_MS) {
      owner.access = await ownerAccess(this.deps, t, state.owner);
      owner.at = Date.now();
    }
    const access = owner.access;
    const lease = (state.spec.timeoutSeconds ?? 10) + 10;
    const taken = await ctx.store.read(async (s): Promise<Taken> => {
      // in order: the event goes only as the head of the line (an earlier pending one's job goes on to this one);
      // not the head: delivered or given up already, or waiting behind an earlier one
      const ev = await firstPending(s.q, t, state.id);
      if (!ev || ev.eventNumber !== n) return { kind: 'skip' };
      // not active: the event waits (pending) for the handshake, or for the client to re-activate the subscription
      if (state.status === 'requested') return { kind: 'handshake' };
      if (state.status !== 'active') return { kind: 'skip' };
      const wait = ev.nextAttemptAt.getTime() - Date.now();
      if (wait > 50) return { kind: 'backoff', wait };
      if ('revoked' in access) return { kind: 'revoked', reason: access.revoked };
      // one attempt at a time, whatever runs this job twice (two processes' sweeps, a stalled job re-run)
      if (!(await leaseEvent(s.q, t, state.id, n, lease))) return { kind: 'skip' };
      const version = await s.readVersion(ev.resourceType, ev.id, ev.versionId);
      const secret = state.spec.channel === 'rest-hook' ? await stateSecret(this.deps.db, s.q, t, state.id) : undefined;
      return { kind: 'send', ev, version, secret };
    });
    if (taken.kind === 'skip') return undefined;
    if (taken.kind === 'handshake') throw new JobDelay(1000, 'waiting for the handshake');
    if (taken.kind === 'backoff') throw new JobDelay(taken.wait, 'backoff');
    if (taken.kind === 'revoked') {
      await changeStatus(ctx, state.id, 'error', taken.reason, ['active', 'requested']);
      this.deps.metrics.notifications.inc({ channel: state.spec.channel, type: 'event-notification', outcome: 'withheld' });
      return undefined;
    }
    const { ev, version } = taken;
    const visible = version && !('revoked' in access) ? visibleVersions(as(ctx, access.guard), [version], 'r') : [];
    if (!visible.length) {
      // the owner may no longer read this version (its access changed since it was matched): never sent
      const next = await ctx.store.read(async (s) => {
        await finishEvent(s.q, t, state.id, n, 'withheld', "the subscription's owner may not read this version");
        return firstPending(s.q, t, state.id);
      });
      this.deps.metrics.notifications.inc({ channel: state.spec.channel, type: 'event-notification', outcome: 'withheld' });
      return next?.eventNumber;
    }
    // a version the owner sees only in part (an element limit) goes out as a reference, never in full
    const json = visible[0].elements ? null : version!.json;
    const attempt = ev.attempts + 1;
    const sent = await this.send(ctx, state, 'event-notification', [eventOf(ev, json)], attempt, signal, { secret: taken.secret });
    // cut by this process's shutdown: not the receiver's fault, not an attempt (the lease runs out, another worker sends it)
    if (!sent.ok && signal.aborted) throw new JobDelay(0, 'shutting down');
    const logged = { type: 'event-notification' as const, eventNumber: n, attempt, statusCode: sent.status, latencyMs: sent.ms, error: sent.error };
    if (!sent.ok && sent.unbound) {
      // a websocket subscription nobody is bound to: not a failed attempt; the event waits (binding sends it at once)
      await ctx.store.read(async (s) => {
        await logDelivery(s.q, t, state.id, logged);
        await parkEvent(s.q, t, state.id, n, new Date(Date.now() + UNBOUND_RETRY_MS));
      });
      return undefined;
    }
    if (sent.ok) {
      const next = await ctx.store.read(async (s) => {
        await logDelivery(s.q, t, state.id, logged);
        await markSent(s.q, t, state.id);
        await finishEvent(s.q, t, state.id, n, 'delivered', null);
        return firstPending(s.q, t, state.id);
      });
      this.deps.metrics.notificationLatency.observe({ channel: state.spec.channel }, Math.max(0, Date.now() - ev.occurredAt.getTime()) / 1000);
      return next?.eventNumber;
    }
    const delay = backoffMs(attempt, this.deps.config.deliveryMaxBackoffMs);
    const attempts = await ctx.store.read(async (s) => {
      await logDelivery(s.q, t, state.id, logged);
      const k = await retryEvent(s.q, t, state.id, n, sent.error ?? 'failed', new Date(Date.now() + delay));
      if (k >= this.deps.config.deliveryAttempts) await finishEvent(s.q, t, state.id, n, 'failed', sent.error);
      return k;
    });
    if (attempts >= this.deps.config.deliveryAttempts) {
      await changeStatus(ctx, state.id, 'error', `event ${n} could not be delivered after ${attempts} attempts: ${sent.error}`, ['active']);
      this.deps.metrics.notifications.inc({ channel: state.spec.channel, type: 'event-notification', outcome: 'failed' });
      return undefined;
    }
    this.deps.metrics.notifications.inc({ channel: state.spec.channel, type: 'event-notification', outcome: 'retry' });
    throw new JobDelay(delay, sent.error ?? 'failed');
  }

  /**
   * Builds, signs and sends one notification. `known`: the caller read the signing secret already, and logs the
   * attempt itself (in its own transaction, an event's); otherwise it is read here and the attempt logged here.
   */
  private async send(
    ctx: FhirContext,
    state: SubscriptionState<SubscriptionSpec>,
    type: NotificationType,
    events: NotificationEvent[],
    attempt: number,
    signal: AbortSignal,
    known?: { secret: string | undefined },
  ): Promise<Sent> {
    const spec = state.spec;
    const topic = spec.topic ? TOPICS.find((x) => x.name === spec.topic) : undefined;
    const body = notificationBundle(
      {
        baseUrl: ctx.baseUrl,
        subscriptionId: state.id,
        status: state.status,
        type,
        // handshakes and heartbeats repeat the current count; an event notification carries its own number
        eventsSinceStart: events.length ? Math.max(...events.map((e) => e.eventNumber)) : state.eventsSinceStart,
        ...(topic ? { topic: topicUrl(this.deps.config.publicBaseUrl, topic) } : {}),
        content: spec.content,
        events,
      },
      new Date(),
    );
    const started = Date.now();
    let sent: Sent;
    if (spec.channel === 'websocket') {
      const reached = this.ws ? await this.ws.send(ctx.tenant.id, state.id, body) : 0;
      sent = { ok: reached > 0, unbound: reached === 0, status: null, error: reached > 0 ? null : 'no websocket client is bound to this subscription', ms: Date.now() - started };
    } else {
      const secret = known ? known.secret : await ctx.store.read((s) => stateSecret(this.deps.db, s.q, ctx.tenant.id, state.id));
      sent = await this.post(ctx, state, body, signal, secret);
    }
    const channel = spec.channel;
    this.deps.metrics.deliveryAttempt.observe({ channel }, sent.ms / 1000);
    if (sent.ok) this.deps.metrics.notifications.inc({ channel, type, outcome: 'delivered' });
    else if (type !== 'event-notification') this.deps.metrics.notifications.inc({ channel, type, outcome: 'failed' });
    if (!known) {
      await ctx.store.read(async (s) => {
        await logDelivery(s.q, ctx.tenant.id, state.id, { type, eventNumber: events[0]?.eventNumber ?? null, attempt: Math.max(1, attempt), statusCode: sent.status, latencyMs: sent.ms, error: sent.error });
        if (sent.ok) await markSent(s.q, ctx.tenant.id, state.id);
      });
    }
    return sent;
  }

  private async post(ctx: FhirContext, state: SubscriptionState<SubscriptionSpec>, body: string, signal: AbortSignal, secret: string | undefined): Promise<Sent> {
    const spec = state.spec;
    const started = Date.now();
    try {
      // every channel.header line is sent (two lines of one name both go, joined as HTTP allows)
      const headers = new Headers();
      for (const [name, value] of spec.headers) headers.append(name, value);
      headers.set('content-type', spec.contentType);
      headers.set('x-tenfhir-subscription', `${ctx.baseUrl}/Subscription/${state.id}`);
      if (secret) headers.set(SIGNATURE_HEADER, signature(secret, body, new Date()));
      const res = await outboundFetch(spec.endpoint!, {
        method: 'POST',
        headers,
        body,
        timeoutMs: (spec.timeoutSeconds ?? 10) * 1000,
        maxBytes: 64 * 1024,
        allowAddress: endpointAllows(this.deps.config),
        signal,
      });
      const ms = Date.now() - started;
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, error: null, ms };
      const why = res.status >= 300 && res.status < 400 ? `the endpoint answered ${res.status} (redirects are not followed)` : `the endpoint answered ${res.status}`;
      return { ok: false, status: res.status, error: why, ms };
    } catch (err) {
      const msg = err instanceof OutboundError ? err.message : `the request failed: ${(err as Error).message}`;
      return { ok: false, status: null, error: msg, ms: Date.now() - started };
    }
  }
}

function eventOf(ev: StoredEvent, json: string | null): NotificationEvent {
  return { eventNumber: ev.eventNumber, timestamp: ev.occurredAt, resourceType: ev.resourceType, id: ev.id, versionId: ev.versionId, json };
}
