// SMART App Launch 2.x over HTTP (app-launch.html): standalone launch with the patient picker, patient users, consent
// with unticked scopes, the token response's launch context, id_token fhirUser, refresh tokens, EHR launch.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { authorizeUrl, Browser, formAction, newApp, newUser, offeredScopes, PASSWORD, pkce, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };
let patient: Record<string, any>;
let other: Record<string, any>;
let practitioner: Record<string, any>;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'launch');
  app = await newApp(server, t.slug);
  practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'House', given: ['Greg'] }] });
  patient = await create(t, { resourceType: 'Patient', name: [{ family: 'Pickme', given: ['Paula'] }], birthDate: '1970-05-06' });
  other = await create(t, { resourceType: 'Patient', name: [{ family: 'Otherone' }] });
  await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patient.id}` } });
  await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${other.id}` } });
  await newUser(server, t.slug, 'dr-house', 'practitioner', `Practitioner/${practitioner.id}`, 'Dr Greg House');
  await newUser(server, t.slug, 'paula', 'patient', `Patient/${patient.id}`);
});
afterAll(async () => server.close());

describe('standalone launch (app-launch.html#launch-app-standalone-launch)', () => {
  it('a practitioner picks the patient; the token response carries patient, scope, id_token with fhirUser and a refresh token', async () => {
    const browser = new Browser(server.origin);
    const { redirect, pkce } = await runAuthorization(browser, server.origin, {
      clientId: app.clientId,
      aud: t.base,
      scope: 'launch/patient patient/Observation.rs patient/Patient.rs openid fhirUser offline_access',
      state: 'st-1',
      username: 'dr-house',
      pickPatient: patient.id,
    });
    expect(redirect.origin + redirect.pathname).toBe(REDIRECT);
    expect(redirect.searchParams.get('state')).toBe('st-1');
    const code = redirect.searchParams.get('code')!;
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    expect(tok.headers.get('cache-control')).toContain('no-store');
    expect(tok.headers.get('pragma')).toBe('no-cache');
    expect(tok.body).toMatchObject({ token_type: 'Bearer', patient: patient.id, need_patient_banner: true, tenant: t.slug, smart_style_url: `${server.origin}/auth/smart-style.json` });
    expect(tok.body.scope.split(' ').sort()).toEqual(['fhirUser', 'launch/patient', 'offline_access', 'openid', 'patient/Observation.rs', 'patient/Patient.rs'].sort());
    expect(tok.body.refresh_token).toEqual(expect.any(String));
    const idToken = jwt.decode(tok.body.id_token) as Record<string, unknown>;
    expect(idToken.fhirUser).toBe(`${t.base}/Practitioner/${practitioner.id}`);
    const api = authed(server.origin, tok.body.access_token);
    const obs = await api.get(`${t.path}/Observation`);
    expect(obs.status).toBe(200);
    expect(obs.body.entry).toHaveLength(1);
    expect((await api.get(`${t.path}/Patient/${other.id}`)).status).toBe(404);
  });
});

/** Exchanges the code of a finished authorization. */
async function exchange(redirect: URL, verifier: string, clientId = app.clientId) {
  return tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
}

