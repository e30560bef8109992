// Sign-in lockout that an outsider cannot turn against a known user (issue 8): a per-address throttle over all
// accounts, a lock per (account, client address), and an account-wide ceiling for guessing spread over many
// addresses. The server trusts X-Forwarded-For here, so each request names the address it comes from.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resetPassword } from '../../../src/auth/admin.js';
import { authorizeUrl, Browser, errorText, formAction, newApp, newUser, PASSWORD, signInLocked } from '../../helpers/oauth.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };

beforeAll(async () => {
  // smaller address and account limits than the defaults keep the tests short; the per-address lock is the default
  server = await startServer({ trustProxy: true, authIpFailures: 12, authLockoutAccountAttempts: 12 });
  t = await newTenant(server, 'lockout');
  app = await newApp(server, t.slug);
});
afterAll(async () => server.close());

const INVALID = 'The username or password is not correct.';
const perAddress = () => server.deps.config.authLockoutAttempts;

/** A browser at the sign-in form of a fresh authorization request; `attempt` posts it from address `from`. */
async function signInPage(from: string) {
  const browser = new Browser(server.origin);
  const first = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'openid user/Patient.rs' }));
  expect(first.html).toContain('name="password"');
  const action = formAction(first.html!, '/login');
  return {
    async attempt(username: string, password: string) {
      const r = await browser.follow(action, { form: { username, password }, headers: { 'x-forwarded-for': from } });
      return { status: r.res.status, message: r.html ? errorText(r.html) : undefined, signedIn: r.html?.includes('Allow access?') === true, retryAfter: r.res.headers.get('retry-after') };
    },
  };
}

async function attemptFrom(from: string, username: string, password: string) {
  return (await signInPage(from)).attempt(username, password);
}

describe('lock per (account, client address)', () => {
  it("an attacker's address locks itself out of a user, while the user still signs in from another address", async () => {
    await newUser(server, t.slug, 'victim', 'practitioner');
    const attacker = await signInPage('203.0.113.10');
    for (let i = 1; i < perAddress(); i++) expect(await attacker.attempt('victim', `guess-${i}`)).toMatchObject({ status: 401, message: INVALID });
    const last = await attacker.attempt('victim', 'guess-last');
    expect(last.status).toBe(429);
    expect(last.message).toMatch(/locked/);
    // even the right password is refused from there
    expect(await attacker.attempt('victim', PASSWORD)).toMatchObject({ status: 429, signedIn: false });
    // the user, elsewhere, is not affected
    expect(await attemptFrom('198.51.100.7', 'victim', PASSWORD)).toMatchObject({ status: 200, signedIn: true });
    // and the user's success there does not unlock the attacker's address
    expect((await attemptFrom('203.0.113.10', 'victim', PASSWORD)).status).toBe(429);
  });

  it("a successful sign-in clears that address's count", async () => {
    await newUser(server, t.slug, 'typist', 'practitioner');
    const page = await signInPage('198.51.100.20');
    for (let i = 1; i < perAddress(); i++) expect((await page.attempt('typist', `typo-${i}`)).status).toBe(401);
    expect((await page.attempt('typist', PASSWORD)).signedIn).toBe(true);
    const again = await signInPage('198.51.100.20');
    for (let i = 1; i < perAddress(); i++) expect((await again.attempt('typist', `typo-again-${i}`)).status).toBe(401);
    expect((await again.attempt('typist', 'typo-last')).status).toBe(429);
  });

  it('a burst of parallel guesses from one address cannot get past the limit; the right password in the burst is refused', async () => {
    await newUser(server, t.slug, 'burst-b', 'practitioner');
    const n = 10; // within the address throttle (authIpFailures: 12), so only the account lock is at work
    const pages = await Promise.all(Array.from({ length: n }, () => signInPage('203.0.113.50')));
    const wrong = pages.slice(0, -1).map((p, i) => p.attempt('burst-b', `burst-${i}`));
    await signInLocked(server, t.slug, 'burst-b');
    const right = await pages[n - 1].attempt('burst-b', PASSWORD);
    const results = await Promise.all(wrong);
    expect(right).toMatchObject({ status: 429, signedIn: false });
    expect(results.filter((r) => r.status === 401)).toHaveLength(perAddress() - 1);
    expect(results.filter((r) => r.status === 429)).toHaveLength(n - perAddress());
    for (const r of results.filter((x) => x.status === 429)) expect(r.message).toMatch(/locked/);
    // locked from that address only
    expect((await attemptFrom('203.0.113.50', 'burst-b', PASSWORD)).status).toBe(429);
    expect((await attemptFrom('198.51.100.50', 'burst-b', PASSWORD)).signedIn).toBe(true);
  });
});

