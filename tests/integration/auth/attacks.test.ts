// Bad input and attacks against the SMART authorization server and the resource server, over real HTTP: forged,
// expired and misdirected access tokens; authorization requests without PKCE, with foreign redirect URIs, scopes or
// audiences; replayed codes; forged client assertions; password guessing; open redirects; crossing tenants.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, createPrivateKey, createPublicKey, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { registerClient, resetPassword, setTotp } from '../../../src/auth/admin.js';
import { currentStep, matchTotp, totpCode } from '../../../src/auth/totp.js';
import type { AccessClaims } from '../../../src/auth/claims.js';
import { signAccessToken } from '../../../src/auth/tokens.js';
import {
  ASSERTION_TYPE,
  authorizeUrl,
  Browser,
  clientAssertion,
  errorText,
  formAction,
  hiddenValue,
  newApp,
  newUser,
  offeredScopes,
  PASSWORD,
  pkce,
  REDIRECT,
  runAuthorization,
  signInLocked,
  tokenRequest,
} from '../../helpers/oauth.js';
import { authed, create, newBackendClient, newTenant, startServer, testBackendKey, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
let appA: { clientId: string };
let appB: { clientId: string };
let patientA: Record<string, any>;

beforeAll(async () => {
  // every request here comes from 127.0.0.1, and the guessing tests below fail far more sign-ins than the
  // per-address throttle (AUTH_IP_FAILURES) allows in one window: it has its own tests in lockout.test.ts
  server = await startServer({ authIpFailures: 1000 });
  a = await newTenant(server, 'atk-a');
  b = await newTenant(server, 'atk-b');
  appA = await newApp(server, a.slug);
  appB = await newApp(server, b.slug, { redirectUris: ['http://b-app.example/cb'] });
  patientA = await create(a, { resourceType: 'Patient', name: [{ family: 'Target' }] });
  await newUser(server, a.slug, 'nurse-a', 'practitioner');
});
afterAll(async () => server.close());

// ---------------------------------------------------------------------------------------------------------------
// helpers

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** The claims of a real, valid token of tenant `t` (a template to forge from). */
async function validClaims(t: TestTenant, scope = 'system/*.cruds'): Promise<AccessClaims> {
  return jwt.decode(await tokenFor(server, t, { scope })) as AccessClaims;
}

/** A JWT signed RS256 with the server's own active private key, with any header. */
function signWithServerKey(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const key = createPrivateKey({ key: server.deps.auth.keys.activePrivateJwk() as never, format: 'jwk' });
  return signRs256(key, header, payload);
}

function signRs256(key: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>, alg = 'RSA-SHA256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createSign(alg).update(input).sign(key).toString('base64url')}`;
}

const activeKid = () => server.deps.auth.keys.activeKid()!;

/** Asserts the RFC 6750 invalid_token answer of the FHIR API: 401, WWW-Authenticate, OperationOutcome with `code`. */
function expectInvalidToken(res: { status: number; headers: Record<string, string>; body: any; text: string }, t: TestTenant, code: string): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toMatch(new RegExp(`^Bearer realm="${t.base.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}", error="invalid_token", error_description="[^"]+"$`));
  expect(res.headers['content-type']).toContain('application/fhir+json');
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue).toHaveLength(1);
  expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'login' });
  expect(res.body.issue[0].details.coding[0].code).toBe(code);
  expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
}

async function fhirGet(t: TestTenant, token: string, path = '/Patient') {
  return authed(server.origin, token).get(`${t.path}${path}`);
}

/** An authorization request answered by a redirect: the URL it sends the browser to (asserted to be REDIRECT). */
async function authorizeRedirect(url: string, expectedRedirect = REDIRECT): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual' });
  expect([302, 303]).toContain(res.status);
  const to = new URL(res.headers.get('location')!, server.origin);
  expect(to.origin + to.pathname).toBe(expectedRedirect);
  return to;
}

/** An authorization request answered by the error page (the redirect_uri cannot be trusted): never a redirect. */
async function authorizeErrorPage(url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'manual' });
  const html = await res.text();
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('content-type')).toContain('text/html');
  expect(html).not.toMatch(/\bat .+\.(ts|js):\d+/);
  return html;
}

