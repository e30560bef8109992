// The outbox dispatcher: takes committed change events of a tenant (FOR UPDATE SKIP LOCKED, one dispatcher per
// tenant at a time by a transaction lock, so several processes can run it), matches them against the tenant's
// subscriptions with the search engine itself, numbers the matches per subscription and stores them, all in ONE
// transaction; then queues their deliveries. Woken by this process's writes, by NOTIFY from other processes, and by
// a poll (a missed wake-up only costs latency). An event is never lost: until the transaction that numbered it
// commits, it stays in the outbox; after, it stays `pending` until delivered (the maintenance sweep re-queues it).
import type { Deps } from '../core/deps.js';
import { isTenantSlug } from '../core/tenant.js';
import type { FhirContext } from '../fhir/context.js';
import { authorizeSearch } from '../fhir/guard.js';
import { planSearch } from '../search/plan.js';
import { tryAdvisoryXactLock } from '../store/locks.js';
import { OUTBOX_CHANNEL } from '../store/resources.js';
import type { TenantSession } from '../store/session.js';
import { addEvents, claimOutbox, liveStates, outboxTenants, type NewEvent, type OutboxEvent, type SubscriptionState } from '../store/subscriptions.js';
import { as, tenantContext } from './context.js';
import { changeStatus } from './status.js';
import { enqueueEvent, enqueueHandshake } from './queue.js';
import type { OwnerAccess, OwnerCache } from './owner.js';
import type { SubscriptionSpec } from './spec.js';
import { TOPICS } from '../fhir/subscription-topics.js';

/** Events taken per transaction. */
const BATCH = 500;

/** The subscriptions changed between reading them and matching (the batch is rolled back and done again). */
class StaleSubscriptions extends Error {}

/** What matching depends on: which subscriptions, in which status, with which spec and owner. */
function signature(states: SubscriptionState<unknown>[]): string {
  return JSON.stringify(states.map((st) => [st.id, st.status, st.spec, st.owner]));
}

export class Dispatcher {
  private readonly waiting = new Set<string>();
  private readonly running = new Set<string>();
  private stopped = false;
  private poller: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly contexts = new Map<string, { at: number; ctx: Promise<FhirContext | undefined> }>();
  private readonly concurrency: number;

  constructor(
    private readonly deps: Deps,
    private readonly owners: OwnerCache,
    private readonly mine: (tenantId: string) => boolean = () => true,
  ) {
    // the embedded database is one connection: dispatching two tenants at once would only queue on it
    this.concurrency = deps.db.kind === 'pglite' ? 1 : 4;
  }

  async start(): Promise<void> {
    this.unlisten = await this.deps.db.listen(OUTBOX_CHANNEL, (tenantId) => this.wake(tenantId));
    this.poller = setInterval(() => void this.pollAll(), this.deps.config.outboxPollMs);
    this.poller.unref();
    void this.pollAll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poller) clearInterval(this.poller);
    await this.unlisten?.();
  }

  /** Writes of `tenantId` committed: dispatch them soon. */
  wake(tenantId: string): void {
    if (this.stopped || !isTenantSlug(tenantId) || !this.mine(tenantId)) return;
    this.waiting.add(tenantId);
    this.kick();
  }

  /** Tenants whose dispatch is running or waiting (tests wait for this to reach zero). */
  get busy(): number {
    return this.waiting.size + this.running.size;
  }

  private kick(): void {
    for (const t of this.waiting) {
      if (this.running.size >= this.concurrency) return;
      if (this.running.has(t)) continue;
      this.waiting.delete(t);
      this.running.add(t);
      void this.drain(t).finally(() => {
        this.running.delete(t);
        this.kick();
      });
    }
  }

  private async pollAll(): Promise<void> {
    try {
      for (const t of await outboxTenants(this.deps.db)) this.wake(t);
    } catch (err) {
      if (!this.stopped) this.deps.log.warn({ err }, 'outbox poll failed');
    }
  }

  private async drain(tenantId: string): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        const n = await this.dispatchOnce(tenantId);
        // -1: another dispatcher holds this tenant and drains it (later writes wake someone again); -2: the
        // subscriptions changed while this batch was matched (rolled back): again, with the new ones
        if (n === -1) return;
        if (n === -2) continue;
        if (n < BATCH) return;
      }
    } catch (err) {
      if (!this.stopped) this.deps.log.warn({ err, tenantId }, 'dispatching change events failed; retrying at the next poll');
    }
  }

  private context(tenantId: string): Promise<FhirContext | undefined> {
    const hit = this.contexts.get(tenantId);
    if (hit && Date.now() - hit.at < 5000) return hit.ctx;
    const ctx = tenantContext(this.deps, tenantId, 'dispatch');
    this.contexts.set(tenantId, { at: Date.now(), ctx });
    ctx.catch(() => this.contexts.delete(tenantId));
    return ctx;
  }

  /** One batch of the tenant's events; returns how many were taken (-1: another dispatcher holds the tenant). */
  private async dispatchOnce(tenantId: string): Promise<number> {
    const ctx = await this.context(tenantId);
    if (!ctx) return 0;
    // subscriptions and their owners' access first: owner look-ups use other connections than the transaction's
    const states = await ctx.store.read((s) => liveStates<SubscriptionSpec>(s.q, tenantId));
    const owners = new Map<string, OwnerAccess>();
    for (const st of states) owners.set(st.id, await this.owners.get(tenantId, st.id, st.owner));
    let out: { events: OutboxEvent[]; numbered: { subscriptionId: string; eventNumber: number }[] } | undefined;
    try {
      out = await ctx.store.tx(async (s) => {
        if (!(await tryAdvisoryXactLock(s.q, `${tenantId}\0dispatch`))) return undefined;
        const events = await claimOutbox(s.q, tenantId, BATCH);
        // the subscriptions were read before the lock: a subscription created or changed since must not miss these
        // events, nor a deleted one get them
        if (events.length && signature(await liveStates(s.q, tenantId)) !== signature(states)) throw new StaleSubscriptions();
        const matched = states.length && events.length ? await match(ctx, s, states, owners, events) : [];
        const numbered = await addEvents(s.q, tenantId, matched);
        return { events, numbered };
      });
    } catch (err) {
      if (err instanceof StaleSubscriptions) return -2;
      throw err;
    }
    if (!out) return -1;
    const now = Date.now();
    for (const e of out.events) {
      this.deps.metrics.outboxEvents.inc({ action: e.action });
      this.deps.metrics.outboxLag.observe(Math.max(0, now - e.createdAt.getTime()) / 1000);
    }
    const active = new Set(states.filter((st) => st.status === 'active').map((st) => st.id));
    const queued = new Set<string>();
    for (const n of out.numbered) {
      const st = states.find((x) => x.id === n.subscriptionId)!;
      this.deps.metrics.subscriptionMatches.inc({ kind: st.spec.kind });
      // one job per subscription and batch, for its first new event: the job goes on down the line (deliver.ts);
      // queued now only when active, the rest wait (pending) for the handshake or a re-activation
      if (!active.has(n.subscriptionId) || queued.has(n.subscriptionId)) continue;
      queued.add(n.subscriptionId);
      await enqueueEvent(this.deps, tenantId, n.subscriptionId, n.eventNumber);
    }
    for (const e of out.events) if (e.resourceType === 'Subscription' && e.action !== 'delete') await enqueueHandshake(this.deps, tenantId, e.id);
    // an owner whose client was removed or whose account was disabled: the subscription stops, and says why
    if (out.events.length) {
      for (const st of states) {
        const access = owners.get(st.id);
        if (access && 'revoked' in access && st.status !== 'error') await changeStatus(ctx, st.id, 'error', access.revoked, ['requested', 'active']);
      }
    }
    return out.events.length;
  }
}

