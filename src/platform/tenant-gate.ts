// Fair sharing of the connection pool between tenants: at most `max` connections per tenant at a time, so one
// tenant's slow searches queue behind each other instead of taking every connection (issue 8, "search cost has no
// bound"). Waiters are served in arrival order; a wait longer than `timeoutMs` gives up.
import type { CancelSignal } from './cancel.js';

/** Thrown when a tenant's share of the pool stayed full for the whole wait. */
export class TenantBusyError extends Error {
  readonly code = 'DB_TENANT_BUSY';
  constructor(tenantId: string, timeoutMs: number) {
    super(`tenant ${tenantId} kept all of its ${timeoutMs > 0 ? 'database connections busy for ' + timeoutMs + ' ms' : 'database connections busy'}`);
    this.name = 'TenantBusyError';
  }
}

interface Waiter {
  grant: () => void;
}

export class TenantGate {
  private readonly active = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
  ) {}

  /** Waits for one of the tenant's slots; resolves with its release function (call it exactly once). */
  async enter(tenantId: string, signal?: CancelSignal): Promise<() => void> {
    const n = this.active.get(tenantId) ?? 0;
    if (n < this.max) {
      this.active.set(tenantId, n + 1);
      return this.releaser(tenantId);
    }
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(tenantId) ?? [];
      this.queues.set(tenantId, queue);
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.releaser(tenantId));
        },
      };
      const drop = (err: unknown) => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        if (!queue.length) this.queues.delete(tenantId);
        cleanup();
        reject(err);
      };
      const timer = this.timeoutMs > 0 ? setTimeout(() => drop(new TenantBusyError(tenantId, this.timeoutMs)), this.timeoutMs) : undefined;
      const onAbort = () => drop(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      queue.push(waiter);
    });
  }

  private releaser(tenantId: string): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const queue = this.queues.get(tenantId);
      const next = queue?.shift();
      if (queue && !queue.length) this.queues.delete(tenantId);
      // the slot passes straight to the next waiter: the count stays the same
      if (next) next.grant();
      else {
        const n = (this.active.get(tenantId) ?? 1) - 1;
        if (n <= 0) this.active.delete(tenantId);
        else this.active.set(tenantId, n);
      }
    };
  }
}
