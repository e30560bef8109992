// The only importer of `pg` and PGlite: pool, tenant-bound connections, transactions, timing.
// Tenant binding (ARCHITECTURE.md "Second wall"): every connection runs as the `fhir_app` role, which does not
// own the tables and has no BYPASSRLS, and carries `app.tenant_id`, which the row-level security policies read.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from './log.js';

export type Row = Record<string, unknown>;

/** Something that runs SQL with bound parameters. Inside a transaction this is the transaction's connection. */
export interface Queryable {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Db {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` on a connection bound to `tenantId` (autocommit statements). */
  withTenant<T>(tenantId: string, fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` inside ONE transaction bound to `tenantId`; retried on serialization failures and deadlocks. */
  tx<T>(tenantId: string, fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` as fhir_app bound to no tenant (every tenant table looks empty): the authorization server's platform
   * tables (clients, sessions, codes, keys), which are looked up by opaque ids before any tenant is known.
   */
  platform<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** platform(), inside one transaction. */
  platformTx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs a statement as the admin (table owner) connection: migrations and platform-level reads only.
   * On PGlite, code given a client by withClient must issue parameterised statements inside BEGIN/COMMIT.
   */
  admin(): Queryable & { withClient<T>(fn: (q: Queryable) => Promise<T>): Promise<T> };
  /** Checks the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const APP_ROLE = 'fhir_app';
const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The binding of platform work: no tenant, so row-level security shows no tenant's rows. */
const NO_TENANT = '';
const tenantOf = new WeakMap<pg.PoolClient, string>();

/** SQLSTATEs after which the whole transaction is safely retried. */
const RETRYABLE = new Set(['40001', '40P01']);

function bindTenantSql(tenantId: string): string {
  // The slug grammar (checked by acquire) excludes quotes, so inlining it is safe.
  return `SELECT set_config('app.tenant_id', '${tenantId}', false)`;
}

/**
 * Two ways to bind a connection to a tenant, one wall:
 * - PostgreSQL (`session`): each pooled connection runs `SET ROLE fhir_app` once and carries the tenant as a
 *   session setting, re-set whenever the connection changes tenant, so a read is one round trip.
 * - PGlite (`local`): every connection shares PGlite's single session, so role and tenant are set with
 *   SET LOCAL inside a transaction around every unit of work (the socket keeps a transaction on one connection).
 */
function createPoolDb(
  kind: Db['kind'],
  appPool: pg.Pool,
  adminPool: pg.Pool,
  log: Logger,
  onClose: () => Promise<void>,
): Db {
  const sessionBinding = kind === 'postgres';
  if (sessionBinding) {
    appPool.on('connect', (client) => {
      // Every application connection acts as the RLS-bound role, whatever it logged in as.
      client.query(`SET ROLE ${APP_ROLE}`).catch((err) => log.error({ err }, 'SET ROLE fhir_app failed'));
    });
  }
  appPool.on('error', (err) => log.warn({ err }, 'idle database client error'));
  adminPool.on('error', (err) => log.warn({ err }, 'idle admin client error'));

  async function acquire(tenantId: string): Promise<pg.PoolClient> {
    if (tenantId !== NO_TENANT && !SLUG.test(tenantId)) throw new Error(`invalid tenant id ${JSON.stringify(tenantId)}`);
    const client = await appPool.connect();
    if (!sessionBinding) return client;
    try {
      if (tenantOf.get(client) !== tenantId) {
        tenantOf.delete(client);
        await client.query(bindTenantSql(tenantId));
        tenantOf.set(client, tenantId);
      }
      return client;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  async function begin(client: pg.PoolClient, tenantId: string): Promise<void> {
    if (sessionBinding) await client.query('BEGIN');
    // The slug grammar excludes quotes, so inlining it is safe; one simple-protocol round trip.
    else await client.query(`BEGIN; SET LOCAL ROLE ${APP_ROLE}; SELECT set_config('app.tenant_id', '${tenantId}', true)`);
  }

  async function inTx<T>(tenantId: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await acquire(tenantId);
      let broken: Error | undefined;
      try {
        await begin(client, tenantId);
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        const code = (err as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < 5) {
          log.info({ code, attempt }, 'retrying transaction');
          continue;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  async function withTenant<T>(tenantId: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
    if (!sessionBinding) return inTx(tenantId, fn);
    const client = await acquire(tenantId);
    let failed: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      failed = err as Error;
      throw err;
    } finally {
      // A connection that broke mid-query is destroyed, never reused.
      client.release(failed && isConnectionError(failed) ? failed : undefined);
    }
  }

  return {
    kind,
    withTenant,
    tx: inTx,
    platform: (fn) => withTenant(NO_TENANT, fn),
    platformTx: (fn) => inTx(NO_TENANT, fn),
    admin() {
      return {
        query: async (text: string, params?: unknown[]) => {
          if (sessionBinding || !params?.length) return adminPool.query(text, params) as never;
          // PGlite's socket interleaves the extended-protocol messages (Parse/Bind/Execute) of different
          // connections unless a transaction holds the session: run parameterised admin statements inside one.
          const c = await adminPool.connect();
          try {
            await c.query('BEGIN');
            const r = await c.query(text, params);
            await c.query('COMMIT');
            return r as never;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw err;
          } finally {
            c.release();
          }
        },
        async withClient<T>(fn: (q: Queryable) => Promise<T>) {
          const c = await adminPool.connect();
          try {
            return await fn(c);
          } finally {
            c.release();
          }
        },
      };
    },
    async ping() {
      await adminPool.query('SELECT 1');
    },
    async close() {
      await appPool.end();
      await adminPool.end();
      await onClose();
    },
  };
}

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return !code || code.startsWith('08') || code === '57P01';
}

export interface OpenDbOptions {
  /** An embedded database already served on loopback by another process (the running server, or tests). */
  pgliteSocketUrl?: string;
  databaseUrl?: string;
  databaseAdminUrl?: string;
  dataDir: string;
  poolSize: number;
  log: Logger;
}

/** Opens PostgreSQL when a URL is given, otherwise the embedded PGlite database under `dataDir`. */
export async function openDb(opts: OpenDbOptions): Promise<Db> {
  if (opts.pgliteSocketUrl) {
    const appPool = new pg.Pool({ connectionString: opts.pgliteSocketUrl, max: 2 });
    const adminPool = new pg.Pool({ connectionString: opts.pgliteSocketUrl, max: 1 });
    return createPoolDb('pglite', appPool, adminPool, opts.log, async () => {});
  }
  if (opts.databaseUrl) {
    const appPool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize });
    const adminPool = new pg.Pool({ connectionString: opts.databaseAdminUrl ?? opts.databaseUrl, max: 2 });
    return createPoolDb('postgres', appPool, adminPool, opts.log, async () => {});
  }
  const embedded = await openEmbedded(opts.dataDir, opts.log);
  const url = `postgres://postgres@127.0.0.1:${embedded.port}/postgres`;
  // PGlite is one session; its socket server serialises connections and keeps a transaction on its own connection.
  const appPool = new pg.Pool({ connectionString: url, max: 1 });
  const adminPool = new pg.Pool({ connectionString: url, max: 1 });
  return createPoolDb('pglite', appPool, adminPool, opts.log, embedded.close);
}

interface Embedded {
  port: number;
  close(): Promise<void>;
}

/** The file a running server leaves in DATA_DIR so the CLI can reach its embedded database on loopback. */
export function embeddedLockPath(dataDir: string): string {
  return join(resolve(dataDir), 'server.json');
}

/** If a live server holds the embedded database, returns the loopback port of its socket. */
export function runningEmbeddedPort(dataDir: string): number | undefined {
  const path = embeddedLockPath(dataDir);
  if (!existsSync(path)) return undefined;
  try {
    const { pid, port } = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; port: number };
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined;
  }
}

async function openEmbedded(dataDir: string, log: Logger): Promise<Embedded> {
  const dir = resolve(dataDir);
  if (runningEmbeddedPort(dir) !== undefined) {
    throw new Error(`another server already uses the embedded database in ${dir}; stop it or set DATA_DIR`);
  }
  mkdirSync(dir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(join(dir, 'pgdata'));
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  const lock = embeddedLockPath(dir);
  writeFileSync(lock, JSON.stringify({ pid: process.pid, port }));
  log.info({ dataDir: dir }, 'embedded PGlite database open');
  return {
    port,
    async close() {
      await server.stop();
      await db.close();
      rmSync(lock, { force: true });
    },
  };
}

export { pg };
