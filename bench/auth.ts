// The authorization benchmark: what SMART token verification adds to a FHIR read, and how fast the token endpoint
// answers client_credentials requests. Everything runs with the shipped defaults (auth, row-level security and
// validation on); only the comparison server has verification off.
//
//   npm run bench:auth -- [--patients N] [-c 1,4] [--seconds S] [--warmup W] [--rounds R] [--port P]
//                         [--fresh-tokens N] [--workloads read,token] [--seed X]
//
// Two servers on the same database: the shipped one (src/main.ts, port P) and bench/server-without-auth.ts
// (port P+1), which is the same app built with createApp(deps, { benchmarkWithoutAuth: true }). On PostgreSQL
// both run side by side; on the embedded database (one process only) they take turns on the same DATA_DIR.
// Read phases alternate (A B B A per pair of rounds) so that drift of the machine cancels out.
// See bench/README.md ("Authorization benchmark") for what each figure means.

import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import {
  BENCH_DIR,
  ErrorSamples,
  HttpClient,
  Interrupted,
  ServerProcess,
  UsageError,
  describeResponse,
  errCode,
  fmtMs,
  lifecycle,
  makeLog,
  numberOpt,
  parseLocation,
  runWorkers,
  operatorTokens,
  portInUse,
  printTable,
  redactUrl,
  round,
  runCli,
  runMain,
  sleep,
  summarize,
  tail,
  type HttpResponse,
  type LatencySummary,
} from './common.js';
import { DEFAULT_SEED, ENTRIES_PER_BUNDLE, Rng, checkBundle, patientBundle } from './synth.js';

/** The issue's targets. */
const TARGET_READ_P50_DELTA_MS = 0.3;
const TARGET_TOKEN_P95_MS = 50;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const BACKEND_SCOPE = 'system/*.rs';
const ES384_KID = 'bench-es384';
/** Lifetime of the pre-signed client assertions (SMART: at most five minutes). */
const ASSERTION_TTL_SECONDS = 290;

// ---------------------------------------------------------------------------------------------------------
// Options

type Workload = 'read' | 'token';

interface Options {
  patients: number;
  levels: number[];
  seconds: number;
  warmup: number;
  rounds: number;
  port: number;
  freshTokens: number;
  workloads: Set<Workload>;
  seed: number;
  databaseUrl: string | undefined;
}

