// The consent page's lines (issue 9): a requested wildcard is one line with its kinds of records on demand, whatever
// the role ceiling splits it into, and the page never offers a scope the FHIR API then refuses.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Browser, newApp, newUser, offeredScopes, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let app: { clientId: string };
let patient: Record<string, any>;

/** Types a staff `patient/*.rs` must never reach: the directory lies outside every patient's compartment. */
const DIRECTORY = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Medication'];

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'consent');
  app = await newApp(server, t.slug);
  const doc = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Ng', given: ['Ann'] }] });
  patient = await create(t, { resourceType: 'Patient', name: [{ family: 'Smith', given: ['Jo'] }], birthDate: '1980-01-02' });
  await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patient.id}` } });
  await newUser(server, t.slug, 'dr-ng', 'practitioner', `Practitioner/${doc.id}`, 'Dr Ann Ng');
  await newUser(server, t.slug, 'admin-ng', 'tenant-admin');
  await newUser(server, t.slug, 'jo-smith', 'patient', `Patient/${patient.id}`);
});
afterAll(async () => server.close());

async function consent(username: string, scope: string, untick: string[] = []) {
  const r = await runAuthorization(new Browser(server.origin), server.origin, { clientId: app.clientId, aud: t.base, scope, username, pickPatient: patient.id, untick });
  const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: r.redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: r.pkce.verifier, client_id: app.clientId });
  expect(tok.status).toBe(200);
  return { html: r.consentHtml!, scopes: String(tok.body.scope).split(' '), token: String(tok.body.access_token) };
}

describe('consent page lines (scopes-and-launch-context.html, issue 9)', () => {
  it("a practitioner's patient/*.rs is one line, its kinds of records on demand, and every kind it grants can be read", async () => {
    const { html, scopes, token } = await consent('dr-ng', 'launch/patient openid patient/*.rs');
    expect(offeredScopes(html)).toEqual(['launch/patient', 'openid', 'patient/*.rs']);
    expect(html).toMatch(/Read and search 21 kinds of records of Jo Smith, born 1980-01-02/);
    expect(html).toMatch(/<details class="note"><summary>Which kinds<\/summary>[^<]*episodes of care[^<]*<\/details>/);
    expect(html).not.toMatch(/episode of cares|organizations of|practitioners of/);
    // Allow is near the top: three lines before it, not 26
    expect(html.indexOf('value="allow"') - html.indexOf('Untick anything')).toBeLessThan(2500);
    const resource = scopes.filter((s) => s.startsWith('patient/'));
    expect(resource).toHaveLength(21);
    for (const type of DIRECTORY) expect(resource).not.toContain(`patient/${type}.rs`);
    const api = authed(server.origin, token);
    for (const s of resource) {
      const type = /^patient\/(\w+)\./.exec(s)![1];
      expect([type, (await api.get(`${t.path}/${type}`)).status]).toEqual([type, 200]);
    }
    expect((await api.get(`${t.path}/Observation`)).body.entry).toHaveLength(1);
    expect((await api.get(`${t.path}/Practitioner`)).status).toBe(403);
  });

  it('unticking the wildcard line grants none of its kinds', async () => {
    const { scopes } = await consent('dr-ng', 'launch/patient openid patient/*.rs patient/Observation.rs', ['patient/*.rs']);
    expect(scopes.filter((s) => s.startsWith('patient/'))).toEqual([]);
  });

  it('a type outside the patient compartment that the app names is not offered, and the page says why', async () => {
    const { html, scopes } = await consent('dr-ng', 'launch/patient patient/Practitioner.rs patient/Observation.rs');
    expect(offeredScopes(html)).toEqual(['launch/patient', 'patient/Observation.rs']);
    expect(html).toMatch(/<code>patient\/Practitioner\.rs<\/code>: the FHIR API would refuse it: Practitioner is outside the patient compartment/);
    expect(scopes).not.toContain('patient/Practitioner.rs');
  });

  it("a wildcard the role ceiling keeps whole is one plain line (tenant admin, patient user)", async () => {
    const admin = await consent('admin-ng', 'launch/patient patient/*.rs');
    expect(offeredScopes(admin.html)).toEqual(['launch/patient', 'patient/*.rs']);
    expect(admin.html).toContain('Read and search all kinds of records of Jo Smith, born 1980-01-02');
    expect(admin.html).not.toContain('<details');
    const own = await consent('jo-smith', 'launch/patient patient/*.rs');
    expect(offeredScopes(own.html)).toEqual(['launch/patient', 'patient/*.rs']);
    expect(own.scopes).toContain('patient/*.rs');
  });
});
