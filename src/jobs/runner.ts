// Background work of this process (today: $reindex). Each job runs with an AbortSignal that fires at shutdown, so a
// job stops between steps instead of holding the database (and the process) open; stop() waits for them briefly.
import type { Logger } from '../platform/log.js';

export class JobRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly controller = new AbortController();

  constructor(private readonly log: Logger) {}

  /** Starts `work` under `key` unless a job with that key already runs here; errors are logged, never thrown. */
  start(key: string, work: (signal: AbortSignal) => Promise<void>): void {
    if (this.running.has(key) || this.controller.signal.aborted) return;
    const p = work(this.controller.signal)
      .catch((err) => this.log.error({ err, job: key }, 'background job failed'))
      .finally(() => this.running.delete(key));
    this.running.set(key, p);
  }

  has(key: string): boolean {
    return this.running.has(key);
  }

  /** Waits for a job started in this process (CLI and tests). */
  async wait(key: string): Promise<void> {
    await this.running.get(key);
  }

  /** Signals every job to stop and waits up to `timeoutMs` for them. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.controller.abort();
    const all = Promise.allSettled([...this.running.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}
