// The subscription side of the FHIR layer (src/fhir/subscription-service.ts): checking and settling a Subscription
// before it is stored, recording its state in the write's transaction, and the operations $status, $events, $resend
// and $get-ws-binding-token.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Deps } from '../core/deps.js';
import { FhirError, okOutcome } from '../core/errors.js';
import type { FhirContext } from '../fhir/context.js';
import { authorize, visibleRows, visibleVersions } from '../fhir/guard.js';
import type { FhirRequest, FhirResult } from '../fhir/request.js';
import type { SubscriptionService } from '../fhir/subscription-service.js';
import type { TenantSession } from '../store/session.js';
import {
  deliveryLog, dropState, eventRange, firstPending, type DeliveryLogEntry, findState, listStates, rescheduleEvents, saveState, type SubscriptionOwner, type SubscriptionState, type SubscriptionStatus,
} from '../store/subscriptions.js';
import { checkEndpoint } from './endpoint.js';
import { notificationBundle, statusParameters, type NotificationEvent } from './notification.js';
import { enqueueEvent } from './queue.js';
import { readSpec, type SubscriptionSpec } from './spec.js';
import { topicUrl, TOPICS } from '../fhir/subscription-topics.js';

/** Where $get-ws-binding-token is answered (src/subscriptions/websocket.ts). */
export interface BindingTokens {
  bindingToken(ctx: FhirContext, ids: string[]): Promise<Record<string, unknown>>;
}

/** Most events one $events answer carries. */
const EVENTS_PAGE = 100;
/** Most events one $resend delivers again. */
const RESEND_MAX = 1000;

export class Subscriptions implements SubscriptionService {
  /** Set by the process's dispatcher (src/subscriptions/runtime.ts): wakes it after this process's writes. */
  onCommitted: ((tenantId: string) => void) | undefined;
  /** Set by the websocket channel when it is mounted. */
  websockets: BindingTokens | undefined;

  constructor(private readonly deps: Deps) {}

  private spec(ctx: FhirContext, resource: Record<string, unknown>): SubscriptionSpec {
    return readSpec(resource, {
      publicBaseUrl: this.deps.config.publicBaseUrl,
      registry: ctx.registry,
      maxSearchParams: this.deps.config.maxSearchParams,
      now: this.deps.clock(),
      allowLoopbackHttp: this.deps.config.subscriptionsAllowLoopback,
    });
  }

  async prepare(ctx: FhirContext, s: TenantSession, resource: Record<string, unknown>): Promise<void> {
    const spec = this.spec(ctx, resource);
    // a subscription never delivers what its owner could not read: one that could deliver nothing is refused
    const d = ctx.guard.forType(spec.resourceType, 's');
    if (!d.allow) {
      throw new FhirError('forbidden', `A subscription about ${spec.resourceType} needs search access to ${spec.resourceType}: ${d.reason}`, { code: 'SUBSCRIPTION_ACCESS', expression: ['Subscription.criteria'] });
    }
    if (spec.endpoint) await checkEndpoint(spec.endpoint, this.deps.config);
    const current = await findState<SubscriptionSpec>(s.q, s.tenantId, resource.id as string);
    const status = settledStatus(resource.status, current, spec, this.deps.clock());
    resource.status = status;
    if (status === 'error') resource.error = current?.error ?? resource.error;
    else delete resource.error;
  }

  async record(ctx: FhirContext, s: TenantSession, id: string, json: string | null): Promise<string | undefined> {
    if (json === null) {
      await dropState(s.q, s.tenantId, id);
      return undefined;
    }
    const resource = JSON.parse(json) as Record<string, unknown>;
    const spec = this.spec(ctx, resource);
    const current = await findState(s.q, s.tenantId, id);
    const secret = current ? undefined : randomBytes(32).toString('base64url');
    const c = ctx.caller;
    // the latest writer owns it: deliveries are judged by the access of whoever last set it up
    const owner: SubscriptionOwner | undefined = c
      ? { clientId: c.clientId, sub: c.sub, role: c.role, scope: c.scope, ...(c.patient ? { patient: c.patient } : {}), ...(c.fhirUser ? { fhirUser: c.fhirUser } : {}) }
      : current ? undefined : { clientId: '', sub: '', role: '', scope: '' };
    const status = resource.status as SubscriptionStatus;
    await saveState(this.deps.db, s.q, s.tenantId, { id, status, resourceType: spec.resourceType, spec, ...(owner ? { owner } : {}), ...(secret ? { secret } : {}) });
    // re-activated by its client: what waited goes out (a rest-hook first shakes hands again: status requested)
    if (current && current.status !== status && (status === 'active' || status === 'requested')) await rescheduleEvents(s.q, s.tenantId, id);
    return secret;
  }

