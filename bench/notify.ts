// The notification benchmark (issue 10): commit-to-receipt latency of lab-result notifications at a fixed rate of
// final DiagnosticReports spread over many tenants with many active rest-hook subscriptions, and what those
// subscriptions cost the founders' W1 ingest, measured in the same run.
//
//   npm run bench:notify -- [--seconds S] [--rate R] [--tenants T] [--subs K] [--content full-resource|id-only]
//        [--w1-patients N] [--w1-rounds R] [--w1-tenant subscribed|separate] [--drain S] [--port P] [--keep]
//
// It creates a fresh PostgreSQL database (and the plain login role the server runs as), starts the server as shipped
// in its own process (auth, row-level security, validation, Redis queues, workers in the server), creates the
// tenants, their operator clients and tokens with the CLI's own functions in this process (what `npm run cli -- tenant
// create` and `token` do, against the same database), answers the notifications on loopback HTTP receivers in this
// process, and drives the load open-loop. See bench/README.md ("Notification benchmark").

import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
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
  fmtMs,
  lifecycle,
  makeLog,
  numberOpt,
  parseLocation,
  portInUse,
  printTable,
  round,
  runMain,
  sleep,
  summarize,
  tail,
  type HttpResponse,
  type LatencySummary,
} from './common.js';

const log = makeLog('notify');
const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const TOPIC = 'lab-result-final';
const LAB = { system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB', display: 'Laboratory' };
const PANEL = { system: 'http://loinc.org', code: '24323-8', display: 'Comprehensive metabolic 2000 panel - Serum or Plasma' };
/** W1's warm-up patients (the driver's default, sent before its measured ones; their reports notify too). */
const W1_WARMUP = 20;
/** W1's bundles each hold 2 final DiagnosticReports (../shared/bench/src/synth.mjs). */
const W1_REPORTS_PER_BUNDLE = 2;
/** The targets of issue 10. */
const TARGET = { p95Ms: 100, p99Ms: 250, w1CostPct: 10 };

/** Wall-clock milliseconds with sub-millisecond resolution (the server stamps events with the same clock). */
const wallNow = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------------------
// Options

type Content = 'full-resource' | 'id-only';

interface Options {
  seconds: number;
  rate: number;
  tenants: number;
  subs: number;
  content: Content;
  drain: number;
  w1Patients: number;
  w1Rounds: number;
  w1Concurrency: number;
  w1Tenant: 'subscribed' | 'separate';
  w1Drain: number;
  port: number;
  keep: boolean;
  waitIdle: number;
  pgAdminUrl: string;
  redisUrl: string;
  role: string;
}

const USAGE = `usage: npm run bench:notify -- [options]

  --seconds S         length of the load (default 30)
  --rate R            final DiagnosticReports per second, open-loop, round-robin over the tenants (default 200)
  --tenants T         tenants (default 20)
  --subs K            active lab-result-final rest-hook subscriptions per tenant (default 5)
  --content C         payload content: full-resource (default) or id-only
  --drain S           at most this long after the load for the last notifications (default 120; ends when complete)
  --w1-patients N     patients per founders' W1 run (default 2000, the driver's default; 0 = no W1 comparison)
  --w1-rounds R       rounds of W1 with / without the subscriptions, alternated ABBA (default 2 = on, off, off, on)
  --w1-concurrency C  W1 clients (default 4, the driver's default)
  --w1-tenant W       subscribed: W1 writes into the first tenant, whose K subscriptions match its reports (default);
                      separate: into a tenant of its own, without subscriptions
  --w1-drain S        after a W1 run with subscriptions, at most this long for the notifications of its reports (default 30)
  --port P            server port (default 18280)
  --wait-idle S       before the load and before each W1 run, wait up to S seconds for the rest of the machine to go
                      quiet (< 0.3 busy cores besides the server and this process; default 0: do not wait)
  --keep              keep the database and the work directory (server log) at the end

  BENCH_PG_ADMIN_URL  PostgreSQL superuser connection, database postgres (default postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_DB_ROLE       the plain login role the server runs as (default tenfhir_bench; created when missing)
  REDIS_URL           Redis for the server's queues (default redis://127.0.0.1:6379)`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' },
        rate: { type: 'string' },
        tenants: { type: 'string' },
        subs: { type: 'string' },
        content: { type: 'string' },
        drain: { type: 'string' },
        'w1-patients': { type: 'string' },
        'w1-rounds': { type: 'string' },
        'w1-concurrency': { type: 'string' },
        'w1-tenant': { type: 'string' },
        'w1-drain': { type: 'string' },
        port: { type: 'string' },
        keep: { type: 'boolean' },
        'wait-idle': { type: 'string' },
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
  const content = str('content') ?? 'full-resource';
  if (content !== 'full-resource' && content !== 'id-only') throw new UsageError(`--content must be full-resource or id-only, got "${content}"`);
  const w1Tenant = str('w1-tenant') ?? 'subscribed';
  if (w1Tenant !== 'subscribed' && w1Tenant !== 'separate') throw new UsageError(`--w1-tenant must be subscribed or separate, got "${w1Tenant}"`);
  return {
    seconds: numberOpt('seconds', str('seconds'), 30, 1, false),
    rate: numberOpt('rate', str('rate'), 200, 1, false),
    tenants: numberOpt('tenants', str('tenants'), 20, 1),
    subs: numberOpt('subs', str('subs'), 5, 1),
    content,
    drain: numberOpt('drain', str('drain'), 120, 1, false),
    w1Patients: numberOpt('w1-patients', str('w1-patients'), 2000, 0),
    w1Rounds: numberOpt('w1-rounds', str('w1-rounds'), 2, 1),
    w1Concurrency: numberOpt('w1-concurrency', str('w1-concurrency'), 4, 1),
    w1Tenant,
    w1Drain: numberOpt('w1-drain', str('w1-drain'), 30, 0, false),
    port: numberOpt('port', str('port'), 18280, 1),
    keep: values.keep === true,
    waitIdle: numberOpt('wait-idle', str('wait-idle'), 0, 0, false),
    pgAdminUrl: env.BENCH_PG_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    role: env.BENCH_DB_ROLE || 'tenfhir_bench',
  };
}

// ---------------------------------------------------------------------------------------------------------
// Receivers: one loopback HTTP server per tenant, one path per subscription; 200 at once, everything recorded

interface RawNote {
  tenant: string;
  path: string;
  at: number;
  phase: string;
  signature: string | undefined;
  body: string | undefined;
}

interface Note {
  tenant: string;
  path: string;
  at: number;
  phase: string;
  type: string;
  subscription: string;
  eventNumber: number | undefined;
  timestamp: number | undefined;
  focus: string | undefined;
  hasResource: boolean;
  signatureOk: boolean;
  bytes: number;
}

class Receivers {
  readonly raw: RawNote[] = [];
  readonly notes: Note[] = [];
  private readonly servers: http.Server[] = [];
  readonly urls = new Map<string, string>();
  phase = 'setup';
  count = 0;

