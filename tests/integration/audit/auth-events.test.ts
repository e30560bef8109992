// The authorization server's events in the audit trail (issue 12): sign-in attempts (success, wrong password, lock,
// address throttle), sign-out, tokens issued (authorization code, SMART Backend Services) and refused, consent and
// launch context, client and user administration; each found by searching AuditEvent in its own tenant only.
// The server trusts X-Forwarded-For here, so each sign-in names the address it comes from.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { accountId } from '../../../src/auth/claims.js';
import { findUserByName } from '../../../src/store/auth-users.js';
import {
  ASSERTION_TYPE, authorizeUrl, Browser, clientAssertion, errorText, formAction, hiddenValue, newApp, newUser, PASSWORD, REDIRECT, runAuthorization, tokenRequest,
} from '../../helpers/oauth.js';
import { create, newTenant, startServer, testBackendKey, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let app: { clientId: string };
let practitioner: Record<string, any>;
let patient: Record<string, any>;

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const INVALID = 'The username or password is not correct.';

beforeAll(async () => {
  // small lock and address limits keep the refusal tests short; every test signs in from its own address
  server = await startServer({ trustProxy: true, authLockoutAttempts: 3, authIpFailures: 4 });
  t = await newTenant(server, 'audit-auth');
  other = await newTenant(server, 'audit-other');
  app = await newApp(server, t.slug);
  practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Audit', given: ['Ada'] }] });
  patient = await create(t, { resourceType: 'Patient', name: [{ family: 'Launchme', given: ['Lou'] }] });
});
afterAll(async () => server.close());

/** A new practitioner user linked to the Practitioner; returns the account id tokens and audit records name. */
async function doctor(username: string): Promise<string> {
  await newUser(server, t.slug, username, 'practitioner', `Practitioner/${practitioner.id}`);
  const u = await findUserByName(server.deps.db, t.slug, username);
  return accountId(t.slug, u!.id);
}

/** AuditEvents of tenant `tt` matching `query`, as its system token sees them. */
async function audit(query: string, tt: TestTenant = t): Promise<Record<string, any>[]> {
  const res = await tt.api.get(`${tt.path}/AuditEvent?${query}&_count=100`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: { resource: Record<string, any> }) => e.resource);
}

const userAgent = (ev: Record<string, any>) => ev.agent.find((a: Record<string, any>) => a.altId !== undefined || a.network !== undefined);
const clientOf = (ev: Record<string, any>) => ev.agent.find((a: Record<string, any>) => a.who?.identifier)?.who.identifier.value;
const detailOf = (ev: Record<string, any>): Record<string, string> =>
  Object.fromEntries((ev.entity ?? []).flatMap((e: Record<string, any>) => e.detail ?? []).map((d: { type: string; valueString: string }) => [d.type, d.valueString]));

/** Posts the sign-in form of a fresh authorization request from address `from`. */
async function signIn(username: string, password: string, from: string): Promise<{ status: number; message?: string; signedIn: boolean }> {
  const browser = new Browser(server.origin);
  const first = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'openid user/Patient.rs' }));
  const r = await browser.follow(formAction(first.html!, '/login'), { form: { username, password }, headers: { 'x-forwarded-for': from } });
  return { status: r.res.status, message: r.html ? errorText(r.html) : undefined, signedIn: r.html?.includes('Allow access?') === true };
}