  committed(tenantId: string): void {
    this.onCommitted?.(tenantId);
  }

  async operation(ctx: FhirContext, req: FhirRequest, name: string, id: string | undefined): Promise<FhirResult> {
    const params = operationParams(req);
    if (name === '$status') return this.status(ctx, id, params);
    if (name === '$events') return this.events(ctx, id, params);
    if (name === '$resend') return this.resend(ctx, req, id, params);
    if (!this.websockets) throw new FhirError('unsupported', '$get-ws-binding-token is not available on this server', { code: 'OPERATION_UNSUPPORTED' });
    const ids = id ? [id] : params.filter(([k]) => k === 'id').flatMap(([, v]) => v.split(','));
    // A bound socket receives what the subscription's OWNER may read: only the owner may bind (reading the
    // Subscription resource is not enough: a platform operator may read subscriptions but no clinical data).
    for (const x of ids) {
      const st = await this.visibleState(ctx, x);
      const c = ctx.caller;
      if (!c || c.clientId !== st.owner.clientId || c.sub !== st.owner.sub) {
        throw new FhirError('forbidden', `Only the owner of Subscription/${x} (the client and user that last wrote it) may bind to its notifications`, { code: 'SUBSCRIPTION_NOT_OWNER' });
      }
      // and with a token that may itself search what the subscription delivers
      const d = ctx.guard.forType(st.resourceType, 's');
      if (!d.allow) throw new FhirError('forbidden', `Binding to Subscription/${x} needs search access to ${st.resourceType}: ${d.reason}`, { code: 'SUBSCRIPTION_ACCESS' });
    }
    if (!ids.length) throw new FhirError('invalid', '$get-ws-binding-token needs a subscription (Subscription/[id]/$get-ws-binding-token, or id=)', { code: 'PARAMETER_MISSING' });
    return { status: 200, body: await this.websockets.bindingToken(ctx, ids) };
  }

  private topicOf(spec: SubscriptionSpec): string | undefined {
    const t = spec.topic ? TOPICS.find((x) => x.name === spec.topic) : undefined;
    return t ? topicUrl(this.deps.config.publicBaseUrl, t) : undefined;
  }

