// A tenant's own SearchParameter resources (search.html#custom) and $reindex for data stored before them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;

const eye = (color: string) => ({ resourceType: 'Patient', name: [{ family: `Eye${color}` }], extension: [{ url: 'urn:example:eye-color', valueCode: color }] });
const eyeParam = {
  resourceType: 'SearchParameter',
  url: 'urn:example:SearchParameter/Patient-eye-color',
  name: 'EyeColor',
  status: 'active',
  description: 'Eye colour from an extension',
  code: 'eye-color',
  base: ['Patient'],
  type: 'token',
  expression: "Patient.extension.where(url = 'urn:example:eye-color').value",
};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'custom');
  other = await newTenant(server, 'custom-other');
});
afterAll(async () => server.close());

async function ids(tenant: TestTenant, query: string): Promise<string[]> {
  const res = await tenant.api.get(`${tenant.path}/Patient?${query}`).set('Prefer', 'handling=strict');
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: any) => e.resource.id).sort();
}

describe('custom SearchParameter resources', () => {
  let before: string;
  it('an unknown parameter is refused under strict handling until the tenant defines it', async () => {
    before = (await create(t, eye('blue'))).id;
    const res = await t.api.get(`${t.path}/Patient?eye-color=blue`).set('Prefer', 'handling=strict');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SEARCH_PARAM_UNKNOWN');
  });

  it('refuses definitions that cannot work: clashing code, bad expression, unknown base', async () => {
    for (const [bad, expr] of [
      [{ ...eyeParam, code: 'name' }, 'SearchParameter.code'],
      [{ ...eyeParam, expression: 'Patient.extension.where(' }, 'SearchParameter.expression'],
      [{ ...eyeParam, base: ['Spaceship'] }, 'SearchParameter.base'],
    ] as const) {
      const res = await t.api.post(`${t.path}/SearchParameter`).set('Content-Type', FHIR_JSON).send(JSON.stringify(bad));
      expect(res.status).toBe(400);
      expect(res.body.issue.flatMap((i: any) => i.expression ?? [])).toContain(expr);
    }
  });

  it('indexes new writes at once, and old data after $reindex, reporting progress', async () => {
    await create(t, eyeParam);
    // defined now: accepted, but the patient stored before is not indexed yet
    expect(await ids(t, 'eye-color=blue')).toEqual([]);
    const after = (await create(t, eye('blue'))).id;
    await create(t, eye('green'));
    expect(await ids(t, 'eye-color=blue')).toEqual([after]);

    const start = await t.api.post(`${t.path}/Patient/$reindex`).set('Content-Type', FHIR_JSON).send('{}');
    expect(start.status).toBe(202);
    const statusUrl = new URL(start.headers['content-location']);
    expect(statusUrl.pathname).toBe(`${t.path}/$reindex`);
    let status: any;
    for (let i = 0; i < 100; i++) {
      status = (await t.api.get(`${statusUrl.pathname}${statusUrl.search}`)).body;
      if (status.parameter.find((p: any) => p.name === 'status').valueCode !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const param = (n: string) => status.parameter.find((p: any) => p.name === n);
    expect(param('status').valueCode).toBe('completed');
    expect(param('processed').valueInteger).toBe(param('total').valueInteger);
    expect(param('progress').valueDecimal).toBe(100);
    expect(await ids(t, 'eye-color=blue')).toEqual([before, after].sort());
    expect(await ids(t, 'eye-color=green&eye-color:missing=false')).toHaveLength(1);
  });

  it("another tenant neither sees the parameter nor the job", async () => {
    await create(other, eye('blue'));
    const res = await other.api.get(`${other.path}/Patient?eye-color=blue`).set('Prefer', 'handling=strict');
    expect(res.status).toBe(400);
    const start = await t.api.post(`${t.path}/$reindex`).set('Content-Type', FHIR_JSON).send('{}');
    const job = new URL(start.headers['content-location']).searchParams.get('job');
    const peek = await other.api.get(`${other.path}/$reindex?job=${job}`);
    expect(peek.status).toBe(404);
  });

  it('retiring the parameter removes it from search', async () => {
    const sp = (await t.api.get(`${t.path}/SearchParameter?url=${encodeURIComponent(eyeParam.url)}`)).body.entry[0].resource;
    const put = await t.api.put(`${t.path}/SearchParameter/${sp.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...sp, status: 'retired' }));
    expect(put.status).toBe(200);
    const res = await t.api.get(`${t.path}/Patient?eye-color=blue`).set('Prefer', 'handling=strict');
    expect(res.status).toBe(400);
  });
});
