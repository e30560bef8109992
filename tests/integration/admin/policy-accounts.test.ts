// Issue 11, security policies: a tenant's password policy (minimum length, breached-password list), its maximum
// access-token lifetime, its sign-in idle timeout, and what its lifecycle state allows on /auth (a suspended tenant
// signs in only its administrators and issues no backend tokens; a trial tenant works as an active one). Another
// tenant, without any policy, watches: its users, passwords, tokens and sessions are unaffected.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createUser, resetPassword } from '../../../src/auth/admin.js';
import { FhirError } from '../../../src/core/errors.js';
import { tenantPasswordProblem } from '../../../src/tenancy/security-policy.js';
import { authorizeUrl, errorText, formAction, newApp, newUser, PASSWORD, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { backendToken, BrowserAt, lifetimeOf, setSettings, setStatus, signInForTokens } from './policy-helpers.js';

const BREACHED = 'letmein-please-2024'; // its SHA-1 is in the fixture list
const FIXTURE = new URL('../../fixtures/breached-passwords.txt', import.meta.url).pathname;
const HERE = '203.0.113.50';

let server: TestServer;
let strict: TestTenant;
let watcher: TestTenant;

beforeAll(async () => {
  server = await startServer({ trustedProxies: ['127.0.0.1/32'], breachedPasswordsFile: FIXTURE });
  strict = await newTenant(server, 'strict');
  watcher = await newTenant(server, 'watch');
});
afterAll(async () => server.close());

/** The FhirError a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<FhirError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FhirError)) throw new Error(`expected a FhirError, got ${String(err)}`);
  return err;
}

describe('password policy', () => {
  beforeAll(async () => setSettings(server, strict.slug, { passwordMinLength: 16, breachedPasswordCheck: true }));

  it("refuses a password shorter than the tenant's minimum in createUser and resetPassword; the other tenant keeps the server's", async () => {
    const short = 'fourteen-chars'; // 14 characters: enough for the server, not for this tenant
    const e = await refusal(createUser(server.deps, { tenant: strict.slug, username: 'short-pw', password: short, role: 'practitioner' }));
    expect(e).toMatchObject({ status: 400, code: 'PASSWORD_POLICY', message: 'a password needs at least 16 characters' });
    await createUser(server.deps, { tenant: strict.slug, username: 'long-pw', password: 'sixteen-characters', role: 'practitioner' });
    const reset = await refusal(resetPassword(server.deps, strict.slug, 'long-pw', short));
    expect(reset.code).toBe('PASSWORD_POLICY');
    await expect(createUser(server.deps, { tenant: watcher.slug, username: 'short-pw', password: short, role: 'practitioner' })).resolves.toMatchObject({ username: 'short-pw' });
  });

  it('refuses a password found in the breached-password list where the tenant checks it, and only there', async () => {
    const e = await refusal(createUser(server.deps, { tenant: strict.slug, username: 'breached', password: BREACHED, role: 'practitioner' }));
    expect(e).toMatchObject({ code: 'PASSWORD_POLICY', message: 'this password appears in a list of passwords exposed in data breaches: choose another one' });
    const reset = await refusal(resetPassword(server.deps, strict.slug, 'long-pw', BREACHED));
    expect(reset.code).toBe('PASSWORD_POLICY');
    expect(await tenantPasswordProblem(server.deps, strict.slug, 'not-in-any-list-at-all', 'someone')).toBeUndefined();
    expect(await tenantPasswordProblem(server.deps, watcher.slug, BREACHED, 'someone')).toBeUndefined();
  });

  it('skips the breached-password check when no BREACHED_PASSWORDS_FILE is configured', async () => {
    const bare = { ...server.deps, config: { ...server.deps.config, breachedPasswordsFile: undefined } };
    expect(await tenantPasswordProblem(bare, strict.slug, BREACHED, 'someone')).toBeUndefined();
    expect(await tenantPasswordProblem(bare, strict.slug, 'too-short', 'someone')).toBe('a password needs at least 16 characters');
  });
});

describe('maximum token lifetime', () => {
  let app: { clientId: string };
  beforeAll(async () => {
    app = await newApp(server, strict.slug);
    await newUser(server, strict.slug, 'ttl-doc', 'practitioner');
    await setSettings(server, strict.slug, { maxTokenLifetimeSeconds: 120 });
  });

  it("caps backend (client_credentials) and app (authorization_code) access tokens at the tenant's maximum", async () => {
    const backend = await backendToken(server, strict.clientId);
    expect(backend.status).toBe(200);
    expect(backend.body.expires_in).toBe(120);
    expect(lifetimeOf(backend.body.access_token)).toBe(120);
    const user = await signInForTokens(server, new BrowserAt(server.origin, HERE), { clientId: app.clientId, aud: strict.base, scope: 'user/Patient.rs', username: 'ttl-doc' });
    expect(user.status).toBe(200);
    expect(lifetimeOf(user.body.access_token)).toBe(120);
  });

  it("leaves the other tenant's tokens at the server's lifetimes", async () => {
    const backend = await backendToken(server, watcher.clientId);
    expect(lifetimeOf(backend.body.access_token)).toBe(server.deps.config.authBackendTokenTtl);
  });
});

describe('idle timeout', () => {
  it("ends the tenant's sign-in session after its idle timeout, while the other tenant's session lives on", async () => {
    await setSettings(server, strict.slug, { idleTimeoutMinutes: 0.05 }); // 3 seconds (the server's is 15 minutes)
    const strictApp = await newApp(server, strict.slug);
    const watcherApp = await newApp(server, watcher.slug);
    await newUser(server, strict.slug, 'idle-doc', 'practitioner');
    await newUser(server, watcher.slug, 'idle-doc', 'practitioner');
    const strictBrowser = new BrowserAt(server.origin, HERE);
    const watcherBrowser = new BrowserAt(server.origin, HERE);
    const strictUrl = () => authorizeUrl(server.origin, { clientId: strictApp.clientId, aud: strict.base, scope: 'user/Patient.rs' });
    const watcherUrl = () => authorizeUrl(server.origin, { clientId: watcherApp.clientId, aud: watcher.base, scope: 'user/Patient.rs' });
    await runAuthorization(strictBrowser, server.origin, { clientId: strictApp.clientId, aud: strict.base, scope: 'user/Patient.rs', username: 'idle-doc' });
    await runAuthorization(watcherBrowser, server.origin, { clientId: watcherApp.clientId, aud: watcher.base, scope: 'user/Patient.rs', username: 'idle-doc' });
    // within the window: single sign-on, straight to consent
    expect((await strictBrowser.follow(strictUrl())).html).toContain('Allow access?');
    await new Promise((r) => setTimeout(r, 4500));
    expect((await strictBrowser.follow(strictUrl())).html).toContain('name="password"');
    expect((await watcherBrowser.follow(watcherUrl())).html).toContain('Allow access?');
  }, 60_000);
});

describe('lifecycle on /auth', () => {
  let paused: TestTenant;
  let app: { clientId: string };
  let refreshToken: string;
  beforeAll(async () => {
    paused = await newTenant(server, 'paused');
    app = await newApp(server, paused.slug);
    await newUser(server, paused.slug, 'paused-doc', 'practitioner');
    await newUser(server, paused.slug, 'paused-admin', 'tenant-admin');
    const tok = await signInForTokens(server, new BrowserAt(server.origin, HERE), { clientId: app.clientId, aud: paused.base, scope: 'offline_access user/Patient.rs', username: 'paused-doc' });
    refreshToken = tok.body.refresh_token;
    await setStatus(server, paused.slug, 'suspended');
  });

  it('refuses the sign-in of a suspended tenant\'s staff with a page saying the organization is suspended', async () => {
    const browser = new BrowserAt(server.origin, HERE);
    const login = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: paused.base, scope: 'user/Patient.rs' }));
    expect(login.html).toContain('name="password"');
    const refused = await browser.follow(formAction(login.html!, '/login'), { form: { username: 'paused-doc', password: PASSWORD } });
    expect(refused.res.status).toBe(403);
    expect(errorText(refused.html!)).toBe(`The organization Test ${paused.slug} is suspended: only its administrators may sign in, to take its data out.`);
  });

  it('issues no backend token and refreshes no user token for a suspended tenant', async () => {
    const backend = await backendToken(server, paused.clientId);
    expect(backend.status).toBe(400);
    expect(backend.body).toMatchObject({ error: 'access_denied' });
    expect(backend.body.error_description).toContain('is suspended');
    const refresh = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: app.clientId });
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('access_denied');
  });

  it("still signs in the suspended tenant's administrator (to take the data out)", async () => {
    const tok = await signInForTokens(server, new BrowserAt(server.origin, HERE), { clientId: app.clientId, aud: paused.base, scope: 'user/Patient.rs', username: 'paused-admin' });
    expect(tok.status).toBe(200);
  });

  it('refuses everything of a terminated tenant, and treats a trial tenant as active', async () => {
    await setStatus(server, paused.slug, 'terminated');
    expect((await backendToken(server, paused.clientId)).body.error_description).toContain('no longer uses this service');
    await setStatus(server, paused.slug, 'trial');
    expect((await backendToken(server, paused.clientId)).status).toBe(200);
    expect((await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: app.clientId })).status).toBe(200);
  });

  it("keeps the other tenant's sign-in and tokens working", async () => {
    expect((await backendToken(server, watcher.clientId)).status).toBe(200);
    await newUser(server, watcher.slug, 'still-doc', 'practitioner');
    const tok = await signInForTokens(server, new BrowserAt(server.origin, HERE), { clientId: (await newApp(server, watcher.slug)).clientId, aud: watcher.base, scope: 'user/Patient.rs', username: 'still-doc' });
    expect(tok.status).toBe(200);
  });
});
