// `npm run worker`: a process that runs the background workers (reindex, subscription deliveries and maintenance) and
// no HTTP, beside API servers started with RUN_WORKERS=false. It needs the shared queues (REDIS_URL) and PostgreSQL.
import './platform/runtime-notice.js';
import { loadConfig } from './config/index.js';
import { buildDeps, closeDeps } from './compose.js';
import { AuditSpool } from './store/audit-spool.js';
import { startJobSweeper, startReindexWorker } from './jobs/reindex.js';
import { localExportStorage, startExportWorker } from './export/worker.js';
import { startErasureWorker } from './admin/erase.js';
import { createLogger, flushLogs } from './platform/log.js';
import { startSubscriptionWorkers } from './subscriptions/runtime.js';
import { WebSocketChannel } from './subscriptions/websocket.js';

/** What keeps the process from starting (a configuration it cannot work with), or undefined. */
function refusal(config: ReturnType<typeof loadConfig>): string | undefined {
  if (!config.redisUrl) {
    return 'REDIS_URL is unset: without Redis the job queue is in-process and cannot be shared, so the server runs its own workers (RUN_WORKERS=true); set REDIS_URL to run separate workers';
  }
  if (!config.databaseUrl) return 'DATABASE_URL is unset: the embedded database belongs to one server process; separate workers need PostgreSQL';
  return undefined;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const refused = refusal(config);
  if (refused) {
    console.error(`tenfhir worker: ${refused}`);
    process.exit(1);
  }
  const log = createLogger(config.logLevel);
  const deps = await buildDeps(config, log);
  // audit records a stopped process spooled but had not stored yet (src/store/audit-spool.ts)
  if (deps.audit instanceof AuditSpool) deps.audit.startRecovery();
  startReindexWorker(deps);
  await startErasureWorker(deps);
  const stopExports = startExportWorker(deps, { storage: localExportStorage(deps) });
  // jobs whose process died are queued again (any number of workers and servers may sweep: adding is idempotent)
  const stopSweeper = startJobSweeper(deps);
  // no sockets here: websocket deliveries are PUBLISHed on Redis to the API processes holding the sockets
  const websockets = new WebSocketChannel(deps);
  const subscriptions = await startSubscriptionWorkers(deps, { websockets });
  log.info({ queues: deps.queues.names() }, 'worker started');
  console.log('tenfhir worker running (no HTTP); SIGTERM stops it');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping');
    // a second signal, or cleanup that hangs, does not keep the process alive for long
    setTimeout(() => {
      log.error('worker cleanup did not finish in time; exiting');
      flushLogs();
      process.exit(1);
    }, config.shutdownGraceMs + 10_000).unref();
    stopSweeper();
    stopExports();
    await subscriptions.stop().catch((err) => log.warn({ err }, 'stopping the subscription workers failed'));
    await websockets.close();
    // handlers see their signals and stop between steps; then the database they write to
    await closeDeps(deps);
    flushLogs();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  flushLogs();
  console.error(`tenfhir worker failed to start: ${(err as Error).message}`);
  process.exit(1);
});
