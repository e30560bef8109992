// SMART App Launch 2.2 server requirements (the certification kit's SHALL rows, docs/smart-conformance.md) that no
// other suite proves: token and refresh responses field by field, offline refresh after sign-out, launch context,
// identity, policies beyond scopes, batches, Patient.link, introspection, client-assertion key resolution, JWKS URL
// caching, registration and discovery. Real HTTP against a real server, like the other auth suites.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { registerClient } from '../../../src/auth/admin.js';
import type { AccessClaims } from '../../../src/auth/claims.js';
import { signAccessToken } from '../../../src/auth/tokens.js';
import {
  ASSERTION_TYPE,
  authorizeUrl,
  Browser,
  clientAssertion,
  formAction,
  hiddenValue,
  newApp,
  newUser,
  PASSWORD,
  REDIRECT,
  runAuthorization,
  tokenRequest,
} from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, testBackendKey, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };
let practitioner: Record<string, any>;
let patient: Record<string, any>;
let other: Record<string, any>;

const LAB = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
const category = (code: string) => [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }] }];
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'conf');
  app = await newApp(server, t.slug);
  practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Conform', given: ['Cora'] }] });
  patient = await create(t, { resourceType: 'Patient', name: [{ family: 'Inscope', given: ['Ina'] }], birthDate: '1990-01-01' });
  other = await create(t, { resourceType: 'Patient', name: [{ family: 'Outscope', given: ['Otto'] }] });
  await newUser(server, t.slug, 'dr-conf', 'practitioner', `Practitioner/${practitioner.id}`, 'Dr Cora Conform');
  await newUser(server, t.slug, 'dr-unlinked', 'practitioner'); // no FHIR record
  await newUser(server, t.slug, 'conf-admin', 'tenant-admin');
  await newUser(server, t.slug, 'conf-desk', 'receptionist');
});
afterAll(async () => server.close());

/** Exchanges the code of a finished authorization (public client). */
async function exchange(redirect: URL, verifier: string, clientId = app.clientId) {
  return tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
}

/** A whole standalone authorization for `username`, exchanged for tokens (asserting 200). */
async function launch(scope: string, username = 'dr-conf', o: { pickPatient?: string; browser?: Browser } = {}) {
  const browser = o.browser ?? new Browser(server.origin);
  const { redirect, pkce, consentHtml } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope, username, ...(o.pickPatient ? { pickPatient: o.pickPatient } : {}) });
  const tok = await exchange(redirect, pkce.verifier);
  expect(tok.status).toBe(200);
  return { tok, browser, consentHtml: consentHtml ?? '' };
}

async function introspect(token: string, caller = t.token): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${server.origin}/auth/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${caller}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Signs the user out of the browser's session (the sign-out page, then "Yes"). */
async function signOut(browser: Browser): Promise<void> {
  const page = await browser.follow('/auth/logout');
  const done = await browser.follow(formAction(page.html!, '/logout'), { form: { xsrf: hiddenValue(page.html!, 'xsrf')!, logout: 'yes' } });
  expect(done.html).toContain('You are signed out');
}

function expectNoStore(headers: Headers): void {
  expect(headers.get('cache-control')).toContain('no-store');
  expect(headers.get('pragma')).toBe('no-cache');
}

// ---------------------------------------------------------------------------------------------------------------

