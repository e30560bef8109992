// SMART Backend Services (backend-services.html): a lab's backend client signs an assertion (private_key_jwt, ES384
// and RS384), gets a short-lived system/ token and posts a DiagnosticReport; it cannot touch another tenant.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerClient } from '../../../src/auth/admin.js';
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

describe('the README sequence (scripts/backend-client.mjs)', () => {
  it('keygen, register the JWKS, sign an assertion, get a token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backend-key-'));
    const script = new URL('../../../scripts/backend-client.mjs', import.meta.url).pathname;
    execFileSync(process.execPath, [script, 'keygen', dir]);
    const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8'));
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384' });
    expect(jwks.keys[0].d).toBeUndefined();
    const c = await registerClient(server.deps, server.app.auth.provider(), { tenant: lab.slug, kind: 'backend', name: 'README lab', jwks, scope: 'system/DiagnosticReport.cru' });
    const assertion = execFileSync(process.execPath, [script, 'assertion', join(dir, 'private.jwk.json'), c.clientId, `${server.origin}/auth/token`], { encoding: 'utf8' }).trim();
    const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/DiagnosticReport.cru', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
    expect(tok.status).toBe(200);
    expect(tok.body.scope).toBe('system/DiagnosticReport.cru');
  });
});

describe('a JWKS URL instead of a registered JWKS (client-confidential-asymmetric.html)', () => {
  it('fetches the client\'s keys from its jwks_uri (RS384 here) and issues a token', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { createServer } = await import('node:http');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS384', use: 'sig' };
    let fetched = 0;
    const keys = createServer((req, res) => {
      fetched++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => keys.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(keys.address() as { port: number }).port}/jwks.json`;
      const c = await registerClient(server.deps, server.app.auth.provider(), { tenant: lab.slug, kind: 'backend', name: 'JWKS URL lab', jwksUri: url, scope: 'system/Observation.rs' });
      const assertion = clientAssertion(c.clientId, `${server.origin}/auth/token`, privateKey, { alg: 'RS384', kid: 'rsa-1' });
      const tok = await tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Observation.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
      expect(tok.status).toBe(200);
      expect(fetched).toBeGreaterThan(0);
    } finally {
      keys.close();
    }
  });
});

describe('client JWKS URLs and this server\'s own network (SSRF)', () => {
  it('with AUTH_ALLOW_PRIVATE_JWKS_URLS off (the default), a JWKS URL on a loopback address is never fetched', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { createServer } = await import('node:http');
    const strict = await startServer({ authAllowPrivateJwksUrls: false });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    let fetched = 0;
    const keys = createServer((_req, res) => {
      fetched++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'ssrf-1', alg: 'ES384' }] }));
    });
    await new Promise<void>((r) => keys.listen(0, '127.0.0.1', r));
    try {
      const tenant = await newTenant(strict, 'ssrf');
      const url = `http://127.0.0.1:${(keys.address() as { port: number }).port}/jwks.json`;
      const c = await registerClient(strict.deps, strict.app.auth.provider(), { tenant: tenant.slug, kind: 'backend', name: 'SSRF probe', jwksUri: url, scope: 'system/Patient.rs' });
      const tok = await tokenRequest(strict.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(c.clientId, `${strict.origin}/auth/token`, privateKey, { kid: 'ssrf-1' }) });
      expect(tok.status).toBe(401);
      expect(tok.body.error).toBe('invalid_client');
      expect(fetched).toBe(0);
    } finally {
      keys.close();
      await strict.close();
    }
  });
});
