// `npm run cli -- tenant set <slug> --require-profile Type=url` and `--clear-required-profiles Type`: the tenant's
// requiredProfiles setting is built from its current value (options add to it, clearing removes a type), and bad
// options are refused with exit code 2. On the embedded database the CLI works on its own DATA_DIR.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomSlug } from '../../helpers/server.js';
import { US_CORE } from './helpers.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-profiles-cli-'));
const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn', DATABASE_URL: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL ?? '' };
if (!env.DATABASE_URL) delete env.DATABASE_URL;
const slug = randomSlug('cli-prof');
const LAB = `${US_CORE}us-core-diagnosticreport-lab`;
const OBS = `${US_CORE}us-core-observation-lab`;

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(() => {
  expect(cli('migrate').status).toBe(0);
  const created = cli('tenant', 'create', slug, '--name', 'CLI profiles');
  expect({ status: created.status, stderr: created.stderr }).toMatchObject({ status: 0 });
}, 120_000);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('tenant set --require-profile / --clear-required-profiles', () => {
  it('adds required profiles to what the tenant has, and clears a type', () => {
    const first = cli('tenant', 'set', slug, '--require-profile', `DiagnosticReport=${LAB}`);
    expect({ status: first.status, out: first.stdout.trim() }).toEqual({ status: 0, out: `tenant ${slug}: requiredProfiles=${JSON.stringify({ DiagnosticReport: [LAB] })} (servers pick it up within 5 s)` });
    const second = cli('tenant', 'set', slug, '--require-profile', `Observation=${OBS}`, '--require-profile', `DiagnosticReport=${LAB}`);
    expect(second.stdout).toContain(`requiredProfiles=${JSON.stringify({ DiagnosticReport: [LAB], Observation: [OBS] })}`);
    const cleared = cli('tenant', 'set', slug, '--clear-required-profiles', 'DiagnosticReport');
    expect(cleared.stdout).toContain(`requiredProfiles=${JSON.stringify({ Observation: [OBS] })}`);
    const all = cli('tenant', 'set', slug, '--clear-required-profiles', '*', '--mfa-required', 'false');
    expect(all.stdout).toContain('mfaRequired=false, requiredProfiles={}');
  }, 120_000);

  it('refuses an unknown type or a value that is not Type=url', () => {
    const badType = cli('tenant', 'set', slug, '--require-profile', `Nope=${LAB}`);
    expect(badType.status).toBe(2);
    expect(badType.stderr).toContain(`error: --require-profile Nope=${LAB}: expected Type=url with a resource type (e.g. DiagnosticReport=http://...)`);
    const badUrl = cli('tenant', 'set', slug, '--require-profile', 'Patient=not a url');
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toContain("'not a url' is not a canonical URL");
  }, 120_000);
});
