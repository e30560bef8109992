// The subscription workers of one process: the outbox dispatcher, the maintenance sweep and the delivery worker.
// The server runs them (RUN_WORKERS=true, the default); `npm run worker` runs them without HTTP. With Redis, any
// number of processes share the deliveries queue; the dispatcher and the sweep coordinate through PostgreSQL.
import type { Deps } from '../core/deps.js';
import { Deliverer, type WebSocketSender } from './deliver.js';
import { Dispatcher } from './dispatcher.js';
import { Maintenance } from './maintenance.js';
import { OwnerCache } from './owner.js';
import { DELIVERIES, type DeliveryJob } from './queue.js';
import type { Subscriptions } from './service.js';

export interface SubscriptionWorkers {
  dispatcher: Dispatcher;
  maintenance: Maintenance;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  /** This process's subscription service: its writes wake the dispatcher directly. */
  service?: Subscriptions;
  /** The websocket channel of this process (or of every process, through Redis). */
  websockets?: WebSocketSender;
  /** Deliveries handled at once by this process. */
  concurrency?: number;
  /** Which tenants this process dispatches and sweeps (default: all). Tests sharing one database keep to their own. */
  tenants?: (tenantId: string) => boolean;
}

export async function startSubscriptionWorkers(deps: Deps, opts: WorkerOptions = {}): Promise<SubscriptionWorkers> {
  const owners = new OwnerCache(deps);
  const mine = opts.tenants ?? (() => true);
  const dispatcher = new Dispatcher(deps, owners, mine);
  const maintenance = new Maintenance(deps, mine);
  const deliverer = new Deliverer(deps, opts.websockets);
  deps.queues.work<DeliveryJob>(DELIVERIES, (job, signal) => deliverer.handle(job, signal), { concurrency: opts.concurrency ?? (deps.db.kind === 'pglite' ? 4 : 16) });
  if (opts.service) opts.service.onCommitted = (t) => dispatcher.wake(t);
  await dispatcher.start();
  maintenance.start();
  return {
    dispatcher,
    maintenance,
    async stop() {
      if (opts.service) opts.service.onCommitted = undefined;
      maintenance.stop();
      await dispatcher.stop();
    },
  };
}
