// Profiles a tenant requires for a type (TenantSettings.requiredProfiles, set with `tenant set --require-profile`):
// every create and update of that type must meet them, whatever the resource claims; in a transaction one entry
// failing rolls the whole transaction back. Other tenants and other types are not affected.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, send, US_CORE, validate, problemsOf } from './helpers.js';

const LAB = `${US_CORE}us-core-diagnosticreport-lab`;
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../../fixtures/us-core/${name}.json`, import.meta.url), 'utf8')) as Record<string, any>;

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let patientId: string;

/** A lab report that claims nothing, pointing at this tenant's patient. */
function report(extra: Record<string, unknown> = {}): Record<string, any> {
  const r = fixture('diagnosticreport-lab');
  delete r.meta;
  delete r.id;
  delete r.basedOn;
  delete r.encounter;
  delete r.performer;
  delete r.result;
  return { ...r, subject: { reference: `Patient/${patientId}` }, ...extra };
}

async function count(tenant: TestTenant): Promise<number> {
  return (await tenant.api.get(`${tenant.path}/DiagnosticReport?_summary=count`)).body.total;
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'req');
  other = await newTenant(server, 'req-other');
  await updateTenantSettings(server.deps.db, t.slug, { requiredProfiles: { DiagnosticReport: [LAB] } });
  server.app.tenants.invalidate(t.slug);
  patientId = (await send(t, 'post', 'Patient', { resourceType: 'Patient', name: [{ family: 'Required' }] })).body.id;
});
afterAll(async () => server.close());

describe('requiredProfiles', () => {
  it('accepts a resource meeting the required profile though it claims nothing', async () => {
    expect((await send(t, 'post', 'DiagnosticReport', report())).status).toBe(201);
  });

  it('refuses a create that does not meet it, naming the profile and the element', async () => {
    const before = await count(t);
    const { category: _c, ...noCategory } = report();
    expectRefused(await send(t, 'post', 'DiagnosticReport', noCategory), ['error PROFILE_CARDINALITY DiagnosticReport.category', 'error PROFILE_CARDINALITY DiagnosticReport.category'], LAB);
    expect(await count(t)).toBe(before);
  });

  it('refuses an update that breaks it, and keeps the stored version', async () => {
    const created = (await send(t, 'post', 'DiagnosticReport', report())).body;
    const res = await send(t, 'put', `DiagnosticReport/${created.id}`, { ...created, code: { coding: [{ system: 'urn:local', code: 'X' }] } });
    expectRefused(res, ['error PROFILE_INVARIANT DiagnosticReport.code'], LAB);
    const current = await t.api.get(`${t.path}/DiagnosticReport/${created.id}`);
    expect(current.body.meta.versionId).toBe('1');
  });

  it('rolls back a whole transaction when one entry does not meet it', async () => {
    const before = await count(t);
    const patients = (await t.api.get(`${t.path}/Patient?_summary=count`)).body.total;
    const { category: _c, ...bad } = report();
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6a3c2a8e-1111-4b5e-9a51-1f0e1c2d3e4f', resource: { resourceType: 'Patient', name: [{ family: 'InBundle' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: report({ subject: { reference: 'urn:uuid:6a3c2a8e-1111-4b5e-9a51-1f0e1c2d3e4f' } }), request: { method: 'POST', url: 'DiagnosticReport' } },
        { resource: { ...bad, subject: { reference: 'urn:uuid:6a3c2a8e-1111-4b5e-9a51-1f0e1c2d3e4f' } }, request: { method: 'POST', url: 'DiagnosticReport' } },
      ],
    };
    const res = await send(t, 'post', '', bundle);
    expect(res.status).toBe(400);
    expect(res.body.issue.map((i: any) => i.details?.coding?.[0]?.code)).toContain('PROFILE_CARDINALITY');
    expect(await count(t)).toBe(before);
    expect((await t.api.get(`${t.path}/Patient?_summary=count`)).body.total).toBe(patients);
  });

  it('is applied by $validate too', async () => {
    const { category: _c, ...noCategory } = report();
    const res = await validate(t, 'DiagnosticReport/$validate', noCategory);
    expect(problemsOf(res)).toEqual(['error PROFILE_CARDINALITY DiagnosticReport.category', 'error PROFILE_CARDINALITY DiagnosticReport.category']);
  });

  it('does not apply to other types or other tenants', async () => {
    expect((await send(t, 'post', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).status).toBe(201);
    const { category: _c, subject: _s, ...noCategory } = report();
    expect((await send(other, 'post', 'DiagnosticReport', noCategory)).status).toBe(201);
  });

  it('an unknown required profile refuses the writes of its type (it cannot be met)', async () => {
    const strict = await newTenant(server, 'req-unknown');
    await updateTenantSettings(server.deps.db, strict.slug, { requiredProfiles: { Observation: ['http://example.org/fhir/StructureDefinition/missing'] } });
    server.app.tenants.invalidate(strict.slug);
    const res = await send(strict, 'post', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expectRefused(res, ['error PROFILE_UNKNOWN Observation'], 'http://example.org/fhir/StructureDefinition/missing');
    expect(res.body.issue[0].diagnostics).toContain('the tenant requires it for this type');
  });
});
