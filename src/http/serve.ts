// Listening and graceful shutdown: SIGTERM/SIGINT stop accepting connections and let in-flight requests finish
// (closing keep-alive sockets as they go idle). SHUTDOWN_GRACE_MS bounds it (issue 8, fault 5): at the deadline every
// unfinished request is logged and cut, its database statement cancelled, and the process exits even if cleanup hangs.
import type { Server } from 'node:http';
import type { Express } from 'express';
import { flushLogs, type Logger } from '../platform/log.js';
import type { InFlightRequests } from './inflight.js';

export interface ServeOptions {
  port: number;
  host: string;
  shutdownGraceMs: number;
  log: Logger;
  /** Requests in flight, cut at the grace deadline. */
  inflight?: InFlightRequests;
  /** After the HTTP server has closed: stop timers and jobs, close the database. */
  cleanup: () => Promise<void>;
}

/** After the grace deadline, cleanup (closing the pool, stopping jobs) gets this long before the process exits anyway. */
const CLEANUP_MS = 3000;

export async function serve(app: Express, o: ServeOptions): Promise<Server> {
  const server: Server = app.listen(o.port, o.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  let stopping = false;
  const exit = (code: number) => {
    flushLogs();
    process.exit(code);
  };
  // the hard stop: whatever cleanup still waits for (a pool that never drains) does not keep the process alive
  const exitAfter = (ms: number) =>
    setTimeout(() => {
      o.log.error('cleanup did not finish in time; exiting');
      exit(1);
    }, ms).unref();
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    o.log.info({ signal, inFlight: o.inflight?.size ?? 0 }, 'shutting down: no new connections, finishing in-flight requests');
    const deadline = setTimeout(() => {
      const cut = o.inflight?.cutAll(o.log) ?? 0;
      server.closeAllConnections();
      o.log.warn({ cut, graceMs: o.shutdownGraceMs }, 'shutdown grace period over');
      exitAfter(CLEANUP_MS);
    }, o.shutdownGraceMs);
    deadline.unref();
    // Keep-alive sockets become idle as in-flight requests finish; close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearInterval(sweep);
    clearTimeout(deadline);
    exitAfter(CLEANUP_MS + o.shutdownGraceMs);
    await o.cleanup();
    o.log.info('stopped');
    exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return server;
}
