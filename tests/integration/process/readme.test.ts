// The README runs as written (issue 9): `npm start` on a fresh DATA_DIR and a free port, then every ```sh block the
// README marks `<!-- readme-test: NAME -->`, in README order, through `bash -euo pipefail`, as a newcomer would.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, formAction, hiddenValue, interactionUid, offeredScopes, runAuthorization, tokenRequest } from '../../helpers/oauth.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The README's two commands are for the embedded start; PostgreSQL needs configuration the README describes apart. */
const onEmbedded = process.env.DATABASE_URL ? describe.skip : describe;

/** Every block the README must keep runnable, in README order ('start' is the one this test runs itself). */
const BLOCKS = ['start', 'quick-start', 'tenants', 'tenant-admin', 'newcomer', 'standalone-launch', 'ehr-launch', 'backend-services', 'registration', 'subscriptions'];
/** The README's commands talk to the default port; the test's server listens on a free one. */
const README_ORIGIN = 'http://localhost:8080';

/** The marked ```sh blocks by name; a ```sh block without a marker fails the test, so none is dropped silently. */
function readmeBlocks(): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of README.matchAll(/^(<!-- readme-test: ([a-z-]+)[^\n]*-->\n)?```sh\n([\s\S]*?)^```$/gm)) {
    if (!m[2]) throw new Error(`README.md: a \`\`\`sh block without a <!-- readme-test: NAME --> marker:\n${m[3].slice(0, 300)}`);
    blocks.set(m[2], m[3]);
  }
  return blocks;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let port = 0;
let origin = '';
let dataDir = '';
let home = '';
let env: NodeJS.ProcessEnv = {};
let server: ChildProcess | undefined;
let serverOutput = '';
let blocks = new Map<string, string>();

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one README block with the test server's port in its URLs. `onLine` sees each stdout line as it comes and may
 * answer on the block's stdin (the person at the browser pasting a code).
 */
