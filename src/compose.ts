// Builds the Deps object from configuration: database (migrated), logger, search registry, clock and ids.
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ensureSigningKey, KeyRing } from './auth/keys.js';
import { SecretBox } from './auth/secret-box.js';
import { loadSecretsKey } from './auth/secrets-key.js';
import type { Config } from './config/index.js';
import type { Deps } from './core/deps.js';
import { openDb } from './platform/db.js';
import { createLogger, type Logger } from './platform/log.js';
import { SearchParamRegistry } from './core/search-registry.js';
import { TenantSearchParams } from './tenancy/search-params.js';
import { ensureSecret } from './store/auth-keys.js';
import { bindSealer } from './store/auth-sealing.js';
import { migrate } from './store/migrate.js';
import { checkAppRole, grantAppRole } from './store/roles.js';
import { createQueues } from './jobs/queues.js';
import { Metrics } from './platform/metrics.js';
import { NO_AUDIT } from './store/audit.js';
import { AuditSpool } from './store/audit-spool.js';
import { PlanCatalog } from './store/plans.js';
import { trackUsage } from './tenancy/usage.js';
import { createRateLimits } from './tenancy/rate-limits.js';

export async function buildDeps(config: Config, log: Logger = createLogger(config.logLevel), pgliteSocketUrl?: string): Promise<Deps> {
  const db = await openDb({
    pgliteSocketUrl,
    databaseUrl: config.databaseUrl,
    databaseAdminUrl: config.databaseAdminUrl,
    dataDir: config.dataDir,
    publicBaseUrl: config.publicBaseUrl,
    poolSize: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    tenantMaxConnections: config.dbTenantMaxConnections,
    acquireTimeoutMs: config.dbAcquireTimeoutMs,
    log,
  });
  const clock = () => new Date();
  const keys = new KeyRing(db, clock);
  let cookieKey: string;
  try {
    // Secrets at rest (issue 8) are sealed with a key that lives outside the database.
    bindSealer(db, new SecretBox(await loadSecretsKey(config, log, db.kind === 'postgres')));
    const applied = await migrate(db, { log });
    if (applied.length) log.info({ applied }, 'migrations applied');
    await grantAppRole(db, config.databaseUrl, config.databaseAdminUrl, log);
    await checkAppRole(db, log);
    // Signing keys and the cookie secret live in the database (sealed): every process and restart shares them.
    await ensureSigningKey(db, log);
    await keys.refresh();
    cookieKey = await ensureSecret(db, 'cookie-key-1', () => randomBytes(32).toString('base64url'));
  } catch (err) {
    await db.close();
    throw err;
  }
  const registry = new SearchParamRegistry();
  const metrics = new Metrics();
  const audit = config.auditTrail ? new AuditSpool(db, log, join(config.dataDir, 'audit-spool'), { shipIntervalMs: config.auditShipIntervalMs }) : NO_AUDIT;
  return {
    config,
    db,
    log,
    registry,
    searchParams: new TenantSearchParams(registry, db, clock),
    clock,
    newId: randomUUID,
    auth: { keys, cookieKeys: [cookieKey] },
    queues: createQueues(config, log, metrics),
    metrics,
    audit,
    // plans (src/store/plans.ts)
    plans: await PlanCatalog.load(db, log, clock),
    // rate limits (src/tenancy/rate-limits.ts)
    rateLimits: createRateLimits(config, log),
    // usage (src/tenancy/usage.ts)
    usage: trackUsage({ config, db, log, clock, metrics }),
  };
}

/**
 * Closes what buildDeps opened, in the order shutdown needs: the queues, rate limits and usage counters (their last
 * counts written), then the audit spool (what it still holds goes into the database; left open, its retries on a
 * closed pool keep the process alive), then the database. Background workers stop before this.
 */
export async function closeDeps(deps: Deps): Promise<void> {
  await deps.queues.close();
  await deps.rateLimits.close();
  await deps.usage.close();
  await deps.audit.close();
  await deps.db.close();
}
