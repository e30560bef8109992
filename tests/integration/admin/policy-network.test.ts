// Issue 11, security policies: a tenant's IP allow-list (CIDR, IPv4 and IPv6) on every FHIR API call, on sign-in and
// on token issue, behind trusted proxies (X-Forwarded-For believed from TRUSTED_PROXIES only), and the refusal of a
// malformed CIDR. Another tenant, without a list, watches: its calls from the same addresses are unaffected.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { proxyTrust, validateSecurityPolicy } from '../../../src/tenancy/security-policy.js';
import { authorizeUrl, errorText, formAction, newApp, newUser, PASSWORD, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { newTenant, onServer, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { backendToken, BrowserAt, setSettings, signInForTokens } from './policy-helpers.js';

let server: TestServer;
let guarded: TestTenant;
let watcher: TestTenant;

const INSIDE = '203.0.113.7';
const OUTSIDE = '198.51.100.20';

beforeAll(async () => {
  // the test client talks to 127.0.0.1: that is the "proxy", and X-Forwarded-For names the client behind it
  server = await startServer({ trustedProxies: ['127.0.0.1/32'] });
  guarded = await newTenant(server, 'net');
  watcher = await newTenant(server, 'watch');
  await setSettings(server, guarded.slug, { ipAllowList: ['203.0.113.0/24', '2001:db8:abcd::/48', '::ffff:192.0.2.0/120'] });
});
afterAll(async () => server.close());

const from = (t: TestTenant, address?: string) => {
  const r = t.api.get(`${t.path}/Patient`);
  return address ? r.set('X-Forwarded-For', address) : r;
};

describe('IP allow-list on the FHIR API', () => {
  it('admits an IPv4 address inside a block and refuses one outside with 403 IP_NOT_ALLOWED', async () => {
    expect((await from(guarded, INSIDE)).status).toBe(200);
    const res = await from(guarded, OUTSIDE);
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'forbidden', details: { coding: [{ code: 'IP_NOT_ALLOWED' }] } });
    expect(res.body.issue[0].diagnostics).toContain(OUTSIDE);
    // the proxy itself (no X-Forwarded-For) is not in the list either
    expect((await from(guarded)).status).toBe(403);
    // writes are refused the same way, before anything is stored
    const post = await guarded.api.post(`${guarded.path}/Patient`).set('X-Forwarded-For', OUTSIDE).set('Content-Type', 'application/fhir+json').send({ resourceType: 'Patient' });
    expect(post.status).toBe(403);
  });

  it('admits IPv6 addresses inside an IPv6 block, and IPv4-mapped IPv6 against a mapped block', async () => {
    expect((await from(guarded, '2001:db8:abcd:12::1')).status).toBe(200);
    expect((await from(guarded, '2001:db8:abce::1')).status).toBe(403);
    // ::ffff:192.0.2.0/120 is 192.0.2.0/24: both spellings of an address in it match
    expect((await from(guarded, '::ffff:192.0.2.44')).status).toBe(200);
    expect((await from(guarded, '192.0.2.45')).status).toBe(200);
    expect((await from(guarded, '192.0.3.1')).status).toBe(403);
  });

  it('answers discovery (metadata) from anywhere: it holds nothing of the tenant', async () => {
    const res = await request(server.origin).get(`${guarded.path}/metadata`).set('X-Forwarded-For', OUTSIDE);
    expect(res.status).toBe(200);
  });

  it('leaves the other tenant alone: its calls from the same outside address pass, and its token cannot reach the guarded tenant', async () => {
    expect((await from(watcher, OUTSIDE)).status).toBe(200);
    const res = await watcher.api.get(`${guarded.path}/Patient`).set('X-Forwarded-For', INSIDE);
    expect(res.status).toBe(401);
  });
});