const USAGE = `usage: npm run bench:auth -- [options]

  --patients N        synthetic patients to ingest (transaction bundles of ${ENTRIES_PER_BUNDLE} resources; default 100)
  -c, --concurrency L concurrent clients, a comma-separated list of levels measured one after the other (default 1,4)
  --seconds S         measured seconds per phase (default 10)
  --warmup W          untimed seconds before every phase (default 2)
  --rounds R          read rounds per concurrency level; each measures the three read modes (default 2)
  --port P            the shipped server's port; the server without auth uses P+1 (default 18082)
  --fresh-tokens N    at most N pre-minted tokens per fresh-token phase (default 30000)
  --workloads W       read, token or read,token (default read,token)
  --seed X            data generator seed (default ${DEFAULT_SEED})

  DATABASE_URL        PostgreSQL to run against (use a scratch database); unset = embedded PGlite in a temp dir
  DATABASE_ADMIN_URL  passed on to the servers (owner connection for migrations), as with npm run bench`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        patients: { type: 'string' },
        concurrency: { type: 'string', short: 'c' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        port: { type: 'string' },
        'fresh-tokens': { type: 'string' },
        workloads: { type: 'string' },
        seed: { type: 'string' },
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
  const levels = (str('concurrency') ?? '1,4').split(',').map((x) => numberOpt('concurrency', x.trim(), 1, 1));
  const workloads = new Set((str('workloads') ?? 'read,token').split(',').map((w) => w.trim()));
  for (const w of workloads) if (w !== 'read' && w !== 'token') throw new UsageError(`--workloads: unknown workload "${w}" (read, token)`);
  const seconds = numberOpt('seconds', str('seconds'), 10, 0.5, false);
  if (seconds > ASSERTION_TTL_SECONDS - 30) throw new UsageError(`--seconds must be at most ${ASSERTION_TTL_SECONDS - 30} (pre-signed client assertions live ${ASSERTION_TTL_SECONDS} s)`);
  return {
    patients: numberOpt('patients', str('patients'), 100, 1),
    levels: [...new Set(levels)],
    seconds,
    warmup: numberOpt('warmup', str('warmup'), 2, 0, false),
    rounds: numberOpt('rounds', str('rounds'), 2, 1),
    port: numberOpt('port', str('port'), 18082, 1),
    freshTokens: numberOpt('fresh-tokens', str('fresh-tokens'), 30_000, 100),
    workloads: workloads as Set<Workload>,
    seed: numberOpt('seed', str('seed'), DEFAULT_SEED, 0),
    databaseUrl: env.DATABASE_URL || undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Phases

const log = makeLog('bench:auth');

interface Ref {
  type: string;
  id: string;
}

/** One timed (or warm-up) phase: `op` runs in `c` workers until `seconds` pass or an op answers false (no more input). */
interface PhaseResult {
  label: string;
  concurrency: number;
  round: number;
  /** position in the sequence of read phases (for drift) */
  position: number;
  ok: number;
  errors: number;
  seconds: number;
  endedEarly: boolean;
  perSec: number;
  latencyMs: LatencySummary;
  statuses: Record<string, number>;
  errorSamples: string[];
}

/** Measures requests made by `send` (which returns the answer, or undefined when it has no more input). */
async function measured(
  label: string,
  c: number,
  seconds: number,
  send: () => Promise<HttpResponse | undefined> | undefined,
  accept: (res: HttpResponse) => string | undefined,
  stop: () => string | undefined,
  samples?: number[],
): Promise<Omit<PhaseResult, 'concurrency' | 'round' | 'position'>> {
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  const errors = new ErrorSamples(400);
  let ok = 0;
  let bad = 0;
  const phase = await runWorkers(
    c,
    seconds,
    async () => {
      const start = performance.now();
      let res: HttpResponse | undefined;
      try {
        const pending = send();
        if (!pending) return false;
        res = await pending;
      } catch (err) {
        bad++;
        statuses[errCode(err)] = (statuses[errCode(err)] ?? 0) + 1;
        errors.add(`${label}: ${errCode(err)}`);
        return true;
      }
      if (!res) return false;
      const ms = performance.now() - start;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const problem = accept(res);
      if (problem) {
        bad++;
        errors.add(`${label}: ${problem}`);
      } else {
        ok++;
        lat.push(ms);
      }
      return true;
    },
    stop,
  );
  if (samples) for (const ms of lat) samples.push(ms);
  return {
    label,
    ok,
    errors: bad,
    seconds: round(phase.seconds, 3),
    endedEarly: phase.endedEarly,
    perSec: round(ok / phase.seconds, 1),
    latencyMs: summarize(lat),
    statuses,
    errorSamples: errors.samples,
  };
}

/** Posts the N patient bundles (plus one untimed warm-up bundle) and returns the ids the server assigned. */
async function ingest(o: Options, client: HttpClient, c: number, stop: () => string | undefined): Promise<{ refs: Ref[]; seconds: number; failed: number; errorSamples: string[] }> {
  const warm = await client.request('POST', '', JSON.stringify(patientBundle(o.patients, o.seed)), {}, 300_000);
  if (warm.status !== 200) throw new Error(`warm-up transaction failed: ${describeResponse('POST', 'bundle', warm)}`);
  const refs: Ref[] = [];
  const errors = new ErrorSamples(400);
  let next = 0;
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (;;) {
        const i = next++;
        if (i >= o.patients) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        if (failed >= 5 && ok === 0) throw new Error(`ingest: the first bundles all failed:\n  ${errors.samples.join('\n  ')}`);
        const res = await client.request('POST', '', JSON.stringify(patientBundle(i, o.seed)), {}, 300_000).catch((err: unknown) => err as Error);
        if (res instanceof Error) {
          failed++;
          errors.add(`bundle ${i}: ${errCode(res)}`);
          continue;
        }
        let entries: { response?: { location?: string } }[] = [];
        try {
          if (res.status === 200) entries = (JSON.parse(res.body) as { entry?: typeof entries }).entry ?? [];
        } catch {
          // counted as a failure below
        }
        const got = entries
          .map((e) => parseLocation(e.response?.location ?? ''))
          .filter((l): l is NonNullable<typeof l> => l !== undefined)
          .map((l) => ({ type: l.type, id: l.id }));
        if (got.length !== ENTRIES_PER_BUNDLE) {
          failed++;
          errors.add(res.status === 200 ? `bundle ${i}: ${got.length} of ${ENTRIES_PER_BUNDLE} entries have a location` : describeResponse('POST', `bundle ${i}`, res));
          continue;
        }
        ok++;
        refs.push(...got);
      }
    }),
  );
  return { refs, seconds: (performance.now() - t0) / 1000, failed, errorSamples: errors.samples };
}

