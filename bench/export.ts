// The Bulk Data export benchmark (issue 12's target: "export of a 100,000-resource tenant at >= 20,000 resources/s with
// the server's memory flat"): loads one tenant with ~N resources, then runs a system-level `$export` of it R times
// and, per run, measures the seconds from kick-off to the complete manifest, the resources/s, and the server's
// resident memory sampled during the export against its memory just before.
//
//   npm run bench:export -- [--resources N] [--exports R] [-c C] [--port P] [--poll-ms MS] [--seed X] [--keep]
//        [--tenant SLUG]
//
// The server runs as shipped in its own process (auth, row-level security, validation, the export worker in the
// server): on PostgreSQL when DATABASE_URL is set (passed as given, with DATABASE_ADMIN_URL and REDIS_URL; use a scratch
// database), else on embedded PGlite in a temp DATA_DIR. The tenant is loaded
// over HTTP with bench/synth.ts's 23-resource transaction Bundles (what `npm run bench` ingests: every resource goes
// through validation, the search index and history exactly as a client's would), the token is an operator client's
// (system/*.cruds, minted like bench/run.ts does), and every output file is downloaded and its lines counted against
// the manifest. Memory: VmRSS of the server's pid from /proc (ps elsewhere), sampled every 20 ms.
//
// Server CPU profile of the exports: BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' (written at shutdown).

import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import {
  BENCH_DIR,
  ErrorSamples,
  HttpClient,
  Interrupted,
  ROOT,
  ServerProcess,
  UsageError,
  describeResponse,
  errCode,
  lifecycle,
  makeLog,
  numberOpt,
  operatorTokens,
  portInUse,
  printTable,
  redactUrl,
  round,
  runCli,
  runMain,
  sleep,
  tail,
} from './common.js';
import { DEFAULT_SEED, ENTRIES_PER_BUNDLE, checkBundle, patientBundle } from './synth.js';

const log = makeLog('export');
/** The issue's target. */
const TARGET_PER_SEC = 20_000;
const RSS_SAMPLE_MS = 20;

// ---------------------------------------------------------------------------------------------------------
// Options

interface Options {
  resources: number;
  exports: number;
  concurrency: number;
  port: number;
  pollMs: number;
  seed: number;
  keep: boolean;
  /** An existing tenant of the database (loaded by an earlier run): no tenant created, nothing loaded. */
  tenant: string | undefined;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
}

