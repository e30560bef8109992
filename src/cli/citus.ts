// CLI for running on Citus (issue 16, docs/scaling.md): `db distribute` (the schema, once, for an existing database),
// `tenant isolate <slug>` (the tenant's rows get a shard group of their own) and `tenant move <slug> --node host:port`
// (the tenant's shard group moves to another node, online when every table has a replica identity). Each works on the
// admin (owner) connection, says what it does as it goes, and refuses clearly on a database that is not Citus.
import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { openDb, type Db, type Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import {
  analyzeShards,
  citusNodes,
  colocatedShards,
  distributeSchema,
  isCitus,
  isolateTenant,
  lastShardId,
  moveShardGroup,
  onlineMoveBlockers,
  shardProgress,
  shardsAfter,
  tenantShardGroup,
  type CitusNode,
  type TenantShardGroup,
  type TransferMode,
} from '../store/citus.js';
import { migrate } from '../store/migrate.js';
import { findTenantRecord } from '../store/tenants.js';

export const CITUS_USAGE = `  db distribute [--shards N]                on a Citus coordinator: distribute what is not distributed yet (tenant
                                            tables by tenant_id, platform tables as reference tables), as migrate does;
                                            a no-op elsewhere. --shards: shard count, when resource is not distributed yet
  tenant isolate <slug> [--mode block_writes|auto|force_logical]
                                            Citus: give the tenant a shard group of its own (isolate_tenant_to_new_shard;
                                            the shard's writes wait while it is split, unless --mode auto)
  tenant move <slug> --node <host:port> [--mode auto|force_logical|block_writes]
                                            Citus: move the tenant's shard group to that node (online unless block_writes)`;

type AdminQueryable = ReturnType<Db['admin']>;

const NOT_CITUS = 'this database is not a Citus cluster (the citus extension is not installed)';
const MODES: TransferMode[] = ['auto', 'force_logical', 'block_writes'];

/** True when argv names a command of this file (index.ts routes it here before the tenant commands). */
export function isCitusCommand(cmd: string | undefined, sub: string | undefined): boolean {
  return (cmd === 'db' && sub === 'distribute') || (cmd === 'tenant' && (sub === 'isolate' || sub === 'move'));
}

/**
 * Runs a command of this file on its own connections (no Deps: nothing here needs queues or keys, and `db distribute`
 * must see the schema before anything distributes it). `socketUrl`: a running embedded server's database.
 */
export async function citusCommand(config: Config, log: Logger, socketUrl: string | undefined, cmd: string, sub: string, rest: string[]): Promise<number> {
  const db = await openDb({
    pgliteSocketUrl: socketUrl,
    databaseUrl: config.databaseUrl,
    databaseAdminUrl: config.databaseAdminUrl,
    dataDir: config.dataDir,
    poolSize: 1,
    statementTimeoutMs: 0,
    tenantMaxConnections: 1,
    acquireTimeoutMs: config.dbAcquireTimeoutMs,
    log,
  });
  try {
    if (cmd === 'db') return await distribute(db, log, rest);
    return sub === 'isolate' ? await isolate(db, rest) : await move(db, rest);
  } finally {
    await db.close();
  }
}

async function distribute(db: Db, log: Logger, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { shards: { type: 'string' } } });
  const shardCount = values.shards === undefined ? undefined : Number(values.shards);
  if (shardCount !== undefined && !(Number.isInteger(shardCount) && shardCount > 0 && shardCount <= 64000)) {
    console.error('error: --shards must be a whole number from 1 to 64000');
    return 2;
  }
  if (!(await isCitus(db.admin()))) {
    console.log(`nothing to distribute: ${NOT_CITUS}; nothing was changed`);
    return 0;
  }
  // pending migrations first: a table must be in its final shape before it is distributed
  const applied = await migrate(db, { distribute: false });
  for (const name of applied) console.log(`applied migration ${name}`);
  const started = Date.now();
  const report = await distributeSchema(db, log, { shardCount });
  for (const line of report.changes) console.log(line);
  for (const line of report.warnings) console.error(`warning: ${line}`);
  const count = (p: string) => report.tables.filter((t) => t.placement === p).length;
  console.log(
    `${report.changes.length ? `done in ${((Date.now() - started) / 1000).toFixed(1)} s` : 'already distributed, nothing to do'}: ` +
      `${count('distributed')} tables distributed by tenant_id, ${count('reference')} reference tables, ${count('coordinator-local')} coordinator-local` +
      (count('local') ? `, ${count('local')} left local` : ''),
  );
  return report.warnings.length ? 1 : 0;
}

