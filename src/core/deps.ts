// Everything the composition root (src/compose.ts) builds once and passes down: no module-level singletons. The
// services are interfaces here, implemented by the layers above (auth's key ring, tenancy's search parameters, the
// job queues), so every layer can take Deps without importing the layers that implement it.
import type { KeyObject } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { AuditSink } from './audit.js';
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import type { Metrics } from '../platform/metrics.js';
import type { PlanLookup } from './plans.js';
import type { SearchParamRegistry } from './search-registry.js';

/** The authorization server's signing keys as the rest of the server uses them (src/auth/keys.ts KeyRing). */
export interface SigningKeys {
  /** Changes whenever the set of live keys changes. */
  readonly fingerprint: string;
  /** Re-reads the keys (rotation by another process); true when they changed. */
  refresh(): Promise<boolean>;
  /** Private JWKs for the authorization server: the active signer first. */
  signing(): Record<string, unknown>[];
  jwks(): { keys: Record<string, unknown>[] };
  activeKid(): string | undefined;
  activePrivateJwk(): Record<string, unknown> | undefined;
  /** The verification key for `kid` (undefined when unknown or retired). */
  publicKey(kid: string | undefined): Promise<KeyObject | undefined>;
}

/** Per-tenant search parameters: the official ones plus the tenant's own SearchParameter resources (src/tenancy). */
export interface TenantSearchParameters {
  /** The official R4 parameters (shared by every tenant). */
  readonly base: SearchParamRegistry;
  /** The tenant's registry. Call outside any transaction: it may query the database. */
  forTenant(tenantId: string): Promise<SearchParamRegistry>;
  /** A SearchParameter of the tenant changed. */
  invalidate(tenantId: string): void;
}

/** One job as a queue hands it to its handler. */
export interface QueuedJob<T = unknown> {
  id: string;
  name: string;
  data: T;
  /** Runs of this job that ended in an error so far (a JobDelay does not count). */
  attemptsMade: number;
}

export interface JobOptions {
  /** Jobs are idempotent by id: adding an id that is already waiting, delayed or active adds nothing. */
  jobId: string;
  delayMs?: number;
  /** Runs before the job is failed for good (default 1: failures are the handler's to retry with JobDelay). */
  attempts?: number;
  /** Base of the exponential backoff between failed attempts (ms, with jitter). */
  backoffMs?: number;
}

/** What `jobs list|show` prints about a job. */
export interface JobInfo {
  queue: string;
  id: string;
  name: string;
  state: 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'unknown';
  attemptsMade: number;
  data: unknown;
  failedReason?: string;
  /** When it was added / will next run / finished (ms since the epoch). */
  timestamp?: number;
  runAt?: number;
  finishedOn?: number;
}

export type JobState = JobInfo['state'];

/**
 * The job runtime (src/jobs/queues.ts): BullMQ on Redis when REDIS_URL is set (every API and worker process shares
 * the queues), an in-process runner with the same behaviour otherwise.
 */
export interface JobQueues {
  readonly kind: 'bullmq' | 'memory';
  /** Adds a job (nothing when a job with that id is waiting, delayed or active). Rejects quickly when Redis is down. */
  add<T>(queue: string, name: string, data: T, opts: JobOptions): Promise<void>;
  /**
   * Processes `queue` in this process with `handler`. A handler that throws JobDelay runs again after its delay
   * without counting an attempt; any other error counts one (then backoff, until `attempts`). `signal` fires at stop().
   */
  work<T>(queue: string, handler: (job: QueuedJob<T>, signal: AbortSignal) => Promise<void>, opts?: { concurrency?: number }): void;
  /** Jobs per state of a queue. */
  counts(queue: string): Promise<Record<JobState, number>>;
  /** Jobs of a queue in one state, newest first. */
  list(queue: string, state: JobState, limit?: number): Promise<JobInfo[]>;
  get(queue: string, id: string): Promise<JobInfo | undefined>;
  /** Runs a failed job again; false when it is not failed. */
  retry(queue: string, id: string): Promise<boolean>;
  /** The queue names this process knows (added to or worked on). */
  names(): string[];
  /** Stops the workers of this process (their handlers' signals fire; waits briefly), then closes connections. */
  close(): Promise<void>;
}

/** Thrown by a job handler: run this job again after `delayMs`, not counted as an attempt. */
export class JobDelay extends Error {
  constructor(readonly delayMs: number, reason = 'delayed') {
    super(reason);
    this.name = 'JobDelay';
  }
}

export interface Deps {
  config: Config;
  db: Db;
  log: Logger;
  /** The official R4 search parameters. */
  registry: SearchParamRegistry;
  /** Per-tenant registries (official + the tenant's SearchParameter resources). */
  searchParams: TenantSearchParameters;
  /** The one clock: every timestamp the server writes or compares in JavaScript comes from here. */
  clock: () => Date;
  newId: () => string;
  /** The authorization server's signing keys and cookie secrets (loaded from the database at start). */
  auth: { keys: SigningKeys; cookieKeys: string[] };
  /** The job runtime (BullMQ on Redis, or in-process). */
  queues: JobQueues;
  /** Prometheus metrics (src/platform/metrics.ts). */
  metrics: Metrics;
  /** The audit trail's records outside a write's own statement (src/store/audit-spool.ts AuditSpool); closed before the database. */
  audit: AuditSink;
  /** The plans and their quotas (the `plan` table), cached for a few seconds; a lookup never waits once loaded. */
  plans: PlanLookup;
  /**
   * Request budgets (src/tenancy/rate-limits.ts RateLimits): one-minute windows per key, counted in Redis when REDIS_URL
   * is set (every process spends the same budgets), in this process otherwise. `take` spends one request from each
   * budget and answers for the tightest; close() at shutdown (its Redis connection).
   */
  rateLimits: {
    take(budgets: { key: string; limit: number }[]): Promise<{ allowed: boolean; limit: number; remaining: number; resetSeconds: number }>;
    close(): Promise<void>;
  };
  /** Usage per tenant (src/tenancy/usage.ts UsageTracker): requests counted in memory, stored every few seconds. */
  usage: {
    /** One admitted FHIR request of the tenant: one Map update, no I/O. */
    count(tenantId: string): void;
    /** The tenant's requests counted in this process and not stored yet, and the last one's time (ms). */
    pending(tenantId: string): { requests: number; lastActivity: number | undefined };
    /** The stored size of the tenant's resource bodies, computed at most once a minute. */
    storageBytes(tenantId: string): Promise<number>;
    /** Stores the counts made so far. */
    flush(): Promise<void>;
    /** Stops the timer and stores what is left (before the database closes). */
    close(): Promise<void>;
  };
}
