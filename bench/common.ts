// Helpers shared by the benchmarks (bench/run.ts, bench/search.ts, bench/auth.ts): option parsing, measurement, the
// keep-alive HTTP client, the server and CLI processes, access tokens, the report table, and the run's cleanup and
// signal handling.

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const REGISTER_TS = pathToFileURL(path.join(ROOT, 'scripts', 'register-ts.mjs')).href;
export const FHIR_JSON = 'application/fhir+json';

// ---------------------------------------------------------------------------------------------------------
// Options and errors

export class UsageError extends Error {}
export class Interrupted extends Error {}

export function numberOpt(name: string, raw: string | undefined, fallback: number, min: number, integer = true): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${raw}"`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Measurement helpers

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function round(n: number, digits: number): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function summarize(values: number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  // nearest-rank percentile over the sorted samples
  const at = (p: number): number => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, mean: n ? round(sum / n, 3) : NaN, p50: round(at(50), 3), p95: round(at(95), 3), p99: round(at(99), 3), max: round(n ? sorted[n - 1] : NaN, 3) };
}

/** Keeps the first few distinct error descriptions for the report, each cut to `maxLength` characters. */
export class ErrorSamples {
  readonly samples: string[] = [];
  constructor(private readonly maxLength = 600) {}
  add(text: string): void {
    if (this.samples.length < 5 && !this.samples.includes(text)) this.samples.push(text.length > this.maxLength ? text.slice(0, this.maxLength) + '…' : text);
  }
}

