// Configuration: read from the environment once, validated, typed. Every key is documented beside its
// default; `npm run cli -- config docs` prints this table for the README.

export interface Config {
  port: number;
  host: string;
  publicBaseUrl: string;
  databaseUrl: string | undefined;
  databaseAdminUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  logLevel: string;
  maxBodyBytes: number;
  maxBundleEntries: number;
  dbPoolSize: number;
  dbStatementTimeoutMs: number;
  dbTenantMaxConnections: number;
  dbAcquireTimeoutMs: number;
  maxSearchParams: number;
  demoTenant: boolean;
  shutdownGraceMs: number;
  statsIntervalMs: number;
  /** Honour X-Forwarded-For/-Proto from any peer (URLs always come from PUBLIC_BASE_URL); trustedProxies is the safe form. */
  trustProxy: boolean;
  /** CIDR blocks of the reverse proxies whose X-Forwarded-For is believed (src/tenancy/security-policy.ts proxyTrust). */
  trustedProxies: string[];
  /** Serve a tenant's own host name (its `host`) at /fhir as that tenant's base (src/tenancy/tenant-hosts.ts). */
  tenantHostsEnabled: boolean;
  /** A sorted file of SHA-1 hashes of breached passwords (HIBP's offline list), for tenants that check against it. */
  breachedPasswordsFile: string | undefined;
  authTokenTtl: number;
  authBackendTokenTtl: number;
  authRefreshTokenDays: number;
  authSessionIdleMinutes: number;
  authLockoutAttempts: number;
  authLockoutMinutes: number;
  authLockoutAccountAttempts: number;
  authIpFailures: number;
  authClockSkewSeconds: number;
  authAllowPrivateJwksUrls: boolean;
  /** Count requests against per-tenant, per-client and per-address budgets (src/tenancy/rate-limits.ts). */
  rateLimitEnabled: boolean;
  /** Requests per minute of a tenant whose plan sets none. */
  rateLimitTenantPerMinute: number;
  /** Requests per minute of one client within a tenant. */
  rateLimitClientPerMinute: number;
  /** Requests per minute from one client address to the sign-in pages and the token endpoint (and to metadata). */
  rateLimitAuthIpPerMinute: number;
  /** The 32-byte key that encrypts secrets at rest (SECRETS_KEY); unset: `<DATA_DIR>/secrets.key`. */
  secretsKey: Buffer | undefined;
  /** Run the background workers (outbox dispatcher, deliveries, jobs) inside this process. */
  runWorkers: boolean;
  /** Redis key prefix of the job queues (processes with different prefixes never share jobs). */
  queuePrefix: string;
  /** Rest-hook endpoints may be http:// on loopback (development and tests). */
  subscriptionsAllowLoopback: boolean;
  /** Host names or CIDRs a rest-hook endpoint may resolve to even though they are private (comma-separated). */
  subscriptionsAllowHosts: string[];
  /** Delivery attempts of one notification before the subscription goes to error. */
  deliveryAttempts: number;
  /** Longest wait between two delivery attempts (ms); the backoff doubles up to it. */
  deliveryMaxBackoffMs: number;
  /** How long delivered events stay readable through $events (days). */
  eventRetentionDays: number;
  /** How often the dispatcher looks for outbox events a missed wake-up left behind (ms). */
  outboxPollMs: number;
  /** Serve Prometheus metrics at /metrics. */
  metricsEnabled: boolean;
  /** If set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  metricsToken: string | undefined;
  /** Per-tenant series (tenant label) at /metrics. */
  metricsTenantSeries: boolean;
  /** Most tenants with a series of their own; the rest are summed under tenant="_other". */
  metricsTenantSeriesMax: number;
  /** How often each process stores its per-tenant request counts (ms). */
  usageFlushIntervalMs: number;
  /** Bulk Data export: how long output files stay downloadable after the export completed (hours). */
  exportRetentionHours: number;
  /** Bulk Data export: most resources in one NDJSON file (a type with more is split over several files). */
  exportFileMaxResources: number;
  /** Record the audit trail (off only to measure what it costs). */
  auditTrail: boolean;
  /** Days audit records are kept, unless a tenant sets its own. */
  auditRetentionDays: number;
  /** Minutes between runs of the audit retention purge. */
  auditPurgeIntervalMinutes: number;
  /** Milliseconds between a record's append to the audit spool and its batch's INSERT. */
  auditShipIntervalMs: number;
  /** Longest break-glass grant a platform administrator may ask for (minutes; src/auth/break-glass.ts). */
  breakGlassMaxMinutes: number;
  /** Hours an invitation link (first tenant admin, invited users) stays usable. */
  invitationTtlHours: number;
  /** Days between a tenant's termination and the erasure of all its data (src/admin/erase.ts). */
  tenantErasureGraceDays: number;
}

