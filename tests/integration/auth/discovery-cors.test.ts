// SMART discovery (conformance.html) and CORS (app-launch.html#considerations-for-cross-origin-resource-sharing-cors-
// support): .well-known/smart-configuration and metadata answer anyone, any origin; every other FHIR endpoint needs a
// token (401 + WWW-Authenticate) and answers CORS only for origins the tenant's clients registered.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { newApp, newUser } from '../../helpers/oauth.js';
import { newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let app: { clientId: string };
const APP_ORIGIN = 'http://app.example';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'disc');
  other = await newTenant(server, 'disc-other');
  app = await newApp(server, t.slug); // redirect URI http://app.example/callback
});
afterAll(async () => server.close());

describe('.well-known/smart-configuration', () => {
  it('is JSON whatever Accept says, with every required field and absolute URLs', async () => {
    const res = await request(server.origin).get(`${t.path}/.well-known/smart-configuration`).set('Accept', 'text/html');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const c = res.body;
    expect(c).toMatchObject({
      issuer: `${server.origin}/auth`,
      jwks_uri: `${server.origin}/auth/jwks`,
      authorization_endpoint: `${server.origin}/auth/authorize`,
      token_endpoint: `${server.origin}/auth/token`,
      registration_endpoint: `${server.origin}/auth/register`,
      introspection_endpoint: `${server.origin}/auth/introspect`,
      revocation_endpoint: `${server.origin}/auth/revoke`,
      code_challenge_methods_supported: ['S256'],
    });
    expect(c.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials']));
    expect(c.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['private_key_jwt']));
    expect(c.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS384', 'ES384']));
    expect(c.capabilities).toEqual(expect.arrayContaining(['launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-asymmetric', 'sso-openid-connect', 'context-ehr-patient', 'context-standalone-patient', 'permission-patient', 'permission-user', 'permission-v1', 'permission-v2', 'permission-offline']));
    expect(c.code_challenge_methods_supported).not.toContain('plain');
  });

  it('is the same issuer for every tenant, and OpenID discovery at the issuer names the same endpoints', async () => {
    const a = (await request(server.origin).get(`${t.path}/.well-known/smart-configuration`)).body;
    const b = (await request(server.origin).get(`${other.path}/.well-known/smart-configuration`)).body;
    expect(b.issuer).toBe(a.issuer);
    const oidc = await request(server.origin).get('/auth/.well-known/openid-configuration');
    expect(oidc.status).toBe(200);
    expect(oidc.body).toMatchObject({ issuer: a.issuer, token_endpoint: a.token_endpoint, authorization_endpoint: a.authorization_endpoint, jwks_uri: a.jwks_uri });
    const jwks = await request(server.origin).get('/auth/jwks');
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.body.keys[0].d).toBeUndefined(); // public keys only
  });

  it('answers 404 for an unknown tenant', async () => {
    expect((await request(server.origin).get('/fhir/no-such-tenant/.well-known/smart-configuration')).status).toBe(404);
  });
});

describe('CapabilityStatement security (SMART 1.0 oauth-uris, still read by fhirclient)', () => {
  it('names the SMART service and the OAuth endpoints, without a token', async () => {
    const res = await request(server.origin).get(`${t.path}/metadata`);
    expect(res.status).toBe(200);
    const security = res.body.rest[0].security;
    expect(security.service[0].coding[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' });
    const uris = security.extension.find((e: { url: string }) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
    expect(Object.fromEntries(uris.extension.map((e: { url: string; valueUri: string }) => [e.url, e.valueUri]))).toMatchObject({
      authorize: `${server.origin}/auth/authorize`,
      token: `${server.origin}/auth/token`,
    });
  });
});

describe('the API without a token', () => {
  it.each(['/Patient', '/Patient/1', '', '/_history', '/Patient/$validate'])('GET %s answers 401 with WWW-Authenticate: Bearer and an OperationOutcome', async (path) => {
    const res = await request(server.origin).get(`${t.path}${path}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="/);
    expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
  });

  it('answers 401 to a malformed Authorization header, naming the problem', async () => {
    const res = await request(server.origin).get(`${t.path}/Patient`).set('Authorization', 'Basic dXNlcjpwYXNz');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(res.body.issue[0].details.coding[0].code).toBe('TOKEN_MALFORMED');
  });
});

describe('CORS', () => {
  it('lets any origin read discovery and metadata', async () => {
    for (const path of ['/.well-known/smart-configuration', '/metadata']) {
      const res = await request(server.origin).get(`${t.path}${path}`).set('Origin', 'https://anyone.example');
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
  });

  it("answers a preflight from a client's registered origin, and not from others", async () => {
    const ok = await request(server.origin).options(`${t.path}/Patient`).set('Origin', APP_ORIGIN).set('Access-Control-Request-Method', 'GET').set('Access-Control-Request-Headers', 'authorization');
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(ok.headers['access-control-allow-headers']).toMatch(/authorization/i);
    const evil = await request(server.origin).options(`${t.path}/Patient`).set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'GET');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    // the origin is registered in this tenant, not in the other
    const elsewhere = await request(server.origin).options(`${other.path}/Patient`).set('Origin', APP_ORIGIN).set('Access-Control-Request-Method', 'GET');
    expect(elsewhere.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("allows an actual request from the token's own client's origin only", async () => {
    await newUser(server, t.slug, 'cors-admin', 'tenant-admin');
    const appToken = await tokenFor(server, t, { clientId: app.clientId, username: 'cors-admin', scope: 'user/Patient.rs' });
    const fromApp = await request(server.origin).get(`${t.path}/Patient`).set('Origin', APP_ORIGIN).set('Authorization', `Bearer ${appToken}`);
    expect(fromApp.status).toBe(200);
    expect(fromApp.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    // the tenant's backend client registered no origin: the browser gets no CORS grant with its token
    const fromBackend = await request(server.origin).get(`${t.path}/Patient`).set('Origin', APP_ORIGIN).set('Authorization', `Bearer ${t.token}`);
    expect(fromBackend.status).toBe(200);
    expect(fromBackend.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("exposes Location, ETag and WWW-Authenticate to the app's origin", async () => {
    const res = await request(server.origin).get(`${t.path}/Patient`).set('Origin', APP_ORIGIN);
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(res.headers['access-control-expose-headers']).toMatch(/WWW-Authenticate/);
  });

  it('lets the registered origin call the token endpoint (oidc-provider, per client)', async () => {
    const res = await request(server.origin).options('/auth/token').set('Origin', APP_ORIGIN).set('Access-Control-Request-Method', 'POST');
    expect(res.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
  });
});
