// Rate limits shared by every process on one Redis (issue 11, docs/rate-limits.md): two real servers (src/main.ts) on
// the same database and Redis, behind one public origin as a load balancer would put them; a tenant's budget spent
// partly on one and partly on the other is spent on both.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { createLogger } from '../../../src/platform/log.js';
import { RateLimits } from '../../../src/tenancy/rate-limits.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const shared = !!process.env.REDIS_URL && !!process.env.DATABASE_URL;
const reason = 'needs REDIS_URL and DATABASE_URL (two processes cannot share one embedded database)';

const TENANT_BUDGET = 10;
const ports = [0, 1].map(() => 20000 + Math.floor(Math.random() * 20000));
/** Both processes answer for one public origin (the first's), so one token is good on both. */
const ORIGIN = `http://127.0.0.1:${ports[0]}`;
const procs: ChildProcess[] = [];
const dirs: string[] = [];

function startProcess(port: number, env: NodeJS.ProcessEnv): Promise<void> {
  let out = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-rl-'));
  dirs.push(dataDir);
  const p = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/main.ts'], { cwd: ROOT, env: { ...env, PORT: String(port), DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes('listening on')) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    p.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

describe("a tenant's budget across two server processes on one Redis", () => {
  let helper: TestServer;
  let t: TestTenant;

  beforeAll(async () => {
    if (!shared) return;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PUBLIC_BASE_URL: ORIGIN,
      LOG_LEVEL: 'warn',
      DEMO_TENANT: 'false',
      RUN_WORKERS: 'false',
      DATABASE_URL: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL,
      // this run's own keys on the shared Redis: parallel test files never share budgets
      QUEUE_PREFIX: `test-rl-${randomBytes(6).toString('hex')}`,
      RATE_LIMIT_TENANT_PER_MINUTE: String(TENANT_BUDGET),
      RATE_LIMIT_CLIENT_PER_MINUTE: '1000',
    };
    await Promise.all(ports.map((port) => startProcess(port, env)));
    // the tenant and its token, made in this process on the same database, for the public origin both servers serve
    helper = await startServer({ publicBaseUrl: ORIGIN });
    t = await newTenant(helper, 'rlp');
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
    await helper?.close();
    await helper?.deps.rateLimits.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const read = (port: number) => fetch(`http://127.0.0.1:${port}/fhir/${t.slug}/Patient?_count=1`, { headers: { authorization: `Bearer ${t.token}` } });

  (shared ? it : it.skip)(`refuses the next request on either process once both together spent the budget${shared ? '' : ` (skipped: ${reason})`}`, async () => {
    const remaining: string[] = [];
    for (let i = 0; i < TENANT_BUDGET; i++) {
      // six on the first process, four on the second
      const res = await read(ports[i < 6 ? 0 : 1]);
      expect(res.status).toBe(200);
      remaining.push(res.headers.get('ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['9', '8', '7', '6', '5', '4', '3', '2', '1', '0']);
    for (const port of ports) {
      const refused = await read(port);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await refused.json()) as { issue: { details: { coding: { code: string }[] } }[] };
      expect(body.issue[0].details.coding[0].code).toBe('RATE_LIMITED');
    }
  }, 60_000);
});

// Each process takes requests from Redis in leases (docs/rate-limits.md, "Cost"): two counters on one Redis, as two
// processes hold them, never admit more than the budget together, and give up at most a few requests to unused leases.
describe('leases of one budget held by two processes', () => {
  (process.env.REDIS_URL ? it : it.skip)(`admit at most the budget together, and nearly all of it${process.env.REDIS_URL ? '' : ' (skipped: needs REDIS_URL)'}`, async () => {
    const prefix = `test-rl-${randomBytes(6).toString('hex')}:rl`;
    const counters = [0, 1].map(() => new RateLimits(process.env.REDIS_URL, prefix, createLogger('silent')));
    try {
      const budget = [{ key: 't:leased', limit: 1000 }];
      let admitted = 0;
      // four requests at a time on each process, until both refuse
      for (let round = 0; round < 400; round++) {
        const verdicts = await Promise.all(counters.flatMap((c) => [0, 1, 2, 3].map(() => c.take(budget))));
        admitted += verdicts.filter((v) => v.allowed).length;
        if (verdicts.every((v) => !v.allowed)) break;
      }
      expect(admitted).toBeLessThanOrEqual(1000);
      expect(admitted).toBeGreaterThanOrEqual(950);
    } finally {
      await Promise.all(counters.map((c) => c.close()));
    }
  });
});
