// SMART Backend Services (backend-services.html): a lab's backend client signs an assertion (private_key_jwt, ES384
// and RS384), gets a short-lived system/ token and posts a DiagnosticReport; it cannot touch another tenant.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ASSERTION_TYPE, clientAssertion, tokenRequest } from '../../helpers/oauth.js';
import { authed, FHIR_JSON, newBackendClient, newTenant, startServer, testBackendKey, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let lab: TestTenant;
let other: TestTenant;
let labClient: string;

beforeAll(async () => {
  server = await startServer();
  lab = await newTenant(server, 'lab');
  other = await newTenant(server, 'other');
  labClient = await newBackendClient(server, lab.slug, 'system/DiagnosticReport.cru system/Observation.cru system/Patient.rs system/ServiceRequest.rs');
});
afterAll(async () => server.close());

describe('client_credentials with private_key_jwt', () => {
  it('issues a system/ token within the pre-authorized scope and the lab posts a DiagnosticReport', async () => {
    const assertion = clientAssertion(labClient, `${server.origin}/auth/token`, testBackendKey().privateKey);
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/DiagnosticReport.c system/Patient.rs system/Encounter.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
    expect(tok.status).toBe(200);
    expect(tok.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'system/DiagnosticReport.c system/Patient.rs' });
    expect(tok.body.refresh_token).toBeUndefined();
    const api = authed(server.origin, tok.body.access_token);
    const pat = await lab.api.post(`${lab.path}/Patient`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' });
    const dr = await api.post(`${lab.path}/DiagnosticReport`).set('Content-Type', FHIR_JSON).send({ resourceType: 'DiagnosticReport', status: 'final', code: { text: 'CBC' }, subject: { reference: `Patient/${pat.body.id}` } });
    expect(dr.status).toBe(201);
    expect((await api.get(`${lab.path}/DiagnosticReport/${dr.body.id}`)).status).toBe(403);
    expect((await api.get(`${other.path}/Patient`)).status).toBe(401);
  });
});
