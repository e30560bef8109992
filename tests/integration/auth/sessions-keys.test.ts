// Sign-in sessions and keys: TOTP second factor (optional per user, mandatory per tenant with enrolment at sign-in,
// each code accepted once), the idle session timeout, and signing-key rotation/retirement (JWKS, verification).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPrivateKey, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { setTotp } from '../../../src/auth/admin.js';
import { generateSigningKey, rotateSigningKey } from '../../../src/auth/keys.js';
import { currentStep, totpCode } from '../../../src/auth/totp.js';
import { retireKey } from '../../../src/store/auth-keys.js';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { authorizeUrl, Browser, formAction, hiddenValue, newApp, newUser, PASSWORD, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'mfa');
  app = await newApp(server, t.slug);
});
afterAll(async () => server.close());

/** Starts an authorization and signs in with the password; returns the page that follows. */
async function passwordStep(browser: Browser, username: string, s = server, tenant = t, clientId = app.clientId) {
  const first = await browser.follow(authorizeUrl(s.origin, { clientId, aud: tenant.base, scope: 'openid user/Patient.rs' }));
  expect(first.html).toContain('name="password"');
  return browser.follow(formAction(first.html!, '/login'), { form: { username, password: PASSWORD } });
}

describe('TOTP second factor', () => {
  it('a user with TOTP must enter the current code; a wrong code is refused; a code is accepted once', async () => {
    await newUser(server, t.slug, 'totp-user', 'practitioner');
    const { secret } = await setTotp(server.deps, t.slug, 'totp-user', true, 'test');
    const browser = new Browser(server.origin);
    const step = await passwordStep(browser, 'totp-user');
    expect(step.html).toContain('Authentication code');
    const ticket = hiddenValue(step.html!, 'ticket')!;
    const wrong = await browser.follow(formAction(step.html!, '/totp'), { form: { ticket, code: '000000' === totpCode(secret!, currentStep()) ? '111111' : '000000' } });
    expect(wrong.res.status).toBe(401);
    expect(wrong.html).toContain('not correct');
    const code = totpCode(secret!, currentStep());
    const ok = await browser.follow(formAction(wrong.html!, '/totp'), { form: { ticket, code } });
    expect(ok.html).toContain('Allow access?');
    // the same code again, in another sign-in: refused (RFC 6238 replay)
    const again = new Browser(server.origin);
    const s2 = await passwordStep(again, 'totp-user');
    const replay = await again.follow(formAction(s2.html!, '/totp'), { form: { ticket: hiddenValue(s2.html!, 'ticket')!, code } });
    expect(replay.res.status).toBe(401);
  });

  it('a forged or foreign ticket does not skip the password', async () => {
    await newUser(server, t.slug, 'totp-two', 'practitioner');
    const { secret } = await setTotp(server.deps, t.slug, 'totp-two', true, 'test');
    const browser = new Browser(server.origin);
    const step = await passwordStep(browser, 'totp-two');
    const ticket = hiddenValue(step.html!, 'ticket')!;
    const [body, mac] = ticket.split('.');
    const forged = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), userId: 'someone-else' })).toString('base64url')}.${mac}`;
    const res = await browser.follow(formAction(step.html!, '/totp'), { form: { ticket: forged, code: totpCode(secret!, currentStep()) } });
    expect(res.res.status).toBe(401);
    expect(res.html).toContain('sign in again');
  });

  it('a tenant that requires a second factor makes a user without one enrol at sign-in', async () => {
    const strict = await newTenant(server, 'mfa-req');
    await updateTenantSettings(server.deps.db, strict.slug, { mfaRequired: true });
    const strictApp = await newApp(server, strict.slug);
    await newUser(server, strict.slug, 'new-nurse', 'practitioner');
    const browser = new Browser(server.origin);
    const step = await passwordStep(browser, 'new-nurse', server, strict, strictApp.clientId);
    expect(step.html).toContain('requires a second factor');
    const secret = /Key: <code>([A-Z2-7]+)<\/code>/.exec(step.html!)![1];
    expect(step.html).toContain('otpauth://totp/');
    const done = await browser.follow(formAction(step.html!, '/totp'), { form: { ticket: hiddenValue(step.html!, 'ticket')!, code: totpCode(secret, currentStep()) } });
    expect(done.html).toContain('Allow access?');
    // enrolled now: the next sign-in asks for a code from the same secret
    const next = await passwordStep(new Browser(server.origin), 'new-nurse', server, strict, strictApp.clientId);
    expect(next.html).toContain('Enter the 6-digit code');
  });
});

describe('idle session timeout', () => {
  it('a session unused for longer than AUTH_SESSION_IDLE_MINUTES makes the user sign in again', async () => {
    const idle = await startServer({ authSessionIdleMinutes: 0.05 }); // 3 seconds
    try {
      const tenant = await newTenant(idle, 'idle');
      const idleApp = await newApp(idle, tenant.slug);
      await newUser(idle, tenant.slug, 'idle-doc', 'practitioner');
      const browser = new Browser(idle.origin);
      await runAuthorization(browser, idle.origin, { clientId: idleApp.clientId, aud: tenant.base, scope: 'user/Patient.rs', username: 'idle-doc' });
      // within the window: single sign-on, straight to consent
      const soon = await browser.follow(authorizeUrl(idle.origin, { clientId: idleApp.clientId, aud: tenant.base, scope: 'user/Patient.rs' }));
      expect(soon.html).toContain('Allow access?');
      await new Promise((r) => setTimeout(r, 4500));
      const later = await browser.follow(authorizeUrl(idle.origin, { clientId: idleApp.clientId, aud: tenant.base, scope: 'user/Patient.rs' }));
      expect(later.html).toContain('name="password"');
    } finally {
      await idle.close();
    }
  }, 30_000);
});

describe('sign-out', () => {
  it('ends the session: the next authorization asks for the password again, and online_access refresh tokens stop', async () => {
    await newUser(server, t.slug, 'out-doc', 'practitioner');
    const browser = new Browser(server.origin);
    const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope: 'online_access user/Patient.rs', username: 'out-doc' });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.body.refresh_token).toEqual(expect.any(String));
    const page = await browser.follow('/auth/logout');
    expect(page.html).toContain('Sign out?');
    const xsrf = hiddenValue(page.html!, 'xsrf')!;
    const done = await browser.follow(formAction(page.html!, '/logout'), { form: { xsrf, logout: 'yes' } });
    expect(done.html).toContain('You are signed out');
    const again = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'user/Patient.rs' }));
    expect(again.html).toContain('name="password"');
    const refreshed = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId });
    expect(refreshed.body.error).toBe('invalid_grant');
  });
});

describe('signing keys', () => {
  it('rotation: a new key signs, tokens signed by the old one keep working until it retires, JWKS lists both', async () => {
    const before = (await (await fetch(`${server.origin}/auth/jwks`)).json()) as { keys: { kid: string }[] };
    const oldToken = t.token;
    const oldKid = (jwt.decode(oldToken, { complete: true })!.header as { kid: string }).kid;
    const newKid = await rotateSigningKey(server.deps.db, new Date(Date.now() + 3_600_000));
    expect(await server.app.auth.refreshKeys()).toBe(true);
    const after = (await (await fetch(`${server.origin}/auth/jwks`)).json()) as { keys: { kid: string }[] };
    expect(after.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([newKid, oldKid]));
    expect(after.keys.length).toBe(before.keys.length + 1);
    expect((await t.api.get(`${t.path}/Patient`)).status).toBe(200);
    // tokens issued now carry the new kid
    const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope: 'user/Patient.rs', username: await freshUser() });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect((jwt.decode(tok.body.access_token, { complete: true })!.header as { kid: string }).kid).toBe(newKid);
  });

  it('retirement: a token signed by a retired key is refused at once', async () => {
    // a key of this test only (retiring the shared signer would break the other suites of this run); the app role
    // may not write signing keys (migrations/0005), so it goes in through the owner connection, as the CLI's would
    const key = generateSigningKey();
    await server.deps.db
      .admin()
      .query("INSERT INTO signing_key (kid, alg, private_jwk, public_jwk, superseded_at, retire_at) VALUES ($1, 'RS256', $2, $3, now(), now() + interval '1 hour')", [key.kid, key.privateJwk, key.publicJwk]);
    await server.app.auth.refreshKeys();
    const claims = jwt.decode(t.token) as Record<string, unknown>;
    const signed = jwt.sign({ ...claims, jti: randomBytes(8).toString('hex') }, createPrivateKey({ key: key.privateJwk as never, format: 'jwk' }), { algorithm: 'RS256', keyid: key.kid });
    expect((await authed(server.origin, signed).get(`${t.path}/Patient`)).status).toBe(200);
    expect(await retireKey(server.deps.db, key.kid)).toBe(true);
    await server.app.auth.refreshKeys();
    const res = await authed(server.origin, signed).get(`${t.path}/Patient`);
    expect(res.status).toBe(401);
    expect(res.body.issue[0].details.coding[0].code).toBe('TOKEN_KEY_UNKNOWN');
  });
});

let n = 0;
async function freshUser(): Promise<string> {
  const name = `key-user-${++n}`;
  await newUser(server, t.slug, name, 'practitioner');
  return name;
}
