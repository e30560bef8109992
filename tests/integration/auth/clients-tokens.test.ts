// Dynamic client registration (RFC 7591) behind initial access tokens a tenant admin obtains, token introspection
// (RFC 7662, SMART token-introspection.html), refresh (narrowing, bound to the client) and revocation (RFC 7009).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { ASSERTION_TYPE, Browser, clientAssertion, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let app: { clientId: string };
let adminToken: string;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'reg');
  other = await newTenant(server, 'reg-other');
  app = await newApp(server, t.slug);
  await newUser(server, t.slug, 'reg-admin', 'tenant-admin');
  await newUser(server, t.slug, 'reg-doc', 'practitioner');
  adminToken = await tokenFor(server, t, { clientId: app.clientId, username: 'reg-admin', scope: 'user/*.rs user/DiagnosticReport.c' });
});
afterAll(async () => server.close());

async function post(path: string, body: unknown, token?: string, type = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: type === 'application/json' ? JSON.stringify(body) : new URLSearchParams(body as Record<string, string>).toString(),
  });
  return { status: res.status, body: await res.json() };
}

function ecKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'dyn-1', alg: 'ES384', use: 'sig' } };
}

describe('dynamic client registration (RFC 7591) guarded by an initial access token', () => {
  it('a tenant admin obtains a token; a backend client registers with it and gets system/ tokens within the cap', async () => {
    const iat = await post('/auth/register/initial-access-token', { scope: 'system/Observation.rs system/DiagnosticReport.cru' }, adminToken);
    expect(iat.status).toBe(201);
    expect(iat.body).toMatchObject({ initial_access_token: expect.stringMatching(new RegExp(`^${t.slug}\\.`)), expires_in: 86400, registration_endpoint: `${server.origin}/auth/register` });
    const key = ecKey();
    const reg = await post('/auth/register', {
      client_name: 'Lab integration',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [key.jwk] },
      scope: 'system/Observation.rs system/DiagnosticReport.cruds system/Patient.rs',
      tenant: other.slug, // ignored: the initial access token decides the tenant
    }, iat.body.initial_access_token);
    expect(reg.status).toBe(201);
    expect(reg.body.client_id).toEqual(expect.any(String));
    expect(reg.body.tenant).toBe(t.slug);
    // capped by the initial access token (itself capped by the admin's own access: DiagnosticReport create and read,
    // no update): no Patient, no delete
    expect(reg.body.smart_scope.split(' ').sort()).toEqual(['system/DiagnosticReport.cr', 'system/Observation.rs']);
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/DiagnosticReport.cruds system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(reg.body.client_id, `${server.origin}/auth/token`, key.privateKey, { kid: 'dyn-1' }) });
    expect(tok.status).toBe(200);
    expect(tok.body.scope).toBe('system/DiagnosticReport.cr');
    const api = authed(server.origin, tok.body.access_token);
    const dr = await api.post(`${t.path}/DiagnosticReport`).set('Content-Type', 'application/fhir+json').send({ resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' } });
    expect(dr.status).toBe(201);
    expect((await api.get(`${t.path}/DiagnosticReport`)).status).toBe(403); // no 's' was allowed
    expect((await authed(server.origin, tok.body.access_token).get(`${other.path}/DiagnosticReport`)).status).toBe(401);
  });

  it('refuses registration without an initial access token, with a used one, and with a forged one', async () => {
    const body = { client_name: 'x', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' };
    const none = await post('/auth/register', body);
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('invalid_token');
    const iat = (await post('/auth/register/initial-access-token', {}, adminToken)).body.initial_access_token as string;
    expect((await post('/auth/register', body, iat)).status).toBe(201);
    expect((await post('/auth/register', body, iat)).status).toBe(401); // single use
    expect((await post('/auth/register', body, `${t.slug}.forged-token-value`)).status).toBe(401);
    expect((await post('/auth/register', body, iat.replace(t.slug, other.slug))).status).toBe(401);
  });

  it('an app registered dynamically can run the authorization code flow', async () => {
    const iat = (await post('/auth/register/initial-access-token', {}, adminToken)).body.initial_access_token as string;
    const reg = await post('/auth/register', { client_name: 'Dyn app', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], scope: 'openid fhirUser user/Patient.rs' }, iat);
    expect(reg.status).toBe(201);
    const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: reg.body.client_id, aud: t.base, scope: 'openid user/Patient.rs user/Observation.rs', username: 'reg-doc' });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: reg.body.client_id });
    expect(tok.status).toBe(200);
    expect(tok.body.scope.split(' ').sort()).toEqual(['openid', 'user/Patient.rs']); // Observation was not registered for this client
  });

  it('only tenant admins obtain initial access tokens (not practitioners, not backend clients)', async () => {
    const doc = await tokenFor(server, t, { clientId: app.clientId, username: 'reg-doc', scope: 'user/Patient.rs' });
    const res = await post('/auth/register/initial-access-token', {}, doc);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('insufficient_scope');
    expect((await post('/auth/register/initial-access-token', {})).status).toBe(401);
    const backend = await post('/auth/register/initial-access-token', { scope: 'system/Organization.rs' }, t.token);
    expect(backend.status).toBe(403);
    expect(backend.body.error).toBe('insufficient_scope');
  });
});

