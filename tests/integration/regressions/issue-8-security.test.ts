// Issue 8, "Security findings": each finding as an attacker would try it, through real tokens over HTTP. Findings 5
// (embedded socket) and 6 (SSRF) are covered by tests/integration/process/embedded-safety.test.ts and
// tests/integration/platform/outbound.test.ts; the sign-in throttle and secrets at rest by the auth suites.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { ASSERTION_TYPE, authorizeUrl, Browser, clientAssertion, formAction, newUser, OBSERVATION_CATEGORY, offeredScopes, PASSWORD, pkce, serverWithApp, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, testBackendKey, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

const ids: Record<string, string> = {};
let server: TestServer;
let t: TestTenant;
let app: { clientId: string };

beforeAll(async () => {
  ({ server, t, app } = await serverWithApp('sec', 'openid fhirUser launch launch/patient user/*.cruds patient/*.cruds'));
  ids.gp = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Gp' }] })).id;
  ids.me = (
    await create(t, {
      resourceType: 'Patient',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Jane Mine, 1 Hidden Lane</div>' },
      name: [{ family: 'Mine', given: ['Jane'] }],
      gender: 'female',
      birthDate: '1970-01-01',
      address: [{ line: ['1 Hidden Lane'], city: 'Secretville', postalCode: '12345' }],
      telecom: [{ system: 'phone', value: '555-0100' }],
      generalPractitioner: [{ reference: `Practitioner/${ids.gp}` }],
    })
  ).id;
  ids.you = (await create(t, { resourceType: 'Patient', name: [{ family: 'Yours' }] })).id;
  const obs = (subject: string, cat: string) => ({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: cat }] }], code: { text: cat }, subject: { reference: `Patient/${subject}` } });
  ids.myLab = (await create(t, obs(ids.me, 'laboratory'))).id;
  ids.myVital = (await create(t, obs(ids.me, 'vital-signs'))).id;
  ids.order = (await create(t, { resourceType: 'ServiceRequest', status: 'active', intent: 'order', code: { text: 'CBC' }, subject: { reference: `Patient/${ids.me}` } })).id;
  const appt = (who: string) => ({ resourceType: 'Appointment', status: 'booked', participant: [{ actor: { reference: `Patient/${who}` }, status: 'accepted' }] });
  ids.myAppt = (await create(t, appt(ids.me))).id;
  ids.yourAppt = (await create(t, appt(ids.you))).id;
  await newUser(server, t.slug, 'sec-lab', 'lab-technician');
  await newUser(server, t.slug, 'sec-admin', 'tenant-admin');
  await newUser(server, t.slug, 'sec-desk', 'receptionist');
  await newUser(server, t.slug, 'sec-pat', 'patient', `Patient/${ids.me}`);
});
afterAll(() => server.close());

async function as(username: string, scope: string, patient?: string): Promise<{ api: Api; token: string }> {
  const token = await tokenFor(server, t, { clientId: app.clientId, username, scope, ...(patient ? { patient } : {}) });
  return { api: authed(server.origin, token), token };
}
const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;
const entries = (bundle: any, mode?: string) => ((bundle.entry ?? []) as any[]).filter((e) => !mode || e.search?.mode === mode).map((e) => e.resource);
const HIDDEN = ['address', 'telecom', 'generalPractitioner', 'text'];