const USAGE = `usage: npm run bench:export -- [options]

  --resources N       resources to load, in ${ENTRIES_PER_BUNDLE}-resource transaction Bundles (default 100000, rounded up to whole Bundles)
  --exports R         system-level exports of the loaded tenant, each measured (default 3)
  -c, --concurrency C concurrent clients of the load (default 4)
  --port P            server port (default 18380)
  --poll-ms MS        status polling interval while an export runs (default 50; the server's Retry-After is ignored)
  --seed X            data generator seed (default ${DEFAULT_SEED})
  --keep              keep the work directory (server log, embedded data) at the end
  --tenant SLUG       export this existing tenant of DATABASE_URL's database (loaded by an earlier run, whose tenant
                      slug it printed) instead of creating and loading one

  DATABASE_URL        PostgreSQL to run against (passed to the server as given, with DATABASE_ADMIN_URL); unset = embedded PGlite
  REDIS_URL           Redis for the server's queues (optional; the run uses a queue prefix of its own)
  SECRETS_KEY         the server's secrets key (default: a new one per run; --tenant needs the loading run's)
  BENCH_SERVER_NODE_ARGS  extra node flags for the server, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        resources: { type: 'string' },
        exports: { type: 'string' },
        concurrency: { type: 'string', short: 'c' },
        port: { type: 'string' },
        'poll-ms': { type: 'string' },
        seed: { type: 'string' },
        keep: { type: 'boolean' },
        tenant: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (str('tenant') !== undefined && (!env.DATABASE_URL || !env.SECRETS_KEY)) {
    throw new UsageError('--tenant needs DATABASE_URL (the embedded database of a run is removed with it) and the SECRETS_KEY of the run that loaded it');
  }
  return {
    resources: numberOpt('resources', str('resources'), 100_000, 1),
    exports: numberOpt('exports', str('exports'), 3, 1),
    concurrency: numberOpt('concurrency', str('concurrency'), 4, 1),
    port: numberOpt('port', str('port'), 18380, 1),
    pollMs: numberOpt('poll-ms', str('poll-ms'), 50, 1),
    seed: numberOpt('seed', str('seed'), DEFAULT_SEED, 0),
    keep: values.keep === true,
    tenant: str('tenant'),
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The server's memory

/** The resident set of `pid` in KiB: VmRSS from /proc, or ps where there is no /proc. */
function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // no /proc: fall back to ps
  }
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim());
}

/** Samples the server's RSS every RSS_SAMPLE_MS until stopped: the peak and the number of samples. */
function sampleRss(pid: number): { stop(): { peakKiB: number; samples: number; lastKiB: number } } {
  let peak = 0;
  let last = 0;
  let samples = 0;
  const take = (): void => {
    try {
      last = rssKiB(pid);
      peak = Math.max(peak, last);
      samples++;
    } catch {
      // the server went away: the run notices on its next request
    }
  };
  take();
  const timer = setInterval(take, RSS_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakKiB: peak, samples, lastKiB: last };
    },
  };
}

const mib = (kib: number): number => round(kib / 1024, 1);

// ---------------------------------------------------------------------------------------------------------
// Load

interface LoadResult {
  bundles: number;
  resources: number;
  seconds: number;
  resourcesPerSec: number;
}

async function load(o: Options, client: HttpClient, stop: () => string | undefined): Promise<LoadResult> {
  const bundles = Math.ceil(o.resources / ENTRIES_PER_BUNDLE);
  const errors = new ErrorSamples();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let lastReport = performance.now();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= bundles) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        if (failed >= 5) throw new Error(`load: ${failed} bundles failed, giving up:\n  ${errors.samples.join('\n  ')}`);
        let res;
        try {
          res = await client.request('POST', '', JSON.stringify(patientBundle(i, o.seed)), {}, 300_000);
        } catch (err) {
          failed++;
          errors.add(`POST bundle ${i}: ${errCode(err)}`);
          continue;
        }
        if (res.status !== 200) {
          failed++;
          errors.add(describeResponse('POST', `bundle ${i}`, res));
          continue;
        }
        ok++;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          const s = (lastReport - t0) / 1000;
          log(`  load: ${ok}/${bundles} bundles (${Math.round((ok * ENTRIES_PER_BUNDLE) / s)} resources/s)`);
        }
      }
    }),
  );
  if (failed) throw new Error(`load: ${failed} bundles failed:\n  ${errors.samples.join('\n  ')}`);
  const seconds = (performance.now() - t0) / 1000;
  return { bundles, resources: ok * ENTRIES_PER_BUNDLE, seconds: round(seconds, 1), resourcesPerSec: round((ok * ENTRIES_PER_BUNDLE) / seconds, 0) };
}

// ---------------------------------------------------------------------------------------------------------
// One export

interface Manifest {
  transactionTime: string;
  output: { type: string; url: string; count?: number }[];
  deleted?: { type: string; url: string; count?: number }[];
  error: { type: string; url: string; count?: number }[];
}

interface ExportRun {
  run: number;
  resources: number;
  files: number;
  seconds: number;
  resourcesPerSec: number;
  polls: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  rssSamples: number;
  download: { seconds: number; bytes: number; lines: number; rssPeakMiB: number };
  errors: number;
}

/** Streams one file, counting its lines and bytes (never held in memory); checks the first line's resourceType. */
function downloadFile(o: Options, token: string, url: string, type: string): Promise<{ lines: number; bytes: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: o.port, path: u.pathname + u.search, headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+ndjson' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${u.pathname} -> ${res.statusCode}`));
          return;
        }
        let lines = 0;
        let bytes = 0;
        const head: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          const nl = c.indexOf(10);
          if (!lines) head.push(nl === -1 ? c : c.subarray(0, nl));
          bytes += c.length;
          for (let i = nl; i !== -1; i = c.indexOf(10, i + 1)) lines++;
        });
        res.on('end', () => {
          let first: string | undefined;
          try {
            first = lines ? (JSON.parse(Buffer.concat(head).toString('utf8')) as { resourceType?: string }).resourceType : type;
          } catch {
            first = '(not JSON)';
          }
          if (first !== type) reject(new Error(`${u.pathname}: the first line is a ${first}, the manifest says ${type}`));
          else resolve({ lines, bytes });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(300_000, () => req.destroy(new Error(`timeout: GET ${u.pathname}`)));
    req.on('error', reject);
  });
}