  async start(tenants: string[]): Promise<void> {
    for (const t of tenants) {
      const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const at = wallNow();
          res.writeHead(200, { 'content-length': '0' }).end();
          const sig = req.headers['x-tenfhir-signature'];
          this.raw.push({ tenant: t, path: req.url ?? '', at, phase: this.phase, signature: typeof sig === 'string' ? sig : undefined, body: Buffer.concat(chunks).toString('utf8') });
          this.count++;
        });
      });
      server.keepAliveTimeout = 60_000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.servers.push(server);
      this.urls.set(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/${t}`);
    }
  }

  /** Parses and verifies what arrived since the last call (secrets are known by then: handshakes may beat the create's response). */
  process(secretOf: (subscriptionId: string) => string | undefined): void {
    for (const r of this.raw.splice(0)) {
      const body = r.body ?? '';
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const params: any[] = json?.entry?.[0]?.resource?.parameter ?? [];
      const get = (name: string): any => params.find((p) => p.name === name);
      const subRef: string = get('subscription')?.valueReference?.reference ?? '';
      const subscription = subRef.split('/').pop() ?? '';
      const ev = get('notification-event');
      const part = (name: string): any => ev?.part?.find((p: any) => p.name === name);
      const focus: string | undefined = part('focus')?.valueReference?.reference?.split('/').pop();
      const ts = part('timestamp')?.valueInstant;
      const secret = secretOf(subscription);
      this.notes.push({
        tenant: r.tenant,
        path: r.path,
        at: r.at,
        phase: r.phase,
        type: get('type')?.valueCode ?? 'unparseable',
        subscription,
        eventNumber: part('event-number') ? Number(part('event-number').valueString) : undefined,
        timestamp: ts ? Date.parse(ts) : undefined,
        focus,
        hasResource: !!json?.entry?.[1]?.resource,
        signatureOk: !!secret && verifySignature(secret, r.signature, body, r.at),
        bytes: Buffer.byteLength(body),
      });
    }
  }

  async close(): Promise<void> {
    for (const s of this.servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

/** X-Tenfhir-Signature: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, fresh within 5 minutes of receipt. */
function verifySignature(secret: string, header: string | undefined, body: string, at: number): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  if (Math.abs(at / 1000 - Number(m[1])) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex'));
}

// ---------------------------------------------------------------------------------------------------------
// Metrics (GET /metrics) and CPU

type Prom = Map<string, number>;

function parseProm(text: string): Prom {
  const out: Prom = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

interface HistogramDelta {
  count: number;
  meanMs: number;
  /** share of observations at or below each bucket bound (seconds) */
  cumulative: { le: string; share: number }[];
  /** the bucket bound (ms) within which the quantile falls: an upper bound */
  p50UpToMs: number;
  p95UpToMs: number;
  p99UpToMs: number;
}

function histogramDelta(before: Prom, after: Prom, name: string): HistogramDelta {
  const buckets = new Map<string, number>();
  let sum = 0;
  let count = 0;
  for (const [key, v] of after) {
    const d = v - (before.get(key) ?? 0);
    if (key.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(key)?.[1] ?? '';
      buckets.set(le, (buckets.get(le) ?? 0) + d);
    } else if (key === `${name}_sum` || key.startsWith(`${name}_sum{`)) sum += d;
    else if (key === `${name}_count` || key.startsWith(`${name}_count{`)) count += d;
  }
  const sorted = [...buckets].sort((a, b) => (a[0] === '+Inf' ? 1 : b[0] === '+Inf' ? -1 : Number(a[0]) - Number(b[0])));
  const upTo = (q: number): number => {
    for (const [le, c] of sorted) if (count && c >= q * count) return le === '+Inf' ? Infinity : Number(le) * 1000;
    return NaN;
  };
  return {
    count,
    meanMs: count ? round((sum / count) * 1000, 1) : NaN,
    cumulative: sorted.map(([le, c]) => ({ le, share: count ? round(c / count, 4) : 0 })),
    p50UpToMs: upTo(0.5),
    p95UpToMs: upTo(0.95),
    p99UpToMs: upTo(0.99),
  };
}

function counterDelta(before: Prom, after: Prom, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of after) if (key.startsWith(prefix)) out[key.slice(prefix.length) || '{}'] = v - (before.get(key) ?? 0);
  return out;
}

const CLK_TCK = 100;

interface CpuSnap {
  at: number;
  busy: number;
  groups: Record<string, number>;
}

/** Jiffies used so far: the whole machine (busy), and by group (the server, this process, postgres, redis, the rest). */
function cpuSnap(serverPid: number | undefined): CpuSnap {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = fields.reduce((a, b) => a + b, 0) - fields[3] - (fields[4] ?? 0);
  const groups: Record<string, number> = { server: 0, bench: 0, postgres: 0, redis: 0, other: 0 };
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    const jiffies = Number(rest[11]) + Number(rest[12]);
    const pid = Number(name);
    const group = pid === serverPid ? 'server' : pid === process.pid ? 'bench' : comm === 'postgres' ? 'postgres' : comm.startsWith('redis') ? 'redis' : 'other';
    groups[group] += jiffies;
  }
  return { at: performance.now(), busy, groups };
}

/** Cores used between two snapshots (processes that exited in between are missing from their group). */
function cpuCores(a: CpuSnap, b: CpuSnap): Record<string, number> {
  const secs = (b.at - a.at) / 1000;
  const out: Record<string, number> = { machine: round((b.busy - a.busy) / CLK_TCK / secs, 2) };
  for (const g of Object.keys(b.groups)) out[g] = round(Math.max(0, b.groups[g] - (a.groups[g] ?? 0)) / CLK_TCK / secs, 2);
  return out;
}

/**
 * Busy cores of the machine besides the server and this process over 2 s; with `maxSec` > 0, repeated until below
 * 0.3 or `maxSec` passed (a shared machine: other people's jobs skew the figures). Returns the last measurement.
 */
async function background(serverPid: number | undefined, maxSec: number): Promise<number> {
  const until = performance.now() + maxSec * 1000;
  for (;;) {
    const a = cpuSnap(serverPid);
    await sleep(2000);
    const c = cpuCores(a, cpuSnap(serverPid));
    const busy = round(Math.max(0, c.machine - c.server - c.bench), 2);
    if (busy < 0.3 || performance.now() >= until) return busy;
    log(`  waiting for the machine to go quiet: ${busy} other busy cores`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Subscriptions

interface Sub {
  id: string;
  tenant: string;
  k: number;
  secret: string;
  resource: Record<string, unknown>;
}

function subscriptionResource(topicUrl: string, endpoint: string, content: Content): Record<string, unknown> {
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    status: 'requested',
    reason: 'bench:notify lab results',
    criteria: topicUrl,
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: content }] },
    },
  };
}

function report(patientId: string, tag: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    resourceType: 'DiagnosticReport',
    identifier: [{ system: 'urn:bench:notify', value: tag }],
    status: 'final',
    category: [{ coding: [LAB] }],
    code: { coding: [PANEL], text: PANEL.display },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: now,
    issued: now,
    conclusion: 'Within reference range',
  });
}

// ---------------------------------------------------------------------------------------------------------
// Load

interface Sent {
  tenant: string;
  scheduledAt: number;
  sentAt: number;
  respondedAt: number;
  status: number;
  id: string | undefined;
}

interface LoadResult {
  sent: Sent[];
  seconds: number;
  scheduleLagMs: LatencySummary;
  maxInflight: number;
  statuses: Record<string, number>;
  errorSamples: string[];
  postLatencyMs: LatencySummary;
}

async function openLoop(
  o: Options,
  client: HttpClient,
  tenants: string[],
  patients: Map<string, string>,
  runTag: string,
  stop: () => string | undefined,
): Promise<LoadResult> {
  const total = Math.round(o.rate * o.seconds);
  const interval = 1000 / o.rate;
  const sent: Sent[] = [];
  const lags: number[] = [];
  const statuses: Record<string, number> = {};
  const errors = new ErrorSamples();
  const inflight = new Set<Promise<void>>();
  let maxInflight = 0;
  const t0 = performance.now() + 20;
  const wall0 = performance.timeOrigin + t0;
  const fire = (i: number): void => {
    const tenant = tenants[i % tenants.length];
    const scheduledAt = wall0 + i * interval;
    const rec: Sent = { tenant, scheduledAt, sentAt: wallNow(), respondedAt: NaN, status: 0, id: undefined };
    sent.push(rec);
    lags.push(rec.sentAt - scheduledAt);
    const p = client
      .request('POST', `/fhir/${tenant}/DiagnosticReport`, report(patients.get(tenant)!, `${runTag}-${i}`), {}, 120_000)
      .then(
        (res) => {
          rec.respondedAt = wallNow();
          rec.status = res.status;
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status === 201) rec.id = parseLocation(res.headers.location ?? '')?.id ?? (JSON.parse(res.body) as { id?: string }).id;
          else errors.add(describeResponse('POST', `/fhir/${tenant}/DiagnosticReport`, res));
        },
        (err: unknown) => {
          rec.respondedAt = wallNow();
          statuses[errCode(err)] = (statuses[errCode(err)] ?? 0) + 1;
          errors.add(`POST /fhir/${tenant}/DiagnosticReport: ${(err as Error).message}`);
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size > maxInflight) maxInflight = inflight.size;
  };
  let i = 0;
  let lastProgress = performance.now();
  await new Promise<void>((resolve, reject) => {
    const tick = (): void => {
      const reason = stop();
      if (reason) return reject(new Error(reason));
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) fire(i++);
      if (now - lastProgress >= 5000) {
        lastProgress = now;
        log(`  ${i}/${total} reports sent, ${inflight.size} in flight`);
      }
      if (i >= total) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    };
    tick();
  });
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all([...inflight]);
  const postLat = sent.filter((s) => s.status === 201).map((s) => s.respondedAt - s.sentAt);
  return { sent, seconds, scheduleLagMs: summarize(lags), maxInflight, statuses, errorSamples: errors.samples, postLatencyMs: summarize(postLat) };
}

// ---------------------------------------------------------------------------------------------------------
// The founders' driver (W1)

/** A copy of ../shared/bench in the work directory (never written to), resolving `pg` from this project's node_modules. */
function prepareDriver(workDir: string): string {
  const src = path.resolve(ROOT, '..', 'shared', 'bench');
  if (!fs.existsSync(path.join(src, 'src', 'cli.mjs'))) throw new Error(`the founders' driver is not at ${src} (../shared/bench from the repository root)`);
  const dst = path.join(workDir, 'fhir-bench');
  fs.mkdirSync(dst, { recursive: true });
  fs.cpSync(path.join(src, 'src'), path.join(dst, 'src'), { recursive: true });
  fs.copyFileSync(path.join(src, 'package.json'), path.join(dst, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dst, 'node_modules'), 'dir');
  return dst;
}

interface W1Run {
  phase: string;
  subscriptions: 'on' | 'off';
  resourcesPerSec: number;
  resources: number;
  bundles: number;
  errors: number;
  wallSec: number;
  bundleLatencyMs: unknown;
  cpu: { machineBusyCores?: number; byGroupCores?: Record<string, number> } | undefined;
  /** busy cores besides the server and this process just before the run */
  backgroundCores: number;
  firstError?: string;
}

function runDriver(dir: string, args: string[], stop: () => string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/cli.mjs', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = (c: Buffer): void => {
      for (const line of c.toString().split('\n')) if (line.trim()) process.stderr.write(`[fhir-bench] ${line}\n`);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    const watch = setInterval(() => {
      if (stop()) child.kill('SIGTERM');
    }, 500);
    child.once('error', (err) => {
      clearInterval(watch);
      reject(err);
    });
    child.once('close', (code) => {
      clearInterval(watch);
      const why = stop();
      if (why) reject(new Error(why));
      else if (code !== 0) reject(new Error(`the founders' driver exited with code ${code}`));
      else resolve();
    });
  });
}