/** The error of an authorization-endpoint redirect, asserting no code came with it. */
function expectRedirectError(to: URL, error: string, state?: string): void {
  expect(to.searchParams.get('error')).toBe(error);
  expect(to.searchParams.get('code')).toBeNull();
  if (state) expect(to.searchParams.get('state')).toBe(state);
}

async function exchange(code: string, verifier: string, clientId = appA.clientId) {
  return tokenRequest(server.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
}

/** Opens an authorization request in `browser` and returns the sign-in page's login form action. */
async function loginForm(browser: Browser, url: string): Promise<string> {
  const step = await browser.follow(url);
  expect(step.res.status).toBe(200);
  expect(step.html).toContain('name="password"');
  return formAction(step.html!, '/login');
}


// ---------------------------------------------------------------------------------------------------------------

describe('access tokens presented to the FHIR API', () => {
  it('no Authorization header: 401 with a bare Bearer challenge (no error code, RFC 6750 §3.1)', async () => {
    const res = await authed(server.origin, undefined).get(`${a.path}/Patient`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="${a.base}"`);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].details.coding[0].code).toBe('TOKEN_MISSING');
  });

  it('a valid token works (control for the forgeries below)', async () => {
    const res = await fhirGet(a, signAccessToken(server.deps.auth.keys, await validClaims(a)));
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
  });

  it('alg "none" (unsigned), with and without the real kid: 401 invalid_token', async () => {
    const claims = await validClaims(a);
    for (const header of [{ alg: 'none', typ: 'JWT' }, { alg: 'none', typ: 'at+jwt', kid: activeKid() }, { alg: 'None', kid: activeKid() }]) {
      const forged = `${b64(header)}.${b64(claims)}.`;
      expectInvalidToken(await fhirGet(a, forged), a, 'TOKEN_ALGORITHM');
    }
  });

  it('HS256 with the server\'s PUBLIC key (from /auth/jwks) as the HMAC secret: 401 invalid_token', async () => {
    const jwks = (await (await fetch(`${server.origin}/auth/jwks`)).json()) as { keys: Record<string, unknown>[] };
    const jwk = jwks.keys.find((k) => k.kid === activeKid())!;
    expect(jwk.d).toBeUndefined(); // the JWKS publishes no private part
    const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
    const claims = await validClaims(a);
    for (const secret of [pem, pem.trim()]) {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: jwk.kid })}.${b64(claims)}`;
      const forged = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      expectInvalidToken(await fhirGet(a, forged), a, 'TOKEN_ALGORITHM');
    }
  });

  it('expired beyond the clock skew: 401 invalid_token (TOKEN_EXPIRED)', async () => {
    const claims = await validClaims(a);
    const skew = server.deps.config.authClockSkewSeconds;
    const expired = signAccessToken(server.deps.auth.keys, { ...claims, iat: now() - 3600, exp: now() - skew - 60, jti: randomBytes(8).toString('hex') });
    expectInvalidToken(await fhirGet(a, expired), a, 'TOKEN_EXPIRED');
  });

  it('not yet valid (nbf in the future beyond the skew): 401 invalid_token (TOKEN_NOT_YET_VALID)', async () => {
    const claims = await validClaims(a);
    const early = signAccessToken(server.deps.auth.keys, { ...claims, nbf: now() + 600, exp: now() + 3600 } as AccessClaims);
    expectInvalidToken(await fhirGet(a, early), a, 'TOKEN_NOT_YET_VALID');
  });

  it('another issuer (signed with the real key): 401 invalid_token (TOKEN_ISSUER)', async () => {
    const claims = await validClaims(a);
    for (const iss of ['https://evil.example/auth', `${server.origin}/auth/`, `${server.origin}`]) {
      expectInvalidToken(await fhirGet(a, signAccessToken(server.deps.auth.keys, { ...claims, iss })), a, 'TOKEN_ISSUER');
    }
  });

  it("another tenant's token (aud = its own base) used at this tenant's base: 401 invalid_token (TOKEN_AUDIENCE)", async () => {
    // B's real token works at B, not at A
    expect((await fhirGet(b, b.token)).status).toBe(200);
    expectInvalidToken(await fhirGet(a, b.token), a, 'TOKEN_AUDIENCE');
    // and a token for a foreign base, or for A's base with a trailing slash / another path
    const claims = await validClaims(a);
    for (const aud of ['https://evil.example/fhir', `${a.base}/`, `${a.base}/Patient`, `${server.origin}/fhir`]) {
      expectInvalidToken(await fhirGet(a, signAccessToken(server.deps.auth.keys, { ...claims, aud })), a, 'TOKEN_AUDIENCE');
    }
  });

  it('a token whose aud is A but whose tenant claim is B is refused (claims must agree)', async () => {
    const claims = await validClaims(a);
    expectInvalidToken(await fhirGet(a, signAccessToken(server.deps.auth.keys, { ...claims, tenant: b.slug })), a, 'TOKEN_CLAIMS');
  });

  it('tampered payload (scope widened, signature kept): 401 invalid_token (TOKEN_SIGNATURE)', async () => {
    const narrow = await tokenFor(server, a, { scope: 'system/Observation.rs' });
    expect((await fhirGet(a, narrow)).status).toBe(403); // the honest token may not read Patient
    const [h, p, s] = narrow.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const tampered = `${h}.${b64({ ...payload, scope: 'system/*.cruds' })}.${s}`;
    expectInvalidToken(await fhirGet(a, tampered), a, 'TOKEN_SIGNATURE');
  });

  it('unknown kid (real key under another kid, or an attacker key): 401 invalid_token (TOKEN_KEY_UNKNOWN)', async () => {
    const claims = await validClaims(a);
    expectInvalidToken(await fhirGet(a, signWithServerKey({ alg: 'RS256', typ: 'at+jwt', kid: 'no-such-kid' }, claims as never)), a, 'TOKEN_KEY_UNKNOWN');
    expectInvalidToken(await fhirGet(a, signWithServerKey({ alg: 'RS256', typ: 'at+jwt' }, claims as never)), a, 'TOKEN_KEY_UNKNOWN');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expectInvalidToken(await fhirGet(a, signRs256(privateKey, { alg: 'RS256', kid: 'attacker' }, claims as never)), a, 'TOKEN_KEY_UNKNOWN');
    // an attacker key under the server's own kid fails the signature check
    expectInvalidToken(await fhirGet(a, signRs256(privateKey, { alg: 'RS256', kid: activeKid() }, claims as never)), a, 'TOKEN_SIGNATURE');
  });

  it('a key carried in the token header (jwk / jku / x5u) is never used: 401 invalid_token', async () => {
    const claims = await validClaims(a);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'embedded' };
    expectInvalidToken(await fhirGet(a, signRs256(privateKey, { alg: 'RS256', kid: 'embedded', jwk }, claims as never)), a, 'TOKEN_KEY_UNKNOWN');
    expectInvalidToken(await fhirGet(a, signRs256(privateKey, { alg: 'RS256', kid: activeKid(), jwk }, claims as never)), a, 'TOKEN_SIGNATURE');
    expectInvalidToken(await fhirGet(a, signRs256(privateKey, { alg: 'RS256', kid: activeKid(), jku: 'https://evil.example/jwks', x5u: 'https://evil.example/cert' }, claims as never)), a, 'TOKEN_SIGNATURE');
  });

  it('garbage in the Authorization header: 401 invalid_token (TOKEN_MALFORMED)', async () => {
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer not.a-jwt', `Bearer ${'x'.repeat(40)}`]) {
      const res = await authed(server.origin, undefined).get(`${a.path}/Patient`).set('Authorization', header);
      expectInvalidToken(res, a, 'TOKEN_MALFORMED');
    }
  });

  it('a valid token lacking the scope: 403 OperationOutcome forbidden', async () => {
    const token = await tokenFor(server, a, { scope: 'system/Observation.rs' });
    const res = await fhirGet(a, token, `/Patient/${patientA.id}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer .*error="insufficient_scope"/); // RFC 6750 §3.1
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'forbidden' });
    // the read it has works
    expect((await fhirGet(a, token, '/Observation')).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('authorization requests', () => {
  const scope = 'openid fhirUser patient/Patient.rs';

  it('without PKCE: redirected back with invalid_request, no code', async () => {
    const to = await authorizeRedirect(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope, state: 's-nopkce', pkce: false }));
    expectRedirectError(to, 'invalid_request', 's-nopkce');
    expect(to.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('PKCE with code_challenge_method=plain: refused (invalid_request), no code', async () => {
    const v = randomBytes(32).toString('base64url');
    const to = await authorizeRedirect(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope, state: 's-plain', pkce: { verifier: v, challenge: v }, challengeMethod: 'plain' }));
    expectRedirectError(to, 'invalid_request', 's-plain');
    expect(to.searchParams.get('error_description')).toMatch(/code_challenge_method/);
  });

  it('a redirect_uri that is not registered: a 400 error page, never a redirect to it', async () => {
    const html = await authorizeErrorPage(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope, redirectUri: 'https://evil.example/steal' }));
    expect(html).toContain('redirect_uri');
    expect(html).not.toContain('evil.example/steal"');
  });

  it('an unknown client_id: a 400 error page (invalid_client), never a redirect', async () => {
    const html = await authorizeErrorPage(authorizeUrl(server.origin, { clientId: 'app-nobody', aud: a.base, scope }));
    expect(html).toContain('invalid_client');
  });

  it('a resource scope the client is not registered for: listed as not available and absent from the token', async () => {
    const narrow = await newApp(server, a.slug, { scope: 'openid fhirUser user/Patient.rs' });
    const browser = new Browser(server.origin);
    const { redirect, pkce: k, consentHtml } = await runAuthorization(browser, server.origin, {
      clientId: narrow.clientId,
      aud: a.base,
      scope: 'openid user/Patient.rs user/Observation.rs user/Patient.cud',
      username: 'nurse-a',
    });
    expect(offeredScopes(consentHtml!)).toEqual(expect.arrayContaining(['openid', 'user/Patient.rs']));
    expect(offeredScopes(consentHtml!)).not.toContain('user/Observation.rs');
    expect(consentHtml).toMatch(/Not available:[\s\S]*<code>user\/Observation\.rs<\/code>/);
    const tok = await exchange(redirect.searchParams.get('code')!, k.verifier, narrow.clientId);
    expect(tok.status).toBe(200);
    expect(tok.body.scope.split(' ').sort()).toEqual(['openid', 'user/Patient.rs']);
    const claims = jwt.decode(tok.body.access_token) as AccessClaims;
    expect(claims.scope).not.toMatch(/Observation|Patient\.c|\.cud/);
    const api = authed(server.origin, tok.body.access_token);
    expect((await api.get(`${a.path}/Observation`)).status).toBe(403);
  });

  it('a static scope the client is not registered for (offline_access): invalid_scope, no code', async () => {
    const narrow = await newApp(server, a.slug, { scope: 'openid user/Patient.rs' });
    const to = await authorizeRedirect(authorizeUrl(server.origin, { clientId: narrow.clientId, aud: a.base, scope: 'openid offline_access user/Patient.rs', state: 's-scope' }));
    expectRedirectError(to, 'invalid_scope', 's-scope');
  });

  it('missing aud: invalid_request, no code', async () => {
    const url = new URL(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope, state: 's-noaud' }));
    url.searchParams.delete('aud');
    expectRedirectError(await authorizeRedirect(url.toString()), 'invalid_request', 's-noaud');
  });

  it("aud of another tenant's base, a foreign URL, or a near miss: invalid_target, no code", async () => {
    for (const aud of [b.base, 'https://evil.example/fhir', `${a.base}x`, `${server.origin}/fhir/`, `${a.base}/Patient`]) {
      const to = await authorizeRedirect(authorizeUrl(server.origin, { clientId: appA.clientId, aud, scope, state: 's-aud' }));
      expectRedirectError(to, 'invalid_target', 's-aud');
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('authorization codes', () => {
  it('a replayed code is refused (invalid_grant) and revokes the grant: the refresh tokens of the first exchange die', async () => {
    const browser = new Browser(server.origin);
    const { redirect, pkce: k } = await runAuthorization(browser, server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid offline_access user/Patient.rs', username: 'nurse-a' });
    const code = redirect.searchParams.get('code')!;
    const first = await exchange(code, k.verifier);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).toEqual(expect.any(String));
    // the refresh token works before the replay (and rotates)
    const refreshed = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: appA.clientId });
    expect(refreshed.status).toBe(200);
    const replay = await exchange(code, k.verifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(replay.body.access_token).toBeUndefined();
    // the replay revoked the grant: the current refresh token no longer works
    const after = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: appA.clientId });
    expect(after.status).toBe(400);
    expect(after.body.error).toBe('invalid_grant');
    expect(after.body.access_token).toBeUndefined();
  });

  it('a code exchanged with a wrong code_verifier: invalid_grant', async () => {
    const browser = new Browser(server.origin);
    const { redirect } = await runAuthorization(browser, server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', username: 'nurse-a' });
    const code = redirect.searchParams.get('code')!;
    const wrong = await exchange(code, pkce().verifier);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    expect(wrong.body.access_token).toBeUndefined();
    // missing verifier too
    const none = await tokenRequest(server.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: appA.clientId });
    expect(none.status).toBe(400);
    expect(['invalid_grant', 'invalid_request']).toContain(none.body.error);
  });

  it("a code is only good for the client it was issued to (another client's exchange: invalid_grant)", async () => {
    const browser = new Browser(server.origin);
    const other = await newApp(server, a.slug);
    const { redirect, pkce: k } = await runAuthorization(browser, server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', username: 'nurse-a' });
    const stolen = await exchange(redirect.searchParams.get('code')!, k.verifier, other.clientId);
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_grant');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('client assertions (client_credentials with private_key_jwt)', () => {
  let svc: string;
  const tokenUrl = () => `${server.origin}/auth/token`;
  const backendToken = (assertion: string) =>
    tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
  const expectInvalidClient = (r: { status: number; body: Record<string, any> }) => {
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
    expect(r.body.access_token).toBeUndefined();
  };

  beforeAll(async () => {
    svc = await newBackendClient(server, a.slug, 'system/Patient.rs');
  });

  it('a valid assertion works (control)', async () => {
    const r = await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey));
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('system/Patient.rs');
  });

  it('a reused jti: invalid_client', async () => {
    const jti = randomBytes(16).toString('base64url');
    expect((await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { jti }))).status).toBe(200);
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { jti })));
  });

  it('a wrong aud: invalid_client', async () => {
    for (const aud of ['https://evil.example/token', `${server.origin}/auth/authorize`, a.base]) {
      expectInvalidClient(await backendToken(clientAssertion(svc, aud, testBackendKey().privateKey)));
    }
  });

  it('exp more than five minutes ahead: invalid_client', async () => {
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { expiresIn: 301 + 10 })));
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { expiresIn: 3600 })));
  });

  it('an expired assertion: invalid_client', async () => {
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { expiresIn: -120 })));
  });

  it('sub different from iss: invalid_client', async () => {
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { sub: b.clientId })));
  });

  it('signed with a key that is not registered (even under the registered kid): invalid_client', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), privateKey)));
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), privateKey, { kid: 'other-kid' })));
  });

  it('alg none / HS256 assertions: invalid_client', async () => {
    const now_ = now();
    const claims = { iss: svc, sub: svc, aud: tokenUrl(), exp: now_ + 120, jti: randomBytes(8).toString('hex') };
    expectInvalidClient(await backendToken(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`));
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'test-es384' })}.${b64({ ...claims, jti: randomBytes(8).toString('hex') })}`;
    const pem = createPublicKey({ key: testBackendKey().publicJwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
    expectInvalidClient(await backendToken(`${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`));
  });

  it("another client's assertion cannot authenticate as this client (iss = this client, signed with the other's key)", async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await registerClient(server.deps, server.app.auth.provider(), { tenant: b.slug, kind: 'backend', name: 'B svc', scope: 'system/Patient.rs', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'b-rs', alg: 'RS384' }] } });
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), privateKey, { alg: 'RS384', kid: 'b-rs' })));
  });

  it('RS384 works with a registered RSA key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsa = await registerClient(server.deps, server.app.auth.provider(), { tenant: a.slug, kind: 'backend', name: 'RSA svc', scope: 'system/Patient.rs', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'rs384', alg: 'RS384', use: 'sig' }] } });
    const r = await backendToken(clientAssertion(rsa.clientId, tokenUrl(), privateKey, { alg: 'RS384', kid: 'rs384' }));
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('system/Patient.rs');
    expect((await fhirGet(a, r.body.access_token)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('password guessing', () => {
  const url = () => authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs' });

  it('AUTH_LOCKOUT_ATTEMPTS wrong passwords lock the account (429, says locked); then even the right password is refused until a reset', async () => {
    await newUser(server, a.slug, 'guessme', 'practitioner');
    const attempts = server.deps.config.authLockoutAttempts;
    const browser = new Browser(server.origin);
    const action = await loginForm(browser, url());
    for (let i = 1; i < attempts; i++) {
      const r = await browser.follow(action, { form: { username: 'guessme', password: `wrong-${i}` } });
      expect(r.res.status).toBe(401);
      expect(errorText(r.html!)).toBe('The username or password is not correct.');
    }
    const last = await browser.follow(action, { form: { username: 'guessme', password: 'wrong-last' } });
    expect(last.res.status).toBe(429);
    expect(errorText(last.html!)).toMatch(/locked/);
    // the correct password, from this browser or a fresh one
    const right = await browser.follow(action, { form: { username: 'guessme', password: PASSWORD } });
    expect(right.res.status).toBe(429);
    expect(right.leftTo).toBeUndefined();
    expect(errorText(right.html!)).toMatch(/locked/);
    const fresh = new Browser(server.origin);
    const fresh1 = await fresh.follow(await loginForm(fresh, url()), { form: { username: 'guessme', password: PASSWORD } });
    expect(fresh1.res.status).toBe(429);
    // a reset unlocks: the new password signs in (the consent page follows)
    const newPassword = 'a brand new passphrase 42';
    await resetPassword(server.deps, a.slug, 'guessme', newPassword);
    const after = new Browser(server.origin);
    const ok = await after.follow(await loginForm(after, url()), { form: { username: 'guessme', password: newPassword } });
    expect(ok.res.status).toBe(200);
    expect(ok.html).toContain('Allow access?');
  });

  it('a burst of parallel guesses cannot get past the limit: at most AUTH_LOCKOUT_ATTEMPTS are checked, the right password in the burst is refused', async () => {
    await newUser(server, a.slug, 'burst', 'practitioner');
    const attempts = server.deps.config.authLockoutAttempts;
    const n = attempts * 5;
    const forms = await Promise.all(
      Array.from({ length: n }, async () => {
        const br = new Browser(server.origin);
        return { br, action: await loginForm(br, url()) };
      }),
    );
    // n - 1 wrong guesses at once, the right password once they have locked the account, while they are still being checked
    const guess = (i: number, password: string) => forms[i].br.follow(forms[i].action, { form: { username: 'burst', password } });
    const wrong = forms.slice(0, -1).map((_, i) => guess(i, `wrong-guess-${i}`));
    await signInLocked(server, a.slug, 'burst');
    const right = await guess(n - 1, PASSWORD);
    const results = await Promise.all(wrong);
    expect(right.res.status).toBe(429);
    expect(right.html).not.toContain('Allow access?');
    expect(errorText(right.html!)).toMatch(/locked/);
    const invalid = results.filter((r) => r.res.status === 401);
    const locked = results.filter((r) => r.res.status === 429);
    expect(invalid.length + locked.length).toBe(n - 1);
    expect(invalid.length).toBe(attempts - 1); // the attempt reaching the limit answers "locked" already
    for (const r of invalid) expect(errorText(r.html!)).toBe('The username or password is not correct.');
    for (const r of locked) expect(errorText(r.html!)).toMatch(/locked/);
    // still locked afterwards
    const again = new Browser(server.origin);
    expect((await again.follow(await loginForm(again, url()), { form: { username: 'burst', password: PASSWORD } })).res.status).toBe(429);
  });

  it('second-factor guesses count too: the right password in between neither counts nor resets, and the lock stops both steps', async () => {
    await newUser(server, a.slug, 'guess-otp', 'practitioner');
    const { secret } = await setTotp(server.deps, a.slug, 'guess-otp', true, 'test');
    const attempts = server.deps.config.authLockoutAttempts;
    const good = totpCode(secret!, currentStep());
    const bad = [0, 1, 2, 3].map((d) => String((Number(good) + 1 + d * 7) % 1_000_000).padStart(6, '0')).find((c) => matchTotp(secret!, c) === undefined)!;
    const browser = new Browser(server.origin);
    for (let i = 1; i <= attempts; i++) {
      // a fresh request each time, the right password first (it does not count), then a wrong code
      const pw = await browser.follow(await loginForm(browser, url()), { form: { username: 'guess-otp', password: PASSWORD } });
      expect(pw.res.status).toBe(200);
      expect(pw.html).toContain('name="code"');
      const otp = await browser.follow(formAction(pw.html!, '/totp'), { form: { ticket: hiddenValue(pw.html!, 'ticket')!, code: bad } });
      if (i < attempts) {
        expect(otp.res.status).toBe(401);
        expect(errorText(otp.html!)).toBe('The authentication code is not correct.');
      } else {
        expect(otp.res.status).toBe(429);
        expect(errorText(otp.html!)).toMatch(/locked/);
      }
    }
    // locked: the right password does not even reach the second factor
    const locked = await browser.follow(await loginForm(browser, url()), { form: { username: 'guess-otp', password: PASSWORD } });
    expect(locked.res.status).toBe(429);
    expect(locked.html).not.toContain('name="code"');
  });

  it('unknown usernames get the same answer as wrong passwords, and never a lock signal', async () => {
    const browser = new Browser(server.origin);
    const action = await loginForm(browser, url());
    const wrong = await browser.follow(action, { form: { username: 'nurse-a', password: 'not the password' } });
    const pages: { status: number; message?: string }[] = [];
    for (let i = 0; i < server.deps.config.authLockoutAttempts + 1; i++) {
      const r = await browser.follow(action, { form: { username: 'no-such-user', password: `guess-${i}` } });
      pages.push({ status: r.res.status, message: errorText(r.html!) });
    }
    expect(wrong.res.status).toBe(401);
    for (const p of pages) expect(p).toEqual({ status: 401, message: errorText(wrong.html!) });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('open redirects', () => {
  it('a whole launch, and a denied one, only ever leave the server for the registered redirect_uri', async () => {
    const browser = new Browser(server.origin);
    const { redirect } = await runAuthorization(browser, server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', username: 'nurse-a' });
    expect(redirect.origin + redirect.pathname).toBe(REDIRECT);
    const denied = await runAuthorization(new Browser(server.origin), server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', username: 'nurse-a', deny: true, state: 's-deny' });
    expect(denied.redirect.origin + denied.redirect.pathname).toBe(REDIRECT);
    expectRedirectError(denied.redirect, 'access_denied', 's-deny');
    for (const u of [...browser.visited]) expect(u.startsWith(`${server.origin}/auth/`) || u.startsWith(`${REDIRECT}?`)).toBe(true);
  });

  it('redirect_uris that merely start with (or resemble) the registered one are refused with an error page', async () => {
    for (const redirectUri of [
      `${REDIRECT}.evil.example`,
      `${REDIRECT}/extra`,
      `${REDIRECT}?next=https://evil.example/`,
      `${REDIRECT}#x`,
      'http://app.example.evil.example/callback',
      'http://app.example@evil.example/callback',
      'https://app.example/callback',
      'http://APP.example/callback',
      'http://app.example/callback/../evil',
      'http://app.example:8080/callback',
    ]) {
      await authorizeErrorPage(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', redirectUri }));
    }
  });

  it("another client's registered redirect_uri is refused", async () => {
    await authorizeErrorPage(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', redirectUri: 'http://b-app.example/cb' }));
  });

  it('an interaction page cannot be steered elsewhere: a forged return URL parameter is ignored', async () => {
    const browser = new Browser(server.origin);
    const action = await loginForm(browser, authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs' }));
    const r = await browser.follow(`${action}?redirect_uri=https://evil.example/&return_to=https://evil.example/`, { form: { username: 'nurse-a', password: PASSWORD, redirect_uri: 'https://evil.example/' } });
    expect(r.leftTo).toBeUndefined();
    expect(r.html).toContain('Allow access?');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('crossing tenants', () => {
  it("a user of tenant A cannot sign in to a request for tenant B (B's app): the same answer as an unknown user", async () => {
    const browser = new Browser(server.origin);
    const action = await loginForm(browser, authorizeUrl(server.origin, { clientId: appB.clientId, aud: b.base, scope: 'openid user/Patient.rs', redirectUri: 'http://b-app.example/cb' }));
    const r = await browser.follow(action, { form: { username: 'nurse-a', password: PASSWORD } });
    expect(r.res.status).toBe(401);
    expect(r.leftTo).toBeUndefined();
    expect(errorText(r.html!)).toBe('The username or password is not correct.');
  });

  it("signed in at tenant A, a request for tenant B asks to sign in again (the session is not carried over)", async () => {
    const browser = new Browser(server.origin);
    await runAuthorization(browser, server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid user/Patient.rs', username: 'nurse-a' });
    const step = await browser.follow(authorizeUrl(server.origin, { clientId: appB.clientId, aud: b.base, scope: 'openid user/Patient.rs', redirectUri: 'http://b-app.example/cb' }));
    expect(step.res.status).toBe(200);
    expect(step.html).toContain('name="password"');
    expect(step.html).not.toContain('Allow access?');
  });

  it('a client registered to tenant A asking with aud = tenant B: invalid_target, no code', async () => {
    const to = await authorizeRedirect(authorizeUrl(server.origin, { clientId: appA.clientId, aud: b.base, scope: 'openid user/Patient.rs', state: 's-x' }));
    expectRedirectError(to, 'invalid_target', 's-x');
  });

  it("an app of tenant A cannot have tenant B's users sign in by sending resource = A's base beside aud = B's base", async () => {
    await newUser(server, b.slug, 'bob-b', 'practitioner');
    for (const [aud, resource] of [
      [b.base, a.base],
      [a.base, b.base],
      [a.base, 'https://evil.example/fhir'],
    ]) {
      const url = authorizeUrl(server.origin, { clientId: appA.clientId, aud, scope: 'openid fhirUser user/Patient.rs', state: 's-res', extra: { resource } });
      expectRedirectError(await authorizeRedirect(url), 'invalid_target', 's-res');
    }
    // and with resource = A's base alone (no aud) the sign-in is A's: B's user is unknown there
    const browser = new Browser(server.origin);
    const url = new URL(authorizeUrl(server.origin, { clientId: appA.clientId, aud: a.base, scope: 'openid fhirUser', extra: { resource: a.base } }));
    url.searchParams.delete('aud');
    const r = await browser.follow(await loginForm(browser, url.toString()), { form: { username: 'bob-b', password: PASSWORD } });
    expect(r.res.status).toBe(401);
    expect(errorText(r.html!)).toBe('The username or password is not correct.');
  });

  it("a backend client of tenant A cannot get a token for tenant B (resource = B's base): invalid_target", async () => {
    const r = await tokenRequest(server.origin, {
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs',
      resource: b.base,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: clientAssertion(a.clientId, `${server.origin}/auth/token`, testBackendKey().privateKey),
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_target');
    expect(r.body.access_token).toBeUndefined();
  });
});
