// ValueSet/$expand (valueset-operation-expand.html): concept lists, nested include/exclude, imported value sets,
// is-a / descendent-of / regex / = / in filters, text filter, offset/count paging with total, designations,
// activeOnly, type and instance level, and the refusals (too costly, bad paging, bad regex, unknown value set).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { codesOf, expectError } from './answers.js';

let server: TestServer;
let t: TestTenant;
let labVs: Record<string, any>;

const CS = 'http://lab.example.org/CodeSystem/orderables';
const BIG = 'http://lab.example.org/CodeSystem/big';
const q = encodeURIComponent;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'exp');
  await create(t, {
    resourceType: 'CodeSystem',
    url: CS,
    status: 'active',
    content: 'complete',
    property: [{ code: 'kind', type: 'code' }],
    concept: [
      {
        code: 'chem',
        display: 'Chemistry',
        concept: [
          { code: 'glu', display: 'Glucose', property: [{ code: 'kind', valueCode: 'analyte' }], designation: [{ language: 'fr', value: 'Glycémie' }] },
          { code: 'na', display: 'Sodium', property: [{ code: 'kind', valueCode: 'analyte' }] },
          { code: 'bmp', display: 'Basic metabolic panel', property: [{ code: 'kind', valueCode: 'panel' }], concept: [{ code: 'bmp-old', display: 'Old basic panel', property: [{ code: 'status', valueCode: 'retired' }] }] },
        ],
      },
      { code: 'hem', display: 'Hematology', concept: [{ code: 'hgb', display: 'Hemoglobin', property: [{ code: 'kind', valueCode: 'analyte' }] }, { code: 'cbc', display: 'Complete blood count', property: [{ code: 'kind', valueCode: 'panel' }] }] },
    ],
  });
  labVs = await create(t, {
    resourceType: 'ValueSet',
    url: 'http://lab.example.org/ValueSet/chemistry',
    status: 'active',
    compose: { include: [{ system: CS, filter: [{ property: 'concept', op: 'descendent-of', value: 'chem' }] }], exclude: [{ system: CS, concept: [{ code: 'na' }] }] },
  });
  await create(t, {
    resourceType: 'ValueSet',
    url: 'http://lab.example.org/ValueSet/analytes-and-gender',
    status: 'active',
    compose: {
      include: [{ valueSet: ['http://lab.example.org/ValueSet/chemistry'] }, { system: CS, filter: [{ property: 'kind', op: '=', value: 'analyte' }] }, { valueSet: ['http://hl7.org/fhir/ValueSet/administrative-gender'] }],
      exclude: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'unknown' }] }],
    },
  });
  const concept = Array.from({ length: 10_500 }, (_, i) => ({ code: `T${String(i).padStart(5, '0')}`, display: `${i % 2 ? 'Serum' : 'Urine'} test number ${i}` }));
  await create(t, { resourceType: 'CodeSystem', url: BIG, status: 'active', content: 'complete', concept });
  await create(t, { resourceType: 'ValueSet', url: 'http://lab.example.org/ValueSet/big', status: 'active', compose: { include: [{ system: BIG }] } });
}, 120_000);
afterAll(async () => server.close());

