// `npm run worker` (src/worker.ts) refuses to start without the shared queue: without REDIS_URL the queue is
// in-process, so the server runs its own workers and a separate worker could never see their jobs.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';

const ROOT = new URL('../../../', import.meta.url).pathname;

describe('npm run worker', () => {
  it('refuses to start, with a clear message and exit status 1, when REDIS_URL is unset', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
    delete env.REDIS_URL;
    const r = spawnSync('npm', ['run', '-s', 'worker'], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/tenfhir worker: REDIS_URL is unset/);
  }, 70_000);
});
