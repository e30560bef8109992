// The subscriptions' housekeeping, every OUTBOX_POLL_MS in each process that runs workers: handshakes for
// subscriptions still `requested`, heartbeats when a channel has been quiet for its heartbeatPeriod, `end` reached
// -> off, pending events whose queue job was lost (Redis was down, a process died between commit and queueing) queued
// again, and events and log lines past EVENT_RETENTION_DAYS forgotten. All idempotent: several processes may sweep.
import type { Deps } from '../core/deps.js';
import { duePending, liveStates, pruneEvents, subscriptionTenants } from '../store/subscriptions.js';
import { tenantContext } from './context.js';
import { enqueueEvent, enqueueHandshake, enqueueHeartbeat } from './queue.js';
import type { SubscriptionSpec } from './spec.js';
import { changeStatus } from './status.js';

/** A pending event is queued again when it has been due this long (its own job normally runs it first). */
const GRACE_MS = 2000;
const PRUNE_EVERY_MS = 3600_000;

export class Maintenance {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private readonly pruned = new Map<string, number>();

  constructor(
    private readonly deps: Deps,
    private readonly mine: (tenantId: string) => boolean = () => true,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.deps.config.outboxPollMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  async sweep(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (const t of await subscriptionTenants(this.deps.db)) {
        if (this.stopped) return;
        if (!this.mine(t)) continue;
        await this.sweepTenant(t).catch((err) => this.deps.log.warn({ err, tenantId: t }, 'subscription maintenance failed'));
      }
    } catch (err) {
      if (!this.stopped) this.deps.log.warn({ err }, 'subscription maintenance failed');
    } finally {
      this.running = false;
    }
  }

  private async sweepTenant(t: string): Promise<void> {
    const ctx = await tenantContext(this.deps, t, 'maintenance');
    if (!ctx) return;
    const now = Date.now();
    const { states, due } = await ctx.store.read(async (s) => ({ states: await liveStates<SubscriptionSpec>(s.q, t), due: await duePending(s.q, t, GRACE_MS, 500) }));
    for (const st of states) {
      if (st.spec.end && Date.parse(st.spec.end) <= now) {
        await changeStatus(ctx, st.id, 'off', null, ['requested', 'active', 'error']);
        continue;
      }
      if (st.status === 'requested' && st.spec.channel === 'rest-hook') await enqueueHandshake(this.deps, t, st.id);
      const period = st.spec.heartbeatSeconds;
      if (st.status === 'active' && period) {
        const last = (st.lastSentAt ?? st.createdAt).getTime();
        if (now - last >= period * 1000) await enqueueHeartbeat(this.deps, t, st.id, Math.floor(now / (period * 1000)));
      }
    }
    for (const e of due) await enqueueEvent(this.deps, t, e.subscriptionId, e.eventNumber);
    if (now - (this.pruned.get(t) ?? 0) > PRUNE_EVERY_MS) {
      this.pruned.set(t, now);
      await ctx.store.read((s) => pruneEvents(s.q, t, this.deps.config.eventRetentionDays));
    }
  }
}
