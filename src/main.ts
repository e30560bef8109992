// Composition root: config -> deps -> http server; demo tenant on first start; graceful SIGTERM.
import type { Server } from 'node:http';
import { loadConfig } from './config/index.js';
import { buildDeps } from './compose.js';
import { createApp } from './http/app.js';
import { resumeStaleJobs } from './jobs/reindex.js';
import { startStatsKeeper } from './store/maintenance.js';
import { createLogger, flushLogs } from './platform/log.js';
import { findTenant } from './store/tenants.js';
import { createTenant } from './tenancy/create-tenant.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const deps = await buildDeps(config, log);
  if (config.demoTenant && !(await findTenant(deps.db, 'demo'))) {
    await createTenant(deps, 'demo', 'Demo Clinic');
    log.info({ tenantId: 'demo' }, 'created the demo tenant');
  }
  const stopStats = startStatsKeeper(deps.db, log, config.statsIntervalMs);
  const resumed = await resumeStaleJobs(deps);
  if (resumed) log.info({ resumed }, 'resumed background jobs');
  const { app } = createApp(deps);
  const server: Server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const mode = deps.db.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL';
  console.log(`tenfhir listening on ${config.publicBaseUrl} (${mode})`);
  if (await findTenant(deps.db, 'demo')) {
    console.log(`FHIR base of the demo tenant: ${config.publicBaseUrl}/fhir/demo`);
    console.log(`try: curl ${config.publicBaseUrl}/fhir/demo/metadata`);
  } else {
    console.log('create a tenant with: npm run cli -- tenant create <slug> --name "<name>"');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    const force = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
    force.unref();
    // Keep-alive sockets become idle as in-flight requests finish; close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearInterval(sweep);
    stopStats();
    await deps.db.close();
    log.info('stopped');
    flushLogs();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  flushLogs();
  console.error(`tenfhir failed to start: ${(err as Error).message}`);
  process.exit(1);
});