describe('trusted proxies', () => {
  it('ignores X-Forwarded-For from a peer that is not a trusted proxy (a forged header does not get past the list)', async () => {
    const direct = await startServer(); // no TRUSTED_PROXIES, no TRUST_PROXY: the TCP peer is the client
    try {
      const api = await onServer(direct, guarded);
      const res = await api.get(`${guarded.path}/Patient`).set('X-Forwarded-For', INSIDE);
      expect(res.status).toBe(403);
      expect(res.body.issue[0].details.coding[0].code).toBe('IP_NOT_ALLOWED');
      expect(res.body.issue[0].diagnostics).toContain('127.0.0.1');
    } finally {
      await direct.close();
    }
  });

  it('reads X-Forwarded-For only as far back as the hops are trusted: a forged first entry is not the client', async () => {
    // the client sent "X-Forwarded-For: 203.0.113.7"; the proxy appended the address it really came from
    const res = await from(guarded, `${INSIDE}, ${OUTSIDE}`);
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toContain(OUTSIDE);
  });

  it('refuses a malformed TRUSTED_PROXIES entry at start, naming it; TRUST_PROXY alone still trusts every peer', () => {
    expect(() => proxyTrust({ trustedProxies: ['10.0.0.0/8', '10.0.0.0/40'], trustProxy: false })).toThrow(/TRUSTED_PROXIES\[1\] "10\.0\.0\.0\/40"/);
    expect(proxyTrust({ trustedProxies: [], trustProxy: true })).toBe(true);
    expect(proxyTrust({ trustedProxies: [], trustProxy: false })).toBe(false);
    const trust = proxyTrust({ trustedProxies: ['10.0.0.0/8', '::1'], trustProxy: true }) as (a: string) => boolean;
    expect([trust('10.1.2.3'), trust('::ffff:10.1.2.3'), trust('::1'), trust('11.0.0.1'), trust('not-an-address')]).toEqual([true, true, true, false, false]);
  });
});

describe('validateSecurityPolicy', () => {
  it('names every malformed CIDR entry with a clear reason', () => {
    const problems = validateSecurityPolicy({ ipAllowList: ['10.0.0.0/8', '10.0.0.0/33', 'intranet', '2001:db8::/129', '010.0.0.1', 'fe80::1%eth0', '192.0.2.1', '2001:db8::/32'] });
    expect(problems).toEqual([
      'ipAllowList[1] "10.0.0.0/33" has prefix /33: an IPv4 prefix is /0 to /32',
      'ipAllowList[2] "intranet" is not an IPv4 or IPv6 address or CIDR block (e.g. 203.0.113.0/24, 2001:db8::/32)',
      'ipAllowList[3] "2001:db8::/129" has prefix /129: an IPv6 prefix is /0 to /128',
      'ipAllowList[4] "010.0.0.1" is not an IPv4 or IPv6 address or CIDR block (e.g. 203.0.113.0/24, 2001:db8::/32)',
      'ipAllowList[5] "fe80::1%eth0" is not an IPv4 or IPv6 address or CIDR block (e.g. 203.0.113.0/24, 2001:db8::/32)',
    ]);
    expect(validateSecurityPolicy({ ipAllowList: 'ip' as never })).toEqual(['ipAllowList must be a list of CIDR blocks']);
    expect(validateSecurityPolicy({ ipAllowList: ['0.0.0.0/0', '::/0'], idleTimeoutMinutes: 5, passwordMinLength: 14, breachedPasswordCheck: true, maxTokenLifetimeSeconds: 600 })).toEqual([]);
    expect(validateSecurityPolicy({ ipAllowList: null, idleTimeoutMinutes: null } as never)).toEqual([]);
  });

  it('refuses out-of-range values of the other security settings', () => {
    expect(validateSecurityPolicy({ idleTimeoutMinutes: 0, passwordMinLength: 8, breachedPasswordCheck: 'yes' as never, maxTokenLifetimeSeconds: 10 })).toEqual([
      'idleTimeoutMinutes must be a positive number of minutes (the server caps it at AUTH_SESSION_IDLE_MINUTES)',
      "passwordMinLength must be a whole number from 12 (the server's minimum) to 256",
      'breachedPasswordCheck must be true or false',
      'maxTokenLifetimeSeconds must be a whole number of seconds, at least 30 (the server caps it at its own token lifetimes)',
    ]);
  });
});