/** The shared checks of isolate and move: Citus, a known tenant, a distributed schema. A message, or the group. */
async function tenantGroup(db: Db, slug: string | undefined, usage: string): Promise<TenantShardGroup | string> {
  if (!slug) return usage;
  const admin = db.admin();
  if (!(await isCitus(admin))) return `error: ${NOT_CITUS}`;
  if (!(await findTenantRecord(db, slug))) return `error: unknown tenant '${slug}'`;
  const group = await tenantShardGroup(admin, slug);
  return group ?? 'error: the schema is not distributed yet: run `npm run cli -- db distribute` first';
}

function parseMode(mode: string | undefined, fallback: TransferMode): TransferMode | undefined {
  return MODES.find((m) => m === (mode ?? fallback));
}

/**
 * `tenant isolate` splits with block_writes unless told otherwise: Citus's online split (logical replication) can stall
 * for ever when the shard takes writes meanwhile (citusdata/citus#6790, open; seen here with the outbox's deletes).
 */
const ISOLATE_MODE: TransferMode = 'block_writes';
const SPLIT_STUCK =
  "no end yet: if a worker's log repeats 'publisher did not send replica identity column', Citus's online split is stuck " +
  '(citusdata/citus#6790): press Ctrl-C to cancel it and run again without --mode (block_writes)';

const where = (n: CitusNode) => `${n.host}:${n.port}`;
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

async function isolate(db: Db, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { mode: { type: 'string' } }, allowPositionals: true });
  const slug = positionals[0];
  const mode = parseMode(values.mode, ISOLATE_MODE);
  const group = await tenantGroup(db, slug, 'usage: tenant isolate <slug> [--mode block_writes|auto|force_logical]');
  if (typeof group === 'string' || !mode) return fail(typeof group === 'string' ? group : `error: --mode must be one of ${MODES.join(', ')}`);
  if (group.isolated) {
    console.log(`tenant ${slug} already has a shard group of its own (shard ${group.shardId} on ${where(group.node)})`);
    return 0;
  }
  const admin = db.admin();
  if (mode !== 'block_writes') {
    const blockers = await onlineMoveBlockers(admin);
    if (blockers.length) return fail(offline('isolate', blockers));
  }
  const before = await lastShardId(admin);
  console.log(`isolating tenant ${slug}: shard ${group.shardId} on ${where(group.node)} (shared with ${group.tenants - 1} other tenants), ${group.tables.length} tables, mode ${mode}`);
  const started = Date.now();
  const shard = await whileReporting(admin, started, (q) => isolateTenant(q, slug!, mode), mode === 'block_writes' ? undefined : SPLIT_STUCK);
  console.log(`tenant ${slug} isolated in ${seconds(started)}: its shard of resource is now ${shard}`);
  await analyzeAfter(admin, await shardsAfter(admin, before));
  return 0;
}