describe('per-address throttle (AUTH_IP_FAILURES)', () => {
  it('answers 429 after AUTH_IP_FAILURES failures from one address across different usernames, before any account is looked at', async () => {
    for (const u of ['ip-1', 'ip-2', 'ip-3']) await newUser(server, t.slug, u, 'practitioner');
    const limit = server.deps.config.authIpFailures;
    const names = ['ghost', 'ip-1', 'ip-2', 'ip-3'];
    const page = await signInPage('203.0.113.30');
    // spread so that no account reaches its own per-address lock
    for (let i = 0; i < limit; i++) {
      const name = names[i % names.length];
      expect(await page.attempt(name === 'ghost' ? `ghost-${i}` : name, `wrong-${i}`)).toMatchObject({ status: 401, message: INVALID });
    }
    const blocked = await page.attempt('ip-1', PASSWORD);
    expect(blocked).toMatchObject({ status: 429, signedIn: false });
    expect(blocked.message).toMatch(/network address/);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
    expect((await page.attempt('nobody-at-all', 'x')).status).toBe(429);
    // another address is not throttled, and the accounts themselves are not locked
    expect((await attemptFrom('198.51.100.30', 'ip-1', PASSWORD)).signedIn).toBe(true);
  });

  it('a parallel burst over many usernames from one address gets at most AUTH_IP_FAILURES checks', async () => {
    const limit = server.deps.config.authIpFailures;
    const pages = await Promise.all(Array.from({ length: limit * 2 }, () => signInPage('203.0.113.60')));
    const results = await Promise.all(pages.map((p, i) => p.attempt(`nobody-${i}`, 'guess')));
    expect(results.filter((r) => r.status === 401)).toHaveLength(limit);
    const throttled = results.filter((r) => r.status === 429);
    expect(throttled).toHaveLength(limit);
    for (const r of throttled) expect(r.message).toMatch(/network address/);
  });

  it('successful sign-ins do not count', async () => {
    await newUser(server, t.slug, 'regular', 'practitioner');
    for (let i = 0; i < server.deps.config.authIpFailures + 2; i++) expect((await attemptFrom('198.51.100.70', 'regular', PASSWORD)).signedIn).toBe(true);
  });
});

describe('account-wide ceiling (AUTH_LOCKOUT_ACCOUNT_ATTEMPTS)', () => {
  it('failures spread over many addresses lock the account for everyone; a password reset unlocks it', async () => {
    await newUser(server, t.slug, 'spread', 'practitioner');
    const ceiling = server.deps.config.authLockoutAccountAttempts;
    let failures = 0;
    // each address stays below its own lock
    for (let a = 1; failures < ceiling; a++) {
      const page = await signInPage(`203.0.113.${100 + a}`);
      for (let i = 1; i < perAddress() && failures < ceiling; i++) {
        const r = await page.attempt('spread', `spread-${a}-${i}`);
        failures++;
        if (failures < ceiling) expect(r).toMatchObject({ status: 401, message: INVALID });
        else {
          expect(r.status).toBe(429);
          expect(r.message).toMatch(/locked/);
        }
      }
    }
    // the right password from an address that never failed is refused too
    expect(await attemptFrom('198.51.100.80', 'spread', PASSWORD)).toMatchObject({ status: 429, signedIn: false });
    const newPassword = 'a brand new passphrase 77';
    await resetPassword(server.deps, t.slug, 'spread', newPassword);
    expect((await attemptFrom('198.51.100.80', 'spread', newPassword)).signedIn).toBe(true);
    expect((await attemptFrom('203.0.113.101', 'spread', newPassword)).signedIn).toBe(true);
  });
});