  /** The subscription's state, when the caller may read the Subscription itself (its scopes' filters included); else 404. */
  private async visibleState(ctx: FhirContext, id: string): Promise<SubscriptionState<SubscriptionSpec>> {
    authorize(ctx, { interaction: 'read', resourceType: 'Subscription', id });
    const state = await ctx.store.read(async (s) => {
      const st = await findState<SubscriptionSpec>(s.q, s.tenantId, id);
      return st && (await visibleRows(ctx, s, [{ resourceType: 'Subscription', id }], 'r')).length ? st : undefined;
    });
    if (!state) throw new FhirError('not-found', `Subscription/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
    return state;
  }

  /** $status: instance-level (id and status parameters ignored), or type-level filtered by id and status (each OR-joined). */
  private async status(ctx: FhirContext, id: string | undefined, params: [string, string][]): Promise<FhirResult> {
    let states: SubscriptionState<SubscriptionSpec>[];
    if (id) states = [await this.visibleState(ctx, id)];
    else {
      authorize(ctx, { interaction: 'search-type', resourceType: 'Subscription' });
      const ids = params.filter(([k]) => k === 'id').flatMap(([, v]) => v.split(',')).filter(Boolean);
      const statuses = params.filter(([k]) => k === 'status').flatMap(([, v]) => v.split(',')).filter(Boolean);
      // only the subscriptions the caller could find by searching (a granular Subscription scope narrows them)
      states = await ctx.store.read(async (s) => {
        const all = await listStates<SubscriptionSpec>(s.q, s.tenantId, ids, statuses);
        const seen = new Set((await visibleRows(ctx, s, all.map((st) => ({ resourceType: 'Subscription', id: st.id })), 's')).map((v) => v.row.id));
        return all.filter((st) => seen.has(st.id));
      });
    }
    // `log=true` (this server's addition): the latest delivery attempts of each subscription
    const withLog = params.some(([k, v]) => k === 'log' && v === 'true');
    const entry = [];
    for (const st of states) {
      const resource = statusParameters({
        baseUrl: ctx.baseUrl, subscriptionId: st.id, status: st.status, type: 'query-status', eventsSinceStart: st.eventsSinceStart,
        ...(this.topicOf(st.spec) ? { topic: this.topicOf(st.spec) } : {}), content: st.spec.content, events: [], error: st.error,
      });
      if (withLog) {
        const log = await ctx.store.read((s) => deliveryLog(s.q, s.tenantId, st.id, 20));
        (resource.parameter as unknown[]).push(...log.map(logParameter));
      }
      entry.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource, search: { mode: 'match' } });
    }
    return { status: 200, body: { resourceType: 'Bundle', type: 'searchset', total: entry.length, ...(entry.length ? { entry } : {}) } };
  }

  /** $events: the stored events between eventsSinceNumber and eventsUntilNumber (inclusive), as a notification bundle. */
  private async events(ctx: FhirContext, id: string | undefined, params: [string, string][]): Promise<FhirResult> {
    if (!id) throw new FhirError('invalid', '$events is an instance operation: Subscription/[id]/$events', { code: 'OPERATION_INSTANCE_ONLY' });
    const state = await this.visibleState(ctx, id);
    const num = (name: string, fallback: number) => {
      const raw = params.find(([k]) => k === name)?.[1];
      if (raw === undefined) return fallback;
      if (!/^\d{1,15}$/.test(raw)) throw new FhirError('invalid', `${name} must be a whole number, got '${raw.slice(0, 40)}'`, { code: 'PARAMETER_INVALID', expression: [name] });
      return Number(raw);
    };
    const until = num('eventsUntilNumber', state.eventsSinceStart);
    const since = num('eventsSinceNumber', Math.max(1, until - EVENTS_PAGE + 1));
    const hint = params.find(([k]) => k === 'content')?.[1];
    if (hint !== undefined && hint !== 'empty' && hint !== 'id-only' && hint !== 'full-resource') {
      throw new FhirError('invalid', `content must be empty, id-only or full-resource, got '${hint.slice(0, 40)}'`, { code: 'PARAMETER_INVALID', expression: ['content'] });
    }
    const content = hint ?? state.spec.content;
    const stored = await ctx.store.read((s) => eventRange(s.q, s.tenantId, id, since, until, EVENTS_PAGE));
    const events: NotificationEvent[] = [];
    for (const e of stored) {
      const ev: NotificationEvent = { eventNumber: e.eventNumber, timestamp: e.occurredAt, resourceType: e.resourceType, id: e.id, versionId: e.versionId, json: null };
      if (content === 'full-resource') {
        // the CALLER's access decides what this answer shows
        const version = await ctx.store.read((s) => s.readVersion(e.resourceType, e.id, e.versionId));
        const seen = version ? visibleVersions(ctx, [version], 'r') : [];
        if (seen.length && !seen[0].elements) ev.json = version!.json;
      }
      events.push(ev);
    }
    const body = notificationBundle(
      { baseUrl: ctx.baseUrl, subscriptionId: id, status: state.status, type: 'query-event', eventsSinceStart: state.eventsSinceStart, ...(this.topicOf(state.spec) ? { topic: this.topicOf(state.spec) } : {}), content, events },
      this.deps.clock(),
    );
    return { status: 200, body };
  }

  /** $resend (Backport 1.2.0-ballot): the events in the range are delivered again (operators and tenant admins). */
  private async resend(ctx: FhirContext, req: FhirRequest, id: string | undefined, params: [string, string][]): Promise<FhirResult> {
    if (req.method !== 'POST') throw new FhirError('not-allowed', '$resend changes state: use POST', { code: 'METHOD_NOT_ALLOWED', headers: { Allow: 'POST' } });
    if (!id) throw new FhirError('invalid', '$resend is an instance operation: Subscription/[id]/$resend', { code: 'OPERATION_INSTANCE_ONLY' });
    authorize(ctx, { interaction: 'update', resourceType: 'Subscription', id });
    const state = await this.visibleState(ctx, id);
    const num = (name: string) => {
      const raw = params.find(([k]) => k === name)?.[1];
      if (raw !== undefined && !/^\d{1,15}$/.test(raw)) throw new FhirError('invalid', `${name} must be a whole number`, { code: 'PARAMETER_INVALID', expression: [name] });
      return raw === undefined ? undefined : Number(raw);
    };
    const until = num('eventsUntilNumber') ?? state.eventsSinceStart;
    const since = num('eventsSinceNumber') ?? Math.max(1, until - RESEND_MAX + 1);
    if (until - since + 1 > RESEND_MAX) {
      throw new FhirError('invalid', `$resend takes at most ${RESEND_MAX} events at a time (asked for ${since}..${until})`, { code: 'PARAMETER_INVALID', expression: ['eventsSinceNumber'] });
    }
    const { count, head } = await ctx.store.read(async (s) => ({
      count: await rescheduleEvents(s.q, s.tenantId, id, since, until),
      head: await firstPending(s.q, s.tenantId, id),
    }));
    // in order: the first pending event goes now, each delivery queues the next
    if (head) await enqueueEvent(this.deps, ctx.tenant.id, id, head.eventNumber, true);
    const note = state.status === 'active' ? '' : ` (they go out once the subscription is active again; it is ${state.status})`;
    return { status: 200, body: okOutcome(`${count} event(s) of Subscription/${id} (${since}..${until}) will be delivered again${note}`) as unknown as Record<string, unknown> };
  }
}

/**
 * The status a written Subscription is stored with. `off` stays off; `error` only stays (the server sets it, a client
 * cannot); an `active` subscription whose channel did not change stays active; otherwise a rest-hook starts
 * `requested` (handshake first) and a websocket one is `active` at once (it shakes hands when a client binds).
 */
function settledStatus(given: unknown, current: SubscriptionState<SubscriptionSpec> | undefined, spec: SubscriptionSpec, now: Date): SubscriptionStatus {
  if (spec.end && Date.parse(spec.end) <= now.getTime()) return 'off';
  if (given === 'off') return 'off';
  if (given === 'error') {
    if (current?.status === 'error') return 'error';
    throw new FhirError('invalid', "Subscription.status 'error' is set by the server; send requested (or active) to (re)activate, or off", { code: 'SUBSCRIPTION_STATUS_INVALID', expression: ['Subscription.status'] });
  }
  if (given !== 'requested' && given !== 'active') {
    throw new FhirError('invalid', `Subscription.status must be requested, active or off (got '${String(given)}')`, { code: 'SUBSCRIPTION_STATUS_INVALID', expression: ['Subscription.status'] });
  }
  if (spec.channel === 'websocket') return 'active';
  const same = current?.status === 'active' && current.spec.endpoint === spec.endpoint && current.spec.channel === spec.channel && given === 'active';
  return same ? 'active' : 'requested';
}

/** One delivery attempt as a `delivery-attempt` parameter of $status (log=true). */
function logParameter(e: DeliveryLogEntry): Record<string, unknown> {
  const part: Record<string, unknown>[] = [
    { name: 'at', valueInstant: e.at.toISOString() },
    { name: 'type', valueCode: e.type },
    { name: 'attempt', valueInteger: e.attempt },
    { name: 'latency-ms', valueInteger: e.latencyMs },
  ];
  if (e.eventNumber !== null) part.push({ name: 'event-number', valueString: String(e.eventNumber) });
  if (e.statusCode !== null) part.push({ name: 'status-code', valueInteger: e.statusCode });
  if (e.error) part.push({ name: 'error', valueString: e.error });
  return { name: 'delivery-attempt', part };
}

/** Parameters of an operation: the query string, plus a POSTed Parameters resource's simple values. */
function operationParams(req: FhirRequest): [string, string][] {
  const out = [...req.params];
  if (req.method === 'POST' && req.body?.text) {
    let body: unknown;
    try {
      body = JSON.parse(req.body.text);
    } catch {
      throw new FhirError('invalid', 'The operation body is not JSON', { code: 'BODY_INVALID_JSON' });
    }
    const p = body as { resourceType?: unknown; parameter?: unknown };
    if (p?.resourceType !== 'Parameters') throw new FhirError('invalid', 'The operation body must be a Parameters resource', { code: 'BODY_NOT_PARAMETERS' });
    for (const x of Array.isArray(p.parameter) ? (p.parameter as Record<string, unknown>[]) : []) {
      const value = Object.entries(x).find(([k]) => k.startsWith('value'))?.[1];
      if (typeof x.name === 'string' && (typeof value === 'string' || typeof value === 'number')) out.push([x.name, String(value)]);
    }
  }
  return out;
}
