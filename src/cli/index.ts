// CLI: migrate, tenants (src/cli/tenants.ts), config docs. Works while the server runs on the embedded database
// by connecting to the server's private PGlite socket (DATA_DIR/server.json), and then speaks for that server.
import '../platform/runtime-notice.js';
import { parseArgs } from 'node:util';
import { CONFIG_KEYS, loadConfig, type Config } from '../config/index.js';
import { buildDeps, closeDeps } from '../compose.js';
import { FhirError } from '../core/errors.js';
import { runningEmbedded } from '../platform/embedded.js';
import { createLogger, flushLogs } from '../platform/log.js';
import { findTenant } from '../store/tenants.js';
import { jobStatus, startReindex, waitForJob } from '../jobs/reindex.js';
import { jobsCommand, JOBS_USAGE } from './jobs.js';
import { purgeAuditTrail } from '../jobs/audit-purge.js';
import { subscriptionCommand, SUBSCRIPTIONS_USAGE } from './subscriptions.js';
import { tenantCommand, TENANT_USAGE } from './tenants.js';
import { authCommand, AUTH_USAGE } from './auth.js';
import { citusCommand, CITUS_USAGE, isCitusCommand } from './citus.js';

const USAGE = `usage: npm run cli -- <command>
  migrate                                   apply pending migrations (on a Citus coordinator, then distribute the schema)
${TENANT_USAGE}
${CITUS_USAGE}
  audit purge [<slug>]                      delete audit records older than each tenant's retention now (it also runs every AUDIT_PURGE_INTERVAL_MINUTES)
  reindex <slug> [--type Observation,Patient]  recompute search index rows (after adding a SearchParameter)
${JOBS_USAGE}
${SUBSCRIPTIONS_USAGE}
  config docs                               print the configuration table (markdown)
${AUTH_USAGE}`;

/** The database the CLI works on, and the public base URL its tokens and printed URLs are for (and why that one). */
interface Target {
  /** The running server's socket, when one holds the embedded database. */
  socketUrl?: string;
  publicBaseUrl: string;
  baseSource: string;
}

/**
 * Beside a running embedded server, the CLI reaches its database through the server's socket and takes the server's
 * PUBLIC_BASE_URL: a token whose audience is the CLI's own default (port 8080) would be refused by a server on another
 * port (issue 9). Otherwise the CLI's own PUBLIC_BASE_URL, said so where it matters (the `token` command).
 */
async function findTarget(config: Config): Promise<Target> {
  const own = (why: string) => ({ publicBaseUrl: config.publicBaseUrl, baseSource: `this CLI's PUBLIC_BASE_URL: ${why}` });
  if (config.databaseUrl) return own("a server's tokens must name that server's public base URL");
  const running = await runningEmbedded(config.dataDir);
  if (!running) return own(`no server is running on ${config.dataDir}`);
  if (!running.publicBaseUrl) return { ...own('the running server did not record its own'), socketUrl: running.url };
  return { socketUrl: running.url, publicBaseUrl: running.publicBaseUrl, baseSource: "the running server's public base URL, from DATA_DIR/server.json" };
}

async function run(argv: string[]): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === 'config' && sub === 'docs') {
    console.log('| Variable | Default | Meaning |\n|---|---|---|');
    for (const k of CONFIG_KEYS) console.log(`| \`${k.env}\` | \`${k.default}\` | ${k.doc} |`);
    return 0;
  }
  if (!cmd || cmd === 'help' || cmd === '--help') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  const config = loadConfig();
  const level = process.env.LOG_LEVEL ?? 'warn';
  // logs go to stderr: stdout carries the command's output (a token, a client id)
  const target = await findTarget(config);
  // Citus commands (src/cli/citus.ts) open their own connections: `db distribute` must find the schema as it is, and
  // `tenant isolate|move` are caught here before `tenant` goes to src/cli/tenants.ts
  if (isCitusCommand(cmd, sub)) return citusCommand(config, createLogger(level, 2), target.socketUrl, cmd, sub!, rest);
  const deps = await buildDeps({ ...config, publicBaseUrl: target.publicBaseUrl, logLevel: level }, createLogger(level, 2), target.socketUrl);
  try {
    if (cmd === 'migrate') {
      console.log('migrations up to date');
      return 0;
    }
    if (cmd === 'tenant') {
      const code = await tenantCommand(deps, sub, rest);
      if (code !== undefined) return code;
    }
    const auth = await authCommand(deps, cmd, sub, rest, target.baseSource);
    if (auth !== undefined) return auth;
    if (cmd === 'jobs') return await jobsCommand(deps, sub, rest);
    if (cmd === 'audit' && sub === 'purge') {
      const slug = rest[0];
      if (slug !== undefined && !(await findTenant(deps.db, slug))) {
        console.error(`error: unknown tenant '${slug}'`);
        return 1;
      }
      for (const r of await purgeAuditTrail(deps, slug)) console.log(`${r.tenantId}: ${r.deleted} audit records recorded before ${r.before} deleted (retention ${r.retentionDays} days)`);
      return 0;
    }
    if (cmd === 'subscription') return await subscriptionCommand(deps, sub, rest);
    if (cmd === 'reindex') {
      const { values, positionals } = parseArgs({ args: [sub, ...rest].filter((x) => x !== undefined), options: { type: { type: 'string' } }, allowPositionals: true });
      const slug = positionals[0];
      if (!slug) {
        console.error('usage: reindex <slug> [--type Observation,Patient]');
        return 2;
      }
      if (!(await findTenant(deps.db, slug))) {
        console.error(`error: unknown tenant '${slug}'`);
        return 1;
      }
      const job = await startReindex(deps, slug, values.type ? values.type.split(',') : undefined);
      console.log(`reindex job ${job.id}: ${job.total} resources`);
      await waitForJob(deps, slug, job.id);
      const done = await jobStatus(deps, slug, job.id);
      console.log(`reindex job ${job.id}: ${done?.status}, ${done?.done}/${done?.total} resources`);
      return done?.status === 'completed' ? 0 : 1;
    }
    console.error(USAGE);
    return 2;
  } finally {
    await closeDeps(deps);
  }
}

run(process.argv.slice(2))
  .then((code) => {
    flushLogs();
    process.exit(code);
  })
  .catch((err) => {
    flushLogs();
    console.error(`error: ${err instanceof FhirError ? err.message : (err as Error).message}`);
    process.exit(1);
  });
