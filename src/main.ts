// Composition root: config -> deps -> http server; demo tenant on first start; graceful SIGTERM.
import './platform/runtime-notice.js';
import { loadConfig } from './config/index.js';
import { buildDeps, closeDeps } from './compose.js';
import { AuditSpool } from './store/audit-spool.js';
import { createApp } from './http/app.js';
import { serve } from './http/serve.js';
import { startJobSweeper, startReindexWorker } from './jobs/reindex.js';
import { startExportWorker } from './export/worker.js';
import { startErasureWorker } from './admin/erase.js';
import { startSubscriptionWorkers, type SubscriptionWorkers } from './subscriptions/runtime.js';
import { WebSocketChannel } from './subscriptions/websocket.js';
import { startStatsKeeper } from './store/maintenance.js';
import { createLogger, flushLogs } from './platform/log.js';
import { findTenant } from './store/tenants.js';
import { createTenant, ensureCatalogTenant } from './tenancy/create-tenant.js';
import { registerClient } from './auth/admin.js';
import { startAuthPurge } from './auth/purge.js';
import { startAuditPurge } from './jobs/audit-purge.js';
import { sealStoredSecrets } from './auth/seal-stored.js';
import { findClient } from './store/auth-payloads.js';

/** The demo tenant's operator client: tokens for it come from `npm run cli -- token` (its key is held by no one). */
const DEMO_CLIENT = 'demo-cli';
/** The platform catalog's operator client (docs/catalog.md): platform admins write the catalog with its tokens. */
const CATALOG_CLIENT = 'platform-cli';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const deps = await buildDeps(config, log);
  // audit records a stopped process spooled but had not stored yet (src/store/audit-spool.ts)
  if (deps.audit instanceof AuditSpool) deps.audit.startRecovery();
  // the platform catalog every tenant reads (docs/catalog.md), on every start
  if (await ensureCatalogTenant(deps)) log.info({ tenantId: 'platform' }, 'created the platform catalog tenant');
  if (config.demoTenant && !(await findTenant(deps.db, 'demo'))) {
    await createTenant(deps, 'demo', 'Demo Clinic');
    log.info({ tenantId: 'demo' }, 'created the demo tenant');
  }
  const stopStats = startStatsKeeper(deps.db, log, config.statsIntervalMs);
  // expired authorization records (codes, sessions, refresh tokens, launches, sign-in counters) every 10 minutes
  const stopPurge = startAuthPurge(deps.db, log);
  const stopAuditPurge = startAuditPurge(deps);
  const { app, auth, inflight, subscriptions, exports } = createApp(deps);
  if (!(await findClient(deps.db, CATALOG_CLIENT))) {
    await registerClient(deps, auth.provider(), { tenant: 'platform', kind: 'operator', name: 'Platform catalog operator (CLI tokens)', clientId: CATALOG_CLIENT, scope: 'system/*.cruds' }).catch((err) => {
      // another process starting on the same database registered it first
      if ((err as { code?: string }).code !== 'CLIENT_EXISTS') throw err;
    });
  }
  if ((await findTenant(deps.db, 'demo')) && !(await findClient(deps.db, DEMO_CLIENT))) {
    await registerClient(deps, auth.provider(), { tenant: 'demo', kind: 'operator', name: 'Demo operator (CLI tokens)', clientId: DEMO_CLIENT, scope: 'system/*.cruds' });
  }
  // Jobs a previous process left running continue in the background: they never delay or block the start.
  let stopSweeper = () => {};
  let stopExports = () => {};
  let workers: SubscriptionWorkers | undefined;
  // the websocket channel: $get-ws-binding-token, /fhir/{tenant}/$subscription-ws, and the sender deliveries use
  const websockets = new WebSocketChannel(deps);
  subscriptions.websockets = websockets;
  const server = await serve(app, {
    port: config.port,
    host: config.host,
    shutdownGraceMs: config.shutdownGraceMs,
    log,
    inflight,
    async cleanup() {
      await websockets.close();
      stopStats();
      stopPurge();
      stopAuditPurge();
      stopSweeper();
      stopExports();
      await workers?.stop();
      auth.close();
      // workers first (their handlers stop between steps), then the database they write to
      await closeDeps(deps);
    },
  });
  websockets.attach(server);
  // upgraded sockets would hold server.close() until the grace deadline: they close (1001) as the shutdown begins
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void websockets.close());
  // RUN_WORKERS=false: separate `npm run worker` processes work the shared (Redis) queues instead
  if (config.runWorkers) {
    startReindexWorker(deps);
    await startErasureWorker(deps);
    stopExports = startExportWorker(deps, exports);
    // the outbox dispatcher, notification deliveries and the subscriptions' maintenance sweep
    workers = await startSubscriptionWorkers(deps, { service: subscriptions, websockets });
  }
  stopSweeper = startJobSweeper(deps);
  // Secrets stored in clear by an earlier version are sealed in the background (issue 8).
  void sealStoredSecrets(deps.db, log).catch((err) => log.warn({ err }, 'could not encrypt the secrets stored in clear'));
  const mode = deps.db.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL';
  console.log(`tenfhir listening on ${config.publicBaseUrl} (${mode})`);
  if (await findTenant(deps.db, 'demo')) {
    const base = `${config.publicBaseUrl}/fhir/demo`;
    console.log(`FHIR base of the demo tenant: ${base}`);
    console.log(`SMART discovery: ${base}/.well-known/smart-configuration`);
    console.log(`get an access token (another terminal): npm run -s cli -- token demo --client ${DEMO_CLIENT} --scope 'system/*.cruds'`);
    console.log(`try: curl -H "Authorization: Bearer $(npm run -s cli -- token demo --client ${DEMO_CLIENT} --scope 'system/*.cruds')" ${base}/Patient`);
  } else {
    console.log('create a tenant with: npm run cli -- tenant create <slug> --name "<name>"');
  }
}

main().catch((err) => {
  flushLogs();
  console.error(`tenfhir failed to start: ${(err as Error).message}`);
  process.exit(1);
});
