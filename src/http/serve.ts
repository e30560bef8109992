// Listening and graceful shutdown: SIGTERM/SIGINT stop accepting connections, let in-flight requests finish
// (closing keep-alive sockets as they go idle, all of them after the grace period), then run the cleanup and exit.
import type { Server } from 'node:http';
import type { Express } from 'express';
import { flushLogs, type Logger } from '../platform/log.js';

export interface ServeOptions {
  port: number;
  host: string;
  shutdownGraceMs: number;
  log: Logger;
  /** After the HTTP server has closed: stop timers, close the database. */
  cleanup: () => Promise<void>;
}

export async function serve(app: Express, o: ServeOptions): Promise<Server> {
  const server: Server = app.listen(o.port, o.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    o.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    const force = setTimeout(() => server.closeAllConnections(), o.shutdownGraceMs);
    force.unref();
    // Keep-alive sockets become idle as in-flight requests finish; close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearInterval(sweep);
    await o.cleanup();
    o.log.info('stopped');
    flushLogs();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return server;
}