describe('patient users and the consent page', () => {
  it('a patient user gets their own record without a picker; an unticked scope is not granted', async () => {
    const browser = new Browser(server.origin);
    const { redirect, pkce, consentHtml } = await runAuthorization(browser, server.origin, {
      clientId: app.clientId, aud: t.base, scope: 'launch/patient patient/*.read openid fhirUser', username: 'paula', untick: ['fhirUser'],
    });
    expect(browser.visited.some((u) => u.includes('?q=') || u.includes('pick='))).toBe(false);
    expect(consentHtml).toContain('Paula Pickme');
    expect(consentHtml).toContain(`Test ${t.slug}`); // the tenant's name on the page
    const tok = await exchange(redirect, pkce.verifier);
    expect(tok.status).toBe(200);
    expect(tok.body.patient).toBe(patient.id);
    // v1 requested, v1 returned; fhirUser unticked: not granted, and no fhirUser claim in the id_token
    expect(tok.body.scope.split(' ').sort()).toEqual(['launch/patient', 'openid', 'patient/*.read']);
    expect((jwt.decode(tok.body.id_token) as Record<string, unknown>).fhirUser).toBeUndefined();
    const api = authed(server.origin, tok.body.access_token);
    expect((await api.get(`${t.path}/Patient/${patient.id}`)).status).toBe(200);
    expect((await api.get(`${t.path}/Patient/${other.id}`)).status).toBe(404);
    expect((await api.get(`${t.path}/Observation`)).body.entry).toHaveLength(1);
    expect((await api.post(`${t.path}/Observation`).set('Content-Type', 'application/fhir+json').send({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.id}` } })).status).toBe(403);
  });

  it('lists each requested scope in plain words, and what is not available and why', async () => {
    const { consentHtml } = await runAuthorization(new Browser(server.origin), server.origin, {
      clientId: app.clientId, aud: t.base, scope: 'user/Observation.rs user/MedicationRequest.cu user/Practitioner.d patient/Foo.rs openid', username: 'dr-house',
    });
    expect(consentHtml).toContain('Read and search observations that you may access');
    expect(consentHtml).toContain('Create and update medication requests that you may access');
    expect(consentHtml).toContain('Know who you are');
    expect(consentHtml).toMatch(/user\/Practitioner\.d<\/code>: neither your role nor this app allows it/);
    expect(consentHtml).toMatch(/patient\/Foo\.rs<\/code>: .*not a FHIR resource type/);
  });

  it('Deny sends the app access_denied with its state', async () => {
    const { redirect } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope: 'user/Patient.rs', state: 'deny-1', username: 'dr-house', deny: true });
    expect(redirect.searchParams.get('error')).toBe('access_denied');
    expect(redirect.searchParams.get('state')).toBe('deny-1');
    expect(redirect.searchParams.get('code')).toBeNull();
  });
});

describe('authorization endpoint methods (SMART: GET and POST)', () => {
  it('takes the authorization request as a POSTed form', async () => {
    const browser = new Browser(server.origin);
    const k = pkce();
    const params = new URL(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'user/Patient.rs', state: 'post-1', pkce: k })).searchParams;
    const first = await browser.follow('/auth/authorize', { form: Object.fromEntries(params) });
    expect(first.html).toContain('name="password"');
    const consent = await browser.follow(formAction(first.html!, '/login'), { form: { username: 'dr-house', password: PASSWORD } });
    const done = await browser.follow(formAction(consent.html!, '/consent'), { form: { scope: offeredScopes(consent.html!), decision: 'allow' } });
    const redirect = new URL(done.leftTo!);
    expect(redirect.searchParams.get('state')).toBe('post-1');
    expect((await exchange(redirect, k.verifier)).status).toBe(200);
  });
});

describe('id_token (sso-openid-connect)', () => {
  it('is RS256, signed by a key in the published JWKS, for this client, with fhirUser', async () => {
    const { redirect, pkce: k } = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope: 'openid fhirUser user/Patient.rs', username: 'dr-house' });
    const tok = await exchange(redirect, k.verifier);
    const header = jwt.decode(tok.body.id_token, { complete: true })!.header;
    expect(header.alg).toBe('RS256');
    const jwks = (await (await fetch(`${server.origin}/auth/jwks`)).json()) as { keys: Record<string, unknown>[] };
    const key = createPublicKey({ key: jwks.keys.find((j) => j.kid === header.kid) as never, format: 'jwk' });
    const claims = jwt.verify(tok.body.id_token, key, { algorithms: ['RS256'], issuer: `${server.origin}/auth`, audience: app.clientId }) as Record<string, unknown>;
    expect(claims.fhirUser).toBe(`${t.base}/Practitioner/${practitioner.id}`);
    expect(claims.sub).toEqual(expect.any(String));
  });
});

describe('EHR launch (app-launch.html#launch-app-ehr-launch)', () => {
  it('a launch context made by the EHR brings patient and encounter without a picker; online_access refreshes', async () => {
    await newUser(server, t.slug, 'dr-ehr', 'practitioner', `Practitioner/${practitioner.id}`);
    const ehrToken = await tokenFor(server, t, { clientId: app.clientId, username: 'dr-ehr', scope: 'user/Patient.rs user/Encounter.rs' });
    const enc = await create(t, { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patient.id}` } });
    const l = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${ehrToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: patient.id, encounter: enc.id }) });
    expect(l.status).toBe(201);
    const launch = (await l.json()) as { launch: string; iss: string };
    expect(launch.iss).toBe(t.base);
    const browser = new Browser(server.origin);
    const { redirect, pkce: k, consentHtml } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope: 'launch patient/Observation.rs openid fhirUser online_access', username: 'dr-ehr', launch: launch.launch });
    expect(browser.visited.some((u) => u.includes('?q=') || u.includes('pick='))).toBe(false);
    expect(consentHtml).not.toContain('choose another');
    const tok = await exchange(redirect, k.verifier);
    expect(tok.status).toBe(200);
    expect(tok.body).toMatchObject({ patient: patient.id, encounter: enc.id, need_patient_banner: false });
    expect(tok.body.scope.split(' ')).toEqual(expect.arrayContaining(['launch', 'online_access', 'patient/Observation.rs']));
    expect(tok.body.refresh_token).toEqual(expect.any(String));
    // refresh without scope = the same scopes; the launch context comes again
    const ref = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId });
    expect(ref.status).toBe(200);
    expect(ref.body).toMatchObject({ token_type: 'Bearer', scope: tok.body.scope, patient: patient.id, encounter: enc.id, expires_in: 3600 });
    // a launch is good for one authorization
    const again = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'launch patient/Observation.rs', launch: launch.launch }));
    expect(again.leftTo ?? '').toContain('error=invalid_request');
  });

  it('refuses a launch for a patient that does not exist, and a launcher without access to patients', async () => {
    const ehrToken = await tokenFor(server, t, { clientId: app.clientId, username: 'dr-house', scope: 'user/Patient.rs' });
    const missing = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${ehrToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: 'nope' }) });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: string }).error).toBe('invalid_request');
    const noScope = await tokenFor(server, t, { clientId: app.clientId, username: 'dr-house', scope: 'user/Observation.rs' });
    const forbidden = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${noScope}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: patient.id }) });
    expect(forbidden.status).toBe(403);
    const anonymous = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ patient: patient.id }) });
    expect(anonymous.status).toBe(401);
  });

  it("another tenant's launch cannot be used with this tenant's aud, nor this tenant's patient launched from there", async () => {
    const t2 = await newTenant(server, 'launch-b');
    const app2 = await newApp(server, t2.slug);
    const p2 = await create(t2, { resourceType: 'Patient', name: [{ family: 'Elsewhere' }] });
    await newUser(server, t2.slug, 'dr-b', 'practitioner');
    const tokB = await tokenFor(server, t2, { clientId: app2.clientId, username: 'dr-b', scope: 'user/Patient.rs' });
    // t's patient id with tenant B's token: not found there
    const cross = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${tokB}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: patient.id }) });
    expect(cross.status).toBe(400);
    const l = (await (await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${tokB}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: p2.id }) })).json()) as { launch: string };
    const step = await new Browser(server.origin).follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'launch patient/Patient.rs', launch: l.launch }));
    expect(step.leftTo ?? '').toContain('error=invalid_request');
  });
});

describe('SMART style', () => {
  it('serves the style document the token response points to', async () => {
    const res = await fetch(`${server.origin}/auth/smart-style.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ color_background: expect.any(String), font_family_body: expect.any(String) });
  });
});