async function exportOnce(o: Options, run: number, client: HttpClient, token: string, slug: string, pid: number, stop: () => string | undefined): Promise<ExportRun> {
  // the memory before: the settled server, sampled for a second
  await sleep(1000);
  const before = sampleRss(pid);
  await sleep(1000);
  const rssBefore = before.stop().lastKiB;

  const sampler = sampleRss(pid);
  const t0 = performance.now();
  const kick = await client.request('GET', `/fhir/${slug}/$export`, undefined, { prefer: 'respond-async', accept: 'application/fhir+json' });
  if (kick.status !== 202) {
    sampler.stop();
    throw new Error(describeResponse('GET', '$export', kick));
  }
  const statusPath = new URL(String(kick.headers['content-location'])).pathname;
  let polls = 0;
  let manifest: Manifest;
  for (;;) {
    const reason = stop();
    if (reason) {
      sampler.stop();
      throw new Error(reason);
    }
    const res = await client.request('GET', statusPath, undefined, { accept: 'application/json' });
    polls++;
    if (res.status === 200) {
      manifest = JSON.parse(res.body) as Manifest;
      break;
    }
    if (res.status !== 202) {
      sampler.stop();
      throw new Error(describeResponse('GET', statusPath, res));
    }
    await sleep(o.pollMs);
  }
  const seconds = (performance.now() - t0) / 1000;
  const during = sampler.stop();
  const resources = manifest.output.reduce((n, f) => n + (f.count ?? 0), 0);

  // download every file (not timed into the export), checking its lines against the manifest
  const dl = sampleRss(pid);
  const d0 = performance.now();
  let bytes = 0;
  let lines = 0;
  for (const f of manifest.output) {
    const got = await downloadFile(o, token, f.url, f.type);
    if (f.count !== undefined && got.lines !== f.count) throw new Error(`${f.url}: ${got.lines} lines, the manifest says ${f.count}`);
    bytes += got.bytes;
    lines += got.lines;
  }
  const dlSeconds = (performance.now() - d0) / 1000;
  const dlRss = dl.stop();
  if (manifest.error.length) log(`  run ${run}: the manifest lists ${manifest.error.length} error file(s)`);
  return {
    run,
    resources,
    files: manifest.output.length,
    seconds: round(seconds, 3),
    resourcesPerSec: round(resources / seconds, 0),
    polls,
    rssBeforeMiB: mib(rssBefore),
    rssPeakMiB: mib(during.peakKiB),
    rssAfterMiB: mib(during.lastKiB),
    rssSamples: during.samples,
    download: { seconds: round(dlSeconds, 2), bytes, lines, rssPeakMiB: mib(dlRss.peakKiB) },
    errors: manifest.error.length,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main

function revision(): { commit: string; changed: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    return { commit, changed };
  } catch {
    return { commit: 'unknown', changed: [] };
  }
}

/** Removes every Redis key under the run's queue prefix. */
async function dropQueueKeys(redisUrl: string, prefix: string): Promise<void> {
  const { Queue } = await import('bullmq');
  const q = new Queue('export', { connection: { url: redisUrl }, prefix });
  try {
    // ioredis (BullMQ's connection); its cluster overloads hide the plain SCAN signature
    const redis = (await q.client) as unknown as { scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>; del(...keys: string[]): Promise<number> };
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await q.close();
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const problems = checkBundle(patientBundle(0, o.seed));
  if (problems.length) throw new Error(`synthetic data generator is broken: ${problems.join('; ')}`);
  const startedAt = new Date();
  const { cleanups, cleanup, interrupted } = lifecycle(log);
  const checkpoint = (): void => {
    const why = interrupted();
    if (why) throw new Error(why);
  };
  let keepWorkDir = o.keep;
  try {
    if (await portInUse(o.port)) throw new Error(`port ${o.port} is already in use; pick another with --port`);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-export-'));
    const logPath = path.join(workDir, 'server.log');
    const dataDir = path.join(workDir, 'data');
    fs.mkdirSync(dataDir);
    cleanups.push(async () => {
      if (keepWorkDir) log(`work directory (server log${o.databaseUrl ? '' : ', embedded database'}, export files) kept in ${workDir}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    });
    const runId = randomBytes(4).toString('hex');
    const slug = o.tenant ?? `bexp-${runId}`;
    const rev = revision();
    log(`build: ${rev.commit}${rev.changed.length ? ` with ${rev.changed.length} changed file(s) under src/ or migrations/` : ''}`);

    const queuePrefix = `bench-export-${runId}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://127.0.0.1:${o.port}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      DEMO_TENANT: 'false',
      QUEUE_PREFIX: queuePrefix,
      // the database's secrets (signing keys) are sealed with it: a later run with --tenant needs the same key
      SECRETS_KEY: process.env.SECRETS_KEY || randomBytes(32).toString('base64'),
    };
    if (!o.databaseUrl) {
      delete env.DATABASE_URL;
      delete env.DATABASE_ADMIN_URL;
    }
    const dbLabel = o.databaseUrl ? `PostgreSQL ${redactUrl(o.databaseUrl)}` : `embedded PGlite in ${dataDir}`;
    log(`resources=${o.resources} exports=${o.exports} concurrency=${o.concurrency} port=${o.port}; database: ${dbLabel}${o.redisUrl ? `; Redis prefix ${queuePrefix}` : ''}`);

    const t0 = performance.now();
    const server = ServerProcess.spawn(env, logPath, false, { onKill: log });
    cleanups.push(async () => {
      await server.stop();
      if (o.redisUrl) await dropQueueKeys(o.redisUrl, queuePrefix).catch((err) => log(`could not remove the Redis keys under ${queuePrefix}: ${(err as Error).message}`));
    });
    await server.waitReady(o.port, 180_000, interrupted);
    const pid = server.child.pid!;
    log(`server ready in ${Math.round(performance.now() - t0)} ms (pid ${pid}, log ${logPath})`);
    const stop = (): string | undefined => interrupted() ?? (server.exited ? `server stopped (${server.exitInfo}); log ${logPath}:\n${tail(logPath)}` : undefined);

    checkpoint();
    if (!o.tenant) {
      const cli = await runCli(['tenant', 'create', slug, '--name', `Export benchmark ${slug}`], env);
      if (cli.code !== 0) throw new Error(`tenant create ${slug} failed (exit ${cli.code}):\n${cli.output.trim()}`);
    }
    const minted = (await operatorTokens([slug], env))[slug];
    const token = minted.tokens[0];
    log(`tenant ${slug} ${o.tenant ? 'reused' : 'created'}; operator client ${minted.clientId}, token minted (scope ${minted.scope})`);
    const client = new HttpClient(o.port, '', token, o.concurrency);
    cleanups.push(async () => client.close());
    const loader = new HttpClient(o.port, `/fhir/${slug}`, token, o.concurrency);
    cleanups.push(async () => loader.close());

    checkpoint();
    let loaded: LoadResult = { bundles: 0, resources: 0, seconds: 0, resourcesPerSec: 0 };
    if (!o.tenant) {
      log(`load: ${Math.ceil(o.resources / ENTRIES_PER_BUNDLE)} transaction Bundles x ${ENTRIES_PER_BUNDLE} resources over HTTP, ${o.concurrency} clients`);
      loaded = await load(o, loader, stop);
      log(`  ${loaded.resources} resources in ${loaded.seconds} s (${loaded.resourcesPerSec} resources/s)`);
      if (o.databaseUrl) log(`  to export this tenant again (scratch database, scratch key): SECRETS_KEY=${env.SECRETS_KEY} npm run bench:export -- --tenant ${slug}`);
    }

    const runs: ExportRun[] = [];
    for (let r = 1; r <= o.exports; r++) {
      checkpoint();
      const e = await exportOnce(o, r, client, token, slug, pid, stop);
      runs.push(e);
      log(`  export ${r}: ${e.resources} resources in ${e.seconds} s = ${e.resourcesPerSec}/s; RSS ${e.rssBeforeMiB} MiB before, ${e.rssPeakMiB} MiB peak (${e.rssSamples} samples)`);
      if (e.resources < loaded.resources) throw new Error(`export ${r} holds ${e.resources} resources, fewer than the ${loaded.resources} loaded`);
      if (e.download.lines !== e.resources) throw new Error(`export ${r}: ${e.download.lines} lines downloaded, the manifest counts ${e.resources}`);
    }

    console.log('');
    console.log(`tenfhir export benchmark: tenant ${slug}, ${o.tenant ? 'loaded by an earlier run' : `${loaded.resources} resources loaded (+ the tenant's own)`}, ${o.exports} system-level exports`);
    console.log(`database: ${dbLabel}; node ${process.version}; ${os.cpus().length} CPUs; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log('');
    printTable(
      ['run', 'resources', 'files', 'kick-off to complete s', 'resources/s', 'RSS before MiB', 'RSS peak MiB', 'peak - before MiB', 'download s', 'MB'],
      runs.map((e) => [
        String(e.run), String(e.resources), String(e.files), e.seconds.toFixed(2), String(e.resourcesPerSec), e.rssBeforeMiB.toFixed(1), e.rssPeakMiB.toFixed(1),
        (e.rssPeakMiB - e.rssBeforeMiB).toFixed(1), e.download.seconds.toFixed(2), (e.download.bytes / 1e6).toFixed(1),
      ]),
    );
    const rates = runs.map((e) => e.resourcesPerSec);
    const best = Math.max(...rates);
    const worst = Math.min(...rates);
    console.log('');
    console.log(`resources/s: ${worst}-${best} (median ${[...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)]}); target >= ${TARGET_PER_SEC}: ${worst >= TARGET_PER_SEC ? 'met' : best >= TARGET_PER_SEC ? 'met in some runs' : 'missed'}`);
    if (!o.tenant) console.log(`load: ${loaded.resources} resources in ${loaded.seconds} s (${loaded.resourcesPerSec}/s, HTTP transaction Bundles)`);

    const results = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      build: rev,
      options: { tenant: slug, reused: !!o.tenant, resources: o.resources, exports: o.exports, concurrency: o.concurrency, pollMs: o.pollMs, seed: o.seed },
      environment: {
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        database: o.databaseUrl ? { kind: 'postgres', url: redactUrl(o.databaseUrl) } : { kind: 'pglite' },
        redis: o.redisUrl ? 'yes' : 'no',
      },
      load: loaded,
      exports: runs,
    };
    const resultsDir = path.join(BENCH_DIR, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `export-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(process.cwd(), file) || file}`);
    return 0;
  } catch (err) {
    const why = interrupted();
    if (why) throw new Interrupted(why);
    keepWorkDir = true;
    throw err;
  } finally {
    await cleanup();
  }
}

runMain(main, 'export', USAGE);
