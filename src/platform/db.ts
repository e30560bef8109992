// The only importer of `pg`: pool, tenant-bound connections, transactions, and what happens when the database
// misbehaves. Tenant binding (ARCHITECTURE.md "Second wall"): every connection acts with the privileges of the `fhir_app`
// role, which owns no table and has no BYPASSRLS, and every unit of work is a transaction that binds `app.tenant_id`
// (which the row-level security policies read) with SET LOCAL, so no connection carries a tenant between transactions
// and Citus carries the binding to its workers (issue 16).
// Faults (issue 8): a connection that breaks is destroyed and its request answered 503, never the process; every
// statement has a time limit; a request that goes away cancels its query; no tenant holds more than its share of the
// pool.
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import pg from 'pg';
import { openEmbedded } from './embedded.js';
import type { Logger } from './log.js';
import { TenantGate } from './tenant-gate.js';
import type { CancelSignal } from './cancel.js';

export type Row = Record<string, unknown>;

/** Something that runs SQL with bound parameters. Inside a transaction this is the transaction's connection. */
export interface Queryable {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Per-call options: `signal` cancels the running statement (the client went away, the server shuts down). */
export interface DbCallOptions {
  signal?: CancelSignal;
}

export interface Db {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` on a connection bound to `tenantId` (autocommit statements). */
  withTenant<T>(tenantId: string, fn: (q: Queryable) => Promise<T>, opts?: DbCallOptions): Promise<T>;
  /** Runs `fn` inside ONE transaction bound to `tenantId`; retried on serialization failures and deadlocks. */
  tx<T>(tenantId: string, fn: (q: Queryable) => Promise<T>, opts?: DbCallOptions): Promise<T>;
  /**
   * Runs `fn` as fhir_app bound to no tenant (every tenant table looks empty): the authorization server's platform
   * tables (clients, sessions, codes, keys), which are looked up by opaque ids before any tenant is known.
   */
  platform<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** platform(), inside one transaction. */
  platformTx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs a statement as the admin (table owner) connection: migrations and platform-level reads only.
   * On PGlite, code given a client by withClient must issue parameterised statements inside BEGIN/COMMIT: `tx` does.
   */
  admin(): Queryable & { withClient<T>(fn: (q: Queryable) => Promise<T>): Promise<T>; tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> };
  /**
   * LISTEN on `channel` on a connection of its own (PostgreSQL; re-connected after a failure): `onMessage` gets each
   * NOTIFY's payload. On PGlite nothing is heard (one process: callers wake themselves). Returns the way to stop.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /** Checks the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const APP_ROLE = 'fhir_app';
const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The binding of platform work: no tenant, so row-level security shows no tenant's rows. */
const NO_TENANT = '';

/** SQLSTATEs after which the whole transaction is safely retried. */
const RETRYABLE = new Set(['40001', '40P01']);

/** A transaction body may throw this to have the whole transaction run again (after its conflicting peer committed). */
export class RetryTransaction extends Error {
  readonly code = 'TX_RETRY';
  constructor(reason: string) {
    super(reason);
    this.name = 'RetryTransaction';
  }
}

/** The database could not be reached or the connection broke: the request may be retried later (503). */
export class DatabaseUnavailableError extends Error {
  readonly code = 'DB_UNAVAILABLE';
  constructor(cause: unknown) {
    super('the database is unreachable or the connection broke', { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

const NET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT', 'EAI_AGAIN']);

/** A broken or unobtainable connection (as opposed to an error of the statement itself). */
function isConnectionError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || NET_ERRORS.has(code);
  const message = (err as Error)?.message ?? '';
  return /Connection terminated|not queryable|connection error|timeout exceeded when trying to connect|Client was closed/i.test(message);
}

export interface PoolSettings {
  /** Statement time limit in ms (0: none). */
  statementTimeoutMs: number;
  /** Most connections one tenant may hold at once (PostgreSQL only; PGlite is one session anyway). */
  tenantMaxConnections: number;
  /** How long a request waits for a connection before it is answered 503/429. */
  acquireTimeoutMs: number;
}

/** Sends PostgreSQL's CancelRequest for the statement `client` is running (protocol §53.2.9; needs no login). */
function cancelBackend(client: pg.PoolClient, log: Logger): void {
  const c = client as unknown as { processID: number | null; secretKey: number | Buffer | null; connectionParameters: { host: string; port: number } };
  if (!c.processID || c.secretKey === null || c.secretKey === undefined) return;
  const key = typeof c.secretKey === 'number' ? c.secretKey : c.secretKey.readInt32BE(0);
  const { host, port } = c.connectionParameters;
  const sock = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
  sock.setTimeout(5000, () => sock.destroy());
  sock.on('error', (err) => log.debug({ err }, 'cancel request failed'));
  sock.on('connect', () => {
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(c.processID!, 8);
    msg.writeInt32BE(key, 12);
    sock.end(msg);
  });
}

/** The statement limit as a setting to run, with its trailing `; ` ('' when there is none). */
function statementTimeoutSql(ms: number, scope: 'SET' | 'SET LOCAL'): string {
  return ms > 0 ? `${scope} statement_timeout = ${Math.floor(ms)}; ` : '';
}

/**
 * COMMIT, refusing the answer PostgreSQL gives a transaction that an earlier statement aborted: it rolls back and says
 * ROLLBACK, with no error. Work that caught a failed statement and went on must not be reported as done.
 */
async function commit(q: Queryable): Promise<void> {
  const r = await q.query('COMMIT');
  if (r.command === 'ROLLBACK') throw new Error('the transaction was rolled back: an earlier statement in it failed');
}

/** node-postgres's own conversion of a parameter to its text form (arrays, dates, JSON, buffers), as it sends them. */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => string | Buffer | null };

/** A parameter as an SQL literal; undefined when it cannot be one (a NUL byte, which a simple query cannot carry). */
function literal(v: unknown): string | undefined {
  const text = prepareValue(v);
  if (text === null) return 'NULL';
  if (Buffer.isBuffer(text)) return `'\\x${text.toString('hex')}'`;
  if (text.includes('\0')) return undefined;
  return pg.escapeLiteral(text);
}

/**
 * `text` with its $n placeholders replaced by `params` as literals (outside quoted strings, quoted identifiers and
 * comments); undefined when a parameter cannot be inlined or the text holds a dollar-quoted string.
 */
function inlineParams(text: string, params: unknown[]): string | undefined {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      out += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      out += c;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      // a comment (its apostrophes are not quotes) runs to the end of the line
      const end = text.indexOf('\n', i);
      out += end < 0 ? text.slice(i) : text.slice(i, end);
      i = end < 0 ? text.length : end - 1;
      continue;
    }
    if (c === '$' && /[A-Za-z_$]/.test(text[i + 1] ?? '')) return undefined; // a dollar-quoted string: not inlined
    if (c === '$' && /[0-9]/.test(text[i + 1] ?? '') && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
      let j = i + 1;
      while (j < text.length && /[0-9]/.test(text[j]!)) j++;
      const n = Number(text.slice(i + 1, j));
      if (n < 1 || n > params.length) return undefined;
      const lit = literal(params[n - 1]);
      if (lit === undefined) return undefined;
      out += lit;
      i = j - 1;
      continue;
    }
    out += c;
  }
  return out;
}

/** Parameters cheap to inline as literals: a few scalars or short arrays, no long text (a resource body). */
function smallParams(params: unknown[]): boolean {
  if (params.length > 24) return false;
  let chars = 0;
  for (const v of params) {
    if (typeof v === 'string') chars += v.length;
    else if (Array.isArray(v)) {
      if (v.length > 32) return false;
      for (const x of v) chars += typeof x === 'string' ? x.length : 8;
    } else if (v !== null && typeof v === 'object' && !(v instanceof Date)) return false;
    if (chars > 4096) return false;
  }
  return true;
}

/** Runs `fn` with `onAbort` wired to `signal` (if any). */
async function whileListening<T>(signal: CancelSignal | undefined, onAbort: () => void, fn: () => Promise<T>): Promise<T> {
  if (!signal) return fn();
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * How a unit of work is bound to its tenant: it is one transaction whose first round trip is
 * `BEGIN; SET LOCAL app.tenant_id = '<slug>'` (simple protocol). SET LOCAL ends with the transaction, so a pooled
 * connection never carries a tenant into someone else's work, and Citus (with `citus.propagate_set_commands = 'local'`)
 * sends the same statement to every worker the transaction touches; a session setting or set_config() never reaches
 * them (../shared/notes/citus.md).
 * - PostgreSQL: the role was settled when the connection opened (see `roleSetup`).
 * - PGlite: every connection shares PGlite's single session, so the role is taken with SET LOCAL as well.
 */
function createPoolDb(kind: Db['kind'], appPool: pg.Pool, adminPool: pg.Pool, log: Logger, settings: PoolSettings, onClose: () => Promise<void>, listenUrl?: string, citus = false): Db {
  const postgres = kind === 'postgres';
  const gate = postgres ? new TenantGate(Math.max(1, settings.tenantMaxConnections), settings.acquireTimeoutMs) : undefined;
  const localSetup = postgres ? '' : `SET LOCAL ROLE ${APP_ROLE}; ${statementTimeoutSql(settings.statementTimeoutMs, 'SET LOCAL')}`;
  appPool.on('error', (err) => log.warn({ err }, 'idle database connection failed'));
  adminPool.on('error', (err) => log.warn({ err }, 'idle admin database connection failed'));

  async function acquire(tenantId: string, signal?: CancelSignal): Promise<{ client: pg.PoolClient; leave: () => void }> {
    if (tenantId !== NO_TENANT && !SLUG.test(tenantId)) throw new Error(`invalid tenant id ${JSON.stringify(tenantId)}`);
    const leave = gate && tenantId !== NO_TENANT ? await gate.enter(tenantId, signal) : () => undefined;
    try {
      return { client: await appPool.connect(), leave };
    } catch (err) {
      leave();
      throw isConnectionError(err) ? new DatabaseUnavailableError(err) : err;
    }
  }

  /** The statement that opens a transaction bound to `tenantId` (not on Citus: see `begin`). */
  const bindSql = (tenantId: string) => `BEGIN; ${localSetup}SET LOCAL app.tenant_id = '${tenantId}'`;

  async function begin(client: pg.PoolClient, tenantId: string): Promise<void> {
    // The slug grammar (checked in acquire) excludes quotes, so inlining it is safe; one simple-protocol round trip.
    // Citus replays a SET LOCAL on its worker connections by the statement's text: there it must come alone, or every
    // worker would be sent the BEGIN too (and warn that a transaction is already in progress). One more round trip.
    if (citus) {
      await client.query('BEGIN');
      await client.query(`SET LOCAL app.tenant_id = '${tenantId}'`);
    } else {
      await client.query(bindSql(tenantId));
    }
  }

  /**
   * The transaction's connection on plain PostgreSQL, opening the transaction with its first statement: that statement
   * goes in the same simple-protocol round trip as `BEGIN; SET LOCAL app.tenant_id`, its parameters inlined as
   * withTenant inlines them (a write's locked read of the current version, a transaction's first look-up), which saves a
   * round trip per transaction. A first statement with large parameters (a write's arrays of rows) is not inlined: the
   * BEGIN goes alone before it. `begun` says whether a statement ran (a transaction that ran none commits nothing).
   */
  function beginWithFirstStatement(client: pg.PoolClient, tenantId: string): Queryable & { begun: boolean } {
    const bound = {
      begun: false,
      async query<R extends Row = Row>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
        if (bound.begun) return client.query<R>(text, params);
        bound.begun = true;
        const inlined = typeof text === 'string' && smallParams(params) ? inlineParams(text, params) : undefined;
        if (inlined === undefined) {
          await begin(client, tenantId);
          return client.query<R>(text, params);
        }
        const results = (await client.query(`${bindSql(tenantId)}; ${inlined}`)) as unknown as pg.QueryResult<R>[];
        return results[results.length - 1]!;
      },
    };
    return bound;
  }

  /** One transaction bound to `tenantId`; retried (up to `attempts` runs in all) on serialization failures and deadlocks. */
  async function inTx<T>(tenantId: string, fn: (q: Queryable) => Promise<T>, opts: DbCallOptions = {}, attempts = 5): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { client, leave } = await acquire(tenantId, opts.signal);
      let broken: Error | undefined;
      try {
        return await whileListening(opts.signal, () => postgres && cancelBackend(client, log), async () => {
          const lazy = postgres && !citus ? beginWithFirstStatement(client, tenantId) : undefined;
          if (!lazy) await begin(client, tenantId);
          const out = await fn(lazy ?? client);
          // a request cut short (client gone, shutdown deadline) never commits, even where its statements could not
          // be cancelled (PGlite has no cancel): nobody would learn its outcome
          opts.signal?.throwIfAborted();
          if (!lazy || lazy.begun) await commit(client);
          return out;
        });
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        if (isConnectionError(err)) {
          broken ??= err as Error;
          throw new DatabaseUnavailableError(err);
        }
        const code = (err as { code?: string }).code;
        // Citus: a statement that waited for a shard split finds its shard gone; nothing of the transaction was done
        const shardGone = code === 'XX000' && /could not find valid entry for shard/.test((err as Error).message);
        if (((code && (RETRYABLE.has(code) || code === 'TX_RETRY')) || shardGone) && attempt < (shardGone ? Math.max(attempts, 3) : attempts) && !opts.signal?.aborted) {
          log.info({ code, attempt }, 'retrying transaction');
          continue;
        }
        throw err;
      } finally {
        client.release(broken);
        leave();
      }
    }
  }

  /**
   * Autocommit work (reads, single statements). On PostgreSQL each statement is its own bound transaction sent as ONE
   * simple-protocol round trip, `BEGIN; SET LOCAL app.tenant_id = '<slug>'; <statement>; COMMIT`, its parameters
   * inlined as literals by node-postgres's own conversion and escaping: a read by id costs one round trip, as it did
   * when the tenant was a session setting. (A statement whose parameters cannot be inlined takes three.) On Citus,
   * which replays a SET LOCAL's whole text on its workers, and on PGlite, the work is one ordinary bound transaction.
   */
  async function withTenant<T>(tenantId: string, fn: (q: Queryable) => Promise<T>, opts: DbCallOptions = {}): Promise<T> {
    if (!postgres || citus) return inTx(tenantId, fn, opts, 1);
    const { client, leave } = await acquire(tenantId, opts.signal);
    let failed: Error | undefined;
    const bound: Queryable = {
      async query<R extends Row = Row>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
        const inlined = typeof text === 'string' ? inlineParams(text, params) : undefined;
        try {
          if (inlined !== undefined) {
            const results = (await client.query(`${bindSql(tenantId)}; ${inlined}; COMMIT`)) as unknown as pg.QueryResult<R>[];
            const done = results[results.length - 1]!;
            if (done.command === 'ROLLBACK') throw new Error('the transaction was rolled back: an earlier statement in it failed');
            return results[2]!;
          }
          await begin(client, tenantId);
          const r = await client.query<R>(text, params);
          await commit(client);
          return r;
        } catch (err) {
          // a failed statement leaves its transaction open and aborted on this connection: end it
          if (!isConnectionError(err)) await client.query('ROLLBACK').catch((e: Error) => (failed = e));
          throw err;
        }
      },
    };
    try {
      return await whileListening(opts.signal, () => cancelBackend(client, log), () => fn(bound));
    } catch (err) {
      if (isConnectionError(err)) {
        failed = err as Error;
        throw new DatabaseUnavailableError(err);
      }
      throw err;
    } finally {
      // A connection that broke mid-query is destroyed, never reused.
      client.release(failed);
      leave();
    }
  }

  async function adminWithClient<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const c = await adminPool.connect();
    try {
      return await fn(c);
    } finally {
      c.release();
    }
  }

  /** One transaction on an admin connection. */
  function adminTx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return adminWithClient(async (q) => {
      await q.query('BEGIN');
      try {
        const out = await fn(q);
        await commit(q);
        return out;
      } catch (err) {
        await q.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async function adminQuery<R extends Row>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (postgres || !params?.length) return adminPool.query<R>(text, params);
    // PGlite's socket interleaves the extended-protocol messages (Parse/Bind/Execute) of different
    // connections unless a transaction holds the session: run parameterised admin statements inside one.
    return adminTx((q) => q.query<R>(text, params));
  }

  return {
    kind,
    withTenant,
    tx: inTx,
    platform: (fn) => withTenant(NO_TENANT, fn),
    platformTx: (fn) => inTx(NO_TENANT, fn),
    admin() {
      return {
        query: adminQuery as Queryable['query'],
        withClient: adminWithClient,
        tx: adminTx,
      };
    },
    listen: (channel, onMessage) => (listenUrl ? listenOn(listenUrl, channel, onMessage, log) : Promise.resolve(async () => {})),
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

/** A LISTEN connection that comes back after failures (1 s, doubling to 30 s); a NOTIFY sent while it is away is lost. */
async function listenOn(url: string, channel: string, onMessage: (payload: string) => void, log: Logger): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
  let stopped = false;
  let client: pg.Client | undefined;
  let delay = 1000;
  let timer: NodeJS.Timeout | undefined;
  const connectOnce = async () => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    const retry = () => {
      if (stopped || client !== c) return;
      client = undefined;
      c.end().catch(() => undefined);
      timer = setTimeout(() => void connectOnce(), delay);
      timer.unref();
      delay = Math.min(delay * 2, 30_000);
    };
    c.on('error', (err) => {
      log.warn({ err, channel }, 'LISTEN connection failed');
      retry();
    });
    c.on('end', retry);
    c.on('notification', (n) => {
      if (n.channel === channel) onMessage(n.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      delay = 1000;
    } catch (err) {
      log.warn({ err, channel }, 'LISTEN connection could not be opened');
      retry();
    }
  };
  await connectOnce();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await client?.end().catch(() => undefined);
  };
}

export interface OpenDbOptions extends PoolSettings {
  /** An embedded database already served by another process (the running server, or tests). */
  pgliteSocketUrl?: string;
  databaseUrl?: string;
  databaseAdminUrl?: string;
  dataDir: string;
  /** Recorded in server.json for the CLI (embedded only). */
  publicBaseUrl?: string;
  poolSize: number;
  log: Logger;
}

/**
 * Every pooled connection gets an error listener (a connection that breaks while checked out must not take the
 * process down: its query fails, the request answers 503, the pool opens a new one) and, on PostgreSQL, its role and
 * statement limit before first use (`roleSetup`). `onConnect` is awaited by the pool: a connection whose role setup fails is
 * dropped.
 */
function poolOptions(connectionString: string, max: number, log: Logger, setup: string, acquireTimeoutMs: number): pg.PoolConfig {
  return {
    connectionString,
    max,
    connectionTimeoutMillis: acquireTimeoutMs > 0 ? acquireTimeoutMs : undefined,
    onConnect: async (client: pg.ClientBase) => {
      client.on('error', (err) => log.warn({ err }, 'database connection failed'));
      if (setup) await client.query(setup);
    },
  };
}

/**
 * The role a PostgreSQL connection works as. A dedicated login role that is a plain member of fhir_app (no superuser,
 * no BYPASSRLS, owns no table: what DATABASE_URL should be) works as itself, with fhir_app's privileges: row-level
 * security binds it, and Citus can open its worker connections as it (a NOLOGIN role cannot log in there). Any other
 * login role (one that could lift the wall, or that does not inherit fhir_app) takes fhir_app with SET ROLE; a
 * connection where that fails is never used.
 */
function roleSetup(): string {
  return `DO $role$ BEGIN
    IF (SELECT r.rolsuper OR r.rolbypassrls OR NOT pg_has_role(r.oid, '${APP_ROLE}', 'USAGE')
               OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p'))
          FROM pg_roles r WHERE r.rolname = session_user)
    THEN SET ROLE ${APP_ROLE}; END IF;
  END $role$`;
}

/** Opens PostgreSQL when a URL is given, otherwise the embedded PGlite database under `dataDir`. */
export async function openDb(opts: OpenDbOptions): Promise<Db> {
  const settings: PoolSettings = { statementTimeoutMs: opts.statementTimeoutMs, tenantMaxConnections: opts.tenantMaxConnections, acquireTimeoutMs: opts.acquireTimeoutMs };
  const t = opts.acquireTimeoutMs;
  if (opts.pgliteSocketUrl) {
    const appPool = new pg.Pool(poolOptions(opts.pgliteSocketUrl, 2, opts.log, '', t));
    const adminPool = new pg.Pool(poolOptions(opts.pgliteSocketUrl, 1, opts.log, '', t));
    return createPoolDb('pglite', appPool, adminPool, opts.log, settings, async () => {});
  }
  if (opts.databaseUrl) {
    const setup = `${roleSetup()}; ${statementTimeoutSql(opts.statementTimeoutMs, 'SET')}`;
    const appPool = new pg.Pool(poolOptions(opts.databaseUrl, opts.poolSize, opts.log, setup, t));
    const adminPool = new pg.Pool(poolOptions(opts.databaseAdminUrl ?? opts.databaseUrl, 2, opts.log, '', t));
    const citus = await adminPool
      .query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
      .then((r) => (r.rowCount ?? 0) > 0)
      .catch(() => false);
    return createPoolDb('postgres', appPool, adminPool, opts.log, settings, async () => {}, opts.databaseUrl, citus);
  }
  const embedded = await openEmbedded(opts.dataDir, opts.log, opts.publicBaseUrl);
  // PGlite is one session; its socket server serialises connections and keeps a transaction on its own connection.
  const appPool = new pg.Pool(poolOptions(embedded.url, 1, opts.log, '', t));
  const adminPool = new pg.Pool(poolOptions(embedded.url, 1, opts.log, '', t));
  return createPoolDb('pglite', appPool, adminPool, opts.log, settings, embedded.close);
}

export { pg };
