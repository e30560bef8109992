// CodeSystem/$subsumes (codesystem-operation-subsumes.html): equivalent, subsumes, subsumed-by, not-subsumed, from
// nested concepts and from parent properties, on shipped and tenant code systems, type and instance level.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { expectError, paramsOf } from './answers.js';

let server: TestServer;
let t: TestTenant;
let byParent: Record<string, any>;

const NESTED = 'http://lab.example.org/CodeSystem/specimens';
const FLAT = 'http://lab.example.org/CodeSystem/tests-by-parent';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sub');
  await create(t, {
    resourceType: 'CodeSystem',
    url: NESTED,
    status: 'active',
    content: 'complete',
    concept: [{ code: 'fluid', concept: [{ code: 'blood', concept: [{ code: 'serum' }, { code: 'plasma' }] }, { code: 'urine' }] }, { code: 'tissue' }],
  });
  byParent = await create(t, {
    resourceType: 'CodeSystem',
    url: FLAT,
    status: 'active',
    content: 'complete',
    property: [{ code: 'parent', uri: 'http://hl7.org/fhir/concept-properties#parent', type: 'code' }],
    concept: [{ code: 'chem' }, { code: 'lytes', property: [{ code: 'parent', valueCode: 'chem' }] }, { code: 'na', property: [{ code: 'parent', valueCode: 'lytes' }] }, { code: 'hem' }],
  });
});
afterAll(async () => server.close());

const subsumes = (query: string) => t.api.get(`${t.path}/CodeSystem/$subsumes?${query}`);
const q = encodeURIComponent;

describe('$subsumes', () => {
  it('answers equivalent, subsumes, subsumed-by and not-subsumed from nested concepts', async () => {
    const on = (a: string, b: string) => subsumes(`system=${q(NESTED)}&codeA=${a}&codeB=${b}`);
    expect(paramsOf(await on('blood', 'blood'))).toEqual({ outcome: 'equivalent' });
    expect(paramsOf(await on('fluid', 'serum'))).toEqual({ outcome: 'subsumes' });
    expect(paramsOf(await on('plasma', 'blood'))).toEqual({ outcome: 'subsumed-by' });
    expect(paramsOf(await on('urine', 'serum'))).toEqual({ outcome: 'not-subsumed' });
  });

  it('follows parent properties, at instance level and with codings (POST)', async () => {
    expect(paramsOf(await t.api.get(`${t.path}/CodeSystem/${byParent.id}/$subsumes?codeA=chem&codeB=na`))).toEqual({ outcome: 'subsumes' });
    const res = await t.api
      .post(`${t.path}/CodeSystem/$subsumes`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'codingA', valueCoding: { system: FLAT, code: 'na' } }, { name: 'codingB', valueCoding: { system: FLAT, code: 'hem' } }] }));
    expect(paramsOf(res)).toEqual({ outcome: 'not-subsumed' });
  });

  it('answers on a shipped hierarchy (v3 ActCode)', async () => {
    expect(paramsOf(await subsumes('system=http://terminology.hl7.org/CodeSystem/v3-ActCode&codeA=_ActEncounterCode&codeB=AMB'))).toEqual({ outcome: 'subsumes' });
  });

  it('rejects missing and unknown codes and systems', async () => {
    expectError(await subsumes(`system=${q(NESTED)}&codeA=blood`), 400, 'TERMINOLOGY_CODE_MISSING', 'codeB');
    expectError(await subsumes('codeA=a&codeB=b'), 400, 'TERMINOLOGY_SYSTEM_MISSING', 'system');
    expectError(await subsumes(`system=${q(NESTED)}&codeA=blood&codeB=bone`), 422, 'TERMINOLOGY_CODE_UNKNOWN', 'codeB');
    expectError(await subsumes('system=http://nowhere.org/cs&codeA=a&codeB=b'), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'system');
    expectError(await subsumes(`system=${q(NESTED)}&codeA=blood&codingA=${q(`${NESTED}|blood`)}&codeB=urine`), 400, 'TERMINOLOGY_INPUT_CONFLICT', 'codingA');
  });
});
