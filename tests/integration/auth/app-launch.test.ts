// SMART App Launch 2.x over HTTP (app-launch.html): standalone launch with the patient picker, patient users, consent
// with unticked scopes, the token response's launch context, id_token fhirUser, refresh tokens, EHR launch.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import jwt from 'jsonwebtoken';
import { Browser, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

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
    expect(tok.body).toMatchObject({ token_type: 'Bearer', patient: patient.id, need_patient_banner: true });
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

describe('more flows (scratch)', () => {
  it('patient user gets own record; unticked scope is not granted', async () => {
    const browser = new Browser(server.origin);
    const { redirect, pkce, consentHtml } = await runAuthorization(browser, server.origin, {
      clientId: app.clientId, aud: t.base, scope: 'launch/patient patient/*.read openid fhirUser', username: 'paula', untick: ['fhirUser'],
    });
    expect(consentHtml).toContain('Paula Pickme');
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    expect(tok.body.patient).toBe(patient.id);
    expect(tok.body.scope.split(' ').sort()).toEqual(['launch/patient', 'openid', 'patient/*.read']);
  });

  it('EHR launch', async () => {
    const staff = await newUser(server, t.slug, 'dr-ehr', 'practitioner', `Practitioner/${practitioner.id}`);
    void staff;
    const { tokenFor } = await import('../../helpers/server.js');
    const ehrToken = await tokenFor(server, t, { clientId: app.clientId, username: 'dr-ehr', scope: 'user/Patient.rs user/Encounter.rs' });
    const enc = await create(t, { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patient.id}` } });
    const l = await fetch(`${server.origin}/auth/launch`, { method: 'POST', headers: { authorization: `Bearer ${ehrToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ patient: patient.id, encounter: enc.id }) });
    const launch = (await l.json()) as any;
    expect(l.status).toBe(201);
    const browser = new Browser(server.origin);
    const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope: 'launch patient/Observation.rs openid fhirUser online_access', username: 'dr-ehr', launch: launch.launch });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    expect(tok.body).toMatchObject({ patient: patient.id, encounter: enc.id, need_patient_banner: false });
    expect(tok.body.refresh_token).toEqual(expect.any(String));
    const ref = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId });
    expect(ref.status).toBe(200);
    expect(ref.body.scope).toBe(tok.body.scope);
    expect(ref.body.patient).toBe(patient.id);
  });
});