const expand = (query: string) => t.api.get(`${t.path}/ValueSet/$expand?${query}`);
const expandBody = (parameter: unknown[]) => t.api.post(`${t.path}/ValueSet/$expand`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Parameters', parameter }));
const local = (codes: string[]) => codes.map((c) => `${CS}|${c}`);

describe('$expand', () => {
  it('expands an R4 value set with total, offset and displays', async () => {
    const res = await expand('url=http://hl7.org/fhir/ValueSet/administrative-gender');
    expect(codesOf(res)).toEqual(['male', 'female', 'other', 'unknown'].map((c) => `http://hl7.org/fhir/administrative-gender|${c}`));
    expect(res.body).toMatchObject({ url: 'http://hl7.org/fhir/ValueSet/administrative-gender', expansion: { total: 4, offset: 0 } });
    expect(res.body.expansion.contains[0]).toEqual({ system: 'http://hl7.org/fhir/administrative-gender', version: '4.0.1', code: 'male', display: 'Male' });
    expect(res.body.expansion.identifier).toMatch(/^urn:uuid:/);
  });

  it('expands descendent-of with an exclude (by url and by id)', async () => {
    expect(codesOf(await expand(`url=${q(labVs.url)}`))).toEqual(local(['glu', 'bmp', 'bmp-old']));
    expect(codesOf(await t.api.get(`${t.path}/ValueSet/${labVs.id}/$expand`))).toEqual(local(['glu', 'bmp', 'bmp-old']));
  });

  it('expands imported value sets, property filters and excludes across systems', async () => {
    const codes = codesOf(await expand('url=http://lab.example.org/ValueSet/analytes-and-gender'));
    expect(codes).toEqual([...local(['glu', 'bmp', 'bmp-old', 'na', 'hgb']), ...['male', 'female', 'other'].map((c) => `http://hl7.org/fhir/administrative-gender|${c}`)]);
  });

  it('expands is-a, is-not-a, regex and in filters of a value set sent in the body', async () => {
    const vs = (filter: Record<string, string>[]) => ({ resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: CS, filter }] } });
    expect(codesOf(await expandBody([{ name: 'valueSet', resource: vs([{ property: 'concept', op: 'is-a', value: 'hem' }]) }]))).toEqual(local(['hem', 'hgb', 'cbc']));
    expect(codesOf(await expandBody([{ name: 'valueSet', resource: vs([{ property: 'code', op: 'regex', value: 'b.*' }]) }]))).toEqual(local(['bmp', 'bmp-old']));
    expect(codesOf(await expandBody([{ name: 'valueSet', resource: vs([{ property: 'concept', op: 'is-not-a', value: 'chem' }, { property: 'kind', op: 'exists', value: 'true' }]) }]))).toEqual(local(['hgb', 'cbc']));
    expect(codesOf(await expandBody([{ name: 'valueSet', resource: vs([{ property: 'concept', op: 'in', value: 'na,cbc' }]) }]))).toEqual(local(['na', 'cbc']));
  });

  it('narrows by a text filter, leaves inactive codes out with activeOnly, and adds designations on request', async () => {
    expect(codesOf(await expand(`url=${q(labVs.url)}&filter=basic`))).toEqual(local(['bmp', 'bmp-old']));
    const active = await expand(`url=${q(labVs.url)}&activeOnly=true`);
    expect(codesOf(active)).toEqual(local(['glu', 'bmp']));
    const res = await expand(`url=${q(labVs.url)}&includeDesignations=true&filter=gluc`);
    expect(res.body.expansion.contains).toEqual([{ system: CS, code: 'glu', display: 'Glucose', designation: [{ language: 'fr', value: 'Glycémie' }] }]);
    expect(res.body.expansion.parameter).toEqual(expect.arrayContaining([{ name: 'filter', valueString: 'gluc' }, { name: 'includeDesignations', valueBoolean: true }]));
  });

  it('pages a 10,500-concept value set with offset/count: every concept exactly once, total stable', async () => {
    const seen: string[] = [];
    for (let offset = 0; offset < 10_500; offset += 1000) {
      const res = await expand(`url=${q('http://lab.example.org/ValueSet/big')}&offset=${offset}&count=1000`);
      expect(res.body.expansion).toMatchObject({ total: 10_500, offset });
      seen.push(...codesOf(res));
    }
    expect(seen).toHaveLength(10_500);
    expect(new Set(seen).size).toBe(10_500);
    const urine = await expand(`url=${q('http://lab.example.org/ValueSet/big')}&filter=urine&offset=5000&count=500`);
    expect(urine.body.expansion).toMatchObject({ total: 5250, offset: 5000 });
    expect(codesOf(urine)).toHaveLength(250);
    expect(codesOf(await expand(`url=${q('http://lab.example.org/ValueSet/big')}&filter=${q('Number 4321')}`))).toEqual([`${BIG}|T04321`]);
    expect((await expand(`url=${q('http://lab.example.org/ValueSet/big')}&count=0`)).body.expansion).toMatchObject({ total: 10_500 });
  });

  it('refuses an expansion too large to list at once, and one that cannot be listed at all', async () => {
    expectError(await expand(`url=${q('http://lab.example.org/ValueSet/big')}`), 422, 'EXPAND_TOO_COSTLY', 'count');
    expect((await expand(`url=${q('http://lab.example.org/ValueSet/big')}`)).body.issue[0].code).toBe('too-costly');
    expectError(await expand('url=http://hl7.org/fhir/ValueSet/ucum-units'), 422, 'EXPAND_NOT_ENUMERABLE', 'ValueSet.compose.include[0].system');
  });

  it('rejects bad paging, an invalid regex, missing and unknown value sets', async () => {
    expectError(await expand(`url=${q(labVs.url)}&count=-1`), 400, 'PARAMETER_OUT_OF_RANGE', 'count');
    expectError(await expand(`url=${q(labVs.url)}&count=1000000`), 400, 'PARAMETER_OUT_OF_RANGE', 'count');
    expectError(await expand(`url=${q(labVs.url)}&offset=abc`), 400, 'PARAMETER_OUT_OF_RANGE', 'offset');
    expectError(await expandBody([{ name: 'url', valueUri: labVs.url }, { name: 'count', valueInteger: -5 }]), 400, 'PARAMETER_OUT_OF_RANGE', 'Parameters.parameter[1].valueInteger');
    const badRegex = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: CS, filter: [{ property: 'code', op: 'regex', value: '([a-z' }] }] } };
    expectError(await expandBody([{ name: 'valueSet', resource: badRegex }]), 400, 'TERMINOLOGY_FILTER_INVALID', 'ValueSet.compose.include[0].filter[0].value');
    const slowRegex = { ...badRegex, compose: { include: [{ system: CS, filter: [{ property: 'code', op: 'regex', value: '(a+)+$' }] }] } };
    expectError(await expandBody([{ name: 'valueSet', resource: slowRegex }]), 400, 'TERMINOLOGY_FILTER_INVALID', 'ValueSet.compose.include[0].filter[0].value');
    const badOp = { ...badRegex, compose: { include: [{ system: CS, filter: [{ property: 'kind', op: 'is-a', value: 'x' }] }] } };
    expectError(await expandBody([{ name: 'valueSet', resource: badOp }]), 400, 'TERMINOLOGY_FILTER_INVALID', 'ValueSet.compose.include[0].filter[0].op');
    expectError(await expand('filter=x'), 400, 'TERMINOLOGY_VALUESET_MISSING', 'url');
    expectError(await expand('url=http://nowhere.org/vs'), 404, 'TERMINOLOGY_VALUESET_UNKNOWN', 'url');
    expectError(await t.api.get(`${t.path}/ValueSet/nope/$expand`), 404, 'RESOURCE_NOT_FOUND');
    const unknownImport = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ valueSet: ['http://nowhere.org/vs'] }] } };
    expectError(await expandBody([{ name: 'valueSet', resource: unknownImport }]), 422, 'TERMINOLOGY_VALUESET_UNKNOWN', 'ValueSet.compose.include[0].valueSet[0]');
    const unknownSystem = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: 'http://nowhere.org/cs' }] } };
    expectError(await expandBody([{ name: 'valueSet', resource: unknownSystem }]), 422, 'TERMINOLOGY_SYSTEM_UNKNOWN', 'ValueSet.compose.include[0].system');
  });

  it('sees an edit of a value set at once (the cached expansion is keyed by version)', async () => {
    const vs = await create(t, { resourceType: 'ValueSet', url: 'http://lab.example.org/ValueSet/editable', status: 'active', compose: { include: [{ system: CS, concept: [{ code: 'glu' }] }] } });
    expect(codesOf(await expand('url=http://lab.example.org/ValueSet/editable'))).toEqual(local(['glu']));
    const edited = { ...vs, compose: { include: [{ system: CS, concept: [{ code: 'na' }] }] } };
    expect((await t.api.put(`${t.path}/ValueSet/${vs.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(edited))).status).toBe(200);
    expect(codesOf(await expand('url=http://lab.example.org/ValueSet/editable'))).toEqual(local(['na']));
  });
});
