// CLI: migrate, tenant create/list/settings, config docs. Works while the server runs on the embedded database
// by connecting to the server's private PGlite socket (DATA_DIR/server.json), and then speaks for that server.
import '../platform/runtime-notice.js';
import { parseArgs } from 'node:util';
import { CONFIG_KEYS, loadConfig, type Config } from '../config/index.js';
import { buildDeps } from '../compose.js';
import { FhirError } from '../core/errors.js';
import { runningEmbedded } from '../platform/embedded.js';
import { createLogger, flushLogs } from '../platform/log.js';
import { findTenant, listTenants, updateTenantSettings } from '../store/tenants.js';
import { createTenant } from '../tenancy/create-tenant.js';
import { jobStatus, startReindex, waitForJob } from '../jobs/reindex.js';
import { jobsCommand, JOBS_USAGE } from './jobs.js';
import { purgeAuditTrail } from '../jobs/audit-purge.js';
import { subscriptionCommand, SUBSCRIPTIONS_USAGE } from './subscriptions.js';
import { applyProfileOptions } from './required-profiles.js';
import { authCommand, AUTH_USAGE } from './auth.js';
import { registerClient } from '../auth/admin.js';
import { createAuthServer } from '../auth/server.js';
import { TenantCache } from '../tenancy/tenant-cache.js';

const USAGE = `usage: npm run cli -- <command>
  migrate                                   apply pending migrations
  tenant create <slug> --name "<name>"      create a tenant, its root Organization and its operator client <slug>-cli
  tenant list                               list tenants
  tenant set <slug> [--referential-integrity true|false] [--mfa-required true|false] [--audit-retention-days N]
             [--required-bindings true|false] [--require-profile Type=url]... [--clear-required-profiles Type|*]...
                                            every resource of Type must meet the profile on create/update (profiles/README.md)
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
  const deps = await buildDeps({ ...config, publicBaseUrl: target.publicBaseUrl, logLevel: level }, createLogger(level, 2), target.socketUrl);
  try {
    if (cmd === 'migrate') {
      console.log('migrations up to date');
      return 0;
    }
    if (cmd === 'tenant' && sub === 'create') {
      const { values, positionals } = parseArgs({ args: rest, options: { name: { type: 'string' } }, allowPositionals: true });
      const slug = positionals[0];
      if (!slug || !values.name) {
        console.error('usage: tenant create <slug> --name "<name>"');
        return 2;
      }
      const { baseUrl } = await createTenant(deps, slug, values.name);
      console.log(`created tenant ${slug}: FHIR base ${baseUrl}`);
      // an operator client, as the demo tenant has demo-cli: its key is held by no one, tokens come from this CLI
      const clientId = `${slug}-cli`;
      const auth = createAuthServer(deps, new TenantCache(deps.db));
      try {
        await registerClient(deps, auth.provider(), { tenant: slug, kind: 'operator', name: `${values.name} operator (CLI tokens)`, clientId, scope: 'system/*.cruds' });
      } finally {
        auth.close();
      }
      console.log(`operator client ${clientId} registered; get an access token with:`);
      console.log(`  npm run -s cli -- token ${slug} --client ${clientId} --scope 'system/*.cruds'`);
      return 0;
    }
    if (cmd === 'tenant' && sub === 'list') {
      for (const t of await listTenants(deps.db)) console.log(`${t.id}\t${t.status}\t${t.name}`);
      return 0;
    }
    if (cmd === 'tenant' && sub === 'set') {
      const { values, positionals } = parseArgs({
        args: rest,
        options: {
          'referential-integrity': { type: 'string' },
          'mfa-required': { type: 'string' },
          'audit-retention-days': { type: 'string' },
          'required-bindings': { type: 'string' },
          'require-profile': { type: 'string', multiple: true },
          'clear-required-profiles': { type: 'string', multiple: true },
        },
        allowPositionals: true,
      });
      const ri = values['referential-integrity'];
      const mfa = values['mfa-required'];
      const days = values['audit-retention-days'];
      const bindings = values['required-bindings'];
      const requireProfile = values['require-profile'] ?? [];
      const clearProfiles = values['clear-required-profiles'] ?? [];
      const profilesChanged = requireProfile.length > 0 || clearProfiles.length > 0;
      const ok = (v: string | undefined) => v === undefined || v === 'true' || v === 'false';
      const okDays = days === undefined || (/^\d{1,6}$/.test(days) && Number(days) >= 1);
      if (!positionals[0] || (ri === undefined && mfa === undefined && days === undefined && bindings === undefined && !profilesChanged) || !ok(ri) || !ok(mfa) || !ok(bindings) || !okDays) {
        console.error('usage: tenant set <slug> [--referential-integrity true|false] [--mfa-required true|false] [--audit-retention-days N (>= 1)] [--required-bindings true|false] [--require-profile Type=url]... [--clear-required-profiles Type|*]...');
        return 2;
      }
      const tenant = await findTenant(deps.db, positionals[0]);
      if (!tenant) {
        console.error(`error: unknown tenant '${positionals[0]}'`);
        return 1;
      }
      const requiredProfiles = profilesChanged ? applyProfileOptions(tenant.settings.requiredProfiles, requireProfile, clearProfiles) : undefined;
      if (typeof requiredProfiles === 'string') {
        console.error(`error: ${requiredProfiles}`);
        return 2;
      }
      const settings = {
        ...(ri !== undefined ? { referentialIntegrity: ri === 'true' } : {}),
        ...(mfa !== undefined ? { mfaRequired: mfa === 'true' } : {}),
        ...(days !== undefined ? { auditRetentionDays: Number(days) } : {}),
        ...(bindings !== undefined ? { requiredBindings: bindings === 'true' } : {}),
        ...(requiredProfiles !== undefined ? { requiredProfiles } : {}),
      };
      await updateTenantSettings(deps.db, positionals[0], settings);
      const shown = Object.entries(settings).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`);
      console.log(`tenant ${positionals[0]}: ${shown.join(', ')} (servers pick it up within 5 s)`);
      return 0;
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
    await deps.queues.close();
    await deps.audit.close();
    await deps.db.close();
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
