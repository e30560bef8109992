// Host-based tenants (issue 11, src/tenancy/tenant-hosts.ts): with TENANT_HOSTS_ENABLED, a tenant's own host name
// serves its base at /fhir, every link follows that base, discovery answers there, and a token is valid only on the
// base it was issued for (never on another tenant's host or path); unknown hosts and the option off change nothing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { updateTenant } from '../../../src/admin/tenants.js';
import { ASSERTION_TYPE, Browser, clientAssertion, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { create, FHIR_JSON, newTenant, startServer, testBackendKey, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { JSON_TYPE, platformAdmin } from './api-helpers.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
const hostA = `a-${randomBytes(4).toString('hex')}.test`;
const hostB = `b-${randomBytes(4).toString('hex')}.test`;
const baseA = `http://${hostA}/fhir`;
const baseB = `http://${hostB}/fhir`;
/** Tokens for A's and B's host bases. */
let onA: string;
let onB: string;
let patientA: Record<string, any>;

const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;
const PLATFORM_ACTOR = { kind: 'platform-admin', tenant: 'platform', sub: 'host-tenants-test', clientId: 'host-tenants-test' } as const;

/** A request to `path` on `host` (the Host header a proxy routing that name would pass on). */
function at(host: string, token?: string) {
  const r = request(server.origin);
  const wrap = (m: 'get' | 'post') => (path: string) => {
    const t = r[m](path).set('Host', host);
    return token ? t.set('Authorization', `Bearer ${token}`) : t;
  };
  return { get: wrap('get'), post: wrap('post') };
}

beforeAll(async () => {
  server = await startServer({ tenantHostsEnabled: true });
  a = await newTenant(server, 'host-a');
  b = await newTenant(server, 'host-b');
  // A's host through the admin API (a platform administrator), B's through the service function
  const pa = await platformAdmin(server, a);
  const set = await pa.api.patch(`/admin/api/tenants/${a.slug}`).set('Content-Type', JSON_TYPE).send({ host: hostA.toUpperCase() });
  expect(set.status).toBe(200);
  await updateTenant(server.deps, PLATFORM_ACTOR, b.slug, { host: hostB });
  onA = await tokenFor(server, a, { onHost: true });
  onB = await tokenFor(server, b, { onHost: true });
  patientA = await create(a, { resourceType: 'Patient', name: [{ family: 'Hostfield' }] });
}, 60_000);
afterAll(async () => server?.close());

describe('a tenant host serves its tenant at /fhir', () => {
  it("reads, creates and searches tenant A's data at /fhir, every link on http://<host>/fhir", async () => {
    const read = await at(hostA, onA).get(`/fhir/Patient/${patientA.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ resourceType: 'Patient', id: patientA.id, name: [{ family: 'Hostfield' }] });

    const created = await at(hostA, onA).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Hostmade' }] }));
    expect(created.status).toBe(201);
    expect(created.headers.location).toMatch(new RegExp(`^${baseA}/Patient/${created.body.id}/_history/1$`));
    // the same tenant's data on its path base
    expect((await a.api.get(`${a.path}/Patient/${created.body.id}`)).status).toBe(200);

    const found = await at(hostA, onA).get(`/fhir/Patient?_id=${patientA.id}`);
    expect(found.status).toBe(200);
    expect(found.body.entry.map((e: any) => e.fullUrl)).toEqual([`${baseA}/Patient/${patientA.id}`]);
    expect(found.body.link.find((l: any) => l.relation === 'self').url).toMatch(new RegExp(`^${baseA}/Patient\\?`));
    const history = await at(hostA, onA).get(`/fhir/Patient/${patientA.id}/_history`);
    expect(history.body.entry[0].fullUrl).toBe(`${baseA}/Patient/${patientA.id}`);
    // host names compare case-insensitively; the port is not part of the name
    expect((await at(`${hostA.toUpperCase()}:8443`, onA).get(`/fhir/Patient/${patientA.id}`)).status).toBe(200);
  });

  it('answers discovery there: the CapabilityStatement of its base, SMART configuration naming this server\'s authorization server', async () => {
    const meta = await at(hostA).get('/fhir/metadata');
    expect(meta.status).toBe(200);
    expect(meta.body.implementation).toEqual({ description: `FHIR R4 server for Test ${a.slug}`, url: baseA });
    const smart = await at(hostA).get('/fhir/.well-known/smart-configuration');
    expect(smart.status).toBe(200);
    // one issuer for the whole server: the endpoints stay PUBLIC_BASE_URL/auth's
    expect(smart.body).toMatchObject({ issuer: `${server.origin}/auth`, token_endpoint: `${server.origin}/auth/token`, authorization_endpoint: `${server.origin}/auth/authorize` });
  });

  it("serves tenant B only on B's host", async () => {
    const foreign = await at(hostB, onB).get(`/fhir/Patient/${patientA.id}`);
    expect(foreign.status).toBe(404);
    const search = await at(hostB, onB).get('/fhir/Patient?family=Hostfield');
    expect(search.status).toBe(200);
    expect(search.body.total ?? search.body.entry?.length ?? 0).toBe(0);
    const meta = await at(hostB).get('/fhir/metadata');
    expect(meta.body.implementation.url).toBe(baseB);
  });
});

describe('tokens are bound to the base they were issued for', () => {
  it("refuses a host token on A's path base, and a path token on A's host", async () => {
    const onPath = await a.api.get(`${a.path}/Patient/${patientA.id}`).set('Authorization', `Bearer ${onA}`);
    expect(onPath.status).toBe(401);
    expect(code(onPath.body)).toBe('TOKEN_AUDIENCE');
    const pathOnHost = await at(hostA, a.token).get(`/fhir/Patient/${patientA.id}`);
    expect(pathOnHost.status).toBe(401);
    expect(code(pathOnHost.body)).toBe('TOKEN_AUDIENCE');
  });

  it("refuses A's host token on B's host and on B's path, and B's on A's host", async () => {
    const onHostB = await at(hostB, onA).get('/fhir/Patient');
    expect(onHostB.status).toBe(401);
    expect(code(onHostB.body)).toBe('TOKEN_AUDIENCE');
    const onPathB = await request(server.origin).get(`${b.path}/Patient`).set('Authorization', `Bearer ${onA}`);
    expect(onPathB.status).toBe(401);
    const bOnA = await at(hostA, onB).get(`/fhir/Patient/${patientA.id}`);
    expect(bOnA.status).toBe(401);
  });

  it('issues a backend token for the host base (resource indicator) that works there; another tenant\'s host base is refused', async () => {
    const assertion = () => clientAssertion(a.clientId, `${server.origin}/auth/token`, testBackendKey().privateKey);
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', resource: baseA, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion() });
    expect(tok.status).toBe(200);
    expect((jwt.decode(tok.body.access_token) as Record<string, unknown>).aud).toBe(baseA);
    expect((await at(hostA, tok.body.access_token).get(`/fhir/Patient/${patientA.id}`)).status).toBe(200);
    const foreign = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', resource: baseB, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion() });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toBe('invalid_target');
  });

  it("signs a user of A in to an app whose aud is A's host base; the token works on the host and introspects there", async () => {
    const username = `host-user-${randomBytes(3).toString('hex')}`;
    const practitioner = await create(a, { resourceType: 'Practitioner', name: [{ family: 'Hostdoc' }] });
    await newUser(server, a.slug, username, 'practitioner', `Practitioner/${practitioner.id}`);
    const app = await newApp(server, a.slug, { scope: 'openid fhirUser user/*.cruds' });
    const browser = new Browser(server.origin);
    const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: baseA, scope: 'openid fhirUser user/Patient.rs', username });
    const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
    expect(tok.status).toBe(200);
    expect((jwt.decode(tok.body.access_token) as Record<string, unknown>).aud).toBe(baseA);
    // the id_token's fhirUser is a URL on the base the app was launched for
    expect((jwt.decode(tok.body.id_token) as Record<string, unknown>).fhirUser).toBe(`${baseA}/Practitioner/${practitioner.id}`);
    expect((await at(hostA, tok.body.access_token).get(`/fhir/Patient/${patientA.id}`)).status).toBe(200);
    // an app of A cannot name B's host base as its audience
    const foreign = await browser.request(`/auth/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.clientId, redirect_uri: REDIRECT, scope: 'user/Patient.rs', state: 'x', aud: baseB, code_challenge: pkce.challenge, code_challenge_method: 'S256' })}`);
    expect(foreign.headers.get('location') ?? '').toMatch(/error=invalid_target/);
    // /auth's JSON endpoints take host tokens too (the backend token of A for its host base introspects it)
    const intro = await request(server.origin).post('/auth/introspect').set('Authorization', `Bearer ${onA}`).type('form').send({ token: tok.body.access_token });
    expect(intro.status).toBe(200);
    expect(intro.body).toMatchObject({ active: true, aud: baseA });
  });
});

describe('anything else resolves as before', () => {
  it('serves /fhir/{tenant} on an unknown host, with links on PUBLIC_BASE_URL', async () => {
    const res = await at('nobody.test', a.token).get(`${a.path}/Patient?_id=${patientA.id}`);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.fullUrl)).toEqual([`${a.base}/Patient/${patientA.id}`]);
    const noTenant = await at('nobody.test', a.token).get('/fhir/Patient');
    expect(noTenant.status).toBe(404);
    expect(code(noTenant.body)).toBe('TENANT_UNKNOWN');
  });

  it('stops serving a host as soon as its tenant gives it up', async () => {
    const c = await newTenant(server, 'host-c');
    const hostC = `c-${randomBytes(4).toString('hex')}.test`;
    await updateTenant(server.deps, PLATFORM_ACTOR, c.slug, { host: hostC });
    expect((await at(hostC).get('/fhir/metadata')).body.implementation.url).toBe(`http://${hostC}/fhir`);
    await updateTenant(server.deps, PLATFORM_ACTOR, c.slug, { host: null });
    const gone = await at(hostC).get('/fhir/metadata');
    expect(gone.status).toBe(404);
    expect(code(gone.body)).toBe('TENANT_UNKNOWN');
  });
});

describe('with TENANT_HOSTS_ENABLED off', () => {
  let off: TestServer;
  beforeAll(async () => {
    off = await startServer();
  }, 60_000);
  afterAll(async () => off?.close());

  it('the Host header changes nothing: /fhir/{tenant} only, links on PUBLIC_BASE_URL, host tokens refused', async () => {
    const onHost = await request(off.origin).get(`/fhir/Patient/${patientA.id}`).set('Host', hostA).set('Authorization', `Bearer ${onA}`);
    expect(onHost.status).toBe(404);
    expect(code(onHost.body)).toBe('TENANT_UNKNOWN');
    const token = await tokenFor(off, a);
    const path = await request(off.origin).get(`${a.path}/Patient?_id=${patientA.id}`).set('Host', hostA).set('Authorization', `Bearer ${token}`);
    expect(path.status).toBe(200);
    expect(path.body.entry[0].fullUrl).toBe(`${off.origin}${a.path}/Patient/${patientA.id}`);
    const assertion = clientAssertion(a.clientId, `${off.origin}/auth/token`, testBackendKey().privateKey);
    const tok = await tokenRequest(off.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', resource: baseA, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
    expect(tok.status).toBe(400);
    expect(tok.body.error).toBe('invalid_target');
  });
});