function runBlock(name: string, onLine?: (line: string, answer: (text: string) => void) => void): Promise<Run> {
  const body = blocks.get(name)!.replaceAll(README_ORIGIN, origin);
  return new Promise((resolve) => {
    const c = spawn('bash', ['-euo', 'pipefail', '-c', body], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    c.stdout.on('data', (d: Buffer) => {
      stdout += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine?.(line, (text) => c.stdin.write(text));
    });
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    if (!onLine) c.stdin.end();
    const timer = setTimeout(() => c.kill('SIGKILL'), 150_000);
    // 'close', not 'exit': the block's last output may still be in the pipe when the process has exited
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A block's stdout, one trimmed line each (curl -i headers end in \r), failing with its stderr when it failed. */
function linesOf(name: string, r: Run): string[] {
  if (r.status !== 0) throw new Error(`README block '${name}' exited ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Runs the CLI outside the README (checks of what the README promises about it). */
function cli(args: string[], extraEnv: NodeJS.ProcessEnv = env): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn('npm', ['run', '-s', 'cli', '--', ...args], { cwd: ROOT, env: extraEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Signs in on the server's pages as dr-ng from the README, the way a browser submits their forms. */
async function signInAsDrNg(browser: Browser, html: string) {
  return browser.follow(formAction(html, '/login'), { form: { username: 'dr-ng', password: 'a long passphrase 1' } });
}

let smithId = '';

onEmbedded('the README, run as written on a fresh embedded server (issue 9)', () => {
  beforeAll(async () => {
    blocks = readmeBlocks();
    port = await freePort();
    origin = `http://localhost:${port}`;
    dataDir = mkdtempSync(join(tmpdir(), 'tenfhir-readme-'));
    home = mkdtempSync(join(tmpdir(), 'tenfhir-readme-home-'));
    // A newcomer's environment: no database URL, no public base URL, no secrets key (DATA_DIR/secrets.key is made);
    // HOME apart, so the lab's key the README writes to ~ stays out of the developer's home; npm never goes online.
    env = { ...process.env, PORT: String(port), DATA_DIR: dataDir, HOME: home, LOG_LEVEL: 'warn', npm_config_update_notifier: 'false' };
    for (const k of ['DATABASE_URL', 'DATABASE_ADMIN_URL', 'PUBLIC_BASE_URL', 'SECRETS_KEY']) delete env[k];
    // `npm start`, as the README says; in its own process group, so the test stops npm and the server it runs
    server = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    server.stdout!.on('data', (d) => (serverOutput += d));
    server.stderr!.on('data', (d) => (serverOutput += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (serverOutput.includes('try: curl')) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
      server!.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`npm start exited with ${code}: ${serverOutput}`));
      });
    });
  }, 120_000);

  afterAll(async () => {
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      process.kill(-server.pid, 'SIGTERM');
      const timer = setTimeout(() => server?.pid && process.kill(-server.pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }, 30_000);

  it('marks every runnable block, and the quick start is `npm ci && npm start` / `npm ci && npm test`, which serve the demo tenant', () => {
    expect([...blocks.keys()]).toEqual(BLOCKS);
    expect(blocks.get('start')).toMatch(/^npm ci && npm start\s.*\nnpm ci && npm test\s/);
    for (const [name, body] of blocks) expect([name, body.replaceAll(README_ORIGIN, '').includes(':8080')]).toEqual([name, false]);
    expect(serverOutput).toContain(`FHIR base of the demo tenant: ${origin}/fhir/demo`);
    // the JSON the README shows is the Bundle it posts
    const shown = /^```json\n([\s\S]*?)^```$/m.exec(README)![1];
    expect(JSON.parse(shown)).toEqual(JSON.parse(readFileSync(join(ROOT, 'examples/transaction-bundle.json'), 'utf8')));
  });

  it('quick start: discovery, create, search, read, update, patch, history, conditional create, transaction, $validate', async () => {
    const r = await runBlock('quick-start');
    expect(linesOf('quick-start', r)).toEqual([
      `${origin}/auth/token`,
      '4.0.1',
      '1',
      'ETag: W/"1"',
      '2',
      '3',
      '3,2,1',
      '200',
      '201 Created,201 Created',
      expect.stringMatching(/^Validation successful/),
    ]);
    expect(r.stderr).toContain(`for: ${origin}/fhir/demo (`); // which base the token is for (see the last tests)
  }, 150_000);

  it('tenants: create (with its operator client), list, a token of the printed client, settings, reindex, jobs, migrate', async () => {
    const out = linesOf('tenants', await runBlock('tenants')).join('\n');
    expect(out).toContain(`created tenant lakeside: FHIR base ${origin}/fhir/lakeside`);
    expect(out).toContain("npm run -s cli -- token lakeside --client lakeside-cli --scope 'system/*.cruds'");
    // tenant list: slug, status, plan, type, resources, storage, requests today, last activity, name
    expect(out).toMatch(/^lakeside\tactive\t-\t-\t1\t[\d.]+ MB\t0\t-\tLakeside Clinic$/m);
    expect(out).toMatch(/^Lakeside Clinic$/m); // the tenant's Organization, read with the printed client's token
    expect(out).toContain('tenant lakeside: referentialIntegrity=false');
    expect(out).toMatch(/reindex job [0-9a-f-]{36}: completed/);
    expect(out).toMatch(/^lakeside\t[0-9a-f-]{36}\treindex\tcompleted/m);
    expect(out).toContain('migrations up to date');
  }, 150_000);

  it('tenant administration: create with plan, type and first admin, list, plan change, suspend, reactivate, policies, show, a platform admin', async () => {
    const out = linesOf('tenant-admin', await runBlock('tenant-admin')).join('\n');
    expect(out).toContain(`created tenant harbour: FHIR base ${origin}/fhir/harbour`);
    expect(out).toMatch(/status trial \(trial ends \d{4}-\d\d-\d\dT[^)]*\), plan trial, type diagnostic-centre/);
    expect(out).toMatch(new RegExp(`^${origin.replace(/[.:/]/g, '\\$&')}/admin/invite/harbour/[A-Za-z0-9_-]{40,}$`, 'm'));
    expect(out).toMatch(/^harbour\ttrial\ttrial\tdiagnostic-centre\t1\t[\d.]+ MB\t0\t-\tHarbour Diagnostics$/m);
    expect(out).toContain('tenant harbour: plan multi-branch, status active');
    expect(out).toContain('tenant harbour is now suspended');
    expect(out).toContain('tenant harbour is now active');
    expect(out).toContain('tenant harbour: ipAllowList=["10.0.0.0/8","2001:db8::/32"], passwordMinLength=14, maxTokenLifetimeSeconds=900');
    expect(out).toContain('"plan": "multi-branch"');
    expect(out).toContain('created user ops (platform-admin) in platform');
  }, 150_000);

  it("newcomer: a practitioner and a patient user, and an app whose http launch URL is on localhost", async () => {
    const out = linesOf('newcomer', await runBlock('newcomer')).join('\n');
    expect(out).toMatch(/created user dr-ng \(practitioner\) in demo, fhirUser Practitioner\/[0-9a-f-]{36}/);
    expect(out).toMatch(/created user jo-smith \(patient\) in demo, fhirUser Patient\/[0-9a-f-]{36}/);
    smithId = /fhirUser Patient\/([0-9a-f-]{36})/.exec(out)![1];
    expect(out).toContain('client_id: my-app');
    expect(out).toContain('launch URL: http://localhost:9000/launch');
  }, 150_000);

  it('standalone launch: the printed URL, signed in through the HTML forms (this test plays the browser), gives a code the block exchanges', async () => {
    let consentHtml = '';
    let failure: unknown;
    const r = await runBlock('standalone-launch', (line, answer) => {
      const url = /^open: (\S+)$/.exec(line)?.[1];
      if (!url) return;
      void (async () => {
        const browser = new Browser(origin);
        const login = await browser.follow(url);
        const picker = await signInAsDrNg(browser, login.html!);
        expect(picker.html).toContain('Choose a patient');
        // "pick Jo Smith": search by name, follow the link that names her
        const found = await browser.follow(`${origin}/auth/interaction/${interactionUid(picker.html!)}?q=Smith`);
        const link = /<a href="([^"]+)">Jo Smith, born 1980-01-02<\/a>/.exec(found.html!)![1].replace(/&amp;/g, '&');
        const consent = await browser.follow(link);
        consentHtml = consent.html!;
        const done = await browser.follow(formAction(consentHtml, '/consent'), {
          form: { scope: offeredScopes(consentHtml), patient: hiddenValue(consentHtml, 'patient')!, decision: 'allow' },
        });
        const back = new URL(done.leftTo!);
        expect(back.origin + back.pathname).toBe('http://localhost:9000/callback');
        expect(back.searchParams.get('state')).toBe('xyz123');
        answer(`${back.searchParams.get('code')}\n`);
      })().catch((err) => {
        failure = err;
        answer('no-code\n');
      });
    });
    if (failure) throw new Error(`playing the browser failed: ${(failure as Error).stack}\nblock stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    if (!consentHtml) throw new Error(`the block ended (status ${r.status}) before the browser reached the consent page\nblock stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    expect(offeredScopes(consentHtml)).toEqual(['launch/patient', 'openid', 'fhirUser', 'offline_access', 'patient/*.rs']);
    expect(consentHtml).toContain('Read and search 21 kinds of records of Jo Smith, born 1980-01-02');
    const response = JSON.parse(linesOf('standalone-launch', r).at(-1)!) as Record<string, unknown>;
    expect(response).toMatchObject({ token_type: 'Bearer', patient: smithId, need_patient_banner: true, refresh_token: expect.any(String), id_token: expect.any(String) });
    expect(String(response.scope).split(' ')).toEqual(expect.arrayContaining(['launch/patient', 'openid', 'fhirUser', 'offline_access', 'patient/Observation.rs']));
    expect(String(response.scope)).not.toContain('Practitioner');
    const read = await fetch(`${origin}/fhir/demo/Patient/${smithId}`, { headers: { authorization: `Bearer ${String(response.access_token)}` } });
    expect(read.status).toBe(200);
  }, 150_000);

  it("EHR launch: dr-ng's CLI token creates a launch for Jo Smith; the app's authorization with it gets her without a picker", async () => {
    const out = linesOf('ehr-launch', await runBlock('ehr-launch'));
    const opened = new URL(/^open: (\S+)$/.exec(out.at(-1)!)![1]);
    expect(opened.origin + opened.pathname).toBe('http://localhost:9000/launch');
    expect(opened.searchParams.get('iss')).toBe(`${origin}/fhir/demo`);
    // what the app at the launch URL then does (README: "The app then authorizes as above, with launch=...")
    const redirectUri = 'http://localhost:9000/callback';
    const browser = new Browser(origin);
    const { redirect, pkce, consentHtml } = await runAuthorization(browser, origin, {
      clientId: 'my-app', aud: opened.searchParams.get('iss')!, scope: 'launch patient/*.rs openid fhirUser', launch: opened.searchParams.get('launch')!,
      redirectUri, username: 'dr-ng', password: 'a long passphrase 1',
    });
    expect(consentHtml).toContain('Patient: <strong>Jo Smith, born 1980-01-02</strong>');
    const tok = await tokenRequest(origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: pkce.verifier, client_id: 'my-app' });
    expect(tok.status).toBe(200);
    expect(tok.body.patient).toBe(smithId);
  }, 150_000);

  it("backend services: a lab's key pair, its client, a client_credentials token, and the lab Bundle posted with it", async () => {
    const out = linesOf('backend-services', await runBlock('backend-services'));
    expect(out.join('\n')).toContain('client_id: acme-lab');
    expect(out.at(-1)).toBe('201 Created,201 Created');
  }, 150_000);

  it('dynamic registration: an initial access token from the CLI (the token alone on stdout) registers an app', async () => {
    const out = linesOf('registration', await runBlock('registration'));
    expect(out.at(-1)).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  }, 150_000);

  it('subscriptions: the README\'s Subscription is created requested, and its signing secret comes back once', async () => {
    const out = linesOf('subscriptions', await runBlock('subscriptions')).join('\n');
    expect(out).toMatch(/^HTTP\/1\.1 201 Created$/m);
    expect(out).toMatch(/^X-Subscription-Secret: [A-Za-z0-9_-]{43}$/im);
  }, 150_000);

  it('the CLI started without the server\'s PORT mints tokens for the running server, and says so', async () => {
    const { PORT: _port, ...withoutPort } = env;
    const r = await cli(['token', 'demo', '--client', 'demo-cli', '--scope', 'system/Patient.rs'], withoutPort);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`for: ${origin}/fhir/demo (the running server's public base URL, from DATA_DIR/server.json)`);
    const res = await fetch(`${origin}/fhir/demo/Patient?_count=1`, { headers: { authorization: `Bearer ${r.stdout.trim()}` } });
    expect(res.status).toBe(200);
  }, 60_000);

  it('the CLI refuses an http launch URL off loopback, and a username under 3 characters, saying why on stderr', async () => {
    const launch = await cli(['client', 'add', 'demo', '--type', 'public', '--name', 'Remote', '--redirect-uri', 'https://app.example/cb', '--launch-uri', 'http://app.example/launch']);
    expect(launch.status).toBe(1);
    expect(launch.stderr).toContain('error: a launch URI must be https (or http on localhost, 127.0.0.1 or [::1] while developing)');
    const user = await cli(['user', 'create', 'demo', 'jo', '--role', 'receptionist', '--password', 'a long passphrase 3']);
    expect(user.status).toBe(1);
    expect(user.stderr).toMatch(/error: a username is 3-100 characters/);
  }, 60_000);
});
