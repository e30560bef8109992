// Request budgets (issue 11, docs/rate-limits.md): per tenant (its plan's requestsPerMinute), per client within a
// tenant, per client address on the sign-in pages and the token endpoint. Fixed one-minute windows counted with
// rate-limiter-flexible: in Redis when REDIS_URL is set, so every API process spends the same budget, in this
// process's memory otherwise. Admitted FHIR requests carry RateLimit-Limit/-Remaining/-Reset
// (draft-ietf-httpapi-ratelimit-headers); a spent budget answers 429 RATE_LIMITED with Retry-After.
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { Config } from '../config/index.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { Logger } from '../platform/log.js';
import type { AdmissionHeaders, AdmissionRequest } from './admission.js';

/** One budget a request spends from: a counter key and its limit per window. */
export interface RateBudget {
  key: string;
  limit: number;
}

/** What a budget has left after a request; `allowed` false: the request exceeded it. */
export interface RateVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window ends (the budget is whole again). */
  resetSeconds: number;
}

const WINDOW_SECONDS = 60;
/**
 * The counters themselves never refuse (their points are unbounded): each budget's limit is compared here, so one
 * counter serves every tenant's plan and a plan change takes effect on the next request.
 */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;
/** A Redis command slower than this counts as Redis being down for that request (the in-memory count answers). */
const COMMAND_TIMEOUT_MS = 250;
/** How long the first request waits for the first connection to Redis. */
const CONNECT_TIMEOUT_MS = 1000;
const reconnectDelay = (attempt: number): number => Math.min(250 * attempt, 5000);
/** One warning per this long while Redis is unreachable. */
const WARN_EVERY_MS = 30_000;
/** Keys (leases, spent budgets) remembered in this process; past it the ended windows are dropped. */
const MAX_KEYS = 10_000;
/** Most requests one lease takes from a budget in Redis: one round trip per this many requests of a busy key. */
const MAX_LEASE = 50;
/** A lease takes at most this share of what the budget has left, so leases shrink to one request near the limit. */
const LEASE_SHARE = 16;

/**
 * Requests this process took from a key's window in one Redis increment: the window's slots (end - size, end], of
 * which `used` are handed out. Slots past the limit are refused; slots left over when the window ends are lost (at most
 * MAX_LEASE - 1 per process, and fewer near the limit), so processes may refuse slightly early, never overspend.
 */
interface Lease {
  end: number;
  size: number;
  used: number;
  /** When the window ends (ms since the epoch). */
  expires: number;
}

/** Keys whose window this process counts itself (no Redis, or Redis down); past it the ended windows are dropped. */
const MAX_WINDOWS = 100_000;

/**
 * Fixed one-minute windows counted in this process: a key's window starts with its first request. Synchronous (a
 * Map lookup and an addition), so a request counted in memory costs no promise, timer or lease bookkeeping.
 */
class MemoryWindows {
  private readonly windows = new Map<string, { count: number; expires: number }>();

  /** Adds `points` to the key's window: its count after, and the milliseconds until the window ends. */
  add(key: string, points: number, now: number): { count: number; msLeft: number } {
    let w = this.windows.get(key);
    if (!w || w.expires <= now) {
      w = { count: 0, expires: now + WINDOW_SECONDS * 1000 };
      setBounded(this.windows, key, w, MAX_WINDOWS);
    }
    w.count += points;
    return { count: w.count, msLeft: w.expires - now };
  }
}

/**
 * The counting store behind Deps.rateLimits. `take` spends one request from each budget and answers for the tightest.
 * With Redis, requests are taken from a budget in leases (one round trip per lease, both budgets' in one pipeline). A
 * budget found spent is remembered in this process until its window ends, so further requests against it are refused
 * without a Redis round trip, and the request is given back to the budgets it did not exceed (a client over its own
 * budget does not drain its tenant's).
 */
export class RateLimits {
  readonly kind: 'redis' | 'memory';
  private readonly limiter: RateLimiterRedis | undefined;
  /** Without Redis the count; with it, the count while Redis does not answer. */
  private readonly windows = new MemoryWindows();
  private readonly redis: Redis | undefined;
  private connecting: Promise<void> | undefined;
  private readonly blocked = new Map<string, number>();
  private readonly leases = new Map<string, Lease>();
  private readonly fetching = new Map<string, Promise<Lease | undefined>>();
  private warnedAt = 0;