// ---------------------------------------------------------------------------------------------------------
// Token endpoint

interface BackendKey {
  privateKey: KeyObject;
  jwks: { keys: Record<string, unknown>[] };
}

function es384Key(): BackendKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { privateKey, jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: ES384_KID, alg: 'ES384', use: 'sig' }] } };
}

/** A SMART Backend Services client assertion with a unique jti (the server rejects a replayed one). */
function clientAssertion(clientId: string, tokenUrl: string, key: KeyObject): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ iss: clientId, sub: clientId, aud: tokenUrl, exp: now + ASSERTION_TTL_SECONDS, jti: randomBytes(16).toString('base64url') }, key, {
    algorithm: 'ES384',
    header: { alg: 'ES384', typ: 'JWT', kid: ES384_KID },
  });
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };

function tokenAnswer(res: HttpResponse): string | undefined {
  if (res.status !== 200) return describeResponse('POST', '/auth/token', res, 300);
  try {
    const body = JSON.parse(res.body) as { access_token?: string; token_type?: string };
    return body.access_token && /^bearer$/i.test(body.token_type ?? '') ? undefined : `POST /auth/token -> 200 without a bearer access_token: ${res.body.slice(0, 200)}`;
  } catch {
    return 'POST /auth/token -> 200, not JSON';
  }
}

function cliValue(output: string, key: string): string {
  const m = new RegExp(`^${key}: (\\S+)$`, 'm').exec(output);
  if (!m) throw new Error(`the CLI printed no ${key}:\n${output.trim()}`);
  return m[1];
}

// ---------------------------------------------------------------------------------------------------------
// Report helpers

function fmtLatency(s: LatencySummary | undefined): string {
  if (!s || s.count === 0) return '-';
  return `${fmtMs(s.p50)} / ${fmtMs(s.p95)} / ${fmtMs(s.p99)}`;
}