/** A logger to stderr with the benchmark's prefix, e.g. `[bench] ...`. */
export function makeLog(prefix: string): (msg: string) => void {
  return (msg) => {
    process.stderr.write(`[${prefix}] ${msg}\n`);
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `c` workers that each call `op` until `seconds` have passed (an op in flight finishes), or until an op answers
 * `false` (no more input: the phase ends early). `stop()` ends the phase with an error (e.g. the server died).
 */
export async function runWorkers(c: number, seconds: number, op: (worker: number) => Promise<void | boolean>, stop: () => string | undefined): Promise<{ seconds: number; endedEarly: boolean }> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let ended = false;
  await Promise.all(
    Array.from({ length: c }, async (_, w) => {
      while (!ended && performance.now() < deadline) {
        const reason = stop();
        if (reason) throw new Error(reason);
        if ((await op(w)) === false) ended = true;
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, endedEarly: ended };
}

/** runWorkers for ops that never run out; returns the elapsed wall time in seconds. */
export async function timed(c: number, seconds: number, op: (worker: number) => Promise<void>, stop: () => string | undefined): Promise<number> {
  return (await runWorkers(c, seconds, op, stop)).seconds;
}

/** "Patient/abc/_history/1" or an absolute URL ending that way -> {type, id, version}. */
export function parseLocation(location: string): { type: string; id: string; version?: string } | undefined {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([^/?#]+))?\/?(?:[?#].*)?$/.exec(location);
  return m ? { type: m[1], id: m[2], version: m[3] } : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Report

/** Milliseconds with 2, 1 or 0 decimals by size; '-' when not finite. */
export function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('-+-'));
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client (node:http with a keep-alive agent)

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A bearer token for every request, one chosen by the request path (e.g. per tenant), or none. */
export type TokenSource = string | ((relPath: string) => string | undefined) | undefined;

export class HttpClient {
  readonly agent: http.Agent;

  /** `basePath` is prefixed to every request path ('' for none). */
  constructor(
    readonly port: number,
    readonly basePath: string,
    readonly token: TokenSource,
    sockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(method: string, relPath: string, body?: string, extraHeaders: Record<string, string> = {}, timeoutMs = 60_000): Promise<HttpResponse> {
    const headers: Record<string, string | number> = { accept: FHIR_JSON, ...extraHeaders };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(body, 'utf8');
      headers['content-type'] ??= FHIR_JSON;
      headers['content-length'] = payload.length;
    }
    const token = typeof this.token === 'function' ? this.token(relPath) : this.token;
    if (token && headers.authorization === undefined) headers.authorization = `Bearer ${token}`;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.port, method, path: this.basePath + relPath, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${relPath}`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** "METHOD url -> status body", the body's whitespace collapsed and cut to `maxBody` characters. */
export function describeResponse(method: string, url: string, res: HttpResponse, maxBody = 400): string {
  return `${method} ${url} -> ${res.status} ${res.body.replace(/\s+/g, ' ').slice(0, maxBody)}`;
}

export function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}

// ---------------------------------------------------------------------------------------------------------
// Server and CLI processes

export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface ServerProcessOptions {
  /** the entry script, relative to the project root (default src/main.ts, the shipped server) */
  script?: string;
  /** lines of the server log quoted in startup errors (default 40) */
  tailLines?: number;
  /** told when the server ignores SIGTERM and is killed */
  onKill?: (msg: string) => void;
}

export class ServerProcess {
  exitInfo: string | undefined;
  private readonly exitPromise: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly logPath: string,
    private readonly opts: ServerProcessOptions,
  ) {
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = `spawn error: ${err.message}`;
        resolve();
      });
    });
  }

  static spawn(env: NodeJS.ProcessEnv, logPath: string, detached: boolean, opts: ServerProcessOptions = {}): ServerProcess {
    const fd = fs.openSync(logPath, 'a');
    try {
      // BENCH_SERVER_NODE_ARGS: extra node flags for the server only (e.g. --cpu-prof --cpu-prof-dir=DIR to profile it)
      const nodeArgs = (env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const child = spawn(process.execPath, [...nodeArgs, '--import', REGISTER_TS, opts.script ?? 'src/main.ts'], {
        cwd: ROOT,
        env,
        stdio: ['ignore', fd, fd],
        detached,
      });
      return new ServerProcess(child, logPath, opts);
    } finally {
      fs.closeSync(fd);
    }
  }

  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Resolves once GET /readyz answers 200 (or the log says `listening` while /readyz is missing). */
  async waitReady(port: number, timeoutMs: number, interrupted: () => string | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const probe = new HttpClient(port, '', undefined, 1);
    const lines = this.opts.tailLines ?? 40;
    try {
      while (Date.now() < deadline) {
        const reason = interrupted();
        if (reason) throw new Error(reason);
        if (this.exited) throw new Error(`server stopped during startup (${this.exitInfo}); log ${this.logPath}:\n${tail(this.logPath, lines)}`);
        try {
          const res = await probe.request('GET', '/readyz', undefined, {}, 2000);
          if (res.status === 200) return;
          if (res.status === 404 && /listening/i.test(tail(this.logPath, 200))) return;
        } catch {
          // not accepting connections yet
        }
        await sleep(200);
      }
      throw new Error(`server not ready after ${timeoutMs / 1000} s; log ${this.logPath}:\n${tail(this.logPath, lines)}`);
    } finally {
      probe.close();
    }
  }

  async stop(graceMs = 20_000): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exited) {
        this.opts.onKill?.(`server did not stop within ${graceMs / 1000} s of SIGTERM; sending SIGKILL`);
        this.child.kill('SIGKILL');
      }
    }, graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return runScript('src/cli/index.ts', args, env, timeoutMs);
}

/** Runs a TypeScript script of the project (path relative to the root); stdout and stderr together in `output`. */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', REGISTER_TS, script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs / 1000} s)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export interface OperatorTokens {
  clientId: string;
  scope: string;
  tokens: string[];
}

/**
 * Real access tokens for the benchmarks' scratch tenants: runs bench/mint-tokens.ts (the CLI's `client add --type
 * operator` and `token` functions in one process, reaching the server's database like the CLI does), which
 * registers the operator client `bench-op-<tenant>` per tenant and mints `count` distinct tokens for it.
 */
export async function operatorTokens(
  tenants: string[],
  env: NodeJS.ProcessEnv,
  o: { count?: number; ttlSeconds?: number; scope?: string; timeoutMs?: number } = {},
): Promise<Record<string, OperatorTokens>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-tokens-'));
  const out = path.join(dir, 'tokens.json');
  try {
    const args = ['--out', out, '--count', String(o.count ?? 1), '--ttl', String(o.ttlSeconds ?? 21_600), '--scope', o.scope ?? 'system/*.cruds', ...tenants];
    const r = await runScript('bench/mint-tokens.ts', args, env, o.timeoutMs ?? 600_000);
    if (r.code !== 0) throw new Error(`bench/mint-tokens.ts failed (exit ${r.code}):\n${r.output.trim()}`);
    return JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, OperatorTokens>;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Run lifecycle

export interface Lifecycle {
  /** cleanup steps, run last-in first-out by `cleanup()` */
  cleanups: (() => Promise<void>)[];
  /** Runs the cleanup steps once (later calls share the first run). */
  cleanup(): Promise<void>;
  /** Why the run was interrupted (SIGINT/SIGTERM), if it was. */
  interrupted(): string | undefined;
}

/**
 * Cleanup steps plus SIGINT/SIGTERM handling: the first signal marks the run interrupted (the phases notice and
 * stop after the requests in flight) and forces an exit 15 s later; a second signal cleans up and exits at once.
 */
export function lifecycle(log: (msg: string) => void): Lifecycle {
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      while (cleanups.length) {
        const fn = cleanups.pop()!;
        try {
          await fn();
        } catch (err) {
          log(`cleanup: ${(err as Error).message}`);
        }
      }
    })());
  let interrupted: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    const forceExit = (): void => void cleanup().then(() => process.exit(130));
    if (interrupted) {
      forceExit(); // second signal: do not wait for the phase to notice
      return;
    }
    interrupted = `interrupted by ${sig}`;
    log(`${sig}: stopping after the requests in flight (again to force)`);
    setTimeout(forceExit, 15_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { cleanups, cleanup, interrupted: () => interrupted };
}

/** Runs a benchmark's main and sets the exit code: its result, 130 when interrupted, 2 on a usage error, else 1. */
export function runMain(main: () => Promise<number>, prefix: string, usage: string): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof Interrupted) {
        process.stderr.write(`[${prefix}] ${err.message}\n`);
        process.exitCode = 130;
      } else if (err instanceof UsageError) {
        process.stderr.write(`${err.message}\n\n${usage}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`[${prefix}] failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