  constructor(redisUrl: string | undefined, keyPrefix: string, private readonly log: Logger) {
    if (!redisUrl) {
      this.kind = 'memory';
      return;
    }
    this.kind = 'redis';
    // its own connection, opened by the first request (the CLI and workers build Deps but never count requests)
    this.redis = new Redis(redisUrl, {
      lazyConnect: true,
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      retryStrategy: reconnectDelay,
      // a socket still open this long after close() (Redis unreachable) is destroyed (ioredis waits 2 s)
      disconnectTimeout: 300,
    });
    this.redis.on('error', (err) => this.warn(err));
    this.redis.on('ready', () => {
      if (this.warnedAt) this.log.info('rate limits: Redis is back, budgets are shared again');
      this.warnedAt = 0;
    });
    // Redis down: this process's memory counts instead (fail open to a per-process budget, docs/rate-limits.md)
    this.limiter = new RateLimiterRedis({ storeClient: this.redis, keyPrefix, points: UNBOUNDED, duration: WINDOW_SECONDS, rejectIfRedisNotReady: true });
  }

  /** Spends one request from each budget; the verdict is the longest-spent budget's, or the one with least left. */
  async take(budgets: RateBudget[]): Promise<RateVerdict> {
    const now = Date.now();
    const blocked = budgets.flatMap((b) => {
      const until = this.blocked.get(b.key);
      return until !== undefined && until > now ? [{ allowed: false, limit: b.limit, remaining: 0, resetSeconds: Math.ceil((until - now) / 1000) }] : [];
    });
    if (blocked.length) return longestWait(blocked);
    let spent: Spent[];
    if (!this.limiter) spent = budgets.map((b) => this.spendHere(b, now));
    // with Redis, the common case: every budget has a slot left in this process's lease, taken at once (no promise per budget)
    else if (budgets.every((b) => this.freeSlot(b.key, now))) spent = budgets.map((b) => spentOf(b, this.takeSlot(b.key, now)));
    else {
      await this.connected();
      spent = await Promise.all(budgets.map(async (b) => spentOf(b, await this.claim(b))));
    }
    const verdicts = spent.map((x) => x.verdict);
    if (verdicts.every((v) => v.allowed)) return verdicts.reduce((a, b) => (b.remaining < a.remaining ? b : a));
    for (const [i, v] of verdicts.entries()) {
      if (!v.allowed) setBounded(this.blocked, budgets[i].key, now + v.resetSeconds * 1000, MAX_KEYS);
      else spent[i].undo();
    }
    return longestWait(verdicts.filter((v) => !v.allowed));
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }

  /** One request from a budget without Redis: its window counted here, synchronously. */
  private spendHere(b: RateBudget, now: number): Spent {
    const w = this.windows.add(b.key, 1, now);
    return {
      verdict: { allowed: w.count <= b.limit, limit: b.limit, remaining: Math.max(0, b.limit - w.count), resetSeconds: Math.ceil(w.msLeft / 1000) },
      undo: () => void this.windows.add(b.key, -1, now),
    };
  }

  /** Whether the key's current lease has a slot left. */
  private freeSlot(key: string, now: number): boolean {
    const current = this.leases.get(key);
    return current !== undefined && current.expires > now && current.used < current.size;
  }

  /** The next slot of the key's current lease, taken (undefined: none left). Synchronous: no await between check and take. */
  private takeSlot(key: string, now: number): Slot | undefined {
    if (!this.freeSlot(key, now)) return undefined;
    const current = this.leases.get(key)!;
    current.used++;
    return { lease: current, position: current.end - current.size + current.used };
  }

  /**
   * Takes a slot of a lease with one free: the current one, the one being fetched for this key, or a new one. The
   * slot is taken in the same step as the check (no await between), so concurrent requests never share one.
   */
  private async claim(b: RateBudget): Promise<Slot | undefined> {
    for (;;) {
      const slot = this.takeSlot(b.key, Date.now());
      if (slot) return slot;
      const current = this.leases.get(b.key);
      // concurrent requests wait for one fetch instead of each leasing its own
      let fetching = this.fetching.get(b.key);
      if (!fetching) {
        fetching = this.fetchLease(b, current).finally(() => this.fetching.delete(b.key));
        this.fetching.set(b.key, fetching);
      }
      if (!(await fetching)) return undefined;
    }
  }

  private async fetchLease(b: RateBudget, previous: Lease | undefined): Promise<Lease | undefined> {
    const now = Date.now();
    // a window's first lease is one request; later ones grow with what the budget has left
    const size = previous && previous.expires > now ? this.leaseSize(b.limit - previous.end) : 1;
    const res = await this.limiter!.consume(b.key, size).catch((err: unknown) => this.counted(err, b.key, size));
    if (!res) return undefined;
    const lease = { end: res.consumedPoints, size, used: 0, expires: now + res.msBeforeNext };
    setBounded(this.leases, b.key, lease, MAX_KEYS);
    return lease;
  }

  /** Requests to lease at once: a share of what is left (1 near the limit, so the last requests are exact). */
  private leaseSize(left: number): number {
    return Math.min(MAX_LEASE, Math.max(1, Math.floor(left / LEASE_SHARE)));
  }