function fmtDelta(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Main

type Mode = 'none' | 'cached' | 'fresh';
const MODE_LABEL: Record<Mode, string> = {
  none: 'no auth (verification off)',
  cached: 'token, verified once (cache hit)',
  fresh: 'fresh token per request (cache miss)',
};
/** Which server a mode reads from: A = the shipped server, B = bench/server-without-auth.ts. */
const SERVER_OF: Record<Mode, 'A' | 'B'> = { none: 'B', cached: 'A', fresh: 'A' };

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const problems = checkBundle(patientBundle(0, o.seed));
  if (problems.length) throw new Error(`synthetic data generator is broken: ${problems.join('; ')}`);
  const startedAt = new Date();
  const loadAtStart = os.loadavg();
  const { cleanups, cleanup, interrupted } = lifecycle(log);
  const checkpoint = (): void => {
    const why = interrupted();
    if (why) throw new Error(why);
  };
  let keepWorkDir = false;
  try {
    const portA = o.port;
    const portB = o.port + 1;
    for (const p of [portA, portB]) if (await portInUse(p)) throw new Error(`port ${p} is already in use; pick another with --port (the benchmark uses P and P+1)`);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-auth-'));
    const dataDir = path.join(workDir, 'data');
    fs.mkdirSync(dataDir);
    cleanups.push(async () => {
      if (keepWorkDir) log(`server logs${o.databaseUrl ? '' : ' and data'} kept in ${workDir}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    });
    const slug = `bauth-${randomBytes(4).toString('hex')}`;
    const publicBaseUrl = `http://localhost:${portA}`;
    // Both servers answer with the same absolute URLs, so their answers are byte for byte the same.
    const envA: NodeJS.ProcessEnv = { ...process.env, PORT: String(portA), HOST: '127.0.0.1', PUBLIC_BASE_URL: publicBaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'warn', DEMO_TENANT: 'false' };
    if (o.databaseUrl) envA.DATABASE_URL = o.databaseUrl;
    else delete envA.DATABASE_URL;
    const envB: NodeJS.ProcessEnv = { ...envA, PORT: String(portB) };
    const side = !!o.databaseUrl; // PostgreSQL: both servers at once; PGlite: one at a time
    const dbLabel = o.databaseUrl ? `PostgreSQL ${redactUrl(o.databaseUrl)}` : `embedded PGlite in ${dataDir}`;
    log(
      `patients=${o.patients} concurrency=${o.levels.join(',')} seconds=${o.seconds} warmup=${o.warmup} rounds=${o.rounds} ports=${portA},${portB}; ` +
        `database: ${dbLabel}${side ? ' (servers side by side)' : ' (servers take turns)'}; load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}`,
    );

    // Servers
    const servers: Record<'A' | 'B', ServerProcess | undefined> = { A: undefined, B: undefined };
    const logs = { A: path.join(workDir, 'server-shipped.log'), B: path.join(workDir, 'server-without-auth.log') };
    const startups: { server: 'A' | 'B'; ms: number }[] = [];
    const start = async (which: 'A' | 'B'): Promise<void> => {
      checkpoint();
      const t0 = performance.now();
      const s = ServerProcess.spawn(which === 'A' ? envA : envB, logs[which], false, { onKill: log, tailLines: 30, script: which === 'A' ? 'src/main.ts' : 'bench/server-without-auth.ts' });
      servers[which] = s;
      await s.waitReady(which === 'A' ? portA : portB, 180_000, interrupted);
      startups.push({ server: which, ms: Math.round(performance.now() - t0) });
      log(`  server ${which === 'A' ? 'A (shipped, src/main.ts)' : 'B (without auth, bench/server-without-auth.ts)'} ready in ${Math.round(performance.now() - t0)} ms (pid ${s.child.pid})`);
    };
    const stopServer = async (which: 'A' | 'B'): Promise<void> => {
      await servers[which]?.stop();
      servers[which] = undefined;
    };
    cleanups.push(async () => {
      await stopServer('B');
      await stopServer('A');
    });
    let sanityB: string | undefined;
    /** Starts `which` unless it runs (on PGlite stopping the other first); true when it was started. */
    const ensure = async (which: 'A' | 'B'): Promise<boolean> => {
      if (servers[which] && !servers[which]!.exited) return false;
      const other = which === 'A' ? 'B' : 'A';
      if (!side && servers[other]) await stopServer(other);
      await start(which);
      if (which === 'B' && sanityB === undefined) {
        sanityB = await checkB();
        log(`  check withoutAuthServer: ${sanityB}`);
        if (sanityB.startsWith('FAIL')) throw new Error(`the server without auth does not answer as expected: ${sanityB}`);
      }
      return true;
    };
    const stop = (): string | undefined => {
      const why = interrupted();
      if (why) return why;
      for (const w of ['A', 'B'] as const) {
        const s = servers[w];
        if (s?.exited) return `server ${w} stopped (${s.exitInfo}); log ${logs[w]}:\n${tail(logs[w], 30)}`;
      }
      return undefined;
    };

    log('setup: shipped server (A), scratch tenant, operator token, data');
    await ensure('A');
    const cli = await runCli(['tenant', 'create', slug, '--name', `Auth benchmark ${slug}`], envA);
    if (cli.code !== 0) throw new Error(`tenant create ${slug} failed (exit ${cli.code}):\n${cli.output.trim()}`);
    const operator = (await operatorTokens([slug], envA))[slug];
    const token = operator.tokens[0];
    log(`  tenant ${slug}; operator client ${operator.clientId}, token scope ${operator.scope}`);
    const maxC = Math.max(...o.levels);
    const base = `/fhir/${slug}`;
    const authed = new HttpClient(portA, base, token, maxC);
    cleanups.push(async () => authed.close());
    const data = await ingest(o, authed, maxC, stop);
    if (!data.refs.length) throw new Error(`no resources were ingested:\n  ${data.errorSamples.join('\n  ')}`);
    log(`  ${data.refs.length} resources ingested in ${data.seconds.toFixed(1)} s (${data.failed} bundles failed)`);
    const refs = data.refs;
    const probe = refs.find((r) => r.type === 'Patient') ?? refs[0];
    const probePath = `/${probe.type}/${probe.id}`;

    // Sanity: A verifies tokens, B does not, and both serve the same data.
    const sanity: Record<string, string> = {};
    const anon = new HttpClient(portA, base, undefined, 1);
    const noToken = await anon.request('GET', probePath);
    anon.close();
    sanity.shippedWithoutToken = noToken.status === 401 ? 'ok (401)' : `FAIL: ${describeResponse('GET', probePath, noToken, 200)}`;
    const withToken = await authed.request('GET', probePath);
    sanity.shippedWithToken = withToken.status === 200 ? 'ok (200)' : `FAIL: ${describeResponse('GET', probePath, withToken, 200)}`;
    async function checkB(): Promise<string> {
      const b = new HttpClient(portB, base, undefined, 1);
      try {
        const res = await b.request('GET', probePath);
        if (res.status !== 200) return `FAIL: ${describeResponse('GET', probePath, res, 200)}`;
        return res.body === withToken.body ? 'ok (200 without a token, same answer as A)' : 'FAIL: 200, but the answer differs from the shipped server\'s';
      } finally {
        b.close();
      }
    }

    // Token endpoint clients (registered with the CLI, as an operator would)
    let backend: { clientId: string; key: BackendKey } | undefined;
    const tokenUrl = `${publicBaseUrl}/auth/token`;
    const tokenHttp = (c: number): HttpClient => new HttpClient(portA, '', undefined, c);
    if (o.workloads.has('token')) {
      const key = es384Key();
      const jwksFile = path.join(workDir, 'backend-jwks.json');
      fs.writeFileSync(jwksFile, JSON.stringify(key.jwks));
      const b = await runCli(['client', 'add', slug, '--type', 'backend', '--name', 'Benchmark backend (ES384)', '--scope', BACKEND_SCOPE, '--jwks-file', jwksFile], envA);
      if (b.code !== 0) throw new Error(`client add --type backend failed (exit ${b.code}):\n${b.output.trim()}`);
      backend = { clientId: cliValue(b.output, 'client_id'), key };
      log(`  backend client: ${backend.clientId} (private_key_jwt, ES384)`);
      const h = tokenHttp(1);
      try {
        for (const [name, body] of [
          ['backendToken', new URLSearchParams({ grant_type: 'client_credentials', scope: BACKEND_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(backend.clientId, tokenUrl, key.privateKey) })],
        ] as const) {
          const res = await h.request('POST', '/auth/token', body.toString(), FORM);
          const problem = tokenAnswer(res);
          if (problem) {
            sanity[name] = `FAIL: ${problem}`;
            continue;
          }
          const t = (JSON.parse(res.body) as { access_token: string }).access_token;
          const read = await h.request('GET', `${base}${probePath}`, undefined, { authorization: `Bearer ${t}` });
          sanity[name] = read.status === 200 ? 'ok (token issued, read 200)' : `FAIL: token issued, but ${describeResponse('GET', probePath, read, 200)}`;
        }
      } finally {
        h.close();
      }
    }
    for (const [k, v] of Object.entries(sanity)) log(`  check ${k}: ${v}`);
    if (Object.values(sanity).some((v) => v.startsWith('FAIL'))) throw new Error(`sanity checks failed: ${JSON.stringify(sanity)}`);

    const rng = new Rng(`auth-read/${o.seed}`);
    const readPath = (): string => {
      const r = rng.pick(refs);
      return `/${r.type}/${r.id}`;
    };
    const readOk = (res: HttpResponse): string | undefined => (res.status === 200 ? undefined : describeResponse('GET', 'read', res, 300));
    /**
     * After a server (re)start (PGlite: they take turns), before the usual warm-up: every resource read once, so
     * the new process starts its phase with the database pages cached and the read path compiled.
     */
    const touchAll = async (which: 'A' | 'B'): Promise<void> => {
      const client = new HttpClient(which === 'A' ? portA : portB, base, which === 'A' ? token : undefined, maxC);
      let next = 0;
      try {
        await Promise.all(
          Array.from({ length: maxC }, async () => {
            for (let i = next++; i < refs.length; i = next++) {
              const reason = stop();
              if (reason) throw new Error(reason);
              const res = await client.request('GET', `/${refs[i].type}/${refs[i].id}`);
              if (res.status !== 200) throw new Error(`warming server ${which}: ${describeResponse('GET', `/${refs[i].type}/${refs[i].id}`, res, 200)}`);
            }
          }),
        );
      } finally {
        client.close();
      }
    };

    // Read phases
    const phases: PhaseResult[] = [];
    const pooled = new Map<string, number[]>(); // `${c}/${mode}` -> latencies of every measured phase
    const freshNotes: string[] = [];
    if (o.workloads.has('read')) {
      let position = 0;
      for (const c of o.levels) {
        // Fresh tokens for this level's fresh-token phases, minted before them: a short calibration with the cached
        // token on A estimates the rate; each phase gets three times what it should need (the machine may speed
        // up, and the warm-up uses fresh tokens too), at most --fresh-tokens.
        if (await ensure('A')) await touchAll('A');
        const calib = new HttpClient(portA, base, token, c);
        const rate = (await measured('calibration', c, o.warmup > 0 ? o.warmup : 1, () => calib.request('GET', readPath()), readOk, stop)).perSec;
        calib.close();
        const need = Math.min(o.freshTokens, Math.ceil(rate * (o.seconds + o.warmup) * 3) + 200);
        const t0 = performance.now();
        const minted = (await operatorTokens([slug], envA, { count: need * o.rounds }))[slug].tokens;
        log(`c=${c}: ${need * o.rounds} distinct tokens minted for the fresh-token phases in ${((performance.now() - t0) / 1000).toFixed(1)} s (${need} per phase)`);
        await sleep(2000); // let the minting process's work settle before the first phase (always a cached-token one)
        for (let round = 0; round < o.rounds; round++) {
          const order: Mode[] = round % 2 === 0 ? ['cached', 'fresh', 'none'] : ['none', 'fresh', 'cached'];
          const pool = minted.slice(round * need, (round + 1) * need);
          let nextFresh = 0;
          for (const mode of order) {
            checkpoint();
            if (await ensure(SERVER_OF[mode])) await touchAll(SERVER_OF[mode]);
            const client = new HttpClient(mode === 'none' ? portB : portA, base, mode === 'cached' ? token : undefined, c);
            const send = (): Promise<HttpResponse> | undefined => {
              if (mode !== 'fresh') return client.request('GET', readPath());
              const t = pool[nextFresh++];
              return t === undefined ? undefined : client.request('GET', readPath(), undefined, { authorization: `Bearer ${t}` });
            };
            try {
              if (o.warmup > 0) await measured('warm-up', c, o.warmup, send, readOk, stop);
              const key = `${c}/${mode}`;
              if (!pooled.has(key)) pooled.set(key, []);
              const r = await measured(`read ${mode}`, c, o.seconds, send, readOk, stop, pooled.get(key));
              if (r.endedEarly) freshNotes.push(`c=${c} round ${round + 1}: the ${pool.length} fresh tokens ran out after ${r.seconds} s (raise --fresh-tokens)`);
              phases.push({ ...r, label: mode, concurrency: c, round: round + 1, position: position++ });
              log(`  c=${c} round ${round + 1} ${mode.padEnd(6)}: ${r.perSec} req/s, p50 ${fmtMs(r.latencyMs.p50)} ms, p95 ${fmtMs(r.latencyMs.p95)} ms, ${r.errors} errors${r.endedEarly ? ' (tokens ran out)' : ''}`);
            } finally {
              client.close();
            }
          }
        }
      }
    }

    // Token endpoint phases
    interface TokenResult extends Omit<PhaseResult, 'round' | 'position'> {
      method: string;
      signedAhead: number;
    }
    const tokenResults: TokenResult[] = [];
    if (o.workloads.has('token') && backend) {
      await ensure('A');
      for (const c of o.levels) {
        // private_key_jwt: a pre-signed assertion per request (signing ES384 is ~1 ms of the client's CPU)
        {
          const h = tokenHttp(c);
          try {
            const live = (): Promise<HttpResponse> =>
              h.request('POST', '/auth/token', new URLSearchParams({ grant_type: 'client_credentials', scope: BACKEND_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(backend.clientId, tokenUrl, backend.key.privateKey) }).toString(), FORM);
            const warm = await measured('warm-up', c, Math.max(o.warmup, 1), live, tokenAnswer, stop);
            const count = Math.ceil(warm.perSec * o.seconds * 2) + 200;
            const bodies = Array.from({ length: count }, () =>
              new URLSearchParams({ grant_type: 'client_credentials', scope: BACKEND_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(backend!.clientId, tokenUrl, backend!.key.privateKey) }).toString(),
            );
            let next = 0;
            const r = await measured('token private_key_jwt', c, o.seconds, () => {
              const body = bodies[next++];
              return body === undefined ? undefined : h.request('POST', '/auth/token', body, FORM);
            }, tokenAnswer, stop);
            tokenResults.push({ ...r, label: 'private_key_jwt (ES384 assertion, fresh jti)', method: 'private_key_jwt', concurrency: c, signedAhead: count });
            log(`  c=${c} token private_key_jwt: ${r.perSec} req/s, p95 ${fmtMs(r.latencyMs.p95)} ms, ${r.errors} errors${r.endedEarly ? ' (assertions ran out)' : ''}`);
          } finally {
            h.close();
          }
        }
      }
    }

    // Report
    const loadAtEnd = os.loadavg();
    console.log('');
    console.log(`tenfhir auth benchmark: ${o.patients} patients (${refs.length} resources); database: ${dbLabel}; node ${process.version}; ${os.cpus().length} CPUs`);
    console.log(`shipped defaults (auth, RLS, validation on); load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((x) => x.toFixed(2)).join(' ')}`);
    const summaryRead: Record<string, unknown>[] = [];
    if (phases.length) {
      console.log('');
      console.log(`read by id (GET [base]/Type/id over ${refs.length} resources): ${o.seconds} s per phase after ${o.warmup} s warm-up, ${o.rounds} rounds in the order ${o.rounds > 1 ? 'cached fresh none | none fresh cached | ...' : 'cached fresh none'} (${side ? 'servers side by side' : 'servers take turns'})`);
      console.log('');
      const rows: string[][] = [];
      const verdicts: string[] = [];
      for (const c of o.levels) {
        const none = summarize(pooled.get(`${c}/none`) ?? []);
        for (const mode of ['none', 'cached', 'fresh'] as Mode[]) {
          const list = phases.filter((p) => p.concurrency === c && p.label === mode);
          const s = summarize(pooled.get(`${c}/${mode}`) ?? []);
          const ok = list.reduce((n, p) => n + p.ok, 0);
          const secs = list.reduce((n, p) => n + p.seconds, 0);
          const errors = list.reduce((n, p) => n + p.errors, 0);
          const delta = mode === 'none' ? NaN : s.p50 - none.p50;
          const deltaP95 = mode === 'none' ? NaN : s.p95 - none.p95;
          const perRound = mode === 'none' ? [] : list.map((p) => {
            const b = phases.find((x) => x.concurrency === c && x.round === p.round && x.label === 'none');
            return b ? p.latencyMs.p50 - b.latencyMs.p50 : NaN;
          });
          rows.push([
            String(c),
            MODE_LABEL[mode],
            (ok / secs).toFixed(1),
            fmtLatency(s),
            mode === 'none' ? '-' : fmtDelta(delta),
            mode === 'none' ? '-' : fmtDelta(deltaP95),
            mode === 'none' ? '-' : perRound.map(fmtDelta).join(', '),
            String(errors),
          ]);
          summaryRead.push({ concurrency: c, mode, perSec: round(ok / secs, 1), latencyMs: s, p50DeltaMs: round(delta, 3), p95DeltaMs: round(deltaP95, 3), p50DeltaPerRoundMs: perRound.map((d) => round(d, 3)), errors });
          if (mode === 'cached') verdicts.push(`c=${c}: ${fmtDelta(delta)} ms ${delta <= TARGET_READ_P50_DELTA_MS ? 'ok' : 'MISS'}`);
          if (mode === 'fresh') verdicts.push(`(cache miss c=${c}: ${fmtDelta(delta)} ms)`);
        }
      }
      printTable(['c', 'read mode', 'req/s', 'p50 / p95 / p99 ms', 'p50 vs no auth', 'p95 vs no auth', 'p50 delta per round', 'errors'], rows);
      console.log('');
      console.log(`target: token verification adds <= ${TARGET_READ_P50_DELTA_MS} ms to the p50 of a read: ${verdicts.join('; ')}`);
      for (const n of freshNotes) console.log(`note: ${n}`);
    }
    if (tokenResults.length) {
      console.log('');
      console.log(`token endpoint (POST /auth/token, grant_type=client_credentials, scope ${BACKEND_SCOPE}): ${o.seconds} s per phase after ${Math.max(o.warmup, 1)} s warm-up`);
      console.log('');
      printTable(
        ['c', 'client authentication', 'req/s', 'p50 / p95 / p99 ms', 'errors', `target p95 <= ${TARGET_TOKEN_P95_MS} ms`],
        tokenResults.map((r) => [String(r.concurrency), r.label, r.perSec.toFixed(1), fmtLatency(r.latencyMs), String(r.errors), r.ok === 0 ? 'MISS (no answers)' : r.latencyMs.p95 <= TARGET_TOKEN_P95_MS ? 'ok' : 'MISS']),
      );
      for (const r of tokenResults) if (r.endedEarly) console.log(`note: c=${r.concurrency} ${r.method}: the ${r.signedAhead} pre-signed assertions ran out after ${r.seconds} s`);
    }
    const allErrors = [...phases, ...tokenResults].filter((p) => p.errorSamples.length);
    for (const p of allErrors) console.log(`\n${p.label} c=${p.concurrency} errors (first ${p.errorSamples.length}):\n  ${p.errorSamples.join('\n  ')}`);

    const results = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options: { patients: o.patients, concurrency: o.levels, seconds: o.seconds, warmup: o.warmup, rounds: o.rounds, port: o.port, freshTokens: o.freshTokens, workloads: [...o.workloads], seed: o.seed },
      environment: {
        node: process.version,
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadAtEnd,
        database: o.databaseUrl ? { kind: 'postgres', url: redactUrl(o.databaseUrl), serversSideBySide: true } : { kind: 'pglite', serversSideBySide: false },
      },
      tenant: slug,
      resources: refs.length,
      ingestSeconds: round(data.seconds, 3),
      startups,
      sanity: { ...sanity, withoutAuthServer: sanityB },
      read: { summary: summaryRead, phases, notes: freshNotes },
      tokenEndpoint: tokenResults,
    };
    const resultsDir = path.join(BENCH_DIR, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `auth-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(process.cwd(), file) || file}`);
    const failed = allErrors.length > 0;
    if (failed) keepWorkDir = true;
    return failed ? 1 : 0;
  } catch (err) {
    const why = interrupted();
    if (why) throw new Interrupted(why);
    keepWorkDir = true;
    throw err;
  } finally {
    await cleanup();
  }
}

runMain(main, 'bench:auth', USAGE);