async function move(db: Db, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { node: { type: 'string' }, mode: { type: 'string' } }, allowPositionals: true });
  const slug = positionals[0];
  const mode = parseMode(values.mode, 'auto');
  const usage = 'usage: tenant move <slug> --node <host:port> [--mode auto|force_logical|block_writes]';
  const m = /^(.+):(\d{1,5})$/.exec(values.node ?? '');
  if (!m) return fail(usage);
  const group = await tenantGroup(db, slug, usage);
  if (typeof group === 'string' || !mode) return fail(typeof group === 'string' ? group : `error: --mode must be one of ${MODES.join(', ')}`);
  const admin = db.admin();
  const nodes = await citusNodes(admin);
  const target = nodes.find((n) => n.host === m[1] && n.port === Number(m[2]));
  if (!target) return fail(`error: unknown node ${values.node}: this cluster's nodes are ${nodes.map(where).join(', ')}`);
  if (!target.active) return fail(`error: node ${values.node} is not active`);
  if (!target.takesShards) return fail(`error: node ${values.node} takes no shards (SELECT citus_set_node_property('${target.host}', ${target.port}, 'shouldhaveshards', true) to allow it)`);
  if (target.groupId === group.node.groupId) {
    console.log(`tenant ${slug}'s shard group (shard ${group.shardId}) is already on ${where(target)}`);
    return 0;
  }
  if (mode !== 'block_writes') {
    const blockers = await onlineMoveBlockers(admin);
    if (blockers.length) return fail(offline('move', blockers));
  }
  const others = group.tenants - 1;
  console.log(
    `moving tenant ${slug}'s shard group (shard ${group.shardId}, ${group.tables.length} tables) from ${where(group.node)} to ${where(target)}, mode ${mode}` +
      (others > 0 ? `; ${others} other tenants share it and move too (tenant isolate ${slug} first to move it alone)` : ''),
  );
  const started = Date.now();
  await whileReporting(admin, started, (q) => moveShardGroup(q, group.shardId, group.node, target, mode));
  console.log(`moved in ${seconds(started)}; the copies left on ${where(group.node)} are dropped by Citus's cleanup shortly`);
  await analyzeAfter(admin, await colocatedShards(admin, group.shardId));
  return 0;
}

function fail(message: string): number {
  console.error(message);
  return message.startsWith('usage:') ? 2 : 1;
}

function offline(what: 'isolate' | 'move', blockers: string[]): string {
  return (
    `error: the tenant's shard group cannot be ${what === 'move' ? 'moved' : 'split'} online:\n  ${blockers.join('\n  ')}\n` +
    `Run the pending migrations and \`npm run cli -- db distribute\`, or ${what} with --mode block_writes (the tenant's writes wait while its rows are copied)`
  );
}

/**
 * Runs `op` on an admin connection of its own, printing what Citus reports of it every 2 s (progress of shard moves;
 * the elapsed time for splits, which report none). Ctrl-C cancels the statement (Citus then cleans up what it made).
 */
async function whileReporting<T>(admin: AdminQueryable, started: number, op: (q: Queryable) => Promise<T>, stuckHint?: string): Promise<T> {
  let last = '';
  let hinted = false;
  const timer = setInterval(() => {
    shardProgress(admin)
      .catch(() => [])
      .then((rows) => {
        const copied = rows.reduce((s, r) => s + r.targetBytes, 0);
        const total = rows.reduce((s, r) => s + r.sourceBytes, 0);
        const statuses = [...new Set(rows.map((r) => r.status).filter(Boolean))].join(', ');
        const line = rows.length ? `${rows.length} shards, ${statuses || 'running'}, ${mb(copied)} of ${mb(total)} copied` : 'running';
        if (line !== last || !rows.length) console.log(`  ${seconds(started)}: ${line}`);
        last = line;
        if (stuckHint && !hinted && Date.now() - started > STUCK_AFTER_MS) {
          hinted = true;
          console.log(`  ${stuckHint}`);
        }
      });
  }, 2000);
  return admin.withClient(async (q) => {
    const pid = (await q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const cancel = () => {
      console.log('  cancelling (Citus removes what it made so far) ...');
      void admin.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
    };
    process.once('SIGINT', cancel);
    try {
      return await op(q);
    } finally {
      process.off('SIGINT', cancel);
      clearInterval(timer);
    }
  });
}

/** After this long without an end, an online split is probably stuck (see `isolate`). */
const STUCK_AFTER_MS = 120_000;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function analyzeAfter(admin: Queryable, shards: string[]): Promise<void> {
  const started = Date.now();
  await analyzeShards(admin, shards);
  console.log(`analyzed ${shards.length} shards (fresh statistics for the planner) in ${seconds(started)}`);
}