describe('IP allow-list on sign-in and token issue', () => {
  let app: { clientId: string };
  let watcherApp: { clientId: string };
  beforeAll(async () => {
    app = await newApp(server, guarded.slug);
    watcherApp = await newApp(server, watcher.slug);
    await newUser(server, guarded.slug, 'net-doc', 'practitioner');
    await newUser(server, watcher.slug, 'watch-doc', 'practitioner');
  });

  it('sends an authorization request from outside the list back to the app with access_denied, before any sign-in page', async () => {
    const browser = new BrowserAt(server.origin, OUTSIDE);
    const step = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: guarded.base, scope: 'user/Patient.rs' }));
    expect(step.leftTo).toBeDefined();
    const back = new URL(step.leftTo!);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('error_description')).toContain('network address (198.51.100.20)');
  });

  it('refuses the sign-in form posted from outside the list (403 page), and signs in from inside', async () => {
    const browser = new BrowserAt(server.origin, INSIDE);
    const login = await browser.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: guarded.base, scope: 'user/Patient.rs' }));
    expect(login.html).toContain('name="password"');
    browser.address = OUTSIDE;
    const refused = await browser.follow(formAction(login.html!, '/login'), { form: { username: 'net-doc', password: PASSWORD } });
    expect(refused.res.status).toBe(403);
    expect(errorText(refused.html!)).toContain('does not allow sign-in or tokens from your network address (198.51.100.20)');
    browser.address = INSIDE;
    const signedIn = await browser.follow(formAction(login.html!, '/login'), { form: { username: 'net-doc', password: PASSWORD } });
    expect(signedIn.html).toContain('Allow access?');
  });

  it('refuses the code exchange and refresh from outside; a refused refresh token still works from inside', async () => {
    const browser = new BrowserAt(server.origin, INSIDE);
    const tok = await signInForTokens(server, browser, { clientId: app.clientId, aud: guarded.base, scope: 'offline_access user/Patient.rs', username: 'net-doc' });
    expect(tok.status).toBe(200);
    const refresh = { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: app.clientId };
    const outside = await tokenRequest(server.origin, refresh, { 'x-forwarded-for': OUTSIDE });
    expect(outside.status).toBe(400);
    expect(outside.body).toMatchObject({ error: 'access_denied' });
    expect(outside.body.error_description).toContain('198.51.100.20');
    expect((await tokenRequest(server.origin, refresh, { 'x-forwarded-for': INSIDE })).status).toBe(200);

    // an authorization code carried outside is refused at the token endpoint
    const second = new BrowserAt(server.origin, INSIDE);
    const { redirect, pkce } = await runAuthorization(second, server.origin, { clientId: app.clientId, aud: guarded.base, scope: 'user/Patient.rs', username: 'net-doc' });
    const exchange = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId }, { 'x-forwarded-for': OUTSIDE });
    expect(exchange.status).toBe(400);
    expect(exchange.body.error).toBe('access_denied');
  });

  it('refuses client_credentials from outside the list and issues from inside', async () => {
    const outside = await backendToken(server, guarded.clientId, OUTSIDE);
    expect(outside.status).toBe(400);
    expect(outside.body).toMatchObject({ error: 'access_denied' });
    expect(outside.body.error_description).toContain('198.51.100.20');
    expect(outside.body.access_token).toBeUndefined();
    const inside = await backendToken(server, guarded.clientId, '2001:db8:abcd::99');
    expect(inside.status).toBe(200);
  });

  it('signs the other tenant\'s users in and issues its tokens from the same outside address', async () => {
    const browser = new BrowserAt(server.origin, OUTSIDE);
    const tok = await signInForTokens(server, browser, { clientId: watcherApp.clientId, aud: watcher.base, scope: 'user/Patient.rs', username: 'watch-doc' });
    expect(tok.status).toBe(200);
    expect((await backendToken(server, watcher.clientId, OUTSIDE)).status).toBe(200);
  });
});
