// valueSetCheck (src/fhir/terminology.ts), the membership check the profile validator calls for bindings: the
// tenant's own terminology first, then the shipped one; undefined when it cannot tell.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SYSTEM_GUARD } from '../../../src/core/guard.js';
import type { TenantId } from '../../../src/core/tenant.js';
import type { FhirContext } from '../../../src/fhir/context.js';
import { valueSetCheck } from '../../../src/fhir/terminology.js';
import { TenantStore } from '../../../src/store/session.js';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;

const VS = 'http://tenant.example.org/ValueSet/report-codes';

function contextOf(t: TestTenant): FhirContext {
  const deps = server.deps;
  return { deps, tenant: { id: t.slug as TenantId, name: t.slug, status: 'active', settings: {} }, baseUrl: t.base, store: new TenantStore(deps.db, t.slug, t.base), registry: deps.registry, requestId: 'test', log: deps.log, guard: SYSTEM_GUARD };
}

async function check(t: TestTenant, vs: string, system: string | undefined, code: string, display?: string) {
  const ctx = contextOf(t);
  return ctx.store.read((s) => valueSetCheck(ctx, s, vs, system, code, display));
}

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'vsca');
  b = await newTenant(server, 'vscb');
  await create(a, { resourceType: 'ValueSet', url: VS, status: 'active', compose: { include: [{ system: 'http://loinc.org', concept: [{ code: '24323-8' }, { code: '58410-2' }] }] } });
});
afterAll(async () => server.close());

describe('valueSetCheck', () => {
  it('checks shipped value sets, with the display and a message for a wrong display', async () => {
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/observation-status', 'http://hl7.org/fhir/observation-status', 'final')).toEqual({ result: true, display: 'Final' });
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/observation-status|4.0.1', 'http://hl7.org/fhir/observation-status', 'done')).toMatchObject({ result: false });
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/observation-status', undefined, 'final')).toEqual({ result: true, display: 'Final' });
    const wrong = await check(a, 'http://hl7.org/fhir/ValueSet/administrative-gender', 'http://hl7.org/fhir/administrative-gender', 'male', 'Gentleman');
    expect(wrong).toMatchObject({ result: true, display: 'Male' });
    expect(wrong?.message).toContain('"Gentleman"');
  });

  it("checks the tenant's own value set; another tenant cannot evaluate it", async () => {
    expect(await check(a, VS, 'http://loinc.org', '24323-8')).toEqual({ result: true, display: 'Comprehensive metabolic 2000 panel - Serum or Plasma' });
    expect(await check(a, VS, 'http://loinc.org', '2345-7')).toMatchObject({ result: false });
    expect(await check(b, VS, 'http://loinc.org', '24323-8')).toBeUndefined();
  });

  it('answers undefined when it cannot tell: unknown value set, a code outside a code system held in part', async () => {
    expect(await check(a, 'http://nowhere.org/ValueSet/x', 'http://loinc.org', '2345-7')).toBeUndefined();
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/observation-codes', 'http://loinc.org', '12345-6')).toBeUndefined();
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/observation-codes', 'http://loinc.org', '2345-7')).toMatchObject({ result: true });
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/ucum-units', 'http://unitsofmeasure.org', 'mg/dL')).toMatchObject({ result: true });
    expect(await check(a, 'http://hl7.org/fhir/ValueSet/ucum-units', 'http://unitsofmeasure.org', 'mg/dL/')).toMatchObject({ result: false });
  });
});