/** The status element of a stored version (undefined: none, deleted, or no such version). */
function statusOf(json: string | null | undefined): string | undefined {
  if (!json) return undefined;
  const status = (JSON.parse(json) as { status?: unknown }).status;
  return typeof status === 'string' ? status : undefined;
}

/**
 * Which (subscription, resource version) pairs the events trigger. Per type, each subscription runs its own criteria
 * (or topic filters) restricted to the changed ids, as its OWNER would search (the owner's compartment and granular
 * filters are compiled into the query): "a notification fires exactly when the same search would now return the
 * resource", and never for what the owner may not read. A topic then judges every changed version on its own (its
 * status against the version before it), so planned -> in-progress -> finished in one batch is both a start and an
 * end. A criteria subscription gets one event per resource per batch (its latest version): the search sees the
 * current state only.
 */
async function match(ctx: FhirContext, s: TenantSession, states: SubscriptionState<SubscriptionSpec>[], owners: Map<string, OwnerAccess>, events: OutboxEvent[]): Promise<NewEvent[]> {
  const out: (NewEvent & { seq: number })[] = [];
  const byType = new Map<string, Map<string, OutboxEvent[]>>();
  for (const e of events) {
    if (e.action === 'delete') continue;
    let ids = byType.get(e.resourceType);
    if (!ids) byType.set(e.resourceType, (ids = new Map()));
    ids.set(e.id, [...(ids.get(e.id) ?? []), e]);
  }
  const now = ctx.deps.clock();
  for (const [type, changed] of byType) {
    const subs = states.filter((st) => st.resourceType === type);
    if (!subs.length) continue;
    const ids = [...changed.keys()];
    const statuses = new Map<string, string | undefined>();
    const statusAt = async (id: string, v: number) => {
      const key = `${id}/${v}`;
      if (!statuses.has(key)) statuses.set(key, v < 1 ? undefined : statusOf((await s.readVersion(type, id, v))?.json));
      return statuses.get(key);
    };
    for (const st of subs) {
      const access = owners.get(st.id);
      if (!access || 'revoked' in access) continue;
      const spec = st.spec;
      let plan;
      try {
        plan = planSearch(ctx.registry, type, { strict: false, params: [...spec.params, ['_id', ids.join(',')]], maxParams: 10_000, now });
        authorizeSearch(as(ctx, access.guard), plan, { interaction: 'search-type', resourceType: type }, 's');
      } catch {
        continue; // the owner may no longer search this type: nothing to tell them
      }
      const matched = await s.searchIds(plan, ids.length);
      const topic = spec.kind === 'topic' ? TOPICS.find((t) => t.name === spec.topic) : undefined;
      for (const id of matched) {
        // only what happened since the subscription began (a write that committed just before it is not its event)
        const versions = changed.get(id)!.filter((e) => e.createdAt >= st.createdAt).sort((a, b) => a.versionId - b.versionId);
        if (!versions.length) continue;
        if (!topic) {
          const last = versions[versions.length - 1];
          out.push({ subscriptionId: st.id, resourceType: type, id, versionId: last.versionId, occurredAt: last.createdAt, seq: last.seq });
          continue;
        }
        for (const e of versions) {
          if (!topic.triggers(await statusAt(id, e.versionId - 1), (await statusAt(id, e.versionId)) ?? null)) continue;
          out.push({ subscriptionId: st.id, resourceType: type, id, versionId: e.versionId, occurredAt: e.createdAt, seq: e.seq });
        }
      }
    }
  }
  // numbered in the order the changes committed
  return out.sort((a, b) => a.seq - b.seq).map(({ seq: _seq, ...e }) => e);
}
