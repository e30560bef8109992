// Jest globalSetup: one migrated database per run. DATABASE_URL (real PostgreSQL) when set; otherwise an
// in-memory PGlite served on a loopback socket that every test worker connects to.
// Plain ESM: jest loads global setup outside its transform pipeline, so the TypeScript sources are
// loaded through the same swc hooks `npm start` uses.
import { register } from 'node:module';

register('../../scripts/ts-hooks.mjs', import.meta.url);

export default async function globalSetup() {
  // Every server of the run shares one database, so they share one key for the secrets stored in it (as several
  // processes on one PostgreSQL must: README, SECRETS_KEY). Test processes inherit it.
  process.env.SECRETS_KEY ??= (await import('node:crypto')).randomBytes(32).toString('base64');
  const { buildDeps } = await import('../../src/compose.js');
  const { loadConfig } = await import('../../src/config/index.js');
  const { createLogger } = await import('../../src/platform/log.js');
  const log = createLogger('error');
  if (process.env.DATABASE_URL) {
    const admin = process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL;
    // Migrates as the owner and grants fhir_app to the application's login role (see src/compose.ts).
    const deps = await buildDeps({ ...loadConfig(), databaseUrl: process.env.DATABASE_URL, databaseAdminUrl: admin }, log);
    await deps.db.close();
    return;
  }
  // One single-threaded PGlite serves every test worker (and the processes tests spawn), one transaction at a time:
  // a new connection's start-up waits behind whatever transaction runs, on a 2-core machine that is busy with both
  // workers. The server's 10 s default wait for a connection is for a real pool; here a start-up that took 10 s under
  // load failed a whole file (stop 22's CI), so connections may wait up to the tests' own 30 s timeout.
  process.env.DB_ACQUIRE_TIMEOUT_MS ??= '28000';
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  process.env.TENFHIR_PGLITE_SOCKET = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deps = await buildDeps(loadConfig(), log, process.env.TENFHIR_PGLITE_SOCKET);
  await deps.db.close();
  globalThis.__TENFHIR_PGLITE__ = {
    async close() {
      await server.stop();
      await db.close();
    },
  };
}
