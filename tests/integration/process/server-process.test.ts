// The server as users run it: `npm start` on a fresh embedded database (or DATABASE_URL), the demo tenant,
// the CLI beside a running server, /healthz and /readyz, and graceful shutdown on SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomSlug } from '../../helpers/server.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PORT = 20000 + Math.floor(Math.random() * 20000);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-proc-'));
const env = { ...process.env, PORT: String(PORT), PUBLIC_BASE_URL: ORIGIN, DATA_DIR: dataDir, LOG_LEVEL: 'warn', DATABASE_URL: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL ?? '' };
if (!env.DATABASE_URL) delete (env as Record<string, string | undefined>).DATABASE_URL;

let proc: ChildProcess;
let stdout = '';

function startProcess(): Promise<void> {
  proc = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stdout += d));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (stdout.includes('try: curl') || stdout.includes('create a tenant with')) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    proc.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${code}: ${stdout}`));
    });
  });
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
}

/** A real token for the demo tenant's operator client, printed by the CLI beside the running server. */
let token = '';
const authz = () => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  await startProcess();
  const t = cli('token', 'demo', '--client', 'demo-cli', '--scope', 'system/*.cruds', '--ttl', '600');
  expect(t.status).toBe(0);
  token = t.stdout.trim();
}, 90_000);

afterAll(() => {
  if (proc.exitCode === null) proc.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('starting the server', () => {
  it('prints its base URL and how to get a token, and serves the demo tenant created on first start', async () => {
    expect(stdout).toContain(`listening on ${ORIGIN}`);
    expect(stdout).toContain(`${ORIGIN}/fhir/demo`);
    expect(stdout).toContain('npm run -s cli -- token demo --client demo-cli');
    expect((await fetch(`${ORIGIN}/fhir/demo/Organization/demo`)).status).toBe(401);
    const res = await fetch(`${ORIGIN}/fhir/demo/Organization/demo`, { headers: authz() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe('Demo Clinic');
  });

  it('serves SMART discovery without a token', async () => {
    const res = await fetch(`${ORIGIN}/fhir/demo/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token_endpoint: string }).token_endpoint).toBe(`${ORIGIN}/auth/token`);
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${ORIGIN}/healthz`)).status).toBe(200);
    const ready = await fetch(`${ORIGIN}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});

describe('CLI beside a running server', () => {
  it('creates a tenant, an operator client and a token, and the server then serves it; a duplicate is refused', async () => {
    const slug = randomSlug('cli');
    const r = cli('tenant', 'create', slug, '--name', 'Lakeside Lab');
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${ORIGIN}/fhir/${slug}`);
    expect(cli('client', 'add', slug, '--type', 'operator', '--name', 'ops', '--id', `${slug}-ops`, '--scope', 'system/*.rs').status).toBe(0);
    const minted = cli('token', slug, '--client', `${slug}-ops`, '--scope', 'system/Organization.rs');
    expect(minted.stderr).toContain('scope: system/Organization.rs');
    const org = await fetch(`${ORIGIN}/fhir/${slug}/Organization/${slug}`, { headers: { authorization: `Bearer ${minted.stdout.trim()}` } });
    expect(org.status).toBe(200);
    // the demo tenant's token does not open the new tenant
    expect((await fetch(`${ORIGIN}/fhir/${slug}/Organization/${slug}`, { headers: authz() })).status).toBe(401);
    const again = cli('tenant', 'create', slug, '--name', 'Again');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already exists');
    const bad = cli('tenant', 'create', 'Bad Slug!', '--name', 'x');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/slug/i);
  }, 60_000);
});

describe('graceful shutdown (SIGTERM)', () => {
  it('finishes an in-flight transaction, then exits 0', async () => {
    const entries = Array.from({ length: 1000 }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      resource: { resourceType: 'Patient', name: [{ family: `Shutdown${i}` }] },
      request: { method: 'POST', url: 'Patient' },
    }));
    const inflight = fetch(`${ORIGIN}/fhir/demo`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', ...authz() },
      body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }),
    });
    await new Promise((r) => setTimeout(r, 250));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { entry: unknown[] };
    expect(body.entry).toHaveLength(1000);
    expect(await exited).toBe(0);
    await expect(fetch(`${ORIGIN}/healthz`)).rejects.toThrow();
  }, 60_000);
});