describe('token introspection (RFC 7662)', () => {
  it('reports an active token with scope, client_id, exp and its launch context; inactive otherwise', async () => {
    const p = await create(t, { resourceType: 'Patient', name: [{ family: 'Intro' }] });
    const userToken = await tokenFor(server, t, { clientId: app.clientId, username: 'reg-doc', scope: 'patient/Patient.rs', patient: p.id });
    const res = await post('/auth/introspect', { token: userToken }, t.token, 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, scope: 'patient/Patient.rs', client_id: app.clientId, patient: p.id, iss: `${server.origin}/auth`, aud: t.base, token_type: 'Bearer' });
    expect(res.body.exp).toBeGreaterThan(Date.now() / 1000);
    // another tenant's token, an expired one, garbage: inactive, nothing else
    expect((await post('/auth/introspect', { token: other.token }, t.token, 'application/x-www-form-urlencoded')).body).toEqual({ active: false });
    const expired = await tokenFor(server, t, { scope: 'system/Patient.rs', ttlSeconds: -120 });
    expect((await post('/auth/introspect', { token: expired }, t.token, 'application/x-www-form-urlencoded')).body).toEqual({ active: false });
    expect((await post('/auth/introspect', { token: 'not-a-token' }, t.token, 'application/x-www-form-urlencoded')).body).toEqual({ active: false });
  });

  it('needs the caller to authenticate with a backend or tenant-admin token', async () => {
    expect((await post('/auth/introspect', { token: t.token }, undefined, 'application/x-www-form-urlencoded')).status).toBe(401);
    for (const junk of ['junk', 'a.bnVsbA.c', `x.${Buffer.from('[1]').toString('base64url')}.y`]) {
      const res = await post('/auth/introspect', { token: t.token }, junk, 'application/x-www-form-urlencoded');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_token');
    }
    const doc = await tokenFor(server, t, { clientId: app.clientId, username: 'reg-doc', scope: 'user/Patient.rs' });
    expect((await post('/auth/introspect', { token: t.token }, doc, 'application/x-www-form-urlencoded')).status).toBe(403);
  });
});

describe('refresh and revocation', () => {
  async function offlineTokens(scope: string) {
    const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope, username: 'reg-doc' });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    return tok.body;
  }

  it('a refresh may narrow the scopes, never widen them', async () => {
    const tok = await offlineTokens('offline_access user/Patient.rs user/Observation.rs');
    const narrow = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: app.clientId, scope: 'user/Patient.rs offline_access' });
    expect(narrow.status).toBe(200);
    expect(narrow.body.scope).toBe('user/Patient.rs offline_access');
    expect((await authed(server.origin, narrow.body.access_token).get(`${t.path}/Observation`)).status).toBe(403);
    const wider = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: narrow.body.refresh_token ?? tok.refresh_token, client_id: app.clientId, scope: 'user/Patient.rs user/Encounter.rs' });
    expect(wider.status).toBe(400);
  });

  it('a refresh token is bound to its client', async () => {
    const tok = await offlineTokens('offline_access user/Patient.rs');
    const otherApp = await newApp(server, t.slug);
    const res = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: otherApp.clientId });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('a revoked refresh token no longer refreshes', async () => {
    const tok = await offlineTokens('offline_access user/Patient.rs');
    const rev = await fetch(`${server.origin}/auth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tok.refresh_token, client_id: app.clientId }).toString() });
    expect(rev.status).toBe(200);
    const res = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: app.clientId });
    expect(res.body.error).toBe('invalid_grant');
  });
});
