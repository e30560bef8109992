// `npm run cli -- tenant create|list|show|plan|suspend|reactivate|archive|terminate`: as a process of its own (on
// its own embedded DATA_DIR, or the run's PostgreSQL), and as functions beside a running server, whose FHIR API then
// follows each change at once. Another tenant is untouched throughout.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenantCommand } from '../../../src/cli/tenants.js';
import { FHIR_JSON, newTenant, randomSlug, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { operatorApi, tenantRow } from './api-helpers.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-tenant-cli-'));
const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn', PUBLIC_BASE_URL: 'https://fhir.example.org', DATABASE_URL: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL ?? '' };
if (!env.DATABASE_URL) delete env.DATABASE_URL;

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 90_000 });
}

let server: TestServer;
let bystander: TestTenant;

beforeAll(async () => {
  server = await startServer();
  bystander = await newTenant(server, 'cli-by');
}, 60_000);
afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs `tenant <args>` in this process on the test server's database; its exit code and what it printed. */
async function tenant(...args: string[]): Promise<{ code: number | undefined; out: string; err: string }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const error = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
  try {
    return { code: await tenantCommand(server.deps, args[0], args.slice(1)), out: lines.join('\n'), err: errors.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('tenant commands as a process', () => {
  it('creates a trial tenant with its first admin (printing the invitation link), archives it, lists it, refuses an unknown plan', () => {
    const slug = randomSlug('cli-proc');
    const made = cli('tenant', 'create', slug, '--name', 'Harbour Lab', '--type', 'lab', '--plan', 'trial', '--admin-username', 'harbour-admin');
    expect(made.stderr).not.toMatch(/error/i);
    expect(made.status).toBe(0);
    expect(made.stdout).toContain(`created tenant ${slug}: FHIR base https://fhir.example.org/fhir/${slug}`);
    expect(made.stdout).toMatch(/status trial \(trial ends \d{4}-\d\d-\d\dT/);
    expect(made.stdout).toMatch(new RegExp(`invitation for harbour-admin \\(tenant admin\\), single use, expires .*\\n  https://fhir\\.example\\.org/admin/invite/${slug}/[A-Za-z0-9_-]+`));
    const archived = cli('tenant', 'archive', slug, '--reason', 'trial abandoned');
    expect(archived.stdout).toContain(`tenant ${slug} is now archived (servers pick it up within 5 s)`);
    const list = cli('tenant', 'list');
    expect(list.status).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toBe('slug\tstatus\tplan\ttype\tresources\tstorage\trequests-today\tlast-activity\tname');
    expect(lines.find((l) => l.startsWith(`${slug}\t`))).toMatch(new RegExp(`^${slug}\\tarchived\\ttrial\\tlab\\t1\\t[\\d.]+ MB\\t0\\t-\\tHarbour Lab$`));
    const bad = cli('tenant', 'plan', slug, 'platinum');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("error: Unknown plan 'platinum'");
  }, 180_000);
});

describe('tenant commands beside a running server', () => {
  it('create without a plan: no quotas, as before; show prints the tenant as JSON', async () => {
    const slug = randomSlug('cli-np');
    const made = await tenant('create', slug, '--name', 'No Plan Clinic');
    expect(made.code).toBe(0);
    expect(made.out).toContain('plan (none: no quotas)');
    expect(made.out).not.toContain('invitation');
    const shown = await tenant('show', slug);
    expect(JSON.parse(shown.out)).toMatchObject({ slug, name: 'No Plan Clinic', status: 'active', usage: { resources: { Organization: 1 } } });
    expect(JSON.parse(shown.out).plan).toBeUndefined();
    const usage = await tenant('suspend');
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('tenant suspend|reactivate|archive|terminate <slug>');
  });

  it('plan, suspend, reactivate, archive and terminate take effect on the server at once', async () => {
    const slug = randomSlug('cli-lc');
    expect((await tenant('create', slug, '--name', 'Lifecycle Clinic', '--type', 'solo-practice', '--plan', 'trial')).code).toBe(0);
    const op = await operatorApi(server, slug);
    const write = () => op.post(`/fhir/${slug}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Cli' }] }));
    const codeOf = (res: { body: any }) => res.body?.issue?.[0]?.details?.coding?.[0]?.code;
    expect((await write()).status).toBe(201);

    const plan = await tenant('plan', slug, 'solo-practice');
    expect(plan.out).toContain(`tenant ${slug}: plan solo-practice, status active`);
    expect((await tenant('suspend', slug, '--reason', 'unpaid')).out).toContain('is now suspended');
    expect(codeOf(await write())).toBe('TENANT_SUSPENDED');
    expect((await tenant('reactivate', slug)).code).toBe(0);
    expect((await write()).status).toBe(201);
    expect((await tenant('archive', slug)).code).toBe(0);
    expect(codeOf(await write())).toBe('TENANT_READ_ONLY');
    const terminated = await tenant('terminate', slug, '--reason', 'left');
    expect(terminated.out).toMatch(/is now terminated; its data is erased after \d{4}-/);
    expect(codeOf(await op.get(`/fhir/${slug}/Patient`))).toBe('TENANT_UNKNOWN');
    await expect(tenant('reactivate', slug)).rejects.toMatchObject({ code: 'TENANT_TRANSITION_INVALID' });

    const list = await tenant('list');
    expect(list.out.split('\n').find((l) => l.startsWith(`${slug}\t`))).toMatch(new RegExp(`^${slug}\\tterminated\\tsolo-practice\\tsolo-practice\\t`));
    expect((await tenantRow(server, bystander.slug))?.status).toBe('active');
    expect((await bystander.api.get(`${bystander.path}/Organization/${bystander.slug}`)).status).toBe(200);
  });
});

describe('tenant set: security policies', () => {
  it('stores the policies it is given, checked first; a malformed CIDR changes nothing', async () => {
    const t = await newTenant(server, 'cli-pol');
    const bad = await tenant('set', t.slug, '--ip-allow-list', '10.0.0.0/8,10.0.0.0/33', '--password-min-length', '14');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('10.0.0.0/33');
    expect((await tenantRow(server, t.slug))?.settings).toEqual({});
    const good = await tenant('set', t.slug, '--ip-allow-list', '10.0.0.0/8, 2001:db8::/32', '--password-min-length', '14', '--max-token-lifetime-seconds', '600', '--break-glass-approval', 'true');
    expect(good.code).toBe(0);
    expect((await tenantRow(server, t.slug))?.settings).toEqual({ ipAllowList: ['10.0.0.0/8', '2001:db8::/32'], passwordMinLength: 14, maxTokenLifetimeSeconds: 600, breakGlassApproval: true });
    // the server follows at once: this test's calls come from 127.0.0.1, outside the list
    const refused = await t.api.get(`${t.path}/Organization/${t.slug}`);
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].details.coding[0].code).toBe('IP_NOT_ALLOWED');
    expect((await tenant('set', t.slug, '--ip-allow-list', 'none')).code).toBe(0);
    expect((await t.api.get(`${t.path}/Organization/${t.slug}`)).status).toBe(200);
    expect((await bystander.api.get(`${bystander.path}/Organization/${bystander.slug}`)).status).toBe(200);
    expect((await tenant('set', t.slug, '--breached-password-check', 'maybe')).err).toContain('breachedPasswordCheck must be true or false');
  }, 60_000);
});
