// Bindings a profile adds (terminologies.html#strength), checked with the terminology service against the tenant's own
// ValueSets: required -> an error when no code is in the value set, extensible -> a warning (the write goes through);
// on code, CodeableConcept and Quantity (unit code) elements. A value set the server cannot evaluate fails nothing
// ($validate says it could not check).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectRefused, issuesOf, LOINC, problemsOf, profile, send, uploadProfile, validate } from './helpers.js';

let server: TestServer;
let t: TestTenant;

const VS = (id: string) => `http://example.org/fhir/ValueSet/${id}`;
const URL = 'http://example.org/fhir/StructureDefinition/bound';
const UNKNOWN_URL = 'http://example.org/fhir/StructureDefinition/bound-unknown';
const UCUM = 'http://unitsofmeasure.org';
const INTERP = 'urn:test:interpretation';

const valueSet = (id: string, include: Record<string, unknown>[]) => ({ resourceType: 'ValueSet', url: VS(id), name: id.replace(/-/g, ''), status: 'active', compose: { include } });

function obs(extra: Record<string, unknown> = {}, claim = URL): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    meta: { profile: [claim] },
    status: 'final',
    code: { coding: [{ system: LOINC, code: '2345-7' }] },
    interpretation: [{ coding: [{ system: INTERP, code: 'N' }] }],
    method: { coding: [{ system: INTERP, code: 'H' }] },
    valueQuantity: { value: 5.1, unit: 'mmol/L', system: UCUM, code: 'mmol/L' },
    ...extra,
  };
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'bind');
  for (const vs of [
    valueSet('interpretations', [{ system: INTERP, concept: [{ code: 'N' }, { code: 'H' }, { code: 'L' }] }]),
    valueSet('units', [{ system: UCUM, concept: [{ code: 'mmol/L' }, { code: 'mg/dL' }] }]),
    valueSet('statuses', [{ system: 'http://hl7.org/fhir/observation-status', concept: [{ code: 'final' }, { code: 'amended' }] }]),
  ]) {
    const res = await send(t, 'post', 'ValueSet', vs);
    if (res.status !== 201) throw new Error(`ValueSet: ${res.status} ${JSON.stringify(res.body)}`);
  }
  await uploadProfile(t, {
    ...profile('bound', 'Observation', [
      { id: 'Observation.status', binding: { strength: 'required', valueSet: VS('statuses') } },
      { id: 'Observation.interpretation', binding: { strength: 'required', valueSet: VS('interpretations') } },
      { id: 'Observation.method', binding: { strength: 'extensible', valueSet: VS('interpretations') } },
      { id: 'Observation.value[x]', type: [{ code: 'Quantity' }], binding: { strength: 'required', valueSet: VS('units') } },
    ]),
  });
  await uploadProfile(t, profile('bound-unknown', 'Observation', [{ id: 'Observation.method', binding: { strength: 'required', valueSet: VS('nowhere') } }]));
});
afterAll(async () => server.close());

describe('bindings', () => {
  it('accept codes in the value sets (code, CodeableConcept, Quantity unit)', async () => {
    const res = await send(t, 'post', 'Observation', obs());
    expect({ status: res.status, body: res.status === 201 ? 'ok' : res.body }).toEqual({ status: 201, body: 'ok' });
  });

  it('a required binding refuses a CodeableConcept with no code in the value set', async () => {
    const res = await send(t, 'post', 'Observation', obs({ interpretation: [{ coding: [{ system: INTERP, code: 'X' }, { system: 'urn:other', code: 'N' }] }] }));
    expectRefused(res, ['error PROFILE_BINDING Observation.interpretation[0]'], URL);
    expect(res.body.issue[0].code).toBe('code-invalid');
    expect(res.body.issue[0].diagnostics).toContain(`is not in the value set ${VS('interpretations')} (required binding of Observation.interpretation)`);
  });

  it('a required binding accepts a CodeableConcept when any of its codes is in the value set', async () => {
    expect((await send(t, 'post', 'Observation', obs({ interpretation: [{ coding: [{ system: 'urn:other', code: 'Z' }, { system: INTERP, code: 'L' }] }] }))).status).toBe(201);
  });

  it('a required binding refuses a code and a Quantity unit outside the value set', async () => {
    expectRefused(await send(t, 'post', 'Observation', obs({ status: 'preliminary' })), ['error PROFILE_BINDING Observation.status'], URL);
    expectRefused(await send(t, 'post', 'Observation', obs({ valueQuantity: { value: 5, system: UCUM, code: 'kg' } })), ['error PROFILE_BINDING Observation.valueQuantity'], URL);
  });

  it('an extensible binding outside the value set is a warning: the write goes through', async () => {
    const body = obs({ method: { coding: [{ system: 'urn:local', code: 'M1' }] } });
    expect((await send(t, 'post', 'Observation', body)).status).toBe(201);
    const res = await validate(t, 'Observation/$validate', body);
    expect(problemsOf(res)).toEqual(['warning PROFILE_BINDING Observation.method']);
  });

  it('a value set the server cannot evaluate fails nothing; $validate says it was not checked', async () => {
    const body = obs({}, UNKNOWN_URL);
    expect((await send(t, 'post', 'Observation', body)).status).toBe(201);
    const res = await validate(t, 'Observation/$validate', body);
    expect(issuesOf(res).filter((i) => i.includes('PROFILE_NOT_CHECKED'))).toEqual(['information PROFILE_NOT_CHECKED Observation.method']);
    expect(problemsOf(res)).toEqual([]);
  });

  it('a tenant that switches required bindings off (tenant set --required-bindings false) stores with a warning; $validate still errs', async () => {
    const body = obs({ status: 'preliminary' });
    await updateTenantSettings(server.deps.db, t.slug, { requiredBindings: false });
    server.app.tenants.invalidate(t.slug);
    try {
      const res = await send(t, 'post', 'Observation', body);
      expect(res.status).toBe(201);
      expect(problemsOf(await validate(t, 'Observation/$validate', body))).toEqual(['error PROFILE_BINDING Observation.status']);
    } finally {
      await updateTenantSettings(server.deps.db, t.slug, { requiredBindings: true });
      server.app.tenants.invalidate(t.slug);
    }
    expectRefused(await send(t, 'post', 'Observation', body), ['error PROFILE_BINDING Observation.status'], URL);
  });
});
