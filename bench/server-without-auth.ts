// BENCHMARK ONLY. The server with token verification switched off, for bench/auth.ts, which compares it with the
// shipped server (src/main.ts) on the same database to measure what verification costs.
//
// It builds its dependencies as src/main.ts does (same configuration, database, migrations, statistics upkeep) and
// differs in one call: createApp(deps, { verifier }) with a verifier that reads no token and answers every /fhir
// request with the guard of an unrestricted system token. No configuration key or environment variable of the
// shipped server can do this: only a program that calls createApp itself can. It always listens
// on 127.0.0.1 (HOST is ignored), creates no demo tenant and resumes no background jobs.
//
//   node --import ./scripts/register-ts.mjs bench/server-without-auth.ts     (bench/auth.ts starts it)

import '../src/platform/runtime-notice.js';
import { loadConfig } from '../src/config/index.js';
import { buildDeps, closeDeps } from '../src/compose.js';
import { createApp } from '../src/http/app.js';
import { accessFromToken } from '../src/auth/access.js';
import { TokenGuard } from '../src/auth/verify.js';
import { serve } from '../src/http/serve.js';
import { createLogger, flushLogs } from '../src/platform/log.js';
import { startStatsKeeper } from '../src/store/maintenance.js';

const HOST = '127.0.0.1';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const deps = await buildDeps(config, log);
  const stopStats = startStatsKeeper(deps.db, log, config.statsIntervalMs);
  const guard = new TokenGuard(accessFromToken({ scope: 'system/*.cruds', role: 'system' }));
  const { app, auth } = createApp(deps, { verifier: { verify: async () => ({ guard }) } });
  await serve(app, {
    port: config.port,
    host: HOST,
    shutdownGraceMs: config.shutdownGraceMs,
    log,
    async cleanup() {
      stopStats();
      auth.close();
      await closeDeps(deps);
    },
  });
  log.warn({ port: config.port }, 'BENCHMARK ONLY: token verification is OFF on /fhir (bench/server-without-auth.ts)');
  console.log(`tenfhir WITHOUT AUTH (benchmark only) listening on http://${HOST}:${config.port} (${deps.db.kind})`);
}

main().catch((err) => {
  flushLogs();
  console.error(`server-without-auth failed to start: ${(err as Error).message}`);
  process.exit(1);
});