describe('sign-in attempts (DICOM 110114 User Authentication / 110122 Login)', () => {
  it('a successful sign-in is recorded with outcome 0, the account as altId, the FHIR user, role, client and address', async () => {
    const acct = await doctor('aud-ok');
    expect(await signIn('aud-ok', PASSWORD, '198.51.100.31')).toMatchObject({ status: 200, signedIn: true });
    const found = await audit(`type=${encodeURIComponent(`${DCM}|110114`)}&subtype=login&altid=${encodeURIComponent(acct)}`);
    expect(found).toHaveLength(1);
    const ev = found[0];
    expect(ev).toMatchObject({ action: 'E', outcome: '0', type: { system: DCM, code: '110114' }, subtype: [{ system: DCM, code: '110122' }] });
    expect(ev.outcomeDesc).toBeUndefined();
    expect(userAgent(ev)).toMatchObject({ altId: acct, who: { reference: `Practitioner/${practitioner.id}` }, role: [{ text: 'practitioner' }], network: { address: '198.51.100.31' } });
    expect(clientOf(ev)).toBe(app.clientId);
    expect(detailOf(ev)).toMatchObject({ factor: 'password', amr: 'pwd' });
  });

  it('a wrong password is recorded with outcome 4 and the words the page showed, under the address the throttle counts (an IPv6 /64)', async () => {
    const acct = await doctor('aud-wrong');
    expect(await signIn('aud-wrong', 'not-the-password', '2001:db8:aa:bb:1:2:3:4')).toMatchObject({ status: 401, message: INVALID });
    const found = await audit(`subtype=login&outcome=4&altid=${encodeURIComponent(acct)}`);
    expect(found).toHaveLength(1);
    expect(found[0].outcomeDesc).toBe(INVALID);
    expect(userAgent(found[0])).toMatchObject({ altId: acct, role: [{ text: 'practitioner' }], network: { address: '2001:db8:aa:bb::/64' } });
    expect(await audit(`subtype=login&outcome=0&altid=${encodeURIComponent(acct)}`)).toHaveLength(0);
  });

  it('an unknown name is recorded as typed, with the same words as a wrong password (no account enumeration)', async () => {
    expect(await signIn('aud-nobody', 'whatever-pass', '198.51.100.33')).toMatchObject({ status: 401, message: INVALID });
    const [ev, ...more] = await audit('subtype=login&altid=aud-nobody');
    expect(more).toHaveLength(0);
    expect(ev).toMatchObject({ outcome: '4', outcomeDesc: INVALID });
    expect(userAgent(ev).role).toBeUndefined();
  });

  it('refusals of a locked account and of a throttled address are recorded as failures, saying why', async () => {
    const acct = await doctor('aud-locked');
    const limit = server.deps.config.authLockoutAttempts;
    for (let i = 1; i <= limit; i++) expect((await signIn('aud-locked', `guess-${i}`, '203.0.113.41')).status).toBe(i < limit ? 401 : 429);
    expect(await signIn('aud-locked', PASSWORD, '203.0.113.41')).toMatchObject({ status: 429, signedIn: false });
    const failures = await audit(`subtype=login&outcome=4&altid=${encodeURIComponent(acct)}`);
    expect(failures).toHaveLength(limit + 1);
    const locked = failures.filter((ev) => /locked/.test(ev.outcomeDesc) && detailOf(ev).reason === 'locked');
    expect(locked).toHaveLength(2); // the guess that locked it and the right password refused after
    expect(await audit(`subtype=login&outcome=0&altid=${encodeURIComponent(acct)}`)).toHaveLength(0);

    // the address throttle refuses before any account is looked at
    for (let i = 0; i < server.deps.config.authIpFailures; i++) expect((await signIn(`aud-spray-${i}`, 'x-pass', '203.0.113.42')).status).toBe(401);
    expect((await signIn('aud-spray-last', 'x-pass', '203.0.113.42')).status).toBe(429);
    const [throttled] = await audit('subtype=login&altid=aud-spray-last');
    expect(throttled).toMatchObject({ outcome: '4', outcomeDesc: expect.stringMatching(/network address/) });
    expect(detailOf(throttled).reason).toBe('throttled');
    expect(userAgent(throttled).network.address).toBe('203.0.113.42');
  });
});