interface KeySpec {
  env: string;
  default: string;
  doc: string;
}

/** The documented configuration keys (the README's table is generated from this list). */
export const CONFIG_KEYS: KeySpec[] = [
  { env: 'PORT', default: '8080', doc: 'HTTP port the server listens on.' },
  { env: 'HOST', default: '0.0.0.0', doc: 'Interface to bind.' },
  {
    env: 'PUBLIC_BASE_URL',
    default: 'http://localhost:$PORT',
    doc: 'Externally visible origin used for absolute URLs (fullUrl, Location, links); tenant bases are `$PUBLIC_BASE_URL/fhir/{tenant}`.',
  },
  {
    env: 'DATABASE_URL',
    default: '(unset: embedded PGlite)',
    doc: 'PostgreSQL connection the application uses. Should be a role that does not own the tables and has no BYPASSRLS (see README, Tenancy).',
  },
  {
    env: 'DATABASE_ADMIN_URL',
    default: '$DATABASE_URL',
    doc: 'Connection used for migrations (the table owner); when it differs from DATABASE_URL the server grants `fhir_app` to DATABASE_URL\'s login role.',
  },
  {
    env: 'DATA_DIR',
    default: './data',
    doc: 'Where the embedded PGlite database lives (only when DATABASE_URL is unset), and the secrets key file `secrets.key` when SECRETS_KEY is unset.',
  },
  {
    env: 'REDIS_URL',
    default: '(unset: in-process queue)',
    doc: 'Redis for the job queue (BullMQ): deliveries and background jobs are shared by every API and worker process on it. Unset: an in-process queue (one process).',
  },
  {
    env: 'RUN_WORKERS',
    default: 'true',
    doc: 'Run the outbox dispatcher, notification deliveries and background jobs inside the server. Set false on API processes when separate `npm run worker` processes do this (needs REDIS_URL).',
  },
  { env: 'QUEUE_PREFIX', default: 'tenfhir', doc: 'Redis key prefix of the job queues: deployments sharing one Redis use different prefixes.' },
  {
    env: 'SUBSCRIPTIONS_ALLOW_LOOPBACK',
    default: 'false',
    doc: 'Accept `http://` rest-hook endpoints on loopback addresses (development and tests only; https is required otherwise).',
  },
  {
    env: 'SUBSCRIPTIONS_ALLOW_HOSTS',
    default: '(empty)',
    doc: 'Comma-separated host names or CIDRs that rest-hook endpoints may reach although they are private (an integration engine on the LAN).',
  },
  { env: 'DELIVERY_ATTEMPTS', default: '15', doc: 'Attempts to deliver one notification (exponential backoff with jitter) before its subscription goes to `error`.' },
  {
    env: 'DELIVERY_MAX_BACKOFF_MS',
    default: '14400000',
    doc: 'Longest wait between two delivery attempts; with the defaults (1 s, tripling, capped at 4 h, 15 attempts) the last attempt comes about 23 hours after the first.',
  },
  { env: 'EVENT_RETENTION_DAYS', default: '30', doc: 'How long notification events (and their delivery log) stay readable through `$events` and `$status`.' },
  { env: 'OUTBOX_POLL_MS', default: '1000', doc: 'How often the dispatcher looks for change events a missed wake-up (LISTEN/NOTIFY) left in the outbox.' },
  { env: 'METRICS_ENABLED', default: 'true', doc: 'Serve Prometheus metrics at `/metrics` (no tenant or subscription ids as labels).' },
  { env: 'METRICS_TOKEN', default: '(unset)', doc: 'When set, `/metrics` requires `Authorization: Bearer <METRICS_TOKEN>`.' },
  {
    env: 'METRICS_TENANT_SERIES',
    default: 'false',
    doc: 'Add per-tenant series to `/metrics` (label `tenant`): requests, resources, stored bytes, live sessions, last activity. Off: no metric carries a tenant label.',
  },
  { env: 'METRICS_TENANT_SERIES_MAX', default: '100', doc: 'Most tenants with per-tenant series of their own (the first met); the others are summed under `tenant="_other"`, so the series stay bounded.' },
  {
    env: 'USAGE_FLUSH_INTERVAL_MS',
    default: '10000',
    doc: 'How often each server process adds the FHIR requests it counted per tenant to the database (one upsert per active tenant), where the usage figures of every process add up.',
  },
  { env: 'EXPORT_RETENTION_HOURS', default: '24', doc: 'Bulk Data `$export`: hours the output files of a completed export stay downloadable (files live under `$DATA_DIR/exports`).' },
  { env: 'EXPORT_FILE_MAX_RESOURCES', default: '100000', doc: 'Bulk Data `$export`: most resources per NDJSON output file; a type with more is split over several files.' },
  { env: 'AUDIT_TRAIL', default: 'true', doc: 'Record an AuditEvent for every interaction, sign-in and token (docs/audit.md). `false` exists only to measure what auditing costs; never turn it off in production.' },
  { env: 'AUDIT_RETENTION_DAYS', default: '2192', doc: 'Days audit records are kept (6 years) unless the tenant sets its own (`npm run cli -- audit retention`); older ones are purged.' },
  { env: 'AUDIT_SHIP_INTERVAL_MS', default: '20', doc: 'Audit records of reads, searches and sign-ins are appended to a spool file under `$DATA_DIR/audit-spool` before the answer goes out, and stored in the database in batches this many milliseconds later (docs/audit.md). A process that dies leaves its file; the next one on the same DATA_DIR stores it.' },
  { env: 'TENANT_ERASURE_GRACE_DAYS', default: '30', doc: 'Days between the termination of a tenant and the erasure of every row, file and job of it (docs/scaling.md, "Termination and erasure"); until then every request for it is answered 404 while its data stays in the database.' },
  { env: 'INVITATION_TTL_HOURS', default: '72', doc: 'Hours an invitation link (a new tenant\'s first administrator, an invited user) can be used to set a password; it works once.' },
  {
    env: 'BREAK_GLASS_MAX_MINUTES',
    default: '240',
    doc: "Longest break-glass grant that may be asked for (a platform administrator's time-limited, read-only, audited access to one tenant's data, approved first by the tenant's administrators when its policy says so); it ends by itself when its minutes are up.",
  },
  { env: 'AUDIT_PURGE_INTERVAL_MINUTES', default: '360', doc: 'Minutes between runs of the audit retention purge (each run is itself audited in every tenant it purged).' },
  { env: 'LOG_LEVEL', default: 'info', doc: 'pino log level (fatal, error, warn, info, debug, trace, silent).' },
  { env: 'MAX_BODY_BYTES', default: '16777216', doc: 'Largest accepted request body (bytes); larger -> 413.' },
  { env: 'MAX_BUNDLE_ENTRIES', default: '1000', doc: 'Most entries accepted in one batch/transaction Bundle; more -> 413.' },
  { env: 'DB_POOL_SIZE', default: '10', doc: 'PostgreSQL pool size (embedded mode always uses 1).' },
  {
    env: 'DB_STATEMENT_TIMEOUT_MS',
    default: '30000',
    doc: 'Longest a single SQL statement may run (0: no limit); a search cut by it answers 503 `STATEMENT_TIMEOUT`, so one pathological query cannot hold a connection for long.',
  },
  {
    env: 'DB_TENANT_MAX_CONNECTIONS',
    default: '(half of DB_POOL_SIZE)',
    doc: 'Most pooled connections one tenant may use at once (PostgreSQL); its further requests queue, so a busy tenant cannot starve the others.',
  },
  {
    env: 'DB_ACQUIRE_TIMEOUT_MS',
    default: '10000',
    doc: 'How long a request waits for a database connection: then 429 `TENANT_BUSY` (its tenant holds all of its share) or 503 `DB_UNAVAILABLE`.',
  },
  { env: 'MAX_SEARCH_PARAMS', default: '40', doc: 'Most search parameters (criteria, includes, sorts, ...) in one search or condition; more -> 400 `SEARCH_TOO_COMPLEX`.' },
  { env: 'DEMO_TENANT', default: 'true', doc: 'Create a `demo` tenant on first start if it does not exist.' },
  { env: 'SHUTDOWN_GRACE_MS', default: '10000', doc: 'How long SIGTERM waits for in-flight requests before closing anyway.' },
  {
    env: 'STATS_INTERVAL_MS',
    default: '15000',
    doc: 'When PostgreSQL autovacuum is off (or on the embedded database), how often the server runs VACUUM (ANALYZE) on tables that changed by >10% (search plans need fresh statistics).',
  },
  {
    env: 'TRUST_PROXY',
    default: 'false',
    doc: 'Behind a reverse proxy: take client addresses from X-Forwarded-For, trusting every peer (absolute URLs always come from PUBLIC_BASE_URL). Anyone who can reach the server directly can then claim any address; prefer TRUSTED_PROXIES.',
  },
  {
    env: 'TRUSTED_PROXIES',
    default: '(empty)',
    doc: 'Comma-separated CIDR blocks of your reverse proxies (e.g. `10.0.0.0/8,2001:db8::/32`): X-Forwarded-For is believed only from them, hop by hop, so a client cannot get around a tenant\'s IP allow-list with a forged header. Takes precedence over TRUST_PROXY.',
  },
  {
    env: 'TENANT_HOSTS_ENABLED',
    default: 'false',
    doc: 'Host-based tenants: a request whose Host names a tenant\'s own host name (set by a platform admin) is served at `/fhir` as that tenant\'s base, `<PUBLIC_BASE_URL scheme>://<host>/fhir`, beside `/fhir/{tenant}`. Host is client-supplied: enable only behind a proxy that routes exactly those names here (docs/admin-api.md, "Host-based tenants").',
  },
  {
    env: 'BREACHED_PASSWORDS_FILE',
    default: '(unset)',
    doc: 'A file of SHA-1 hashes of breached passwords, one per line in hex (optionally `:count`), sorted by hash: Have I Been Pwned\'s offline "ordered by hash" list. Tenants with `breachedPasswordCheck` refuse such passwords; unset: no such check.',
  },
  { env: 'AUTH_TOKEN_TTL_SECONDS', default: '3600', doc: 'Lifetime of access tokens issued to apps (SMART: at most an hour).' },
  { env: 'AUTH_BACKEND_TOKEN_TTL_SECONDS', default: '300', doc: 'Lifetime of SMART Backend Services (client_credentials) access tokens (SMART: should not exceed 5 minutes).' },
  { env: 'AUTH_REFRESH_TOKEN_DAYS', default: '30', doc: 'Lifetime of `offline_access` refresh tokens (and of grants); `online_access` ones end with the sign-in session.' },
  { env: 'AUTH_SESSION_IDLE_MINUTES', default: '15', doc: 'A sign-in session unused for this long ends (the user signs in again).' },
  {
    env: 'AUTH_LOCKOUT_ATTEMPTS',
    default: '5',
    doc: 'Failed sign-ins from one client address, within AUTH_LOCKOUT_MINUTES of each other, that lock that address out of the account (the user can still sign in from elsewhere).',
  },
  {
    env: 'AUTH_LOCKOUT_MINUTES',
    default: '15',
    doc: 'How long a lock lasts, and the window the sign-in failure counters cover (a password reset unlocks at once).',
  },
  {
    env: 'AUTH_LOCKOUT_ACCOUNT_ATTEMPTS',
    default: '50',
    doc: 'Failed sign-ins from all addresses together, within AUTH_LOCKOUT_MINUTES, that lock the account for everyone (stops guessing spread over many addresses).',
  },
  {
    env: 'AUTH_IP_FAILURES',
    default: '20',
    doc: 'Failed sign-ins (any usernames) one client address may make per AUTH_LOCKOUT_MINUTES; then it is answered 429 until the window ends. Counted per server process.',
  },
  {
    env: 'AUTH_ALLOW_PRIVATE_JWKS_URLS',
    default: 'false',
    doc: 'Let client JWKS URLs point at loopback/private addresses (development, tests). Off: such URLs are refused (SSRF).',
  },
  { env: 'AUTH_CLOCK_SKEW_SECONDS', default: '10', doc: 'Clock skew tolerated when checking access token exp/nbf/iat.' },
  {
    env: 'RATE_LIMIT_ENABLED',
    default: 'true',
    doc: 'Request budgets per tenant, per client and per client address (docs/rate-limits.md): counted in Redis when REDIS_URL is set (every process shares them), in the process otherwise. Over a budget: 429 `RATE_LIMITED` with `Retry-After`.',
  },
  { env: 'RATE_LIMIT_TENANT_PER_MINUTE', default: '600000', doc: "FHIR requests per minute of a tenant whose plan sets no `requestsPerMinute` (a plan's own figure wins; a plan without a limit has none)." },
  { env: 'RATE_LIMIT_CLIENT_PER_MINUTE', default: '300000', doc: "FHIR requests per minute of one client (app or backend service) within its tenant, so one client cannot spend the whole tenant's budget." },
  {
    env: 'RATE_LIMIT_AUTH_IP_PER_MINUTE',
    default: '600',
    doc: 'Requests per minute from one client address to the token endpoint and the sign-in pages (authorize, interaction, manage sign-in), and, counted apart, to `metadata`.',
  },
  {
    env: 'SECRETS_KEY',
    default: '(unset: $DATA_DIR/secrets.key)',
    doc: 'The 32-byte key (base64 or hex) that encrypts signing keys, the cookie key, client secrets and TOTP secrets in the database. Unset: read from, or created on first start in, `$DATA_DIR/secrets.key`. Every process sharing a database needs the same key; losing it makes those secrets unreadable.',
  },
];