  /** The first request waits (briefly) for the first connection; later ones never wait for Redis. */
  private connected(): Promise<void> {
    if (!this.redis) return Promise.resolve();
    return (this.connecting ??= this.redis.connect().catch((err: unknown) => this.warn(err)));
  }

  /** Redis did not answer: this process's memory counts instead (fail open, docs/rate-limits.md). */
  private counted(err: unknown, key: string, points: number): { consumedPoints: number; msBeforeNext: number } {
    this.warn(err);
    const w = this.windows.add(key, points, Date.now());
    return { consumedPoints: w.count, msBeforeNext: w.msLeft };
  }


  private warn(err: unknown): void {
    if (Date.now() - this.warnedAt < WARN_EVERY_MS) return;
    this.warnedAt = Date.now();
    this.log.warn({ err }, 'rate limits: Redis error, counting in this process until it is back');
  }
}

/**
 * Sets a per-key entry (a time it ends, or something with `expires`), dropping ended entries first when the map holds
 * `max` (memory stays bounded).
 */
function setBounded<V extends number | { expires: number }>(map: Map<string, V>, key: string, value: V, max: number): void {
  if (map.size >= max) {
    const now = Date.now();
    for (const [k, v] of map) if ((typeof v === 'number' ? v : v.expires) <= now) map.delete(k);
    if (map.size >= max) map.clear();
  }
  map.set(key, value);
}

/** A request's place in a lease: the window's count it was given. */
interface Slot {
  lease: Lease;
  position: number;
}

/** One request from a budget, and how to give it back (undefined slot: nothing counted, fail open). */
interface Spent {
  verdict: RateVerdict;
  undo(): void;
}

function spentOf(b: RateBudget, slot: Slot | undefined): Spent {
  if (!slot) return { verdict: { allowed: true, limit: b.limit, remaining: b.limit, resetSeconds: WINDOW_SECONDS }, undo: () => undefined };
  const { lease, position } = slot;
  const resetSeconds = Math.max(0, Math.ceil((lease.expires - Date.now()) / 1000));
  return {
    verdict: { allowed: position <= b.limit, limit: b.limit, remaining: Math.max(0, b.limit - position), resetSeconds },
    undo: () => void (lease.used > 0 && lease.used--),
  };
}

/** Of several spent budgets, the one that stays spent longest (what Retry-After must name). */
function longestWait(refused: RateVerdict[]): RateVerdict {
  return refused.reduce((a, b) => (b.resetSeconds > a.resetSeconds ? b : a));
}

/** The service Deps holds: Redis-backed when REDIS_URL is set; keys under QUEUE_PREFIX, as the job queues' are. */
export function createRateLimits(config: Config, log: Logger): RateLimits {
  return new RateLimits(config.redisUrl, `${config.queuePrefix}:rl`, log);
}

/**
 * The admission check: the tenant's budget (its plan's requestsPerMinute, else RATE_LIMIT_TENANT_PER_MINUTE) and the
 * client's within it; metadata (no token) is counted per client address instead, so nobody can spend a tenant's budget
 * without one of its tokens. Returns the RateLimit-* headers, or throws 429 RATE_LIMITED.
 */
export async function admitRate(deps: Deps, a: AdmissionRequest): Promise<AdmissionHeaders> {
  const cfg = deps.config;
  if (!cfg.rateLimitEnabled) return {};
  const budgets: RateBudget[] = [];
  if (a.discovery) budgets.push({ key: `d:${a.address ?? 'unknown'}`, limit: cfg.rateLimitAuthIpPerMinute });
  else {
    const perTenant = await tenantLimit(deps, a.tenant.plan);
    if (perTenant !== null) budgets.push({ key: `t:${a.tenant.id}`, limit: perTenant });
    if (a.clientId) budgets.push({ key: `c:${a.tenant.id}:${a.clientId}`, limit: cfg.rateLimitClientPerMinute });
  }
  if (!budgets.length) return {};
  const v = await deps.rateLimits.take(budgets);
  const headers = { 'RateLimit-Limit': String(v.limit), 'RateLimit-Remaining': String(v.remaining), 'RateLimit-Reset': String(v.resetSeconds) };
  if (v.allowed) return headers;
  const retry = Math.max(1, v.resetSeconds);
  throw new FhirError('too-many-requests', `Request rate limit reached (${v.limit} per minute); retry in ${retry} s`, {
    code: 'RATE_LIMITED',
    headers: { ...headers, 'Retry-After': String(retry) },
  });
}

/** The tenant's requests per minute: its plan's (null: unlimited), RATE_LIMIT_TENANT_PER_MINUTE without one. */
async function tenantLimit(deps: Deps, planId: string | undefined): Promise<number | null> {
  const plan = planId ? await deps.plans.get(planId) : undefined;
  return plan ? plan.quotas.requestsPerMinute : deps.config.rateLimitTenantPerMinute;
}