async function postJson(path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('finding 1: initial access tokens are capped by their caller', () => {
  it('a backend client cannot obtain one at all, whatever it asks for', async () => {
    const narrow = await (await import('../../helpers/server.js')).newBackendClient(server, t.slug, 'system/Organization.rs');
    const token = await tokenFor(server, t, { clientId: narrow, scope: 'system/Organization.rs' });
    const res = await postJson('/auth/register/initial-access-token', { scope: 'system/*.cruds' }, token);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('insufficient_scope');
  });

  it("a tenant admin gets at most their own access: the registered client cannot write or delete clinical data", async () => {
    const { token } = await as('sec-admin', 'user/*.cruds');
    const iat = await postJson('/auth/register/initial-access-token', { scope: 'system/*.cruds' }, token);
    expect(iat.status).toBe(201);
    const granted = iat.body.scope.split(' ');
    expect(granted).toContain('system/*.rs');
    expect(granted).toContain('system/Organization.cruds');
    expect(granted).not.toContain('system/*.cruds');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const reg = await postJson('/auth/register', {
      client_name: 'Escalation attempt', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'esc', alg: 'ES384' }] }, scope: 'system/*.cruds',
    }, iat.body.initial_access_token);
    expect(reg.status).toBe(201);
    expect(reg.body.smart_scope.split(' ')).not.toContain('system/*.cruds');
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/*.cruds', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(reg.body.client_id, `${server.origin}/auth/token`, privateKey, { kid: 'esc' }) });
    expect(tok.status).toBe(200);
    const api = authed(server.origin, tok.body.access_token);
    expect((await api.get(`${t.path}/Patient/${ids.you}`)).status).toBe(200); // reading is within the admin's own access
    expect((await api.delete(`${t.path}/Patient/${ids.you}`)).status).toBe(403);
    expect((await api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' })).status).toBe(403);
    expect((await t.api.get(`${t.path}/Patient/${ids.you}`)).status).toBe(200);
  });

  it('asking only for what the admin does not hold is refused', async () => {
    const { token } = await as('sec-admin', 'user/*.cruds');
    const res = await postJson('/auth/register/initial-access-token', { scope: 'system/Patient.cud system/MedicationRequest.d' }, token);
    expect(res.status).toBe(403);
    expect(res.body.error_description).toMatch(/within your own access/);
  });
});

describe("finding 2: the lab technician's element limit holds on every path", () => {
  const limitedOnly = (p: Record<string, unknown>) => {
    for (const k of HIDDEN) expect(p).not.toHaveProperty(k);
    expect(p.name).toBeDefined();
  };

  it.each(['data', 'text', 'true', 'false'])('search with _summary=%s returns no hidden element (and no narrative)', async (summary) => {
    const { api } = await as('sec-lab', 'user/*.rs');
    const res = await api.get(`${t.path}/Patient?_id=${ids.me}&_summary=${summary}`);
    expect(res.status).toBe(200);
    const [p] = entries(res.body, 'match');
    for (const k of HIDDEN) expect(p).not.toHaveProperty(k);
  });

  it('_elements asking for hidden elements gets none of them; read, vread and history are limited too', async () => {
    const { api } = await as('sec-lab', 'user/*.rs');
    const el = await api.get(`${t.path}/Patient?_id=${ids.me}&_elements=address,telecom,text,name`);
    const [p] = entries(el.body, 'match');
    for (const k of HIDDEN) expect(p).not.toHaveProperty(k);
    expect(p.name).toBeDefined();
    limitedOnly((await api.get(`${t.path}/Patient/${ids.me}?_summary=data`)).body);
    const vread = (await api.get(`${t.path}/Patient/${ids.me}/_history/1?_summary=text`)).body;
    for (const k of HIDDEN) expect(vread).not.toHaveProperty(k); // the narrative above all
    expect(vread.id).toBe(ids.me);
    for (const e of entries((await api.get(`${t.path}/Patient/${ids.me}/_history`)).body)) for (const k of HIDDEN) expect(e).not.toHaveProperty(k);
  });

  it('an included Patient is limited, and $everything returns the limited Patient and no resource reached through a hidden element', async () => {
    const { api } = await as('sec-lab', 'user/*.rs');
    const inc = await api.get(`${t.path}/ServiceRequest?_id=${ids.order}&_include=ServiceRequest:subject&_summary=data`);
    const [p] = entries(inc.body, 'include');
    expect(p.id).toBe(ids.me);
    for (const k of HIDDEN) expect(p).not.toHaveProperty(k);
    const all = await api.get(`${t.path}/Patient/${ids.me}/$everything`);
    expect(all.status).toBe(200);
    const got = entries(all.body);
    const me = got.find((r) => r.resourceType === 'Patient');
    for (const k of HIDDEN) expect(me).not.toHaveProperty(k);
    expect(got.some((r) => r.resourceType === 'Practitioner' && r.id === ids.gp)).toBe(false);
    const star = await api.get(`${t.path}/Patient?_id=${ids.me}&_include=*`);
    expect(entries(star.body, 'include').some((r) => r.id === ids.gp)).toBe(false);
  });

  it('_include and _revinclude through a hidden element are refused (403), however the search is phrased', async () => {
    const { api } = await as('sec-lab', 'user/*.rs');
    for (const url of [
      `Patient?_id=${ids.me}&_include=Patient:general-practitioner`,
      `Practitioner?_id=${ids.gp}&_revinclude=Patient:general-practitioner`,
      `ServiceRequest?_id=${ids.order}&_include=ServiceRequest:subject&_include:iterate=Patient:general-practitioner`,
    ]) {
      const res = await api.get(`${t.path}/${url}`);
      expect(res.status).toBe(403);
      expect(code(res.body)).toBe('SCOPE_INSUFFICIENT');
    }
  });
});

describe('finding 3: hidden elements cannot be probed through conditions', () => {
  const txWithConditionalRef = (condition: string) => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ resource: { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' }, subject: { reference: `Patient?${condition}` } }, request: { method: 'POST', url: 'DiagnosticReport' } }],
  });

  it('a conditional reference on a hidden element answers 403 for right and wrong guesses alike', async () => {
    const { api } = await as('sec-lab', 'user/*.rs user/DiagnosticReport.c');
    const right = await api.post(t.path).set('Content-Type', FHIR_JSON).send(txWithConditionalRef(`_id=${ids.me}&address-postalcode=12345`));
    const wrong = await api.post(t.path).set('Content-Type', FHIR_JSON).send(txWithConditionalRef(`_id=${ids.me}&address-postalcode=99999`));
    const prefix = await api.post(t.path).set('Content-Type', FHIR_JSON).send(txWithConditionalRef(`_id=${ids.me}&address-postalcode=1`));
    for (const r of [right, wrong, prefix]) {
      expect(r.status).toBe(403);
      expect(code(r.body)).toBe('SCOPE_INSUFFICIENT');
    }
    // through a visible element it works
    const ok = await api.post(t.path).set('Content-Type', FHIR_JSON).send(txWithConditionalRef(`_id=${ids.me}&birthdate=1970-01-01`));
    expect(ok.status).toBe(200);
  });

  it('conditional creates, updates and deletes through hidden elements or chains through them are refused', async () => {
    const { api } = await as('sec-lab', 'user/*.rs user/DiagnosticReport.crus');
    const dr = { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.me}` } };
    const ine = await api.post(`${t.path}/DiagnosticReport`).set('Content-Type', FHIR_JSON).set('If-None-Exist', 'subject:Patient.address-city=Secretville').send(dr);
    expect(ine.status).toBe(403);
    const upd = await api.put(`${t.path}/DiagnosticReport?subject:Patient.telecom=555-0100`).set('Content-Type', FHIR_JSON).send(dr);
    expect(upd.status).toBe(403);
  });
});

describe('finding 4: no existence oracles', () => {
  it('$validate mode=delete reports a resource outside the caller\'s reach exactly like a missing one', async () => {
    const { api } = await as('sec-desk', 'patient/Appointment.cruds', ids.me);
    const validate = (id: string) => api.post(`${t.path}/Appointment/${id}/$validate?mode=delete`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters' });
    const theirs = await validate(ids.yourAppt);
    const missing = await validate('no-such-appointment');
    expect(theirs.status).toBe(200);
    expect(theirs.body.issue.map((i: any) => i.details?.coding?.[0]?.code)).toEqual(missing.body.issue.map((i: any) => i.details?.coding?.[0]?.code));
    expect(code(theirs.body)).toBe('RESOURCE_NOT_FOUND');
    expect((await validate(ids.myAppt)).body.issue[0].severity).toBe('information');
  });

  it('a reference to a resource the writer may not read is answered as if it did not exist', async () => {
    const { api } = await as('sec-pat', 'patient/*.rs patient/Appointment.c');
    const book = (other: string) =>
      api.post(`${t.path}/Appointment`).set('Content-Type', FHIR_JSON).send({
        resourceType: 'Appointment', status: 'proposed',
        participant: [{ actor: { reference: `Patient/${ids.me}` }, status: 'accepted' }, { actor: { reference: other }, status: 'needs-action' }],
      });
    const exists = await book(`Patient/${ids.you}`);
    const missing = await book('Patient/no-such-patient');
    expect(exists.status).toBe(400);
    expect(missing.status).toBe(400);
    expect(code(exists.body)).toBe('REFERENCE_NOT_FOUND');
    expect(exists.body.issue[0].expression).toEqual(missing.body.issue[0].expression);
    expect((await book(`Patient/${ids.me}`)).status).toBe(201);
  });

  it('a conditional update with no match does not reveal that its body id is taken by a resource the caller cannot read', async () => {
    const { api } = await as('sec-lab', 'user/Observation.crus user/Patient.rs');
    const body = (id: string) => ({ resourceType: 'Observation', id, status: 'final', category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'laboratory' }] }], code: { text: 'x' }, subject: { reference: `Patient/${ids.me}` } });
    const taken = await api.put(`${t.path}/Observation?code=no-such-code`).set('Content-Type', FHIR_JSON).send(body(ids.myVital));
    const free = await api.put(`${t.path}/Observation?code=no-such-code-2`).set('Content-Type', FHIR_JSON).send(body('free-id-8'));
    expect(taken.status).toBe(201);
    expect(free.status).toBe(201);
    expect(taken.body.id).not.toBe(ids.myVital);
    expect(free.body.id).not.toBe('free-id-8');
    expect((await t.api.get(`${t.path}/Observation/${ids.myVital}`)).body.meta.versionId).toBe('1');
  });

  it('a delete or an update-as-create by a writer confined to one patient answers the same for taken and free ids', async () => {
    const { api } = await as('sec-desk', 'patient/Appointment.cruds', ids.me);
    const delTheirs = await api.delete(`${t.path}/Appointment/${ids.yourAppt}`);
    const delMissing = await api.delete(`${t.path}/Appointment/no-such-appointment`);
    expect(delTheirs.status).toBe(204);
    expect(delMissing.status).toBe(204);
    expect((await t.api.get(`${t.path}/Appointment/${ids.yourAppt}`)).status).toBe(200); // not deleted
    const put = (id: string) => api.put(`${t.path}/Appointment/${id}`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Appointment', id, status: 'booked', participant: [{ actor: { reference: `Patient/${ids.me}` }, status: 'accepted' }] });
    const putTheirs = await put(ids.yourAppt);
    const putFree = await put('free-appointment-id');
    expect(putTheirs.status).toBe(404);
    expect(putFree.status).toBe(404);
    expect(code(putTheirs.body)).toBe(code(putFree.body));
  });
});

describe('finding 7: token endpoint errors and registration management', () => {
  const tokenUrl = () => `${server.origin}/auth/token`;

  it('answers invalid_client (401) to a malformed client_assertion, a subject that is not the client_id, and a wrong assertion type', async () => {
    const good = clientAssertion(t.clientId, tokenUrl(), testBackendKey().privateKey);
    const cases: Record<string, string>[] = [
      { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: 'not-a-jwt' },
      { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: good, client_id: 'someone-else' },
      { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: 'urn:wrong', client_assertion: good },
      { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(t.clientId, tokenUrl(), testBackendKey().privateKey, { sub: 'another-client' }) },
    ];
    for (const form of cases) {
      const res = await tokenRequest(server.origin, form);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.body.error_description).toEqual(expect.any(String));
    }
  });

  it('a dynamically registered client reads, updates (within its ceiling, in its tenant) and deletes its registration (RFC 7592)', async () => {
    const { token } = await as('sec-admin', 'user/*.rs');
    const iat = (await postJson('/auth/register/initial-access-token', { scope: 'system/Observation.rs system/Patient.rs' }, token)).body.initial_access_token;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'mgmt', alg: 'ES384' };
    const reg = await postJson('/auth/register', { client_name: 'Managed', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, scope: 'system/Observation.rs' }, iat);
    expect(reg.status).toBe(201);
    expect(reg.body.registration_client_uri).toBe(`${server.origin}/auth/register/${reg.body.client_id}`);
    let rat: string = reg.body.registration_access_token;
    expect(rat).toEqual(expect.any(String));
    const manage = (method: string, token: string, body?: unknown) =>
      fetch(reg.body.registration_client_uri, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const read = await manage('GET', rat);
    expect(read.status).toBe(200);
    const current = (await read.json()) as Record<string, any>;
    expect(current.client_name).toBe('Managed');
    rat = current.registration_access_token ?? rat;
    // another client's (or no) registration access token reads nothing
    expect((await manage('GET', 'forged-token')).status).toBe(401);
    const { registration_access_token: _r, registration_client_uri: _u, client_id_issued_at: _i, ...meta } = current;
    const put = await manage('PUT', rat, { ...meta, client_name: 'Managed again', scope: 'system/*.cruds', tenant: 'another-tenant' });
    expect(put.status).toBe(200);
    const updated = (await put.json()) as Record<string, any>;
    expect(updated.client_name).toBe('Managed again');
    expect(updated.tenant).toBe(t.slug);
    expect(updated.smart_scope.split(' ').sort()).toEqual(['system/Observation.rs', 'system/Patient.rs']);
    rat = updated.registration_access_token ?? rat;
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/*.cruds', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(reg.body.client_id, tokenUrl(), privateKey, { kid: 'mgmt' }) });
    expect(tok.status).toBe(200);
    expect(tok.body.scope.split(' ').sort()).toEqual(['system/Observation.rs', 'system/Patient.rs']);
    expect((await manage('DELETE', rat)).status).toBe(204);
    const gone = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(reg.body.client_id, tokenUrl(), privateKey, { kid: 'mgmt' }) });
    expect(gone.body.error).toBe('invalid_client');
  });
});

describe('finding 8: hardening', () => {
  it('sends X-Content-Type-Options: nosniff on FHIR, OAuth and operational responses', async () => {
    for (const path of [`${t.path}/Patient/${ids.me}`, `${t.path}/metadata`, '/auth/jwks', '/healthz', '/nowhere']) {
      const res = await fetch(`${server.origin}${path}`, { headers: { authorization: `Bearer ${t.token}` } });
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('an EHR launch is redeemed once, even by two sign-ins racing for it', async () => {
    await newUser(server, t.slug, 'sec-dr', 'practitioner');
    const { token: ehr } = await as('sec-dr', 'user/Patient.rs');
    const l = await postJson('/auth/launch', { patient: ids.me }, ehr);
    expect(l.status).toBe(201);
    // two browsers reach the consent page of the same launch
    const consent = async () => {
      const b = new Browser(server.origin);
      const k = pkce();
      let step = await b.follow(authorizeUrl(server.origin, { clientId: app.clientId, aud: t.base, scope: 'launch patient/Patient.rs', launch: l.body.launch, pkce: k }));
      step = await b.follow(formAction(step.html!, '/login'), { form: { username: 'sec-dr', password: PASSWORD } });
      expect(step.html).toContain('Allow access?');
      return { b, html: step.html! };
    };
    const [one, two] = await Promise.all([consent(), consent()]);
    const submit = ({ b, html }: { b: Browser; html: string }) => b.follow(formAction(html, '/consent'), { form: { scope: offeredScopes(html), decision: 'allow' } });
    const results = await Promise.all([submit(one), submit(two)]);
    const codes = results.filter((r) => r.leftTo && new URL(r.leftTo).searchParams.get('code'));
    expect(codes).toHaveLength(1);
    const refused = results.find((r) => !r.leftTo);
    expect(refused?.res.status).toBe(400);
    // refused when it takes the launch, or already when it looks the launch up (the other took it first)
    expect(refused?.html).toMatch(/already been used|has expired/);
  });
});