function int(env: NodeJS.ProcessEnv, key: string, fallback: number, min = 0): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`config: ${key} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

/**
 * A 32-byte key written as 64 hex digits or as base64/base64url (SECRETS_KEY and `<DATA_DIR>/secrets.key`), or
 * undefined when it is neither.
 */
export function decodeSecretsKey(raw: string): Buffer | undefined {
  const text = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return undefined;
  const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === 32 ? key : undefined;
}

function secretsKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const raw = env.SECRETS_KEY;
  if (raw === undefined || raw === '') return undefined;
  const key = decodeSecretsKey(raw);
  // the value itself is never echoed: it is a secret
  if (!key) throw new Error('config: SECRETS_KEY must be 32 bytes, written as 64 hex digits or as base64 (e.g. `openssl rand -base64 32`)');
  return key;
}

function bool(env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`config: ${key} must be true or false, got "${raw}"`);
}

/** Reads and validates the configuration; a bad value throws (the process stops at boot). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int(env, 'PORT', 8080);
  const publicBaseUrl = (env.PUBLIC_BASE_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  try {
    const u = new URL(publicBaseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new Error(`config: PUBLIC_BASE_URL must be an absolute http(s) URL, got "${publicBaseUrl}"`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  const dbPoolSize = int(env, 'DB_POOL_SIZE', 10, 1);
  return {
    port,
    host: env.HOST || '0.0.0.0',
    publicBaseUrl,
    databaseUrl,
    databaseAdminUrl: env.DATABASE_ADMIN_URL || databaseUrl,
    dataDir: env.DATA_DIR || './data',
    redisUrl: env.REDIS_URL || undefined,
    logLevel: env.LOG_LEVEL || 'info',
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 16 * 1024 * 1024, 1024),
    maxBundleEntries: int(env, 'MAX_BUNDLE_ENTRIES', 1000, 1),
    dbPoolSize,
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 30000, 0),
    dbTenantMaxConnections: int(env, 'DB_TENANT_MAX_CONNECTIONS', Math.max(1, Math.ceil(dbPoolSize / 2)), 1),
    dbAcquireTimeoutMs: int(env, 'DB_ACQUIRE_TIMEOUT_MS', 10000, 0),
    maxSearchParams: int(env, 'MAX_SEARCH_PARAMS', 40, 1),
    demoTenant: bool(env, 'DEMO_TENANT', true),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10000),
    statsIntervalMs: int(env, 'STATS_INTERVAL_MS', 15000, 1000),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    trustedProxies: (env.TRUSTED_PROXIES ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    tenantHostsEnabled: bool(env, 'TENANT_HOSTS_ENABLED', false),
    breachedPasswordsFile: env.BREACHED_PASSWORDS_FILE || undefined,
    authTokenTtl: int(env, 'AUTH_TOKEN_TTL_SECONDS', 3600, 30),
    authBackendTokenTtl: int(env, 'AUTH_BACKEND_TOKEN_TTL_SECONDS', 300, 30),
    authRefreshTokenDays: int(env, 'AUTH_REFRESH_TOKEN_DAYS', 30, 1),
    authSessionIdleMinutes: int(env, 'AUTH_SESSION_IDLE_MINUTES', 15, 1),
    runWorkers: bool(env, 'RUN_WORKERS', true),
    queuePrefix: env.QUEUE_PREFIX || 'tenfhir',
    subscriptionsAllowLoopback: bool(env, 'SUBSCRIPTIONS_ALLOW_LOOPBACK', false),
    subscriptionsAllowHosts: (env.SUBSCRIPTIONS_ALLOW_HOSTS ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    deliveryAttempts: int(env, 'DELIVERY_ATTEMPTS', 15, 1),
    deliveryMaxBackoffMs: int(env, 'DELIVERY_MAX_BACKOFF_MS', 4 * 3600 * 1000, 10),
    eventRetentionDays: int(env, 'EVENT_RETENTION_DAYS', 30, 1),
    outboxPollMs: int(env, 'OUTBOX_POLL_MS', 1000, 10),
    metricsEnabled: bool(env, 'METRICS_ENABLED', true),
    metricsToken: env.METRICS_TOKEN || undefined,
    metricsTenantSeries: bool(env, 'METRICS_TENANT_SERIES', false),
    metricsTenantSeriesMax: int(env, 'METRICS_TENANT_SERIES_MAX', 100, 1),
    usageFlushIntervalMs: int(env, 'USAGE_FLUSH_INTERVAL_MS', 10000, 100),
    exportRetentionHours: int(env, 'EXPORT_RETENTION_HOURS', 24, 1),
    exportFileMaxResources: int(env, 'EXPORT_FILE_MAX_RESOURCES', 100000, 1),
    auditTrail: bool(env, 'AUDIT_TRAIL', true),
    auditRetentionDays: int(env, 'AUDIT_RETENTION_DAYS', 2192, 1),
    auditPurgeIntervalMinutes: int(env, 'AUDIT_PURGE_INTERVAL_MINUTES', 360, 1),
    auditShipIntervalMs: int(env, 'AUDIT_SHIP_INTERVAL_MS', 20, 1),
    breakGlassMaxMinutes: int(env, 'BREAK_GLASS_MAX_MINUTES', 240, 1),
    invitationTtlHours: int(env, 'INVITATION_TTL_HOURS', 72, 1),
    tenantErasureGraceDays: int(env, 'TENANT_ERASURE_GRACE_DAYS', 30, 0),
    authLockoutAttempts: int(env, 'AUTH_LOCKOUT_ATTEMPTS', 5, 1),
    authLockoutMinutes: int(env, 'AUTH_LOCKOUT_MINUTES', 15, 1),
    authLockoutAccountAttempts: int(env, 'AUTH_LOCKOUT_ACCOUNT_ATTEMPTS', 50, 1),
    authIpFailures: int(env, 'AUTH_IP_FAILURES', 20, 1),
    authClockSkewSeconds: int(env, 'AUTH_CLOCK_SKEW_SECONDS', 10, 0),
    authAllowPrivateJwksUrls: bool(env, 'AUTH_ALLOW_PRIVATE_JWKS_URLS', false),
    rateLimitEnabled: bool(env, 'RATE_LIMIT_ENABLED', true),
    rateLimitTenantPerMinute: int(env, 'RATE_LIMIT_TENANT_PER_MINUTE', 600000, 1),
    rateLimitClientPerMinute: int(env, 'RATE_LIMIT_CLIENT_PER_MINUTE', 300000, 1),
    rateLimitAuthIpPerMinute: int(env, 'RATE_LIMIT_AUTH_IP_PER_MINUTE', 600, 1),
    secretsKey: secretsKey(env),
  };
}
