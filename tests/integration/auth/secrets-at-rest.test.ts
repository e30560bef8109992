// Secrets at rest (issue 8): the raw columns hold no usable secret (signing keys, cookie key, client secrets and TOTP
// secrets are sealed; oidc-provider artifacts are keyed by a hash of their bearer value), the application role may
// not write keys, and everything still works end to end: TOTP sign-in, client_secret_basic, refresh, verification.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { setTotp } from '../../../src/auth/admin.js';
import { generateSigningKey } from '../../../src/auth/keys.js';
import { currentStep, totpCode } from '../../../src/auth/totp.js';
import { allKeys, sealStoredKeys } from '../../../src/store/auth-keys.js';
import { findClient, findPayload, sealStoredClientSecrets, upsertPayload } from '../../../src/store/auth-payloads.js';
import { findUserByName, sealStoredTotpSecrets } from '../../../src/store/auth-users.js';
import { authorizeUrl, Browser, formAction, hiddenValue, newApp, newUser, offeredScopes, pkce, REDIRECT, tokenRequest, PASSWORD } from '../../helpers/oauth.js';
import { authed, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let conf: { clientId: string; clientSecret?: string };
let totpSecret: string;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
/** Raw rows as the owner (admin) connection reads them: what a database dump or a stolen backup shows. */
const adminRows = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await server.deps.db.admin().query<R>(sql, params)).rows;
const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`${conf.clientId}:${secret}`).toString('base64')}` });

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sealed');
  conf = await newApp(server, t.slug, { kind: 'confidential', scope: 'openid offline_access user/Patient.rs' });
  await newUser(server, t.slug, 'dr-sealed', 'practitioner');
  totpSecret = (await setTotp(server.deps, t.slug, 'dr-sealed', true, 'test')).secret!;
});
afterAll(async () => server.close());

let totpUses = 0;

/** authorize -> password -> TOTP code -> consent, as a browser; returns the code, the PKCE verifier and the browser. */
async function signInWithTotp(scope: string) {
  const k = pkce();
  const browser = new Browser(server.origin);
  const first = await browser.follow(authorizeUrl(server.origin, { clientId: conf.clientId, aud: t.base, scope, pkce: k }));
  const pw = await browser.follow(formAction(first.html!, '/login'), { form: { username: 'dr-sealed', password: PASSWORD } });
  expect(pw.html).toContain('Enter the 6-digit code');
  // each code is accepted once: the next sign-in uses the next step's (within the accepted clock drift)
  const otp = await browser.follow(formAction(pw.html!, '/totp'), { form: { ticket: hiddenValue(pw.html!, 'ticket')!, code: totpCode(totpSecret, currentStep() + totpUses++) } });
  expect(otp.html).toContain('Allow access?');
  const done = await browser.follow(formAction(otp.html!, '/consent'), { form: { scope: offeredScopes(otp.html!), decision: 'allow' } });
  const redirect = new URL(done.leftTo!);
  return { code: redirect.searchParams.get('code')!, verifier: k.verifier, browser };
}

/** The browser's cookie jar (the session cookie's value is the Session's id). */
const cookiesOf = (b: Browser) => (b as unknown as { cookies: Map<string, string> }).cookies;

describe('secrets at rest', () => {
  it('sign-in with TOTP, client_secret_basic, the refresh grant and token verification work with sealed secrets', async () => {
    const { code, verifier } = await signInWithTotp('openid offline_access user/Patient.rs');
    const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    expect((await tokenRequest(server.origin, form, basic('not-the-secret'))).body.error).toBe('invalid_client');
    const tok = await tokenRequest(server.origin, form, basic(conf.clientSecret!));
    expect(tok.status).toBe(200);
    expect(tok.body.refresh_token).toEqual(expect.any(String));
    expect((await authed(server.origin, tok.body.access_token).get(`${t.path}/Patient`)).status).toBe(200);
    const refreshed = await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token }, basic(conf.clientSecret!));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(tok.body.refresh_token); // rotated
    expect((await authed(server.origin, refreshed.body.access_token).get(`${t.path}/Patient`)).status).toBe(200);
    // the new one works again; the used one is refused (rotation: consumed is found through its hash too)
    expect((await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token }, basic(conf.clientSecret!))).status).toBe(200);
    expect((await tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token }, basic(conf.clientSecret!))).body.error).toBe('invalid_grant');
  });

  it('oidc_payload holds no issued refresh token, authorization code or session cookie: neither as an id nor inside a payload', async () => {
    const { code, verifier, browser } = await signInWithTotp('openid offline_access user/Patient.rs');
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(conf.clientSecret!));
    const refresh = tok.body.refresh_token as string;
    const session = cookiesOf(browser).get('tenfhir_session')!;
    expect(session).toEqual(expect.any(String));
    for (const bearer of [refresh, code, session]) {
      expect(await adminRows('SELECT model FROM oidc_payload WHERE id = $1', [bearer])).toEqual([]);
      expect(await adminRows("SELECT model FROM oidc_payload WHERE strpos(payload::text, $1) > 0", [bearer])).toEqual([]);
    }
    // stored under the hash, without its own id inside (`jti`), and oidc-provider still finds it by the token
    const rows = await adminRows<{ model: string; payload: Record<string, unknown> }>('SELECT model, payload FROM oidc_payload WHERE id = $1', [sha256(refresh)]);
    expect(rows.map((r) => r.model)).toEqual(['RefreshToken']);
    expect(rows[0].payload.jti).toBeUndefined();
    expect((await adminRows('SELECT model FROM oidc_payload WHERE id = $1', [sha256(code)])).map((r) => r.model)).toEqual(['AuthorizationCode']);
    expect((await adminRows('SELECT model FROM oidc_payload WHERE id = $1', [sha256(session)])).map((r) => r.model)).toEqual(['Session']);
    expect((await findPayload(server.deps.db, 'RefreshToken', refresh))?.jti).toBe(refresh);
  });

  it("an Interaction's copy of the session cookie and its own return URL are sealed, and read back as written", async () => {
    const id = randomBytes(16).toString('base64url');
    const cookie = randomBytes(16).toString('base64url');
    const payload = { iat: 1, exp: 2, kind: 'Interaction', jti: id, returnTo: `${server.origin}/auth/authorize/${id}`, session: { accountId: 'x|y', uid: 'u1', cookie } };
    await upsertPayload(server.deps.db, 'Interaction', id, payload, 60);
    const raw = JSON.stringify(await adminRows('SELECT id, payload FROM oidc_payload WHERE id = $1', [sha256(id)]));
    expect(raw).not.toContain(id);
    expect(raw).not.toContain(cookie);
    expect(raw).toContain('"uid":"u1"'); // the rest stays readable
    expect(await findPayload(server.deps.db, 'Interaction', id)).toEqual(payload);
  });

  it('the client secret and the TOTP secret are stored sealed, and read back in clear', async () => {
    const [client] = await adminRows<{ secret: string }>("SELECT metadata->>'client_secret' AS secret FROM oauth_client WHERE client_id = $1", [conf.clientId]);
    expect(client.secret).toMatch(/^v1:/);
    expect(client.secret).not.toContain(conf.clientSecret!);
    expect((await findClient(server.deps.db, conf.clientId))?.metadata.client_secret).toBe(conf.clientSecret);
    // app_user is under FORCE ROW LEVEL SECURITY: read as the app role bound to the tenant (the raw column as stored)
    const users = await server.deps.db.withTenant(t.slug, (q) => q.query<{ totp_secret: string }>("SELECT totp_secret FROM app_user WHERE tenant_id = $1 AND username = 'dr-sealed'", [t.slug]));
    expect(users.rows[0].totp_secret).toMatch(/^v1:/);
    expect(users.rows[0].totp_secret).not.toContain(totpSecret);
    expect((await findUserByName(server.deps.db, t.slug, 'dr-sealed'))?.totpSecret).toBe(totpSecret);
  });

  it('signing keys and the cookie key are stored sealed: no private member ("d") in any signer, no clear cookie key', async () => {
    const signers = await adminRows<{ kid: string; private_jwk: Record<string, unknown> }>('SELECT kid, private_jwk FROM signing_key WHERE superseded_at IS NULL');
    expect(signers.map((k) => k.kid)).toContain(server.deps.auth.keys.activeKid());
    for (const k of signers) {
      expect(Object.keys(k.private_jwk)).toEqual(['enc']);
      expect(String(k.private_jwk.enc)).toMatch(/^v1:/);
      expect(JSON.stringify(k.private_jwk)).not.toContain('"d":');
    }
    const [cookie] = await adminRows<{ value: string }>("SELECT value FROM auth_secret WHERE name = 'cookie-key-1'");
    expect(cookie.value).toMatch(/^v1:/);
    expect(cookie.value).not.toContain(server.deps.auth.cookieKeys[0]);
  });

  it('a sealed value moved to another row does not open there (each is bound to its place)', async () => {
    const other = await newApp(server, t.slug, { kind: 'confidential' });
    await server.deps.db.platform((q) =>
      q.query("UPDATE oauth_client SET metadata = jsonb_set(metadata, '{client_secret}', (SELECT metadata->'client_secret' FROM oauth_client WHERE client_id = $2)) WHERE client_id = $1", [other.clientId, conf.clientId]),
    );
    await expect(findClient(server.deps.db, other.clientId)).rejects.toThrow(/cannot be decrypted/);
    await server.deps.db.platform((q) => q.query('DELETE FROM oauth_client WHERE client_id = $1', [other.clientId]));
  });

  it('secrets stored in clear before encryption at rest are still read, and sealed by the pass the server runs at start', async () => {
    // a retired key (never signs or verifies), a client and a TOTP secret as an earlier version wrote them
    const key = generateSigningKey();
    await server.deps.db.admin().query("INSERT INTO signing_key (kid, alg, private_jwk, public_jwk, superseded_at, retire_at) VALUES ($1, 'RS256', $2, $3, now(), now())", [key.kid, key.privateJwk, key.publicJwk]);
    const legacy = await newApp(server, t.slug, { kind: 'confidential' });
    await server.deps.db.platform((q) => q.query("UPDATE oauth_client SET metadata = jsonb_set(metadata, '{client_secret}', to_jsonb($2::text)) WHERE client_id = $1", [legacy.clientId, legacy.clientSecret]));
    await newUser(server, t.slug, 'dr-legacy', 'practitioner');
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await server.deps.db.withTenant(t.slug, (q) => q.query("UPDATE app_user SET totp_secret = $2 WHERE tenant_id = $1 AND username = 'dr-legacy'", [t.slug, secret]));
    expect((await allKeys(server.deps.db)).find((k) => k.kid === key.kid)?.privateJwk).toEqual(key.privateJwk);
    expect((await findClient(server.deps.db, legacy.clientId))?.metadata.client_secret).toBe(legacy.clientSecret);
    expect((await findUserByName(server.deps.db, t.slug, 'dr-legacy'))?.totpSecret).toBe(secret);

    expect(await sealStoredKeys(server.deps.db)).toBeGreaterThanOrEqual(1);
    expect(await sealStoredClientSecrets(server.deps.db)).toBeGreaterThanOrEqual(1);
    expect(await sealStoredTotpSecrets(server.deps.db, t.slug)).toBe(1);

    const [k] = await adminRows<{ private_jwk: Record<string, unknown> }>('SELECT private_jwk FROM signing_key WHERE kid = $1', [key.kid]);
    expect(Object.keys(k.private_jwk)).toEqual(['enc']);
    expect((await allKeys(server.deps.db)).find((x) => x.kid === key.kid)?.privateJwk).toEqual(key.privateJwk);
    const [c] = await adminRows<{ secret: string }>("SELECT metadata->>'client_secret' AS secret FROM oauth_client WHERE client_id = $1", [legacy.clientId]);
    expect(c.secret).toMatch(/^v1:/);
    expect((await findClient(server.deps.db, legacy.clientId))?.metadata.client_secret).toBe(legacy.clientSecret);
    expect((await findUserByName(server.deps.db, t.slug, 'dr-legacy'))?.totpSecret).toBe(secret);
  });
});

describe('the application role (fhir_app) on key tables', () => {
  it('may not insert, update or delete signing keys or server secrets', async () => {
    const key = generateSigningKey();
    const asApp = (sql: string, params: unknown[] = []) => server.deps.db.platform((q) => q.query(sql, params));
    await expect(asApp('INSERT INTO signing_key (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)', [key.kid, key.alg, key.privateJwk, key.publicJwk])).rejects.toThrow(/permission denied/);
    // (privileges are checked whether or not a row matches: no real key is put at risk if they were not)
    await expect(asApp("UPDATE signing_key SET retire_at = now() WHERE kid = 'no-such-kid'")).rejects.toThrow(/permission denied/);
    await expect(asApp("DELETE FROM signing_key WHERE kid = 'no-such-kid'")).rejects.toThrow(/permission denied/);
    await expect(asApp("INSERT INTO auth_secret (name, value) VALUES ('attacker', 'x')")).rejects.toThrow(/permission denied/);
    await expect(asApp("UPDATE auth_secret SET value = 'x' WHERE name = 'cookie-key-1'")).rejects.toThrow(/permission denied/);
    // the keys are untouched
    expect((await allKeys(server.deps.db)).some((k) => k.kid === server.deps.auth.keys.activeKid() && !k.retireAt)).toBe(true);
  });

  it('reads private keys as ciphertext only', async () => {
    const r = await server.deps.db.platform((q) =>
      q.query<{ app: boolean; private_jwk: Record<string, unknown> }>(
        "SELECT pg_has_role(current_user, 'fhir_app', 'USAGE') AND NOT pg_has_role(current_user, 'postgres', 'USAGE') AS app, private_jwk FROM signing_key WHERE kid = $1",
        [server.deps.auth.keys.activeKid()],
      ),
    );
    expect(r.rows[0].app).toBe(true);
    expect(Object.keys(r.rows[0].private_jwk)).toEqual(['enc']);
    expect(String(r.rows[0].private_jwk.enc)).toMatch(/^v1:[A-Za-z0-9_-]+$/);
  });
});
