// Builds the Deps object from configuration: database (migrated), logger, search registry, clock and ids.
import { randomBytes, randomUUID } from 'node:crypto';
import { ensureSigningKey, KeyRing } from './auth/keys.js';
import { SecretBox } from './auth/secret-box.js';
import { loadSecretsKey } from './auth/secrets-key.js';
import type { Config } from './config/index.js';
import type { Deps } from './fhir/context.js';
import { openDb } from './platform/db.js';
import { createLogger, type Logger } from './platform/log.js';
import { SearchParamRegistry } from './search/registry.js';
import { TenantSearchParams } from './search/tenant-registry.js';
import { ensureSecret } from './store/auth-keys.js';
import { bindSealer } from './store/auth-sealing.js';
import { migrate } from './store/migrate.js';
import { JobRunner } from './jobs/runner.js';

export async function buildDeps(config: Config, log: Logger = createLogger(config.logLevel), pgliteSocketUrl?: string): Promise<Deps> {
  const db = await openDb({
    pgliteSocketUrl,
    databaseUrl: config.databaseUrl,
    databaseAdminUrl: config.databaseAdminUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    tenantMaxConnections: config.dbTenantMaxConnections,
    acquireTimeoutMs: config.dbAcquireTimeoutMs,
    log,
  });
  const keys = new KeyRing(db);
  let cookieKey: string;
  try {
    // Secrets at rest (issue 8) are sealed with a key that lives outside the database.
    bindSealer(db, new SecretBox(await loadSecretsKey(config, log, db.kind === 'postgres')));
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
    await grantAppRole(db, config, log);
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
  return {
    config,
    db,
    log,
    registry,
    searchParams: new TenantSearchParams(registry, db),
    clock: () => new Date(),
    newId: randomUUID,
    auth: { keys, cookieKeys: [cookieKey] },
    jobs: new JobRunner(log),
  };
}

/**
 * When the application logs in with its own role (DATABASE_URL) and migrations run as the owner
 * (DATABASE_ADMIN_URL), let that login role act as fhir_app — and nothing more.
 */
async function grantAppRole(db: Deps['db'], config: Config, log: Logger): Promise<void> {
  if (!config.databaseUrl || !config.databaseAdminUrl || config.databaseAdminUrl === config.databaseUrl) return;
  const user = decodeURIComponent(new URL(config.databaseUrl).username);
  if (!user || !/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(user)) return;
  await db
    .admin()
    .query(`GRANT fhir_app TO "${user}"`)
    .catch((err) => log.warn({ err, role: user }, 'could not GRANT fhir_app to the application role'));
}

/** Refuses to run when the RLS wall would not hold; warns when the login role could lift it. */
async function checkAppRole(db: Deps['db'], log: Logger): Promise<void> {
  const r = await db.withTenant('0', (q) =>
    q.query<{ current_user: string; session_user: string; bypass: boolean }>(
      `SELECT current_user, session_user, (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user) AS bypass`,
    ),
  ).catch(() => undefined);
  const row = r?.rows[0];
  if (!row || row.current_user !== 'fhir_app') {
    throw new Error(`the application connection must act as role fhir_app (GRANT fhir_app TO ${row?.session_user ?? '<your role>'}); got ${row?.current_user ?? 'no connection'}`);
  }
  if (row.bypass && db.kind === 'postgres') {
    log.warn({ role: row.session_user }, 'DATABASE_URL logs in as a superuser/BYPASSRLS role; use a dedicated login role that is only granted fhir_app');
  }
}
