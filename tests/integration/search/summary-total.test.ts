// Result shaping (search.html#summary, #elements, #total; REST.md §10): _summary=true|text|data|count|false,
// _elements (top-level, mandatory elements kept, SUBSETTED tag), _total=none|estimate|accurate, _count limits.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

async function get(query: string): Promise<Response> {
  const res = await t.api.get(`${t.path}/${query}`);
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}
const firstResource = (res: Response) => res.body.entry[0].resource;
const isSubsetted = (r: any) => (r.meta?.tag ?? []).some((tag: any) => tag.code === 'SUBSETTED' && tag.system === 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue');

const FULL = {
  resourceType: 'Patient',
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ann Summary</div>' },
  identifier: [{ system: 'urn:mrn', value: 'S-1' }],
  active: true,
  name: [{ family: 'Summary', given: ['Ann'] }],
  gender: 'female',
  birthDate: '1970-01-01',
  maritalStatus: { text: 'Married' },
  communication: [{ language: { text: 'English' } }],
  contact: [{ name: { family: 'Contact' } }],
};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'ssum');
  ids.full = (await create(t, FULL)).id;
  for (let i = 0; i < 4; i++) await create(t, { resourceType: 'Patient', name: [{ family: `Other${i}` }], gender: 'male' });
  ids.obs = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.full}` }, valueString: 'v', note: [{ text: 'n' }] })).id;
});
afterAll(async () => server.close());

describe('_summary', () => {
  it('true: summary elements only, SUBSETTED', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_summary=true`));
    expect(Object.keys(r).sort()).toEqual(['active', 'birthDate', 'gender', 'id', 'identifier', 'meta', 'name', 'resourceType']);
    expect(isSubsetted(r)).toBe(true);
    const o = firstResource(await get(`Observation?_id=${ids.obs}&_summary=true`));
    expect(o.note).toBeUndefined();
    expect(o.status).toBe('final');
    expect(o.valueString).toBe('v');
  });

  it('text: text, id, meta and mandatory elements', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_summary=text`));
    expect(Object.keys(r).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    expect(isSubsetted(r)).toBe(true);
    const o = firstResource(await get(`Observation?_id=${ids.obs}&_summary=text`));
    expect(o.status).toBe('final'); // mandatory
    expect(o.code).toEqual({ text: 'x' }); // mandatory
    expect(o.valueString).toBeUndefined();
  });

  it('data: everything but the narrative', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_summary=data`));
    const { text: _t, meta: _m, id: _i, ...rest } = { ...FULL, id: ids.full, meta: {} };
    expect(r.text).toBeUndefined();
    expect(r).toMatchObject(rest);
    expect(isSubsetted(r)).toBe(true);
  });

  it('false: the whole resource, not SUBSETTED', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_summary=false`));
    expect(r).toMatchObject(FULL);
    expect(isSubsetted(r)).toBe(false);
  });

  it('count: a Bundle with the total and no entries', async () => {
    const res = await get('Patient?_summary=count');
    expect(res.body.total).toBe(5);
    expect(res.body.entry).toBeUndefined();
    expect(res.body.link.map((l: any) => l.relation)).not.toContain('next');
    expect((await get('Patient?gender=male&_summary=count')).body.total).toBe(4);
    expect((await get('Patient?gender=male&_summary=count&_count=1')).body.total).toBe(4);
  });

  it('answers 400 to an unknown _summary value', async () => {
    const res = await t.api.get(`${t.path}/Patient?_summary=some`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('_summary');
  });
});

describe('_elements', () => {
  it('keeps the listed top-level elements plus id, meta and mandatory ones, SUBSETTED', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_elements=name,gender`));
    expect(Object.keys(r).sort()).toEqual(['gender', 'id', 'meta', 'name', 'resourceType']);
    expect(isSubsetted(r)).toBe(true);
    const o = firstResource(await get(`Observation?_id=${ids.obs}&_elements=subject`));
    expect(Object.keys(o).sort()).toEqual(['code', 'id', 'meta', 'resourceType', 'status', 'subject']);
  });

  it('accepts Type.element spellings and ignores unknown names', async () => {
    const r = firstResource(await get(`Patient?_id=${ids.full}&_elements=Patient.birthDate,nonsense`));
    expect(Object.keys(r).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
  });

  it('is kept in the self and next links', async () => {
    const res = await get('Patient?_elements=name&_count=2');
    for (const rel of ['self', 'next']) {
      expect(new URL(res.body.link.find((l: any) => l.relation === rel).url).searchParams.get('_elements')).toBe('name');
    }
  });
});

describe('_total', () => {
  it('accurate: the count of all matches on every page', async () => {
    const res = await get('Patient?_total=accurate&_count=2');
    expect(res.body.total).toBe(5);
    expect(res.body.entry).toHaveLength(2);
  });

  it('estimate: a non-negative number', async () => {
    const res = await get('Patient?_total=estimate&_count=2');
    expect(Number.isInteger(res.body.total)).toBe(true);
    expect(res.body.total).toBeGreaterThanOrEqual(0);
  });

  it('none: no total while further pages follow', async () => {
    const res = await get('Patient?_total=none&_count=2');
    expect(res.body.total).toBeUndefined();
    expect(res.body.entry).toHaveLength(2);
  });

  it('answers 400 to another _total value', async () => {
    const res = await t.api.get(`${t.path}/Patient?_total=some`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('_total');
  });
});

describe('_count', () => {
  it('never returns more than requested, and caps at the server maximum', async () => {
    expect((await get('Patient?_count=3')).body.entry).toHaveLength(3);
    expect((await get('Patient?_count=1')).body.entry).toHaveLength(1);
    const big = await get('Patient?_count=100000');
    expect(big.body.entry).toHaveLength(5);
    expect(Number(new URL(big.body.link[0].url).searchParams.get('_count'))).toBeLessThanOrEqual(1000);
  });
});
