// CLI `subscription`: a tenant's subscriptions with their status and counters, one subscription's delivery log
// (attempt, status code, latency, error), and redelivery of a range of events (operators).
import { parseArgs } from 'node:util';
import type { Deps } from '../core/deps.js';
import { deliveryLog, listStates, rescheduleEvents } from '../store/subscriptions.js';
import { findTenant } from '../store/tenants.js';
import type { SubscriptionSpec } from '../subscriptions/spec.js';

export const SUBSCRIPTIONS_USAGE = `  subscription list <slug>                  subscriptions: id, status, topic or criteria, channel, events, error
  subscription log <slug> <id> [--limit 50] delivery attempts, newest first: time, type, event, attempt, HTTP status, ms, error
  subscription redeliver <slug> <id> [--from N] [--to N]   deliver events again (the running server's sweep sends them)`;

export async function subscriptionCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, options: { limit: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } }, allowPositionals: true });
  const [slug, id] = positionals;
  if (!slug || (sub !== 'list' && !id) || !['list', 'log', 'redeliver'].includes(sub ?? '')) {
    console.error(`usage:\n${SUBSCRIPTIONS_USAGE}`);
    return 2;
  }
  if (!(await findTenant(deps.db, slug))) {
    console.error(`error: unknown tenant '${slug}'`);
    return 1;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : NaN);
  if (sub === 'list') {
    const states = await deps.db.withTenant(slug, (q) => listStates<SubscriptionSpec>(q, slug, [], []));
    for (const s of states) {
      const what = s.spec.kind === 'topic' ? `topic ${s.spec.topic}` : `criteria ${s.resourceType}?${new URLSearchParams(s.spec.params).toString()}`;
      console.log([s.id, s.status, what, s.spec.channel, `events ${s.eventsSinceStart}`, s.error ?? ''].join('\t'));
    }
    return 0;
  }
  if (sub === 'log') {
    const limit = num(values.limit) ?? 50;
    if (!Number.isInteger(limit) || limit < 1) {
      console.error('error: --limit must be a positive whole number');
      return 2;
    }
    const log = await deps.db.withTenant(slug, (q) => deliveryLog(q, slug, id!, limit));
    if (!log.length) console.log(`no delivery attempts recorded for Subscription/${id}`);
    for (const e of log) {
      console.log([e.at.toISOString(), e.type, e.eventNumber ?? '-', `attempt ${e.attempt}`, e.statusCode ?? '-', `${e.latencyMs} ms`, e.error ?? 'ok'].join('\t'));
    }
    return 0;
  }
  const from = num(values.from);
  const to = num(values.to);
  if (Number.isNaN(from) || Number.isNaN(to)) {
    console.error('error: --from and --to must be whole numbers');
    return 2;
  }
  const n = await deps.db.withTenant(slug, (q) => rescheduleEvents(q, slug, id!, from ?? 1, to ?? Number.MAX_SAFE_INTEGER));
  console.log(`${n} event(s) of Subscription/${id} will be delivered again (by the running server's workers, within seconds)`);
  return 0;
}
