// Tenant isolation of terminology: tenant A's CodeSystems, ValueSets and ConceptMaps are invisible to tenant B in
// every terminology operation (B sees A's urls as unknown and A's ids as missing); B's own resource with the same
// url is the one B sees.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { codesOf, expectError, paramsOf } from './answers.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
const ids: Record<string, string> = {};

const CS = 'http://tenant-a.example.org/CodeSystem/secret-tests';
const VS = 'http://tenant-a.example.org/ValueSet/secret-tests';
const CM = 'http://tenant-a.example.org/ConceptMap/secret-to-loinc';
const q = encodeURIComponent;

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'isoa');
  b = await newTenant(server, 'isob');
  ids.cs = (await create(a, { resourceType: 'CodeSystem', url: CS, status: 'active', content: 'complete', concept: [{ code: 'S1', display: 'Secret one', concept: [{ code: 'S2', display: 'Secret two' }] }] })).id;
  ids.vs = (await create(a, { resourceType: 'ValueSet', url: VS, status: 'active', compose: { include: [{ system: CS }] } })).id;
  ids.cm = (await create(a, { resourceType: 'ConceptMap', url: CM, status: 'active', group: [{ source: CS, target: 'http://loinc.org', element: [{ code: 'S1', target: [{ code: '2345-7', equivalence: 'equivalent' }] }] }] })).id;
});
afterAll(async () => server.close());

describe("another tenant's terminology", () => {
  it('tenant A uses its own resources', async () => {
    expect(codesOf(await a.api.get(`${a.path}/ValueSet/$expand?url=${q(VS)}`))).toEqual([`${CS}|S1`, `${CS}|S2`]);
    expect(paramsOf(await a.api.get(`${a.path}/CodeSystem/$lookup?system=${q(CS)}&code=S1`)).display).toBe('Secret one');
    expect(paramsOf(await a.api.get(`${a.path}/ConceptMap/$translate?system=${q(CS)}&code=S1`)).result).toBe(true);
  });

  it('tenant B sees the urls as unknown in $expand, $lookup, $validate-code, $subsumes and $translate', async () => {
    expectError(await b.api.get(`${b.path}/ValueSet/$expand?url=${q(VS)}`), 404, 'TERMINOLOGY_VALUESET_UNKNOWN', 'url');
    expectError(await b.api.get(`${b.path}/ValueSet/$validate-code?url=${q(VS)}&system=${q(CS)}&code=S1`), 404, 'TERMINOLOGY_VALUESET_UNKNOWN', 'url');
    expectError(await b.api.get(`${b.path}/CodeSystem/$lookup?system=${q(CS)}&code=S1`), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'system');
    expectError(await b.api.get(`${b.path}/CodeSystem/$validate-code?url=${q(CS)}&code=S1`), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'url');
    expectError(await b.api.get(`${b.path}/CodeSystem/$subsumes?system=${q(CS)}&codeA=S1&codeB=S2`), 404, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'system');
    expectError(await b.api.get(`${b.path}/ConceptMap/$translate?url=${q(CM)}&system=${q(CS)}&code=S1`), 404, 'TERMINOLOGY_CONCEPTMAP_UNKNOWN', 'url');
    expect(paramsOf(await b.api.get(`${b.path}/ConceptMap/$translate?system=${q(CS)}&code=S1`))).toEqual({ result: false, message: 'No mapping found for the code' });
  });

  it("tenant B cannot reach tenant A's resources by id, nor through a ValueSet of its own", async () => {
    expectError(await b.api.get(`${b.path}/ValueSet/${ids.vs}/$expand`), 404, 'RESOURCE_NOT_FOUND');
    expectError(await b.api.get(`${b.path}/CodeSystem/${ids.cs}/$validate-code?code=S1`), 404, 'RESOURCE_NOT_FOUND');
    expectError(await b.api.get(`${b.path}/CodeSystem/${ids.cs}/$subsumes?codeA=S1&codeB=S2`), 404, 'RESOURCE_NOT_FOUND');
    expectError(await b.api.get(`${b.path}/ConceptMap/${ids.cm}/$translate?system=${q(CS)}&code=S1`), 404, 'RESOURCE_NOT_FOUND');
    const importing = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ valueSet: [VS] }] } };
    const res = await b.api.post(`${b.path}/ValueSet/$expand`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'valueSet', resource: importing }] }));
    expectError(res, 422, 'TERMINOLOGY_VALUESET_UNKNOWN', 'ValueSet.compose.include[0].valueSet[0]');
  });

  it('tenant B gets its own resource when it stores one with the same url; A still gets its own', async () => {
    await create(b, { resourceType: 'CodeSystem', url: CS, status: 'active', content: 'complete', concept: [{ code: 'S1', display: 'B one' }] });
    expect(paramsOf(await b.api.get(`${b.path}/CodeSystem/$lookup?system=${q(CS)}&code=S1`)).display).toBe('B one');
    expect(paramsOf(await a.api.get(`${a.path}/CodeSystem/$lookup?system=${q(CS)}&code=S1`)).display).toBe('Secret one');
    expectError(await b.api.get(`${b.path}/CodeSystem/$lookup?system=${q(CS)}&code=S2`), 404, 'TERMINOLOGY_CODE_UNKNOWN', 'code');
  });
});
