// The embedded database (PGlite in DATA_DIR) and the private socket other processes of the same user reach it by.
// The socket is a Unix socket in a directory only the server's user may enter (0700, the socket itself 0600): PGlite
// has no authentication, so a loopback TCP port would hand any local user superuser access (issue 8, finding 5).
// DATA_DIR/server.json (0600) names the socket and the server's public base URL (the CLI mints tokens for it, issue 9);
// a live server is recognised by its socket answering, not by its PID alone, so a file left behind by `kill -9` never
// blocks the next start (issue 8, fault 4).
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from './log.js';

/** What a running server records for the CLI. */
interface ServerFile {
  pid: number;
  /** The directory holding the socket `.s.PGSQL.5432` (pg's convention for Unix sockets). */
  socketDir: string;
  nonce: string;
  startedAt: string;
  /** PUBLIC_BASE_URL of the process holding the database: the audience its tokens must name. */
  publicBaseUrl?: string;
}

const SOCKET_NAME = '.s.PGSQL.5432';
/** Unix socket paths are limited to ~107 bytes; longer DATA_DIRs get a private directory under the system temp dir. */
const MAX_SOCKET_PATH = 100;

/** The file a running server leaves in DATA_DIR so the CLI can reach its embedded database. */
export function embeddedLockPath(dataDir: string): string {
  return join(resolve(dataDir), 'server.json');
}

/** A pg connection string for the socket in `socketDir`. */
export function socketUrl(socketDir: string): string {
  return `postgres://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`;
}

function readServerFile(dataDir: string): ServerFile | undefined {
  try {
    const f = JSON.parse(readFileSync(embeddedLockPath(dataDir), 'utf8')) as Partial<ServerFile>;
    return typeof f.pid === 'number' && typeof f.socketDir === 'string' ? (f as ServerFile) : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return false; // that is us, starting: the file is from a previous life of this PID
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(path);
    const finish = (ok: boolean) => {
      s.destroy();
      done(ok);
    };
    s.setTimeout(timeoutMs, () => finish(false));
    s.once('connect', () => finish(true));
    s.once('error', () => finish(false));
  });
}

/**
 * The connection string of a live server's embedded database in `dataDir`, or undefined when none runs there. A
 * server.json whose process is gone, whose PID now belongs to another process, or whose socket does not answer is
 * stale.
 */
export async function runningEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  return (await runningEmbedded(dataDir))?.url;
}

/** A live server's embedded database in `dataDir`, and the public base URL that server recorded (if any). */
export async function runningEmbedded(dataDir: string): Promise<{ url: string; publicBaseUrl?: string } | undefined> {
  const f = readServerFile(dataDir);
  if (!f || !pidAlive(f.pid)) return undefined;
  if (!(await socketAnswers(join(f.socketDir, SOCKET_NAME)))) return undefined;
  return { url: socketUrl(f.socketDir), ...(typeof f.publicBaseUrl === 'string' ? { publicBaseUrl: f.publicBaseUrl } : {}) };
}

export interface Embedded {
  url: string;
  close(): Promise<void>;
}

function privateSocketDir(dataDir: string): string {
  const inData = join(dataDir, 'run');
  if (join(inData, SOCKET_NAME).length <= MAX_SOCKET_PATH) {
    mkdirSync(inData, { recursive: true, mode: 0o700 });
    chmodSync(inData, 0o700);
    return inData;
  }
  return mkdtempSync(join(tmpdir(), 'tenfhir-')); // created 0700
}

/** Opens PGlite in `dataDir` and serves it on a private Unix socket; server.json records `publicBaseUrl` when given. */
export async function openEmbedded(dataDir: string, log: Logger, publicBaseUrl?: string): Promise<Embedded> {
  const dir = resolve(dataDir);
  if (await runningEmbeddedUrl(dir)) throw new Error(`another server already uses the embedded database in ${dir}; stop it or set DATA_DIR`);
  const stale = readServerFile(dir);
  if (stale) {
    log.warn({ dataDir: dir, pid: stale.pid }, 'removed the lock file of a server that is no longer running');
    rmSync(join(stale.socketDir, SOCKET_NAME), { force: true });
    rmSync(embeddedLockPath(dir), { force: true });
  }
  mkdirSync(dir, { recursive: true });
  const socketDir = privateSocketDir(dir);
  const socketPath = join(socketDir, SOCKET_NAME);
  rmSync(socketPath, { force: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(join(dir, 'pgdata'));
  const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 16 });
  await server.start();
  chmodSync(socketPath, 0o600);
  const lock = embeddedLockPath(dir);
  const file: ServerFile = { pid: process.pid, socketDir, nonce: randomBytes(8).toString('hex'), startedAt: new Date().toISOString(), ...(publicBaseUrl ? { publicBaseUrl } : {}) };
  if (existsSync(lock)) unlinkSync(lock);
  writeFileSync(lock, JSON.stringify(file), { mode: 0o600 });
  log.info({ dataDir: dir }, 'embedded PGlite database open');
  return {
    url: socketUrl(socketDir),
    async close() {
      await server.stop();
      await db.close();
      // only our own file: a newer server may have taken over DATA_DIR after a forced shutdown
      if (readServerFile(dir)?.nonce === file.nonce) rmSync(lock, { force: true });
      rmSync(socketPath, { force: true });
    },
  };
}