describe('an app launch: consent, launch context, authorization code token, sign-out', () => {
  let acct: string;
  let tok: { status: number; body: Record<string, any> };
  let browser: Browser;

  beforeAll(async () => {
    acct = await doctor('aud-launch');
    browser = new Browser(server.origin);
    const { redirect, pkce } = await runAuthorization(browser, server.origin, {
      clientId: app.clientId, aud: t.base, scope: 'launch/patient patient/Patient.rs openid fhirUser offline_access', username: 'aud-launch', pickPatient: patient.id,
    });
    tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
  });

  it('the token issued for the code is recorded with its client, user, grant type and scope, never the token', async () => {
    expect(tok.status).toBe(200);
    const found = await audit(`subtype=token-issue&altid=${encodeURIComponent(acct)}`);
    expect(found).toHaveLength(1);
    const ev = found[0];
    expect(ev).toMatchObject({ action: 'E', outcome: '0', type: { code: 'token' }, subtype: [{ system: 'urn:tenfhir:audit-event', code: 'token-issue' }] });
    expect(clientOf(ev)).toBe(app.clientId);
    expect(userAgent(ev)).toMatchObject({ altId: acct, who: { reference: `Practitioner/${practitioner.id}` }, role: [{ text: 'practitioner' }] });
    expect(detailOf(ev)).toMatchObject({ grant_type: 'authorization_code', scope: tok.body.scope });
    const text = JSON.stringify(ev);
    for (const secret of [tok.body.access_token, tok.body.refresh_token, tok.body.id_token]) expect(text).not.toContain(secret);
  });

  it('a refreshed token is recorded too, with grant type refresh_token', async () => {
    const refreshed = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId });
    expect(refreshed.status).toBe(200);
    const found = (await audit(`subtype=token-issue&altid=${encodeURIComponent(acct)}`)).filter((ev) => detailOf(ev).grant_type === 'refresh_token');
    expect(found).toHaveLength(1);
    expect(found[0].outcome).toBe('0');
    expect(clientOf(found[0])).toBe(app.clientId);
    expect(JSON.stringify(found[0])).not.toContain(refreshed.body.refresh_token);
  });

  it('the patient picked for the launch is recorded, and found by AuditEvent?patient=', async () => {
    const found = await audit(`subtype=launch&patient=${patient.id}`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ outcome: '0', type: { code: 'authorization' } });
    expect(found[0].entity.map((e: Record<string, any>) => e.what?.reference)).toContain(`Patient/${patient.id}`);
    expect(userAgent(found[0]).altId).toBe(acct);
    expect(detailOf(found[0]).launch).toBe('standalone');
    const consent = await audit(`subtype=consent&altid=${encodeURIComponent(acct)}`);
    expect(consent).toHaveLength(1);
    expect(consent[0].outcome).toBe('0');
    expect(detailOf(consent[0]).scope.split(' ')).toContain('patient/Patient.rs');
  });

  it('signing out is recorded as DICOM 110123 Logout', async () => {
    const page = await browser.follow('/auth/logout');
    const done = await browser.follow(formAction(page.html!, '/logout'), { form: { xsrf: hiddenValue(page.html!, 'xsrf')!, logout: 'yes' } });
    expect(done.html).toContain('You are signed out');
    const found = await audit(`subtype=logout&altid=${encodeURIComponent(acct)}`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ outcome: '0', type: { system: DCM, code: '110114' }, subtype: [{ system: DCM, code: '110123' }] });
  });
});

describe('SMART Backend Services tokens and refused token requests', () => {
  it('a client_credentials token is recorded with the backend client and role system', async () => {
    const assertion = clientAssertion(t.clientId, `${server.origin}/auth/token`, testBackendKey().privateKey);
    const res = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
    expect(res.status).toBe(200);
    const found = (await audit('subtype=token-issue&outcome=0')).filter((ev) => detailOf(ev).grant_type === 'client_credentials');
    expect(found).toHaveLength(1);
    expect(clientOf(found[0])).toBe(t.clientId);
    expect(userAgent(found[0]).role).toEqual([{ text: 'system' }]);
    expect(detailOf(found[0]).scope).toBe('system/Patient.rs');
    expect(JSON.stringify(found[0])).not.toContain(res.body.access_token);
  });

  it('a bad client assertion and a bad code are recorded as refusals in the client\'s tenant', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const forged = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(t.clientId, `${server.origin}/auth/token`, privateKey) });
    expect(forged.status).toBe(401);
    const badCode = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_id: app.clientId });
    expect(badCode.status).toBe(400);
    const refused = await audit('subtype=token-issue&outcome=4');
    const assertionRefusal = refused.find((ev) => clientOf(ev) === t.clientId);
    expect(assertionRefusal?.outcomeDesc).toMatch(/^invalid_client/);
    expect(detailOf(assertionRefusal!).grant_type).toBe('client_credentials');
    const codeRefusal = refused.find((ev) => clientOf(ev) === app.clientId);
    expect(codeRefusal?.outcomeDesc).toMatch(/^invalid_grant/);
    expect(await audit('subtype=token-issue&outcome=4', other)).toHaveLength(0);
  });
});