describe('token responses (app-launch.html#response-5)', () => {
  it('the code exchange answers a JSON body with access_token, token_type Bearer, expires_in and scope, marked no-store and no-cache', async () => {
    const { tok } = await launch('openid fhirUser user/Patient.rs');
    expect(tok.headers.get('content-type')).toMatch(/^application\/json/);
    expectNoStore(tok.headers);
    expect(tok.body).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer', expires_in: server.deps.config.authTokenTtl, scope: expect.any(String) });
    expect(tok.body.scope.split(' ').sort()).toEqual(['fhirUser', 'openid', 'user/Patient.rs']);
    // RFC 6750 §2.1 b64token: the access token goes into an Authorization header as it is
    expect(tok.body.access_token).toMatch(/^[A-Za-z0-9\-._~+/]+=*$/);
    const claims = jwt.decode(tok.body.access_token) as AccessClaims;
    expect(claims.exp - claims.iat).toBe(tok.body.expires_in);
    expect((await authed(server.origin, tok.body.access_token).get(`${t.path}/Patient`)).status).toBe(200);
  });

  it('a refresh token comes only with offline_access or online_access', async () => {
    expect((await launch('user/Patient.rs')).tok.body.refresh_token).toBeUndefined();
    expect((await launch('offline_access user/Patient.rs')).tok.body.refresh_token).toEqual(expect.any(String));
    expect((await launch('online_access user/Patient.rs')).tok.body.refresh_token).toEqual(expect.any(String));
  });

  it('errors from the token endpoint are RFC 6749 JSON errors, marked no-store and no-cache too', async () => {
    const bad = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43), client_id: app.clientId });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/json/);
    expectNoStore(bad.headers);
    expect(bad.body).toMatchObject({ error: 'invalid_grant' });
    expect(bad.body.access_token).toBeUndefined();
  });

  it('a refresh answers access_token, token_type, expires_in and the original scope, marked no-store and no-cache', async () => {
    const { tok } = await launch('offline_access user/Patient.rs user/Observation.rs');
    const ref = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId });
    expect(ref.status).toBe(200);
    expectNoStore(ref.headers);
    expect(ref.body).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer', expires_in: server.deps.config.authTokenTtl, scope: tok.body.scope });
    expect(ref.body.access_token).not.toBe(tok.body.access_token);
    expect((await authed(server.origin, ref.body.access_token).get(`${t.path}/Observation`)).status).toBe(200);
  });

  it('offline_access: the refresh token keeps working after the user signed out (online_access stops)', async () => {
    const browser = new Browser(server.origin);
    const offline = (await launch('offline_access user/Patient.rs', 'dr-conf', { browser })).tok;
    const online = (await launch('online_access user/Patient.rs', 'dr-conf', { browser })).tok;
    await signOut(browser);
    const a = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: offline.body.refresh_token, client_id: app.clientId });
    expect(a.status).toBe(200);
    expect((await authed(server.origin, a.body.access_token).get(`${t.path}/Patient`)).status).toBe(200);
    // rotated: the new refresh token works again, with nobody signed in
    const b = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: a.body.refresh_token, client_id: app.clientId });
    expect(b.status).toBe(200);
    const c = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: online.body.refresh_token, client_id: app.clientId });
    expect(c.body.error).toBe('invalid_grant');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('launch context and scopes', () => {
  it('a patient/ scope without launch/patient still establishes a patient: the picker appears and the token names the patient', async () => {
    const browser = new Browser(server.origin);
    const { tok } = await launch('patient/Observation.rs', 'dr-conf', { browser, pickPatient: patient.id });
    expect(browser.visited.some((u) => u.includes(`?patient=${patient.id}`))).toBe(true);
    expect(tok.body.patient).toBe(patient.id);
    expect(tok.body.scope).toBe('patient/Observation.rs');
    expect((jwt.decode(tok.body.access_token) as AccessClaims).patient).toBe(patient.id);
  });

  it('a granular v2 scope (patient/Observation.rs?category=...|laboratory) gives the laboratory Observations only', async () => {
    const lab = await create(t, { resourceType: 'Observation', status: 'final', category: category('laboratory'), code: { text: 'glucose' }, subject: { reference: `Patient/${patient.id}` } });
    const vital = await create(t, { resourceType: 'Observation', status: 'final', category: category('vital-signs'), code: { text: 'pulse' }, subject: { reference: `Patient/${patient.id}` } });
    const scope = `patient/Observation.rs?category=${LAB}`;
    const { tok } = await launch(`launch/patient ${scope}`, 'dr-conf', { pickPatient: patient.id });
    expect(tok.body.scope.split(' ').sort()).toEqual(['launch/patient', scope]);
    const api = authed(server.origin, tok.body.access_token);
    const found = await api.get(`${t.path}/Observation`);
    expect(found.status).toBe(200);
    expect(found.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([lab.id]);
    expect((await api.get(`${t.path}/Observation/${lab.id}`)).status).toBe(200);
    expect((await api.get(`${t.path}/Observation/${vital.id}`)).status).toBe(404);
  });

  it('the role ceiling applies whatever a token claims: a receptionist token that says user/*.cruds still cannot read Observations', async () => {
    await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'bp' }, subject: { reference: `Patient/${patient.id}` } });
    // granted through the authorization server: only what the role allows
    const { tok, consentHtml } = await launch('user/Patient.rs user/Observation.rs', 'conf-desk');
    expect(tok.body.scope).toBe('user/Patient.rs');
    expect(consentHtml).toMatch(/user\/Observation\.rs<\/code>: neither your role nor this app allows it/);
    // a correctly signed token whose scope claims everything: the resource server re-applies the ceiling
    const claims = jwt.decode(tok.body.access_token) as AccessClaims;
    const wide = signAccessToken(server.deps.auth.keys, { ...claims, scope: 'user/*.cruds', jti: randomBytes(8).toString('hex') });
    const api = authed(server.origin, wide);
    expect((await api.get(`${t.path}/Patient`)).status).toBe(200);
    expect((await api.get(`${t.path}/Observation`)).status).toBe(403);
  });

  it('update-as-create is allowed by the update scope alone', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Patient.u' }));
    const id = `upsert-${randomBytes(4).toString('hex')}`;
    const put = await api.put(`${t.path}/Patient/${id}`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', id, name: [{ family: 'Upserted' }] });
    expect(put.status).toBe(201);
    // u is not c: a plain create is refused
    expect((await api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' })).status).toBe(403);
  });

  it('batch entries are authorized one by one; a transaction with one entry the scopes do not allow fails whole', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Patient.crs' }));
    const batch = await api.post(t.path).set('Content-Type', FHIR_JSON).send({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Patient/${patient.id}` } },
        { request: { method: 'GET', url: 'Observation' } },
        { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } },
        { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'Batched' }] } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.entry.map((e: { response: { status: string } }) => e.response.status.slice(0, 3))).toEqual(['200', '403', '403', '201']);
    const marker = `txn-${randomBytes(4).toString('hex')}`;
    const txn = await api.post(t.path).set('Content-Type', FHIR_JSON).send({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:7f9e1a52-6c1b-4f4e-9d57-000000000001', request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: marker }] } },
        { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:7f9e1a52-6c1b-4f4e-9d57-000000000001' } } },
      ],
    });
    expect(txn.status).toBe(403);
    expect(txn.body.resourceType).toBe('OperationOutcome');
    const left = await t.api.get(`${t.path}/Patient?identifier=urn:test|${marker}`);
    expect(left.body.total ?? left.body.entry?.length ?? 0).toBe(0);
  });

  it('patient/ scopes do not follow Patient.link: the linked Patient record stays out of reach', async () => {
    const linkedTo = await create(t, { resourceType: 'Patient', name: [{ family: 'Linked' }] });
    await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${linkedTo.id}` } });
    const me = await create(t, { resourceType: 'Patient', name: [{ family: 'Linking' }], link: [{ other: { reference: `Patient/${linkedTo.id}` }, type: 'seealso' }] });
    const api = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'dr-conf', scope: 'patient/*.rs', patient: me.id }));
    expect((await api.get(`${t.path}/Patient/${me.id}`)).status).toBe(200);
    expect((await api.get(`${t.path}/Patient/${linkedTo.id}`)).status).toBe(404);
    expect((await api.get(`${t.path}/Patient?_id=${linkedTo.id}`)).body.entry ?? []).toHaveLength(0);
    expect((await api.get(`${t.path}/Observation?subject=Patient/${linkedTo.id}`)).body.entry ?? []).toHaveLength(0);
  });

  it('a wildcard scope covers every resource type', async () => {
    const types = ['Condition', 'AllergyIntolerance', 'Immunization', 'Procedure', 'DocumentReference', 'Basic', 'Device'];
    const ids: Record<string, string> = {};
    for (const type of types) {
      const body: Record<string, unknown> = { resourceType: type };
      if (type === 'Condition') Object.assign(body, { subject: { reference: `Patient/${patient.id}` } });
      if (type === 'AllergyIntolerance') Object.assign(body, { patient: { reference: `Patient/${patient.id}` } });
      if (type === 'Immunization') Object.assign(body, { status: 'completed', vaccineCode: { text: 'flu' }, patient: { reference: `Patient/${patient.id}` }, occurrenceDateTime: '2024-01-01' });
      if (type === 'Procedure') Object.assign(body, { status: 'completed', subject: { reference: `Patient/${patient.id}` } });
      if (type === 'DocumentReference') Object.assign(body, { status: 'current', subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain', data: 'aGk=' } }] });
      if (type === 'Basic') Object.assign(body, { code: { text: 'note' }, subject: { reference: `Patient/${patient.id}` } });
      ids[type] = (await create(t, body)).id;
    }
    const system = authed(server.origin, await tokenFor(server, t, { scope: 'system/*.rs' }));
    // a tenant admin (whose ceiling reads every type) with patient/*.rs
    const patientApp = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'conf-admin', scope: 'patient/*.rs', patient: patient.id }));
    for (const type of types) {
      expect([type, (await system.get(`${t.path}/${type}/${ids[type]}`)).status]).toEqual([type, 200]);
      expect([type, (await system.get(`${t.path}/${type}`)).status]).toEqual([type, 200]);
      // patient/*: every type of the patient's compartment (Device has no patient link in R4's compartment)
      if (type !== 'Device') expect([type, (await patientApp.get(`${t.path}/${type}/${ids[type]}`)).status]).toEqual([type, 200]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('identity (sso-openid-connect)', () => {
  it('the id_token fhirUser is the absolute URL of a Practitioner, which the app can read', async () => {
    const { tok } = await launch('openid fhirUser user/Practitioner.rs');
    const fhirUser = (jwt.decode(tok.body.id_token) as Record<string, string>).fhirUser;
    expect(fhirUser).toBe(`${t.base}/Practitioner/${practitioner.id}`);
    const res = await authed(server.origin, tok.body.access_token).get(new URL(fhirUser).pathname);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Practitioner', id: practitioner.id });
  });

  it('a user without a FHIR record is not granted fhirUser: listed as not available, absent from the scope', async () => {
    const { tok, consentHtml } = await launch('openid fhirUser user/Patient.rs', 'dr-unlinked');
    expect(consentHtml).toMatch(/<code>fhirUser<\/code>: [^<]*not linked to a FHIR record/);
    expect(tok.body.scope.split(' ').sort()).toEqual(['openid', 'user/Patient.rs']);
    expect((jwt.decode(tok.body.id_token) as Record<string, unknown>).fhirUser).toBeUndefined();
  });

  it('users are linked only to a Patient, Practitioner, PractitionerRole, RelatedPerson or Person', async () => {
    const org = await create(t, { resourceType: 'Organization', name: 'Not a person' });
    await expect(newUser(server, t.slug, 'org-user', 'practitioner', `Organization/${org.id}`)).rejects.toThrow(/fhirUser must be/);
    const role = await create(t, { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.id}` } });
    await expect(newUser(server, t.slug, 'role-user', 'practitioner', `PractitionerRole/${role.id}`)).resolves.toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('token introspection (token-introspection.html)', () => {
  it('exp agrees with the expires_in of the token response', async () => {
    const before = now();
    const { tok } = await launch('user/Patient.rs');
    const after = now();
    const r = await introspect(tok.body.access_token);
    expect(r.status).toBe(200);
    expect(r.body.active).toBe(true);
    expect(r.body.exp).toBeGreaterThanOrEqual(before + tok.body.expires_in);
    expect(r.body.exp).toBeLessThanOrEqual(after + tok.body.expires_in);
    expect(r.body.scope).toBe(tok.body.scope);
    expect(r.body.client_id).toBe(app.clientId);
  });

  it('with an id_token in the token response: its iss and sub are in the introspection response', async () => {
    const { tok } = await launch('openid fhirUser launch/patient patient/Patient.rs', 'dr-conf', { pickPatient: patient.id });
    const idToken = jwt.decode(tok.body.id_token) as Record<string, string>;
    const r = await introspect(tok.body.access_token);
    expect(r.body).toMatchObject({ active: true, iss: idToken.iss, sub: idToken.sub, patient: patient.id });
  });

  it('every launch context parameter of the token response is in the introspection response', async () => {
    const { tok } = await launch('launch/patient patient/Patient.rs', 'dr-conf', { pickPatient: patient.id });
    expect(tok.body).toMatchObject({ patient: patient.id, tenant: t.slug, need_patient_banner: true, smart_style_url: expect.any(String) });
    const r = await introspect(tok.body.access_token);
    for (const key of ['patient', 'encounter', 'tenant', 'need_patient_banner', 'smart_style_url', 'fhirContext', 'intent']) {
      if (key in tok.body) expect(r.body[key]).toEqual(tok.body[key]);
    }
  });

  it("a tenant admin's SMART app token may introspect the tokens of any client of the tenant", async () => {
    const { tok: adminTok } = await launch('user/Patient.rs', 'conf-admin');
    const otherApp = await newApp(server, t.slug);
    const foreign = await tokenFor(server, t, { clientId: otherApp.clientId, username: 'dr-conf', scope: 'user/Observation.rs' });
    expect((await introspect(foreign, adminTok.body.access_token)).body).toMatchObject({ active: true, client_id: otherApp.clientId, scope: expect.stringContaining('user/Observation.rs') });
    expect((await introspect(t.token, adminTok.body.access_token)).body).toMatchObject({ active: true, client_id: t.clientId });
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** A JWKS URL the test controls: the key set, the Cache-Control header, and a log of the requests. */
async function jwksServer(): Promise<{ url: string; keys: Record<string, unknown>[]; cacheControl: string | undefined; requests: { method: string; headers: IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const state = { keys: [] as Record<string, unknown>[], cacheControl: undefined as string | undefined, requests: [] as { method: string; headers: IncomingHttpHeaders }[] };
  const http: Server = createServer((req, res) => {
    state.requests.push({ method: req.method ?? '', headers: req.headers });
    res.setHeader('content-type', 'application/json');
    if (state.cacheControl) res.setHeader('cache-control', state.cacheControl);
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/jwks.json`;
  return Object.assign(state, {
    url,
    close: async () => {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  });
}

function ecKey(kid: string): { privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES384', use: 'sig' } };
}

describe('client authentication (client-confidential-asymmetric.html)', () => {
  const tokenUrl = () => `${server.origin}/auth/token`;
  const backendToken = (assertion: string, scope = 'system/Patient.rs') =>
    tokenRequest(server.origin, { grant_type: 'client_credentials', scope, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
  const expectInvalidClient = (r: { status: number; body: Record<string, any> }) => {
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
    expect(r.body.access_token).toBeUndefined();
  };
  const backend = async (o: { jwks?: { keys: Record<string, unknown>[] }; jwksUri?: string }) =>
    (await registerClient(server.deps, server.app.auth.provider(), { tenant: t.slug, kind: 'backend', name: 'Conformance backend', scope: 'system/Patient.rs', ...o })).clientId;

  it('an assertion naming an unknown client: invalid_client', async () => {
    expectInvalidClient(await backendToken(clientAssertion('svc-nobody-here', tokenUrl(), testBackendKey().privateKey)));
  });

  it('a jku header that is not the registered JWKS URL: invalid_client; the registered URL as jku works', async () => {
    const direct = await backend({ jwks: { keys: [testBackendKey().publicJwk] } });
    expectInvalidClient(await backendToken(clientAssertion(direct, tokenUrl(), testBackendKey().privateKey, { header: { jku: 'https://evil.example/jwks.json' } })));
    const keys = await jwksServer();
    try {
      const k = ecKey('jku-1');
      keys.keys.push(k.jwk);
      const viaUrl = await backend({ jwksUri: keys.url });
      expectInvalidClient(await backendToken(clientAssertion(viaUrl, tokenUrl(), k.privateKey, { kid: 'jku-1', header: { jku: `${keys.url}?other` } })));
      expect((await backendToken(clientAssertion(viaUrl, tokenUrl(), k.privateKey, { kid: 'jku-1', header: { jku: keys.url } }))).status).toBe(200);
    } finally {
      await keys.close();
    }
  });

  it('an assertion without kid: invalid_client', async () => {
    const svc = await backend({ jwks: { keys: [testBackendKey().publicJwk] } });
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey, { header: { kid: undefined } })));
    expect((await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey))).status).toBe(200);
  });

  it('more than one key with the kid and kty of the assertion: invalid_client', async () => {
    const first = ecKey('twin');
    const second = ecKey('twin');
    const keys = await jwksServer();
    try {
      keys.keys.push(first.jwk, second.jwk);
      const svc = await backend({ jwksUri: keys.url });
      expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), first.privateKey, { kid: 'twin' })));
      expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), second.privateKey, { kid: 'twin' })));
    } finally {
      await keys.close();
    }
  });

  it('a kid whose key has another kty than the alg: invalid_client', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = ecKey('mixed');
    const svc = await backend({ jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'mixed', use: 'sig' }] } });
    expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), ec.privateKey, { kid: 'mixed' })));
  });

  it('a JWKS URL served with Cache-Control: no-store is fetched anew (GET): a new key works at once, a removed key stops at once', async () => {
    const keys = await jwksServer();
    try {
      keys.cacheControl = 'no-store';
      const k1 = ecKey('rot-1');
      const k2 = ecKey('rot-2');
      keys.keys.push(k1.jwk);
      const svc = await backend({ jwksUri: keys.url });
      expect((await backendToken(clientAssertion(svc, tokenUrl(), k1.privateKey, { kid: 'rot-1' }))).status).toBe(200);
      expect(keys.requests.length).toBeGreaterThan(0);
      expect(keys.requests.every((r) => r.method === 'GET')).toBe(true);
      // the client rotates: k2 replaces k1
      keys.keys.splice(0, 1, k2.jwk);
      expect((await backendToken(clientAssertion(svc, tokenUrl(), k2.privateKey, { kid: 'rot-2' }))).status).toBe(200);
      expectInvalidClient(await backendToken(clientAssertion(svc, tokenUrl(), k1.privateKey, { kid: 'rot-1' })));
    } finally {
      await keys.close();
    }
  });

  it('a JWKS URL served with Cache-Control: max-age is cached, not fetched for every assertion', async () => {
    const keys = await jwksServer();
    try {
      keys.cacheControl = 'max-age=300';
      const k = ecKey('cached-1');
      keys.keys.push(k.jwk);
      const svc = await backend({ jwksUri: keys.url });
      for (let i = 0; i < 3; i++) expect((await backendToken(clientAssertion(svc, tokenUrl(), k.privateKey, { kid: 'cached-1' }))).status).toBe(200);
      expect(keys.requests).toHaveLength(1);
    } finally {
      await keys.close();
    }
  });

  it("registration cannot replace a client's keys: a client_id in the metadata is ignored and a new client_id is assigned", async () => {
    const adminToken = await tokenFor(server, t, { clientId: app.clientId, username: 'conf-admin', scope: 'user/*.rs' });
    const iat = await fetch(`${server.origin}/auth/register/initial-access-token`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'system/Patient.rs' }) });
    const initial = ((await iat.json()) as { initial_access_token: string }).initial_access_token;
    const victim = await backend({ jwks: { keys: [testBackendKey().publicJwk] } });
    const attacker = ecKey('test-es384');
    const reg = await fetch(`${server.origin}/auth/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: victim, client_name: 'Impostor', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [attacker.jwk] }, scope: 'system/Patient.rs' }),
    });
    expect(reg.status).toBe(201);
    const body = (await reg.json()) as { client_id: string };
    expect(body.client_id).toEqual(expect.any(String));
    expect(body.client_id).not.toBe(victim);
    expectInvalidClient(await backendToken(clientAssertion(victim, tokenUrl(), attacker.privateKey)));
    expect((await backendToken(clientAssertion(victim, tokenUrl(), testBackendKey().privateKey))).status).toBe(200);
  });

  it('backend errors are RFC 6749 §5.2 errors (invalid_scope, unsupported_grant_type, invalid_client), as JSON', async () => {
    const svc = await backend({ jwks: { keys: [testBackendKey().publicJwk] } });
    const scope = await backendToken(clientAssertion(svc, tokenUrl(), testBackendKey().privateKey), 'system/Observation.rs');
    expect(scope.status).toBe(400);
    expect(scope.body.error).toBe('invalid_scope');
    expect(scope.headers.get('content-type')).toMatch(/^application\/json/);
    const grant = await tokenRequest(server.origin, { grant_type: 'password', username: 'x', password: 'y', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(svc, tokenUrl(), testBackendKey().privateKey) });
    expect(grant.status).toBe(400);
    expect(grant.body.error).toBe('unsupported_grant_type');
    const anonymous = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs' });
    expect(anonymous.status).toBeGreaterThanOrEqual(400);
    expect(['invalid_client', 'invalid_request']).toContain(anonymous.body.error);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('confidential symmetric apps (client-confidential-symmetric.html)', () => {
  it('the client-secret profile is not for Backend Services: a client_credentials client with a secret is refused at registration', async () => {
    const adminTok = await tokenFor(server, t, { clientId: app.clientId, username: 'conf-admin', scope: 'user/Patient.rs' });
    for (const method of ['client_secret_basic', 'client_secret_post']) {
      const iat = (await (await fetch(`${server.origin}/auth/register/initial-access-token`, { method: 'POST', headers: { authorization: `Bearer ${adminTok}`, 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'system/*.rs' }) })).json()) as { initial_access_token: string };
      const res = await fetch(`${server.origin}/auth/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${iat.initial_access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'secret backend', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: method, scope: 'system/Patient.rs' }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_client_metadata');
    }
  });

  it('a client_secret_basic app runs the authorization code flow; a wrong secret is invalid_client', async () => {
    const conf = await newApp(server, t.slug, { kind: 'confidential' });
    expect(conf.clientSecret).toEqual(expect.any(String));
    const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: conf.clientId, aud: t.base, scope: 'user/Patient.rs', username: 'dr-conf' });
    const form = { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier };
    const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`${conf.clientId}:${secret}`).toString('base64')}` });
    const wrong = await tokenRequest(server.origin, form, basic('not-the-secret'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    const ok = await tokenRequest(server.origin, form, basic(conf.clientSecret!));
    expect(ok.status).toBe(200);
    expect(ok.body.scope).toBe('user/Patient.rs');
    // a public client_id alone is not enough for a confidential app
    const { redirect: r2, pkce: k2 } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: conf.clientId, aud: t.base, scope: 'user/Patient.rs', username: 'dr-conf' });
    const noSecret = await tokenRequest(server.origin, { ...form, code: r2.searchParams.get('code')!, code_verifier: k2.verifier, client_id: conf.clientId });
    expect(noSecret.body.error).toBe('invalid_client');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('discovery (conformance.html)', () => {
  it('every endpoint URL is absolute, scopes_supported is listed, and each capability set of conformance.html is complete', async () => {
    const res = await fetch(`${t.base}/.well-known/smart-configuration`, { headers: { accept: 'application/fhir+json' } });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const c = (await res.json()) as Record<string, any>;
    for (const [key, value] of Object.entries(c)) {
      if (key === 'issuer' || key.endsWith('_endpoint') || key.endsWith('_uri')) expect([key, URL.canParse(value) && /^https?:$/.test(new URL(value).protocol)]).toEqual([key, true]);
    }
    expect(c.scopes_supported).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'patient/*.rs', 'user/*.rs', 'system/*.rs']));
    const caps = new Set<string>(c.capabilities);
    const sets: Record<string, string[]> = {
      'Patient Access for Standalone Apps': ['launch-standalone', 'client-public', 'context-standalone-patient', 'permission-patient'],
      'Patient Access for EHR Launch': ['launch-ehr', 'client-public', 'context-ehr-patient', 'permission-patient'],
      'Clinician Access for Standalone': ['launch-standalone', 'client-public', 'permission-user', 'permission-patient'],
      'Clinician Access for EHR Launch': ['launch-ehr', 'client-public', 'context-ehr-patient', 'context-ehr-encounter', 'permission-user', 'permission-patient'],
    };
    for (const [name, needed] of Object.entries(sets)) expect([name, needed.filter((x) => !caps.has(x))]).toEqual([name, []]);
    // not built, so not advertised
    expect(caps.has('context-standalone-encounter')).toBe(false);
    expect(caps.has('smart-app-state')).toBe(false);
    expect(c.user_access_brand_bundle).toBeUndefined();
  });

  it('the PKCE parameters are required and checked at the token endpoint for every client, confidential ones too', async () => {
    const conf = await newApp(server, t.slug, { kind: 'confidential' });
    const url = authorizeUrl(server.origin, { clientId: conf.clientId, aud: t.base, scope: 'user/Patient.rs', state: 's-conf-pkce', pkce: false });
    const res = await fetch(url, { redirect: 'manual' });
    const to = new URL(res.headers.get('location')!, server.origin);
    expect(to.searchParams.get('error')).toBe('invalid_request');
    expect(to.searchParams.get('code')).toBeNull();
    // and a confidential client's code needs its verifier
    const { redirect } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: conf.clientId, aud: t.base, scope: 'user/Patient.rs', username: 'dr-conf', password: PASSWORD });
    const noVerifier = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT }, { authorization: `Basic ${Buffer.from(`${conf.clientId}:${conf.clientSecret}`).toString('base64')}` });
    expect(noVerifier.status).toBe(400);
    expect(noVerifier.body.access_token).toBeUndefined();
  });
});
