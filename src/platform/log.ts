// The one pino root. Children per request carry { tenantId, requestId }; secrets and PHI are never logged.
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Logs go to stdout through a buffered asynchronous writer (one write per ~4 KB instead of one per line);
 * `flushLogs` is called on shutdown.
 */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  const dest = pino.destination({ dest: fd, sync: false, minLength: 4096 });
  destinations.add(dest);
  // Nothing waits in the buffer for more than a second.
  setInterval(() => {
    try {
      dest.flush();
    } catch {
      // not ready yet / closed
    }
  }, 1000).unref();
  return pino({
    level,
    base: undefined,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.password', '*.token', '*.client_secret', '*.access_token', '*.refresh_token'],
      censor: '[redacted]',
    },
  }, dest);
}

const destinations = new Set<ReturnType<typeof pino.destination>>();

/** Writes out buffered log lines (call before exiting). */
export function flushLogs(): void {
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // nothing buffered or already closed
    }
  }
}