describe('client and user administration', () => {
  it('records the CLI functions (operator) and dynamic registration behind an admin\'s initial access token', async () => {
    const cliApp = await newApp(server, t.slug, { name: 'Audited app' });
    await newUser(server, t.slug, 'aud-admin', 'tenant-admin');
    const registered = (await audit('subtype=client-register')).find((ev) => detailOf(ev).client_id === cliApp.clientId);
    expect(registered).toMatchObject({ action: 'C', outcome: '0', subtype: [{ code: 'client-register' }] });
    expect(userAgent(registered!)).toMatchObject({ altId: 'cli', role: [{ text: 'operator' }] });
    const created = (await audit('subtype=user-create')).find((ev) => detailOf(ev).username === 'aud-admin');
    expect(detailOf(created!)).toMatchObject({ role: 'tenant-admin' });

    const adminToken = await tokenFor(server, t, { clientId: app.clientId, username: 'aud-admin', scope: 'user/*.rs user/DiagnosticReport.c' });
    const iat = await fetch(`${server.origin}/auth/register/initial-access-token`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"scope":"system/Observation.rs system/DiagnosticReport.cru"}' });
    expect(iat.status).toBe(201);
    const { initial_access_token: initial } = (await iat.json()) as { initial_access_token: string };
    const [issued] = await audit('subtype=registration-token-issue');
    expect(userAgent(issued)).toMatchObject({ role: [{ text: 'tenant-admin' }] });
    expect(JSON.stringify(issued)).not.toContain(initial);
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const reg = await fetch(`${server.origin}/auth/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Dynamic lab', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES384' }] } }),
    });
    expect(reg.status).toBe(201);
    const clientId = ((await reg.json()) as { client_id: string }).client_id;
    const dynamic = (await audit('subtype=client-register')).find((ev) => detailOf(ev).client_id === clientId);
    expect(dynamic).toMatchObject({ action: 'C', outcome: '0' });
    expect(clientOf(dynamic!)).toBe(clientId);
  });
});

describe('tenant isolation', () => {
  it("another tenant's token finds none of these records and cannot read one", async () => {
    expect((await signIn('aud-iso', 'x-pass', '198.51.100.90')).status).toBe(401);
    const mine = await audit('subtype=login&altid=aud-iso');
    expect(mine).toHaveLength(1);
    expect(await audit(`patient=${patient.id}`)).not.toHaveLength(0);
    const res = await other.api.get(`${other.path}/AuditEvent?subtype=login`);
    expect(res.status).toBe(200);
    expect(res.body.entry ?? []).toHaveLength(0);
    expect(res.body.total).toBe(0);
    expect(await audit(`patient=${patient.id}`, other)).toHaveLength(0);
    expect(await audit('subtype=token-issue,consent,launch,logout', other).then((evs) => evs.filter((ev) => clientOf(ev) === app.clientId))).toHaveLength(0);
    expect((await t.api.get(`${t.path}/AuditEvent/${mine[0].id}`)).status).toBe(200);
    expect((await other.api.get(`${other.path}/AuditEvent/${mine[0].id}`)).status).toBe(404);
  });
});

describe('a failing audit store', () => {
  it('does not fail a sign-in or a token request: the failure is logged and the answer goes out', async () => {
    await doctor('aud-nostore');
    const sink = server.deps.audit;
    let refused = 0;
    server.deps.audit = { record: () => (refused++, Promise.reject(new Error('audit store down'))), settle: () => Promise.resolve(), close: () => Promise.resolve() };
    try {
      const browser = new Browser(server.origin);
      const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope: 'openid user/Patient.rs', username: 'aud-nostore' });
      const res = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
      expect(res.status).toBe(200);
      expect(res.body.access_token).toEqual(expect.any(String));
    } finally {
      server.deps.audit = sink;
    }
    expect(refused).toBeGreaterThanOrEqual(3); // sign-in, consent, token issue were each attempted
  });
});
