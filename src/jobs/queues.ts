// The job runtime (issue 10): named queues of idempotent jobs with delays, attempts with backoff, and JobDelay. BullMQ
// on Redis when REDIS_URL is set, so every API and worker process shares the work; an in-process twin otherwise.
import type { Config } from '../config/index.js';
import type { JobQueues, JobState } from '../core/deps.js';
import type { Logger } from '../platform/log.js';
import type { Metrics } from '../platform/metrics.js';
import { BullQueues } from './bullmq-queue.js';
import { MemoryQueues } from './memory-queue.js';

/** Every queue this server uses (the `jobs` CLI shows them all): $reindex, and the subscription runtime's two. */
export const QUEUE_NAMES = ['reindex', 'deliveries', 'export', 'tenant-erasure'] as const;

/** The states `counts()` reports, in the order the CLI prints them. */
export const JOB_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed', 'unknown'];

/** The Redis key prefix of every queue (QUEUE_PREFIX): processes with different prefixes never take each other's jobs. */
export function queuePrefix(config: Config): string {
  return config.queuePrefix || 'tenfhir';
}

/** BullMQ when `config.redisUrl` is set, else in-process. Nothing connects to Redis before the first add(), work() or counts(). */
export function createQueues(config: Config, log: Logger, metrics: Metrics): JobQueues {
  return config.redisUrl ? new BullQueues(config.redisUrl, queuePrefix(config), log, metrics) : new MemoryQueues(log, metrics);
}
