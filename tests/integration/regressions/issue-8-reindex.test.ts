// Issue 8, "a reindex that freezes the embedded server": $reindex of a tenant of 30,000 resources on the embedded
// database (one connection shared by everything) completes while reads and searches of the same and another tenant
// keep being answered. The server runs as users run it (`npm start`, its own DATA_DIR), so its database is its own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const onEmbedded = process.env.DATABASE_URL ? describe.skip : describe;
const PORT = 20000 + Math.floor(Math.random() * 20000);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-reindex-'));
const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(PORT), PUBLIC_BASE_URL: ORIGIN, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
delete env.DATABASE_URL;
delete env.DATABASE_ADMIN_URL;

let proc: ChildProcess;

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

async function api(path: string, token: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${ORIGIN}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...(init.headers ?? {}) } });
  return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers };
}

onEmbedded('$reindex of 30,000 resources on the embedded database', () => {
  let big: string;
  let small: string;
  beforeAll(async () => {
    let out = '';
    proc = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => out.includes('listening on') && (clearInterval(timer), resolve()), 50);
      proc.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    });
    cli('tenant', 'create', 'small', '--name', 'Small clinic');
    cli('client', 'add', 'small', '--type', 'operator', '--name', 'reader', '--id', 'small-reader', '--scope', 'system/*.rs');
    big = cli('token', 'demo', '--client', 'demo-cli', '--scope', 'system/*.cruds');
    small = cli('token', 'small', '--client', 'small-reader', '--scope', 'system/*.rs');
    for (let b = 0; b < 30; b++) {
      const entry = Array.from({ length: 1000 }, (_, i) => ({
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        resource: { resourceType: 'Patient', name: [{ family: `Big${b * 1000 + i}` }], gender: i % 2 ? 'male' : 'female' },
        request: { method: 'POST', url: 'Patient' },
      }));
      const res = await api('/fhir/demo', big, { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
      expect(res.status).toBe(200);
    }
  }, 600_000);
  afterAll(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('completes while reads and searches keep being answered', async () => {
    const mine = (await api('/fhir/demo/Patient', big, { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Reader' }] }) })).body;
    const theirs = { id: 'small' }; // the small tenant's root Organization
    const start = await api('/fhir/demo/$reindex', big, { method: 'POST', body: '{}' });
    expect(start.status).toBe(202);
    const status = new URL(start.headers.get('content-location')!);
    const statuses: number[] = [];
    let state = 'running';
    while (state === 'running') {
      const rs = await Promise.all([
        api(`/fhir/demo/Patient/${mine.id}`, big),
        api(`/fhir/small/Organization/${theirs.id}`, small),
        api('/fhir/demo/Patient?name=Big12&_count=5', big),
      ]);
      statuses.push(...rs.map((r) => r.status));
      const s = await api(`${status.pathname}${status.search}`, big);
      state = s.body.parameter.find((p: { name: string }) => p.name === 'status').valueCode;
    }
    expect(state).toBe('completed');
    const done = await api(`${status.pathname}${status.search}`, big);
    const param = (n: string) => done.body.parameter.find((p: { name: string }) => p.name === n);
    expect(param('total').valueInteger).toBeGreaterThanOrEqual(30_000);
    expect(param('processed').valueInteger).toBe(param('total').valueInteger);
    // the server answered throughout: every request succeeded, and many were served while the job ran
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(statuses.length).toBeGreaterThanOrEqual(30);
    expect((await api('/fhir/demo/Patient?name=Big29999', big)).body.total).toBe(1);
    // and it stops at once when asked to (SIGTERM), even with a job to resume next time
    const again = await api('/fhir/demo/$reindex', big, { method: 'POST', body: '{}' });
    expect(again.status).toBe(202);
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 600_000);
});
