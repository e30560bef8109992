// What both job runtimes (bullmq-queue.ts, memory-queue.ts) share: defaults, the backoff between attempts, and how a
// handler's error is recorded, so a job behaves the same with and without Redis.

/** Handlers that throw (other than JobDelay) count an attempt; this many runs by default, then the job fails. */
export const DEFAULT_ATTEMPTS = 1;
/** Base of the exponential backoff between attempts (ms). */
export const DEFAULT_BACKOFF_MS = 1000;
/** Jobs a queue runs at once in one process. */
export const DEFAULT_CONCURRENCY = 4;
/** Failed jobs kept per queue, with their reasons, for `jobs list|show|retry`. */
export const KEEP_FAILED = 1000;
/** How long close() waits for active handlers after their signals fired. */
export const CLOSE_WAIT_MS = 5000;
/** Jitter of the backoff (BullMQ's `jitter`): a wait is 50–100% of the exponential value. */
export const BACKOFF_JITTER = 0.5;

/** Exponential backoff with jitter, as BullMQ computes it: after failed attempt n, 0.5–1 × base·2^(n−1). */
export function backoffDelay(attemptsMade: number, baseMs: number): number {
  const full = baseMs * 2 ** Math.max(0, attemptsMade - 1);
  return Math.round(full * (1 - BACKOFF_JITTER * Math.random()));
}

/** The reason a failed job records: the error's message (never its stack). */
export function failureReason(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** Resolves after `ms` (unref'd: never keeps the process alive). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
