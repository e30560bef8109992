// SMART management_endpoint (conformance.html): a user sees the apps they authorized and revokes them, over the
// server-rendered pages under /auth/manage/{tenant}; nobody else's grants are visible or revocable.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Browser, formAction, hiddenValue, newApp, newUser, PASSWORD, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let app: { clientId: string };
let patient: Record<string, any>;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'mgmt');
  other = await newTenant(server, 'mgmt-other');
  app = await newApp(server, t.slug, { name: 'Vitals Viewer' });
  patient = await create(t, { resourceType: 'Patient', name: [{ given: ['Ada'], family: 'Lovelace' }] });
  await newUser(server, t.slug, 'mgmt-doc', 'practitioner');
  await newUser(server, t.slug, 'mgmt-nurse', 'practitioner');
  await newUser(server, t.slug, 'mgmt-wild', 'practitioner');
});
afterAll(() => server.close());

/** An authorization with offline_access; returns its refresh token. */
async function authorize(username: string): Promise<string> {
  const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, {
    clientId: app.clientId, aud: t.base, scope: 'launch/patient patient/Patient.rs offline_access', username, pickPatient: patient.id,
  });
  const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
  expect(tok.status).toBe(200);
  return tok.body.refresh_token;
}

async function signIn(b: Browser, slug: string, username: string, password = PASSWORD) {
  const first = await b.follow(`/auth/manage/${slug}`);
  return b.follow(formAction(first.html!, '/login'), { form: { username, password } });
}

const refresh = (token: string) => tokenRequest(server.origin, { grant_type: 'refresh_token', refresh_token: token, client_id: app.clientId });

describe('connected apps (SMART management_endpoint)', () => {
  it("shows a staff member's patient/*.rs grant as one line, the kinds of records on demand", async () => {
    const { redirect, pkce } = await runAuthorization(new Browser(server.origin), server.origin, {
      clientId: app.clientId, aud: t.base, scope: 'launch/patient patient/*.rs', username: 'mgmt-wild', pickPatient: patient.id,
    });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    expect(tok.body.scope.split(' ').length).toBeGreaterThan(10); // the role ceiling grants it type by type
    const page = await signIn(new Browser(server.origin), t.slug, 'mgmt-wild');
    expect(page.html).toMatch(/Read and search \d+ kinds of records of Ada Lovelace/);
    expect(page.html!.match(/Which kinds/g)).toHaveLength(1);
    expect(page.html).toContain('observations');
    expect(page.html).not.toMatch(/<li>Read and search observations of Ada Lovelace<\/li>/);
  });

  it('is advertised in the tenant discovery document', async () => {
    const res = await fetch(`${t.base}/.well-known/smart-configuration`);
    expect(((await res.json()) as { management_endpoint: string }).management_endpoint).toBe(`${server.origin}/auth/manage/${t.slug}`);
  });

  it('lists the apps a user authorized, for which patient and with what, and revoking one ends its refresh token', async () => {
    const mine = await authorize('mgmt-doc');
    const theirs = await authorize('mgmt-nurse');
    const b = new Browser(server.origin);
    const page = await signIn(b, t.slug, 'mgmt-doc');
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('Your connected apps');
    expect(page.html).toContain('Vitals Viewer');
    expect(page.html).toContain('Ada Lovelace');
    expect(page.html!.match(/Revoke access/g)).toHaveLength(1); // the nurse's grant is not listed
    const grant = hiddenValue(page.html!, 'grant')!;
    const csrf = hiddenValue(page.html!, 'csrf')!;
    // a form without the page's token is refused
    const forged = await b.follow(`/auth/manage/${t.slug}/revoke`, { form: { grant } });
    expect(forged.res.status).toBe(403);
    expect((await refresh(mine)).status).toBe(200);
    const revoked = await b.follow(`/auth/manage/${t.slug}/revoke`, { form: { grant, csrf } });
    expect(revoked.res.status).toBe(200);
    expect(revoked.html).toContain('Access for Vitals Viewer revoked.');
    expect(revoked.html).toContain('No app has access to your data.');
    // the rotated refresh token of the first refresh is gone too: the grant is revoked
    const after = await refresh(mine);
    expect(after.status).toBe(400);
    expect(after.body.error).toBe('invalid_grant');
    expect((await refresh(theirs)).status).toBe(200);
  });

  it("cannot revoke someone else's grant, and a session does not carry over to another tenant", async () => {
    await authorize('mgmt-nurse');
    const nurse = new Browser(server.origin);
    const nursePage = await signIn(nurse, t.slug, 'mgmt-nurse');
    const nurseGrant = hiddenValue(nursePage.html!, 'grant')!;
    const doc = new Browser(server.origin);
    const docPage = await signIn(doc, t.slug, 'mgmt-doc');
    const csrf = hiddenValue(docPage.html!, 'csrf')!;
    const res = await doc.follow(`/auth/manage/${t.slug}/revoke`, { form: { grant: nurseGrant, csrf } });
    expect(res.res.status).toBe(404);
    expect((await nurse.follow(`/auth/manage/${t.slug}`)).html).toContain('Revoke access');
    // signed in at one tenant's page: another tenant's page asks to sign in
    expect((await doc.follow(`/auth/manage/${other.slug}`)).html).toContain('Sign in to see which apps');
  });

  it('refuses a wrong password (401) and answers 404 for an unknown organization', async () => {
    const b = new Browser(server.origin);
    const wrong = await signIn(b, t.slug, 'mgmt-doc', 'not the password at all');
    expect(wrong.res.status).toBe(401);
    expect(wrong.html).toContain('not correct');
    expect((await b.follow('/auth/manage/no-such-tenant')).res.status).toBe(404);
  });
});
