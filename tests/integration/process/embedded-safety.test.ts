// Issue 8 on the embedded database, as users run it (`npm start` + the CLI beside it): the database socket only the
// server's user can reach, a lock file that never blocks a restart, a CLI reindex that neither hangs nor freezes the
// server, jobs that can be listed and cancelled, a job left running that never blocks the next start, and a shutdown
// bounded by SHUTDOWN_GRACE_MS.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const onEmbedded = process.env.DATABASE_URL ? describe.skip : describe;
const PORT = 20000 + Math.floor(Math.random() * 20000);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-emb-'));
const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(PORT), PUBLIC_BASE_URL: ORIGIN, DATA_DIR: dataDir, LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '300', MAX_BUNDLE_ENTRIES: '20000' };
delete env.DATABASE_URL;
delete env.DATABASE_ADMIN_URL;

let proc: ChildProcess | undefined;
let output = '';

function startServer(): Promise<void> {
  output = '';
  const p = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc = p;
  p.stdout!.on('data', (d) => (output += d));
  p.stderr!.on('data', (d) => (output += d));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.includes('listening on')) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    p.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${code}: ${output}`));
    });
  });
}

function exitOf(p: ChildProcess): Promise<number | null> {
  return p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

/** Runs the CLI without blocking the event loop (the test polls the server meanwhile). */
function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

let token = '';
const authz = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' });

async function loadPatients(n: number, prefix: string): Promise<void> {
  for (let done = 0; done < n; done += 500) {
    const entry = Array.from({ length: Math.min(500, n - done) }, (_, i) => ({
      fullUrl: `urn:uuid:${crypto.randomUUID()}`,
      resource: { resourceType: 'Patient', name: [{ family: `${prefix}${done + i}` }] },
      request: { method: 'POST', url: 'Patient' },
    }));
    const res = await fetch(`${ORIGIN}/fhir/demo`, { method: 'POST', headers: authz(), body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    expect(res.status).toBe(200);
  }
}

async function reindexStatus(job: string): Promise<string> {
  const res = await fetch(`${ORIGIN}/fhir/demo/$reindex?job=${job}`, { headers: authz() });
  const body = (await res.json()) as { parameter: { name: string; valueCode?: string }[] };
  return body.parameter.find((p) => p.name === 'status')!.valueCode!;
}

async function startReindex(): Promise<string> {
  const res = await fetch(`${ORIGIN}/fhir/demo/Patient/$reindex`, { method: 'POST', headers: authz(), body: '{}' });
  expect(res.status).toBe(202);
  return new URL(res.headers.get('content-location')!).searchParams.get('job')!;
}

onEmbedded('the embedded server as users run it (issue 8)', () => {
  beforeAll(async () => {
    await startServer();
    const t = await cli('token', 'demo', '--client', 'demo-cli', '--scope', 'system/*.cruds', '--ttl', '3600');
    expect(t.status).toBe(0);
    token = t.stdout.trim();
    await loadPatients(2000, 'Emb');
  }, 180_000);

  afterAll(() => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves its database on a Unix socket only its own user can reach, and writes server.json 0600', () => {
    const file = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { socketDir: string; port?: number };
    expect(file.port).toBeUndefined();
    expect(statSync(join(dataDir, 'server.json')).mode & 0o777).toBe(0o600);
    expect(statSync(file.socketDir).mode & 0o777).toBe(0o700);
    const socket = statSync(join(file.socketDir, '.s.PGSQL.5432'));
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
  });

  it('runs a CLI reindex beside the running server to completion, while the server keeps answering', async () => {
    const running = cli('reindex', 'demo', '--type', 'Patient');
    let finished = false;
    void running.then(() => (finished = true));
    const statuses: number[] = [];
    while (!finished) {
      const res = await fetch(`${ORIGIN}/readyz`, { signal: AbortSignal.timeout(10_000) });
      statuses.push(res.status);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await running;
    expect(r.status).toBe(0);
    const [, total] = /: (\d+) resources/.exec(r.stdout) ?? [];
    expect(Number(total)).toBeGreaterThanOrEqual(2000);
    expect(r.stdout).toMatch(new RegExp(`completed, ${total}/${total} resources`));
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const list = await cli('jobs', 'list', 'demo');
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`demo\\t[0-9a-f-]{36}\\treindex\\tcompleted\\t${total}/${total}\\tPatient`));
  }, 180_000);

  it('cancels a running job from the CLI', async () => {
    const job = await startReindex();
    const c = await cli('jobs', 'cancel', 'demo', job);
    // the job may have finished already on a fast machine
    if (c.status === 0) {
      expect(c.stdout).toContain(`job ${job} cancelled`);
      expect(await reindexStatus(job)).toBe('cancelled');
    } else expect(await reindexStatus(job)).toBe('completed');
    const again = await cli('jobs', 'cancel', 'demo', job);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('no running job');
  }, 60_000);

  it('starts again after kill -9 with a job left running (the job finishes in the background), and with its PID reused by another process', async () => {
    await loadPatients(3000, 'More');
    const job = await startReindex();
    proc!.kill('SIGKILL');
    await exitOf(proc!);
    // the lock file is left behind, naming a dead process
    expect(JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')).pid).toBeGreaterThan(0);
    await startServer();
    expect((await fetch(`${ORIGIN}/readyz`)).status).toBe(200);
    let status = await reindexStatus(job);
    for (let i = 0; i < 600 && status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await reindexStatus(job);
    }
    expect(status).toBe('completed');

    // kill -9 again, and let the dead server's PID now belong to a live process (as PID 1 always does in Docker)
    proc!.kill('SIGKILL');
    await exitOf(proc!);
    const file = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8'));
    writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ ...file, pid: process.pid }), { mode: 0o600 });
    await startServer();
    expect(output).toContain('no longer running');
    expect((await fetch(`${ORIGIN}/readyz`)).status).toBe(200);
  }, 240_000);

  it('bounds shutdown by SHUTDOWN_GRACE_MS: an unfinished request is cut and logged, and the process exits', async () => {
    // a transaction that takes seconds on the embedded database
    const entry = Array.from({ length: 10_000 }, (_, i) => ({
      fullUrl: `urn:uuid:${crypto.randomUUID()}`,
      resource: { resourceType: 'Patient', name: [{ family: `Cut${i}` }] },
      request: { method: 'POST', url: 'Patient' },
    }));
    const body = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
    const inflight = fetch(`${ORIGIN}/fhir/demo`, { method: 'POST', headers: authz(), body }).then(
      (r) => r.status,
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 500));
    const p = proc!;
    p.kill('SIGTERM');
    expect(await inflight).toBe('cut');
    await exitOf(p);
    expect(output).toMatch(/request cut at shutdown deadline/);
    expect(output).toMatch(/"path":"\/fhir\/demo"/);
    // nothing of the cut transaction was stored
    await startServer();
    const count = await fetch(`${ORIGIN}/fhir/demo/Patient?name=Cut&_summary=count`, { headers: authz() });
    expect(((await count.json()) as { total: number }).total).toBe(0);
  }, 120_000);
});