/** The build measured: the commit, and the files under src/ and migrations/ that differ from it (read-only git). */
function revision(): { commit: string; changed: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    return { commit, changed };
  } catch {
    return { commit: 'unknown', changed: [] };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tenants and tokens

/**
 * What `npm run cli -- tenant create <slug> --name ...` (the tenant, its root Organization, its operator client
 * `<slug>-cli`) and `npm run cli -- token <slug> --client <slug>-cli --scope 'system/*.cruds'` do, with the same
 * functions, in this process, against the server's database (one process instead of two CLI runs per tenant).
 */
async function createTenants(env: NodeJS.ProcessEnv, slugs: string[]): Promise<Map<string, string>> {
  await import('../src/platform/runtime-notice.js');
  const { loadConfig } = await import('../src/config/index.js');
  const { buildDeps, closeDeps } = await import('../src/compose.js');
  const { createLogger } = await import('../src/platform/log.js');
  const { createTenant } = await import('../src/tenancy/create-tenant.js');
  const { registerClient } = await import('../src/auth/admin.js');
  const { createAuthServer } = await import('../src/auth/server.js');
  const { mintAccessToken } = await import('../src/auth/tokens.js');
  const { TenantCache } = await import('../src/tenancy/tenant-cache.js');
  const config = loadConfig(env);
  const deps = await buildDeps(config, createLogger('warn', 2));
  const auth = createAuthServer(deps, new TenantCache(deps.db));
  try {
    const tokens = new Map<string, string>();
    for (const slug of slugs) {
      await createTenant(deps, slug, `bench:notify ${slug}`);
      const clientId = `${slug}-cli`;
      await registerClient(deps, auth.provider(), { tenant: slug, kind: 'operator', name: `bench:notify ${slug} operator (CLI tokens)`, clientId, scope: 'system/*.cruds' });
      const minted = await mintAccessToken(deps, deps.auth.keys, { tenant: slug, clientId, scope: 'system/*.cruds', ttlSeconds: 6 * 3600 });
      tokens.set(slug, minted.accessToken);
    }
    return tokens;
  } finally {
    auth.close();
    await closeDeps(deps);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Analysis

interface Analysis {
  expected: number;
  deliveredNotifications: number;
  uniqueDelivered: number;
  lost: number;
  duplicates: number;
  duplicateFocus: number;
  outOfOrder: number;
  badSignatures: number;
  missingResource: number;
  latencyFromEventMs: LatencySummary;
  /** Percentiles over every expected notification, a lost one counting as never arriving (Infinity). */
  latencyFromEventOverExpectedMs: { p50: number; p95: number; p99: number };
  latencyFromResponseMs: LatencySummary;
  latencyFromRequestStartMs: LatencySummary;
  arrivedBeforeResponse: number;
  lastArrivalAfterLoadEndMs: number;
  deliveredPerSec: number;
  meanBytes: number;
}

function analyse(notes: Note[], reports: Sent[], subsByTenant: Map<string, Sub[]>, content: Content, loadEnd: number, loadStart: number): Analysis {
  const byId = new Map<string, Sent>();
  for (const r of reports) if (r.id) byId.set(r.id, r);
  const mine = notes.filter((n) => n.type === 'event-notification' && n.focus && byId.has(n.focus));
  const seenEvent = new Map<string, number>();
  const seenFocus = new Map<string, Set<number | undefined>>();
  const fromEvent: number[] = [];
  const fromResponse: number[] = [];
  const fromStart: number[] = [];
  let duplicates = 0;
  let badSignatures = 0;
  let missingResource = 0;
  let arrivedBeforeResponse = 0;
  let last = 0;
  let bytes = 0;
  const maxEvent = new Map<string, number>();
  let outOfOrder = 0;
  for (const n of [...mine].sort((a, b) => a.at - b.at)) {
    const key = `${n.subscription}#${n.eventNumber}`;
    const times = (seenEvent.get(key) ?? 0) + 1;
    seenEvent.set(key, times);
    if (times > 1) {
      duplicates++;
      continue;
    }
    const fk = `${n.subscription}|${n.focus}`;
    const set = seenFocus.get(fk) ?? new Set();
    set.add(n.eventNumber);
    seenFocus.set(fk, set);
    if ((maxEvent.get(n.subscription) ?? 0) > (n.eventNumber ?? 0)) outOfOrder++;
    maxEvent.set(n.subscription, Math.max(maxEvent.get(n.subscription) ?? 0, n.eventNumber ?? 0));
    if (!n.signatureOk) badSignatures++;
    if (content === 'full-resource' && !n.hasResource) missingResource++;
    const r = byId.get(n.focus!)!;
    if (n.timestamp !== undefined) fromEvent.push(n.at - n.timestamp);
    fromResponse.push(n.at - r.respondedAt);
    fromStart.push(n.at - r.sentAt);
    if (n.at < r.respondedAt) arrivedBeforeResponse++;
    last = Math.max(last, n.at);
    bytes += n.bytes;
  }
  let expected = 0;
  let uniqueDelivered = 0;
  const subIds = new Map<string, Set<string>>();
  for (const [t, subs] of subsByTenant) subIds.set(t, new Set(subs.map((s) => s.id)));
  for (const r of byId.values()) {
    const subs = subIds.get(r.tenant)!;
    expected += subs.size;
    for (const s of subs) if (seenFocus.has(`${s}|${r.id}`)) uniqueDelivered++;
  }
  const duplicateFocus = [...seenFocus.values()].filter((s) => s.size > 1).length;
  const unique = fromResponse.length;
  const sorted = Float64Array.from(fromEvent).sort();
  const overExpected = (p: number): number => {
    const rank = Math.max(1, Math.ceil((p / 100) * expected));
    return rank <= sorted.length ? round(sorted[rank - 1], 3) : Infinity;
  };
  return {
    expected,
    deliveredNotifications: mine.length,
    uniqueDelivered,
    lost: expected - uniqueDelivered,
    duplicates,
    duplicateFocus,
    outOfOrder,
    badSignatures,
    missingResource,
    latencyFromEventMs: summarize(fromEvent),
    latencyFromEventOverExpectedMs: { p50: overExpected(50), p95: overExpected(95), p99: overExpected(99) },
    latencyFromResponseMs: summarize(fromResponse),
    latencyFromRequestStartMs: summarize(fromStart),
    arrivedBeforeResponse,
    lastArrivalAfterLoadEndMs: last ? round(last - loadEnd, 0) : NaN,
    deliveredPerSec: last ? round(unique / ((last - loadStart) / 1000), 1) : 0,
    meanBytes: unique ? Math.round(bytes / unique) : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const startedAt = new Date();
  const { cleanups, cleanup, interrupted } = lifecycle(log);
  const checkpoint = (): void => {
    const why = interrupted();
    if (why) throw new Error(why);
  };
  let keepWorkDir = o.keep;
  try {
    if (await portInUse(o.port)) throw new Error(`port ${o.port} is already in use; pick another with --port`);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-notify-'));
    cleanups.push(async () => {
      if (keepWorkDir) log(`work directory (server log) kept in ${workDir}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    });
    const logPath = path.join(workDir, 'server.log');
    const runId = randomBytes(4).toString('hex');
    const rev = revision();
    log(`build: ${rev.commit}${rev.changed.length ? ` with ${rev.changed.length} changed file(s) under src/ or migrations/: ${rev.changed.join('; ')}` : ''}`);

    // (1) a fresh database, and the plain role the server logs in as (like .ci/run)
    const dbName = `tenfhir_notify_${runId}`;
    const admin = new pg.Client({ connectionString: o.pgAdminUrl });
    await admin.connect();
    cleanups.push(async () => {
      if (o.keep) log(`--keep: database ${dbName} kept`);
      else await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((err) => log(`could not drop ${dbName}: ${(err as Error).message}`));
      await admin.end().catch(() => undefined);
    });
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.query(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${o.role}') THEN CREATE ROLE ${o.role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; END $$;`,
    );
    const adminUrl = new URL(o.pgAdminUrl);
    adminUrl.pathname = `/${dbName}`;
    const appUrl = new URL(adminUrl.toString());
    appUrl.username = o.role;
    appUrl.password = '';
    const queuePrefix = `bench-notify-${runId}`;
    const origin = `http://127.0.0.1:${o.port}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: origin,
      DATABASE_URL: appUrl.toString(),
      DATABASE_ADMIN_URL: adminUrl.toString(),
      REDIS_URL: o.redisUrl,
      QUEUE_PREFIX: queuePrefix,
      SUBSCRIPTIONS_ALLOW_LOOPBACK: 'true',
      DEMO_TENANT: 'false',
      LOG_LEVEL: 'warn',
      DATA_DIR: path.join(workDir, 'data'),
      SECRETS_KEY: randomBytes(32).toString('base64'),
    };
    log(`database ${dbName} (server as ${o.role}, migrations as ${adminUrl.username}); Redis ${o.redisUrl} prefix ${queuePrefix}`);

    // (2) the server, as shipped, in its own process
    const server = ServerProcess.spawn(env, logPath, false, { onKill: log });
    cleanups.push(async () => {
      await server.stop();
      // the run's queues go with it: every Redis key under its own prefix (unique to this run)
      try {
        const { Queue } = await import('bullmq');
        const q = new Queue('deliveries', { connection: { url: o.redisUrl }, prefix: queuePrefix });
        try {
          // ioredis (BullMQ's connection); its cluster overloads hide the plain SCAN signature
          const redis = (await q.client) as unknown as { scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>; del(...keys: string[]): Promise<number> };
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${queuePrefix}:*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length) await redis.del(...keys);
          } while (cursor !== '0');
        } finally {
          await q.close();
        }
      } catch (err) {
        log(`could not remove the Redis keys under ${queuePrefix}: ${(err as Error).message}`);
      }
    });
    await server.waitReady(o.port, 180_000, interrupted);
    const serverPid = server.child.pid;
    log(`server ready (pid ${serverPid}, log ${logPath})`);
    const stop = (): string | undefined => interrupted() ?? (server.exited ? `server stopped (${server.exitInfo}); log ${logPath}:\n${tail(logPath)}` : undefined);

    // (3) tenants, their operator clients and tokens: what the CLI's `tenant create` and `token` do, in this process
    const tenants = Array.from({ length: o.tenants }, (_, i) => `nb${String(i + 1).padStart(2, '0')}-${runId}`);
    const w1Slug = o.w1Patients > 0 ? (o.w1Tenant === 'separate' ? `nbw1-${runId}` : tenants[0]) : undefined;
    const allTenants = w1Slug && !tenants.includes(w1Slug) ? [...tenants, w1Slug] : tenants;
    const setupT0 = performance.now();
    const tokens = await createTenants(env, allTenants);
    log(`${allTenants.length} tenants, their operator clients and tokens created (the CLI's functions, in this process) in ${Math.round(performance.now() - setupT0)} ms`);
    const tokenFor = (rel: string): string | undefined => tokens.get(rel.split('/')[2] ?? '');
    const client = new HttpClient(o.port, '', tokenFor, 256);
    cleanups.push(async () => client.close());
    const call = async (method: string, rel: string, body?: unknown, expect = [200, 201]): Promise<HttpResponse> => {
      const res = await client.request(method, rel, body === undefined ? undefined : JSON.stringify(body));
      if (!expect.includes(res.status)) throw new Error(describeResponse(method, rel, res));
      return res;
    };

    // (4) receivers, a patient per tenant, the subscriptions (K per tenant), all active after their handshake
    const receivers = new Receivers();
    await receivers.start(tenants);
    cleanups.push(() => receivers.close());
    const patients = new Map<string, string>();
    for (const t of allTenants) {
      const res = await call('POST', `/fhir/${t}/Patient`, { resourceType: 'Patient', name: [{ family: 'Notify', given: [t] }], gender: 'female', birthDate: '1970-01-01' });
      patients.set(t, (JSON.parse(res.body) as { id: string }).id);
    }
    /** Every subscription this run created (their secrets verify the signatures). */
    const allSubs = new Map<string, Sub>();
    const topicUrl = `${origin}/topics/${TOPIC}`;
    const subscribeAll = async (): Promise<Map<string, Sub[]>> => {
      const byTenant = new Map<string, Sub[]>();
      for (const t of tenants) {
        const list: Sub[] = [];
        for (let k = 0; k < o.subs; k++) {
          const resource = subscriptionResource(topicUrl, `${receivers.urls.get(t)}/${k}`, o.content);
          const res = await call('POST', `/fhir/${t}/Subscription`, resource, [201]);
          const secret = res.headers['x-subscription-secret'];
          if (typeof secret !== 'string') throw new Error(`no X-Subscription-Secret header on the create of a subscription in ${t}`);
          const body = JSON.parse(res.body) as Record<string, unknown>;
          const sub = { id: body.id as string, tenant: t, k, secret, resource: body };
          allSubs.set(sub.id, sub);
          list.push(sub);
        }
        byTenant.set(t, list);
      }
      return byTenant;
    };
    const unsubscribeAll = async (byTenant: Map<string, Sub[]>): Promise<void> => {
      for (const list of byTenant.values()) for (const s of list) await call('DELETE', `/fhir/${s.tenant}/Subscription/${s.id}`, undefined, [200, 204]);
    };
    const subsByTenant = await subscribeAll();
    const subCount = o.tenants * o.subs;
    const secretOf = (id: string): string | undefined => allSubs.get(id)?.secret;
    const statesOf = async (): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {};
      for (const t of tenants) {
        const res = await call('GET', `/fhir/${t}/Subscription/$status`);
        for (const e of (JSON.parse(res.body) as { entry?: { resource: { parameter: { name: string; valueCode?: string }[] } }[] }).entry ?? []) {
          const s = e.resource.parameter.find((p) => p.name === 'status')?.valueCode ?? '?';
          counts[s] = (counts[s] ?? 0) + 1;
        }
      }
      return counts;
    };
    const waitStatus = async (status: string, timeoutMs = 60_000): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        checkpoint();
        const c = await statesOf();
        if (c[status] === subCount) return;
        if (Date.now() > deadline) throw new Error(`subscriptions not all ${status} after ${timeoutMs / 1000} s: ${JSON.stringify(c)}`);
        await sleep(250);
      }
    };
    const activeT0 = performance.now();
    await waitStatus('active');
    log(`${subCount} subscriptions (${o.subs} per tenant, ${o.content}) active after their handshake in ${Math.round(performance.now() - activeT0)} ms`);

    // (5) warm-up: one report per tenant, each heard by its K subscriptions (not counted)
    checkpoint();
    receivers.phase = 'warm-up';
    const warm: Sent[] = [];
    for (const t of tenants) {
      const sentAt = wallNow();
      const res = await call('POST', `/fhir/${t}/DiagnosticReport`, JSON.parse(report(patients.get(t)!, `warm-${runId}-${t}`)), [201]);
      warm.push({ tenant: t, scheduledAt: sentAt, sentAt, respondedAt: wallNow(), status: res.status, id: parseLocation(res.headers.location ?? '')?.id });
    }
    const warmIds = new Set(warm.map((w) => w.id));
    {
      const deadline = Date.now() + 60_000;
      for (;;) {
        checkpoint();
        receivers.process(secretOf);
        const got = receivers.notes.filter((n) => n.type === 'event-notification' && warmIds.has(n.focus)).length;
        if (got >= warm.length * o.subs) break;
        if (Date.now() > deadline) throw new Error(`warm-up: ${got} of ${warm.length * o.subs} notifications after 60 s; log ${logPath}:\n${tail(logPath)}`);
        await sleep(100);
      }
      const ws = analyse(receivers.notes, warm, subsByTenant, o.content, wallNow(), warm[0].sentAt);
      log(`warm-up: ${warm.length} reports, ${ws.uniqueDelivered}/${ws.expected} notifications, p50 ${fmtMs(ws.latencyFromEventMs.p50)} ms from the event`);
    }

    // (6) the load: open-loop, round-robin over the tenants; samplers for the backlog and CPU
    checkpoint();
    // the backlog: change events not yet dispatched, numbered events of active subscriptions not yet delivered (the
    // superuser reads past row-level security), and the server's deliveries queue in Redis
    const sampleSql = `SELECT (SELECT count(*) FROM outbox)::int AS outbox,
      (SELECT count(*) FROM subscription_event e JOIN subscription_state s ON s.tenant_id = e.tenant_id AND s.id = e.subscription_id
        WHERE e.status = 'pending' AND s.status = 'active')::int AS pending`;
    const dbAdmin = new pg.Client({ connectionString: adminUrl.toString() });
    await dbAdmin.connect();
    cleanups.push(async () => void (await dbAdmin.end().catch(() => undefined)));
    const { Queue } = await import('bullmq');
    const deliveries = new Queue('deliveries', { connection: { url: o.redisUrl }, prefix: queuePrefix });
    cleanups.push(() => deliveries.close());
    type Backlog = { outbox: number; pending: number; queued: number; delayed: number };
    const backlog = async (): Promise<Backlog> => {
      const db = (await dbAdmin.query<{ outbox: number; pending: number }>(sampleSql)).rows[0];
      const q = await deliveries.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
      return { ...db, queued: (q.waiting ?? 0) + (q.prioritized ?? 0) + (q.active ?? 0) + (q.delayed ?? 0), delayed: q.delayed ?? 0 };
    };
    const metrics = async (): Promise<Prom> => parseProm((await call('GET', '/metrics')).body);
    const samples: ({ t: number; received: number; sent: number } & Backlog)[] = [];
    const backgroundBeforeLoad = await background(serverPid, o.waitIdle);
    log(`background before the load: ${backgroundBeforeLoad} busy cores besides the server and this process`);
    const m0 = await metrics();
    const cpu0 = cpuSnap(serverPid);
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    receivers.phase = 'load';
    const loadStartWall = wallNow();
    const receivedBefore = receivers.count;
    let sentSoFar: Sent[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const b = await backlog();
          samples.push({ t: round((wallNow() - loadStartWall) / 1000, 1), ...b, received: receivers.count - receivedBefore, sent: sentSoFar.length });
        } catch {
          // a missed sample only
        }
        await sleep(1000);
      }
    })();
    log(`load: ${o.rate} final DiagnosticReports/s for ${o.seconds} s over ${tenants.length} tenants (plain POSTs), ${subCount} subscriptions`);
    const loadPromise = openLoop(o, client, tenants, patients, `load-${runId}`, stop);
    const loadEndInfo = await loadPromise;
    sentSoFar = loadEndInfo.sent;
    const loadEndWall = wallNow();
    const cpuLoad = cpuCores(cpu0, cpuSnap(serverPid));
    loopDelay.disable();
    const created = loadEndInfo.sent.filter((s) => s.status === 201);
    log(`  sent ${loadEndInfo.sent.length} in ${round(loadEndInfo.seconds, 2)} s, ${created.length} created; draining (at most ${o.drain} s)`);

    // (7) drain: until every expected notification arrived and nothing is left to send, or --drain seconds
    const expectedLoad = created.reduce((n, r) => n + (subsByTenant.get(r.tenant)?.length ?? 0), 0);
    const drainT0 = performance.now();
    let drained = false;
    for (;;) {
      checkpoint();
      receivers.process(secretOf);
      const a = analyse(receivers.notes, created, subsByTenant, o.content, loadEndWall, loadStartWall);
      if (a.uniqueDelivered >= expectedLoad) {
        drained = true;
        break;
      }
      if (performance.now() - drainT0 > o.drain * 1000) break;
      await sleep(250);
    }
    const drainSeconds = round((performance.now() - drainT0) / 1000, 1);
    await sleep(1000); // late duplicates
    sampling = false;
    await sampler;
    const cpuAll = cpuCores(cpu0, cpuSnap(serverPid));
    const m1 = await metrics();
    receivers.process(secretOf);
    const a = analyse(receivers.notes, created, subsByTenant, o.content, loadEndWall, loadStartWall);
    const finalBacklog = await backlog();
    log(`  ${drained ? 'complete' : 'NOT complete'} after ${drainSeconds} s of drain: ${a.uniqueDelivered}/${a.expected} delivered; backlog now ${JSON.stringify(finalBacklog)}`);

    const hist = {
      outboxDispatchLag: histogramDelta(m0, m1, 'tenfhir_outbox_dispatch_lag_seconds'),
      notificationLatency: histogramDelta(m0, m1, 'tenfhir_notification_latency_seconds'),
      deliveryAttempt: histogramDelta(m0, m1, 'tenfhir_delivery_attempt_seconds'),
      httpRequest: histogramDelta(m0, m1, 'tenfhir_http_request_duration_seconds'),
    };
    const notificationsTotal = counterDelta(m0, m1, 'tenfhir_notifications_total');
    const retries = Object.entries(notificationsTotal).filter(([k]) => k.includes('outcome="retry"')).reduce((n, [, v]) => n + v, 0);
    const jobsTotal = counterDelta(m0, m1, 'tenfhir_jobs_total');

    // (8) W1 of the founders' driver with the subscriptions on and off, alternated (ABBA)
    const w1Runs: W1Run[] = [];
    const w1Notify: { phase: string; expected: number; uniqueDelivered: number; duplicates: number; latencyFromEventMs: LatencySummary; drainSeconds: number }[] = [];
    receivers.process(secretOf);
    /** Until nothing is left to dispatch, deliver or run in the deliveries queue, and the receivers were quiet for 2 s (at most --drain s). */
    const settle = async (): Promise<number> => {
      const t0 = performance.now();
      let lastCount = -1;
      let quietSince = performance.now();
      for (;;) {
        checkpoint();
        const b = await backlog();
        if (receivers.count !== lastCount) {
          lastCount = receivers.count;
          quietSince = performance.now();
        }
        if (b.outbox === 0 && b.pending === 0 && b.queued === 0 && performance.now() - quietSince > 2000) break;
        if (performance.now() - t0 > o.drain * 1000) {
          log(`  backlog not settled after ${o.drain} s: ${JSON.stringify(b)}`);
          break;
        }
        await sleep(250);
      }
      return round((performance.now() - t0) / 1000, 1);
    };
    // Each "on" run gets K x T fresh subscriptions (no backlog carried over from an earlier phase); "off" = deleted
    // (their queued delivery jobs then end without sending). Either way the backlog settles before the driver starts.
    let live: Map<string, Sub[]> | undefined = subsByTenant;
    const setSubs = async (want: 'on' | 'off'): Promise<void> => {
      if (live) {
        await unsubscribeAll(live);
        live = undefined;
      }
      if (want === 'on') {
        live = await subscribeAll();
        await waitStatus('active');
      }
    };
    if (o.w1Patients > 0 && w1Slug) {
      const driverDir = prepareDriver(workDir);
      const order: ('on' | 'off')[] = [];
      for (let r = 0; r < o.w1Rounds; r++) order.push(...(r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)));
      log(`W1 (founders' driver, ${o.w1Patients} patients, ${o.w1Concurrency} clients) into ${w1Slug} (${o.w1Tenant === 'subscribed' ? `${o.subs} of the subscriptions match its reports` : 'no subscriptions of its own'}), order ${order.join(', ')}; on = ${subCount} fresh subscriptions, off = deleted`);
      for (const [k, want] of order.entries()) {
        checkpoint();
        await setSubs(want);
        const settled = await settle();
        const bg = await background(serverPid, o.waitIdle);
        log(`  backlog settled in ${settled} s; background ${bg} busy cores`);
        const phase = `w1-${k + 1}-${want}`;
        receivers.phase = phase;
        const out = path.join(workDir, `${phase}.json`);
        const args = [
          '--base', `${origin}/fhir/${w1Slug}`, '--token', tokens.get(w1Slug)!, '--workloads', 'w1', '--patients', String(o.w1Patients),
          '-c', String(o.w1Concurrency), '--warmup-patients', String(W1_WARMUP), '--tag', `n${runId}r${k + 1}`, '--label', `bench:notify ${phase}`,
          '--state', path.join(workDir, `${phase}-state.json`), '--out', out, ...(serverPid ? ['--watch-pid', String(serverPid)] : []),
        ];
        log(`  ${phase}: subscriptions ${want}`);
        await runDriver(driverDir, args, stop);
        const r = JSON.parse(fs.readFileSync(out, 'utf8')) as { w1: { resourcesPerSec: number; resources: number; bundles: number; errors: number; wallSec: number; bundleLatencyMs: unknown; cpu: W1Run['cpu']; firstError?: string } };
        w1Runs.push({ phase, subscriptions: want, resourcesPerSec: r.w1.resourcesPerSec, resources: r.w1.resources, bundles: r.w1.bundles, errors: r.w1.errors, wallSec: r.w1.wallSec, bundleLatencyMs: r.w1.bundleLatencyMs, cpu: r.w1.cpu, backgroundCores: bg, ...(r.w1.firstError ? { firstError: r.w1.firstError } : {}) });
        log(`  ${phase}: ${r.w1.resourcesPerSec} resources/s (${r.w1.bundles} bundles, ${r.w1.errors} errors)`);
        if (want === 'on' && o.w1Tenant === 'subscribed') {
          // what W1's own final reports produced: all of it, or what came within --w1-drain s after W1
          const expected = (r.w1.bundles + W1_WARMUP) * W1_REPORTS_PER_BUNDLE * o.subs;
          const t0 = performance.now();
          let seen = new Set<string>();
          let lat: number[] = [];
          let dup = 0;
          for (;;) {
            checkpoint();
            receivers.process(secretOf);
            seen = new Set<string>();
            lat = [];
            dup = 0;
            for (const n of receivers.notes) {
              if (n.phase !== phase || n.type !== 'event-notification') continue;
              const key = `${n.subscription}#${n.eventNumber}`;
              if (seen.has(key)) dup++;
              else {
                seen.add(key);
                if (n.timestamp !== undefined) lat.push(n.at - n.timestamp);
              }
            }
            if (seen.size >= expected || performance.now() - t0 > o.w1Drain * 1000) break;
            await sleep(250);
          }
          const waited = round((performance.now() - t0) / 1000, 1);
          w1Notify.push({ phase, expected, uniqueDelivered: seen.size, duplicates: dup, latencyFromEventMs: summarize(lat), drainSeconds: waited });
          log(`  ${phase}: ${seen.size}/${expected} notifications of W1's reports by ${waited} s after W1 ended`);
        }
      }
    }
    const mean = (xs: number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);
    const w1On = mean(w1Runs.filter((r) => r.subscriptions === 'on').map((r) => r.resourcesPerSec));
    const w1Off = mean(w1Runs.filter((r) => r.subscriptions === 'off').map((r) => r.resourcesPerSec));
    const w1CostPct = round((1 - w1On / w1Off) * 100, 1);

    // (9) report
    const achievedRate = round(created.length / loadEndInfo.seconds, 1);
    const dupBeyondRetries = Math.max(0, a.duplicates - retries);
    const never = (v: number): number | string => (v === Infinity ? 'never (lost)' : v);
    const checks = [
      // over every expected notification: a lost one is later than any bound
      { target: `p95 commit->receipt <= ${TARGET.p95Ms} ms`, value: never(a.latencyFromEventOverExpectedMs.p95), met: a.latencyFromEventOverExpectedMs.p95 <= TARGET.p95Ms },
      { target: `p99 commit->receipt <= ${TARGET.p99Ms} ms`, value: never(a.latencyFromEventOverExpectedMs.p99), met: a.latencyFromEventOverExpectedMs.p99 <= TARGET.p99Ms },
      { target: '0 lost', value: a.lost, met: a.lost === 0 },
      { target: '0 duplicated beyond retries', value: dupBeyondRetries, met: dupBeyondRetries === 0 },
      { target: 'every signature valid', value: a.badSignatures, met: a.badSignatures === 0 },
      { target: `offered rate achieved (>= 98% of ${o.rate}/s)`, value: achievedRate, met: achievedRate >= 0.98 * o.rate },
      ...(w1Runs.length ? [{ target: `W1 cost <= ${TARGET.w1CostPct}% fewer resources/s`, value: w1CostPct, met: w1CostPct <= TARGET.w1CostPct }] : []),
    ];

    console.log('');
    console.log(`tenfhir notification benchmark: ${o.rate} final DiagnosticReports/s for ${o.seconds} s over ${o.tenants} tenants, ${subCount} active ${TOPIC} rest-hook subscriptions (${o.subs}/tenant, ${o.content})`);
    console.log(`build ${rev.commit}${rev.changed.length ? ` + ${rev.changed.length} uncommitted file(s) under src/ or migrations/` : ''}; PostgreSQL ${(await admin.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version}, Redis queues (BullMQ), server in its own process; node ${process.version}; ${os.cpus().length} CPUs; load average now ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${backgroundBeforeLoad} busy cores besides the server and this process just before the load`);
    console.log('');
    const lat = (s: LatencySummary): string[] => [fmtMs(s.p50), fmtMs(s.p95), fmtMs(s.p99), fmtMs(s.max)];
    printTable(
      ['latency per notification (ms)', 'p50', 'p95', 'p99', 'max'],
      [
        ['commit -> receipt (event timestamp), delivered ones', ...lat(a.latencyFromEventMs)],
        [
          'commit -> receipt, over all expected (lost = never)',
          ...[a.latencyFromEventOverExpectedMs.p50, a.latencyFromEventOverExpectedMs.p95, a.latencyFromEventOverExpectedMs.p99].map((v) => (v === Infinity ? 'never' : fmtMs(v))),
          a.lost ? 'never' : fmtMs(a.latencyFromEventMs.max),
        ],
        ['POST response -> receipt (lower bound), delivered', ...lat(a.latencyFromResponseMs)],
        ['POST request start -> receipt, delivered', ...lat(a.latencyFromRequestStartMs)],
        ['POST DiagnosticReport (request)', ...lat(loadEndInfo.postLatencyMs)],
      ],
    );
    console.log('');
    printTable(
      ['delivery', 'value'],
      [
        ['reports created / sent', `${created.length} / ${loadEndInfo.sent.length} (statuses ${JSON.stringify(loadEndInfo.statuses)})`],
        ['achieved rate', `${achievedRate} reports/s (schedule lag p99 ${fmtMs(loadEndInfo.scheduleLagMs.p99)} ms, max in flight ${loadEndInfo.maxInflight})`],
        ['notifications expected', String(a.expected)],
        ['delivered (unique) / received', `${a.uniqueDelivered} / ${a.deliveredNotifications}`],
        ['lost (after drain)', `${a.lost} (${drained ? 'complete' : 'incomplete'} after ${drainSeconds} s of drain; last arrival ${a.lastArrivalAfterLoadEndMs} ms after the load ended)`],
        ['duplicates (same subscription + event number)', `${a.duplicates} (server retries ${retries}; same report under two event numbers ${a.duplicateFocus})`],
        ['out of event order', String(a.outOfOrder)],
        ['invalid signatures', String(a.badSignatures)],
        ...(o.content === 'full-resource' ? [['without the resource', String(a.missingResource)]] : []),
        ['delivered notifications/s (load start to last arrival)', String(a.deliveredPerSec)],
        ['arrived before the POST response', String(a.arrivedBeforeResponse)],
        ['mean notification size', `${a.meanBytes} bytes`],
        ['CPU cores, load (machine/server/postgres/redis/bench/other)', `${cpuLoad.machine} / ${cpuLoad.server} / ${cpuLoad.postgres} / ${cpuLoad.redis} / ${cpuLoad.bench} / ${cpuLoad.other}`],
        ['CPU cores, load + drain', `${cpuAll.machine} / ${cpuAll.server} / ${cpuAll.postgres} / ${cpuAll.redis} / ${cpuAll.bench} / ${cpuAll.other}`],
        ['bench event-loop delay p99 / max', `${round(loopDelay.percentile(99) / 1e6, 1)} / ${round(loopDelay.max / 1e6, 1)} ms`],
      ],
    );
    console.log('');
    const bound = (h: HistogramDelta, v: number): string => {
      if (v !== Infinity) return `<= ${fmtMs(v)}`;
      const top = h.cumulative.filter((c) => c.le !== '+Inf').pop();
      return top ? `> ${fmtMs(Number(top.le) * 1000)}` : '-';
    };
    const hrow = (name: string, h: HistogramDelta): string[] => [name, String(h.count), fmtMs(h.meanMs), bound(h, h.p50UpToMs), bound(h, h.p95UpToMs), bound(h, h.p99UpToMs)];
    printTable(
      ['server histograms (GET /metrics, load + drain)', 'count', 'mean ms', 'p50 ms', 'p95 ms', 'p99 ms'],
      [
        hrow('tenfhir_outbox_dispatch_lag_seconds', hist.outboxDispatchLag),
        hrow('tenfhir_notification_latency_seconds', hist.notificationLatency),
        hrow('tenfhir_delivery_attempt_seconds', hist.deliveryAttempt),
        hrow('tenfhir_http_request_duration_seconds', hist.httpRequest),
      ],
    );
    const jobs = (outcome: string): number => Object.entries(jobsTotal).filter(([k]) => k.includes('queue="deliveries"') && k.includes(`outcome="${outcome}"`)).reduce((n, [, v]) => n + v, 0);
    console.log(`deliveries queue: ${jobs('completed')} job runs completed, ${jobs('delayed')} put back with a delay (JobDelay), ${jobs('retried') + jobs('failed')} failed`);
    const share = (h: HistogramDelta, le: string): string => `${round((h.cumulative.find((c) => c.le === le)?.share ?? NaN) * 100, 1)}%`;
    console.log(
      `within 100 ms / 250 ms / 1 s: dispatch lag ${share(hist.outboxDispatchLag, '0.1')} / ${share(hist.outboxDispatchLag, '0.25')} / ${share(hist.outboxDispatchLag, '1')}; ` +
        `server-side notification latency ${share(hist.notificationLatency, '0.1')} / ${share(hist.notificationLatency, '0.25')} / ${share(hist.notificationLatency, '1')}`,
    );
    const peak = samples.reduce((m, s) => ({ outbox: Math.max(m.outbox, s.outbox), pending: Math.max(m.pending, s.pending), queued: Math.max(m.queued, s.queued) }), { outbox: 0, pending: 0, queued: 0 });
    console.log(`backlog (1 s samples): peak ${peak.outbox} undispatched change events (outbox), ${peak.pending} undelivered notification events, ${peak.queued} jobs in the deliveries queue`);
    const every = Math.max(1, Math.ceil(samples.length / 24));
    const shown = samples.filter((_, i) => i % every === 0);
    console.log(`  t (s):        ${shown.map((s) => String(Math.round(s.t)).padStart(7)).join('')}`);
    console.log(`  outbox:       ${shown.map((s) => String(s.outbox).padStart(7)).join('')}`);
    console.log(`  undelivered:  ${shown.map((s) => String(s.pending).padStart(7)).join('')}`);
    console.log(`  queued jobs:  ${shown.map((s) => String(s.queued).padStart(7)).join('')}`);
    console.log(`  of which del.:${shown.map((s) => String(s.delayed).padStart(7)).join('')}`);
    console.log(`  received:     ${shown.map((s) => String(s.received).padStart(7)).join('')}`);
    if (loadEndInfo.errorSamples.length) console.log(`load errors (first ${loadEndInfo.errorSamples.length}):\n  ${loadEndInfo.errorSamples.join('\n  ')}`);
    if (w1Runs.length) {
      console.log('');
      printTable(
        ['W1 ingest (founders\' driver)', 'subscriptions', 'resources/s', 'bundles', 'errors', 'seconds', 'background before', 'machine / server+driver / pg / foreign cores'],
        w1Runs.map((r) => {
          const g = r.cpu?.byGroupCores ?? {};
          return [r.phase, r.subscriptions, String(r.resourcesPerSec), String(r.bundles), String(r.errors), String(r.wallSec), String(r.backgroundCores), `${r.cpu?.machineBusyCores} / ${g.ours} / ${g.postgres} / ${g.foreign}`];
        }),
      );
      console.log(`W1 mean: ${round(w1On, 1)} resources/s with ${subCount} subscriptions on, ${round(w1Off, 1)} with them off: ratio ${round(w1On / w1Off, 3)}, cost ${w1CostPct}%`);
      const rounds: string[] = [];
      for (let i = 0; i + 1 < w1Runs.length; i += 2) {
        const on = w1Runs.slice(i, i + 2).find((r) => r.subscriptions === 'on')!;
        const off = w1Runs.slice(i, i + 2).find((r) => r.subscriptions === 'off')!;
        rounds.push(`${round(on.resourcesPerSec / off.resourcesPerSec, 3)}`);
      }
      console.log(`  on/off ratio per round (adjacent pair): ${rounds.join(', ')}; runs whose "background before" is high shared the machine with other jobs`);
      for (const n of w1Notify) {
        console.log(`  ${n.phase}: ${n.uniqueDelivered}/${n.expected} notifications of W1's reports (${n.duplicates} duplicates), commit->receipt p50/p95/p99 ${fmtMs(n.latencyFromEventMs.p50)} / ${fmtMs(n.latencyFromEventMs.p95)} / ${fmtMs(n.latencyFromEventMs.p99)} ms, waited ${n.drainSeconds} s after W1 (at most --w1-drain)`);
      }
    }
    console.log('');
    printTable(['target (issue 10)', 'measured', ''], checks.map((c) => [c.target, String(c.value), c.met ? 'met' : 'MISSED']));

    const results = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options: { ...o, pgAdminUrl: undefined },
      revision: rev,
      backgroundCoresBeforeLoad: backgroundBeforeLoad,
      environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadavgAtEnd: os.loadavg() },
      setup: { tenants: o.tenants, subscriptions: subCount, content: o.content, load: 'plain POST DiagnosticReport (status final), open-loop', tenantsBy: "the CLI's tenant create and token functions, in the bench process" },
      load: {
        sent: loadEndInfo.sent.length,
        created: created.length,
        seconds: round(loadEndInfo.seconds, 3),
        achievedRate,
        statuses: loadEndInfo.statuses,
        scheduleLagMs: loadEndInfo.scheduleLagMs,
        maxInflight: loadEndInfo.maxInflight,
        postLatencyMs: loadEndInfo.postLatencyMs,
        errorSamples: loadEndInfo.errorSamples,
      },
      notifications: { ...a, latencyFromEventOverExpectedMs: Object.fromEntries(Object.entries(a.latencyFromEventOverExpectedMs).map(([k, v]) => [k, never(v)])), drained, drainSeconds, serverRetries: retries },
      cpuCores: { load: cpuLoad, loadAndDrain: cpuAll },
      benchEventLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
      server: { histograms: hist, notificationsTotal, jobsTotal, backlogSamples: samples },
      w1: w1Runs.length ? { tenant: o.w1Tenant, runs: w1Runs, meanOn: round(w1On, 1), meanOff: round(w1Off, 1), ratio: round(w1On / w1Off, 4), costPct: w1CostPct, notifications: w1Notify } : undefined,
      targets: checks,
    };
    const resultsDir = path.join(BENCH_DIR, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `notify-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(process.cwd(), file) || file}`);
    console.log(
      JSON.stringify({
        bench: 'notify',
        commit: rev.commit,
        uncommitted: rev.changed.length,
        rate: o.rate,
        seconds: o.seconds,
        tenants: o.tenants,
        subscriptions: subCount,
        content: o.content,
        achievedRate,
        created: created.length,
        expected: a.expected,
        delivered: a.uniqueDelivered,
        lost: a.lost,
        duplicates: a.duplicates,
        serverRetries: retries,
        badSignatures: a.badSignatures,
        commitToReceiptMs: a.latencyFromEventMs,
        commitToReceiptOverExpectedMs: Object.fromEntries(Object.entries(a.latencyFromEventOverExpectedMs).map(([k, v]) => [k, never(v)])),
        responseToReceiptMs: a.latencyFromResponseMs,
        w1: w1Runs.length ? { tenant: o.w1Tenant, on: w1Runs.filter((r) => r.subscriptions === 'on').map((r) => r.resourcesPerSec), off: w1Runs.filter((r) => r.subscriptions === 'off').map((r) => r.resourcesPerSec), ratio: round(w1On / w1Off, 4), costPct: w1CostPct } : null,
        targetsMet: Object.fromEntries(checks.map((c) => [c.target, c.met])),
      }),
    );
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

runMain(main, 'notify', USAGE);
