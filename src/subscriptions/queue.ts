// The deliveries queue: one job per (subscription, event), per handshake and per heartbeat slot, idempotent by its
// id. Adding may fail (Redis down): the event stays `pending` in PostgreSQL and the maintenance sweep adds it again,
// so a failed add only costs time.
import type { Deps } from '../core/deps.js';

export const DELIVERIES = 'deliveries';

export interface DeliveryJob {
  /** tenant */
  t: string;
  /** subscription id */
  s: string;
  /** e: event notification, hs: handshake, hb: heartbeat */
  k: 'e' | 'hs' | 'hb';
  /** event number (k = e) */
  n?: number;
}

// BullMQ job ids may not contain ':'; tenant slugs and FHIR ids never contain '|'
const jobId = (j: DeliveryJob, suffix = '') => `${j.t}|${j.s}|${j.k}${j.n ?? ''}${suffix}`;

async function add(deps: Deps, job: DeliveryJob, suffix?: string): Promise<boolean> {
  try {
    await deps.queues.add(DELIVERIES, job.k, job, { jobId: jobId(job, suffix) });
    return true;
  } catch (err) {
    deps.log.warn({ err: (err as Error).message, tenantId: job.t, kind: job.k }, 'could not queue a delivery; the maintenance sweep will queue it again');
    return false;
  }
}

/**
 * `again`: a job of its own even while an earlier job of this event waits delayed (a websocket client just bound, an
 * operator's redelivery); the event's lease keeps the two from both sending.
 */
export const enqueueEvent = (deps: Deps, t: string, s: string, n: number, again = false) => add(deps, { t, s, k: 'e', n }, again ? `-${Date.now().toString(36)}` : '');
export const enqueueHandshake = (deps: Deps, t: string, s: string) => add(deps, { t, s, k: 'hs' });
/** `slot` numbers the heartbeat periods, so two sweeps in one period queue one heartbeat. */
export const enqueueHeartbeat = (deps: Deps, t: string, s: string, slot: number) => add(deps, { t, s, k: 'hb' }, `-${slot}`);
