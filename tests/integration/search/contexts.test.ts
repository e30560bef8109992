// Search contexts (search.html#searchcontexts, REST.md §8, §11): POST [type]/_search (form) equals GET, system search
// GET [base]?_type=..., Patient compartment search Patient/[id]/[type] and Patient/[id]/* (the official
// CompartmentDefinition), and Patient/[id]/$everything with _since, _type, _count and paging.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { getOk, keyFor, keys, keysByMode, linkOf } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const get = (url: string) => getOk(t, url);
const byMode = (res: Response, mode: string) => keysByMode(ids, res, mode);
const found = async (query: string) => byMode(await get(query), 'match');

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sctx');
  ids.org = (await create(t, { resourceType: 'Organization', name: 'Clinic' })).id;
  ids.prac = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Prac' }] })).id;
  ids.pc1 = (await create(t, { resourceType: 'Patient', name: [{ family: 'One' }], identifier: [{ system: 'urn:x', value: 'shared' }], generalPractitioner: [{ reference: `Practitioner/${ids.prac}` }], managingOrganization: { reference: `Organization/${ids.org}` } })).id;
  ids.pc2 = (await create(t, { resourceType: 'Patient', name: [{ family: 'Two' }] })).id;
  ids.e1 = (await create(t, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${ids.pc1}` } })).id;
  const obs = (subject: string, code: string, performer?: string) => ({
    resourceType: 'Observation',
    status: 'final',
    identifier: [{ system: 'urn:x', value: 'shared' }],
    code: { coding: [{ system: 'urn:codes', code }] },
    subject: { reference: subject },
    ...(performer ? { performer: [{ reference: performer }] } : {}),
  });
  ids.oc1 = (await create(t, obs(`Patient/${ids.pc1}`, 'A'))).id;
  ids.oc2 = (await create(t, obs(`Patient/${ids.pc2}`, 'B', `Patient/${ids.pc1}`))).id;
  ids.oc3 = (await create(t, obs(`Patient/${ids.pc2}`, 'A', `Practitioner/${ids.prac}`))).id;
  ids.ai1 = (await create(t, { resourceType: 'AllergyIntolerance', patient: { reference: `Patient/${ids.pc1}` }, recorder: { reference: `Practitioner/${ids.prac}` }, code: { text: 'Peanut' } })).id;
  ids.cn1 = (await create(t, { resourceType: 'Condition', subject: { reference: `Patient/${ids.pc2}` }, asserter: { reference: `Patient/${ids.pc1}` }, code: { text: 'Flu' } })).id;
  ids.pv1 = (await create(t, { resourceType: 'Provenance', target: [{ reference: `Patient/${ids.pc1}` }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: `Practitioner/${ids.prac}` } }] })).id;
});
afterAll(async () => server.close());

describe('POST [type]/_search (form-encoded) equals GET', () => {
  const queries = [
    'code=A',
    `subject=Patient%2F${'PC1'}`,
    'subject%3APatient.name=one',
    '_has%3AObservation%3Asubject%3Acode=B',
    'identifier=urn%3Ax%7Cshared&code=A,B',
    `_id=OC1&_include=Observation%3Asubject&_revinclude=Provenance%3Atarget`,
    '_sort=-_lastUpdated&_count=2',
    '_summary=count',
    '_total=accurate&_count=1',
  ];
  it.each(queries)('%s', async (raw) => {
    const q = raw.replace('PC1', ids.pc1).replace('OC1', ids.oc1);
    const type = q.startsWith('_has') ? 'Patient' : 'Observation';
    const viaGet = await get(`${type}?${q}`);
    const viaPost = await t.api.post(`${t.path}/${type}/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(q);
    expect(viaPost.status).toBe(200);
    const order = (res: Response) => (res.body.entry ?? []).map((e: any) => `${e.search.mode}:${keyOf(e.resource.id)}`);
    expect(order(viaPost)).toEqual(order(viaGet));
    expect(viaPost.body.total).toBe(viaGet.body.total);
  });

  it('parameters split between the URL and the body are ANDed', async () => {
    const res = await t.api.post(`${t.path}/Observation/_search?code=A`).set('Content-Type', 'application/x-www-form-urlencoded').send(`subject=Patient%2F${ids.pc2}`);
    expect(byMode(res, 'match')).toEqual(keys('oc3'));
  });
});

describe('system search GET [base]?', () => {
  it('_type with a parameter common to all listed types', async () => {
    expect(await found('?_type=Patient,Observation&identifier=urn:x|shared')).toEqual(keys('pc1', 'oc1', 'oc2', 'oc3'));
    expect(await found(`?_type=Patient,Observation&_id=${ids.pc1},${ids.oc1},${ids.e1}`)).toEqual(keys('pc1', 'oc1'));
    expect(await found('?_type=Encounter&_id=' + ids.e1)).toEqual(keys('e1'));
    expect(await found('?_type=Patient&_type=Practitioner&_count=100')).toEqual(keys('pc1', 'pc2', 'prac'));
  });

  it('without _type, only parameters common to all resources, over every type', async () => {
    const all = await found(`?_id=${ids.pc1},${ids.oc2},${ids.prac}`);
    expect(all).toEqual(keys('pc1', 'oc2', 'prac'));
    const res = await get('?_lastUpdated=gt2000-01-01&_count=1000&_total=accurate');
    // every resource of the tenant, including its root Organization (id = the tenant slug)
    expect(res.body.total).toBe(Object.keys(ids).length + 1);
    expect(byMode(res, 'match')).toEqual(expect.arrayContaining(Object.keys(ids)));
  });

  it('a parameter not common to the listed types: an outcome warning (lenient), 400 (strict)', async () => {
    const lenient = await get('?_type=Patient,Observation&family=one');
    const outcome = lenient.body.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcome.resource.issue[0].diagnostics).toContain('family');
    const strict = await t.api.get(`${t.path}?_type=Patient,Observation&family=one`).set('Prefer', 'handling=strict');
    expect(strict.status).toBe(400);
    expect(strict.body.issue[0].diagnostics).toContain('family');
  });

  it('an unknown _type is an error, not a 500', async () => {
    const res = await t.api.get(`${t.path}?_type=Patient,Widget`);
    expect([400, 404]).toContain(res.status);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('pages across types with next links', async () => {
    const seen: string[] = [];
    let url: string | undefined = '?_type=Patient,Observation,Encounter&_count=2&_sort=_id';
    while (url) {
      const res = await get(url);
      seen.push(...byMode(res, 'match'));
      url = linkOf(res, 'next');
    }
    expect(seen.sort()).toEqual(keys('pc1', 'pc2', 'oc1', 'oc2', 'oc3', 'e1'));
  });
});

describe('Patient compartment search', () => {
  it.each([
    ['Observation', ['oc1', 'oc2']],
    ['Observation?code=A', ['oc1']],
    ['Observation?code=B', ['oc2']],
    ['Encounter', ['e1']],
    ['AllergyIntolerance', ['ai1']],
    ['Condition', ['cn1']],
    ['Provenance', ['pv1']],
  ])('Patient/pc1/%s', async (path, expected) => {
    expect(await found(`Patient/${ids.pc1}/${path}`)).toEqual(keys(...expected));
  });

  it('Patient/pc2/... uses its own membership', async () => {
    expect(await found(`Patient/${ids.pc2}/Observation`)).toEqual(keys('oc2', 'oc3'));
    expect(await found(`Patient/${ids.pc2}/Observation?code=A`)).toEqual(keys('oc3'));
    expect(await found(`Patient/${ids.pc2}/Condition`)).toEqual(keys('cn1'));
    expect(await found(`Patient/${ids.pc2}/Encounter`)).toEqual([]);
  });

  it('Patient/[id]/* returns every compartment type (other patients never)', async () => {
    const all = await found(`Patient/${ids.pc1}/*`);
    expect(all.filter((k) => k !== 'pc1')).toEqual(keys('e1', 'oc1', 'oc2', 'ai1', 'cn1', 'pv1'));
    expect(all).not.toContain('pc2');
    expect((await found(`Patient/${ids.pc2}/*`)).filter((k) => k !== 'pc2')).toEqual(keys('oc2', 'oc3', 'cn1'));
  });

  it('supports _include, _count paging and _summary=count inside the compartment', async () => {
    const inc = await get(`Patient/${ids.pc1}/Observation?_include=Observation:subject`);
    expect(byMode(inc, 'include')).toEqual(keys('pc1', 'pc2'));
    const first = await get(`Patient/${ids.pc1}/Observation?_count=1`);
    const second = await get(linkOf(first, 'next')!);
    expect(new URL(linkOf(first, 'next')!).pathname).toBe(`${t.path}/Patient/${ids.pc1}/Observation`);
    expect([...byMode(first, 'match'), ...byMode(second, 'match')].sort()).toEqual(keys('oc1', 'oc2'));
    expect((await get(`Patient/${ids.pc1}/*?_summary=count`)).body.total).toBeGreaterThanOrEqual(6);
  });

  it('an unknown patient has an empty compartment; a type outside the compartment is a 404', async () => {
    expect(await found('Patient/nobody/Observation')).toEqual([]);
    const res = await t.api.get(`${t.path}/Patient/${ids.pc1}/Organization`);
    expect(res.status).toBe(404);
    expect(res.body.issue[0].details.coding[0].code).toBe('COMPARTMENT_TYPE_INVALID');
  });
});

describe('Patient/[id]/$everything', () => {
  it('returns the patient, its compartment and the resources they reference', async () => {
    const res = await get(`Patient/${ids.pc1}/$everything?_count=100`);
    expect(byMode(res, 'match')).toEqual(keys('pc1', 'e1', 'oc1', 'oc2', 'ai1', 'cn1', 'pv1'));
    expect(byMode(res, 'include')).toEqual(keys('prac', 'org', 'pc2'));
  });

  it('_type restricts the types', async () => {
    const res = await get(`Patient/${ids.pc1}/$everything?_type=Observation,Encounter`);
    expect(byMode(res, 'match')).toEqual(keys('e1', 'oc1', 'oc2'));
    expect(byMode(res, 'include')).toEqual(keys('pc1', 'pc2'));
    expect(byMode(await get(`Patient/${ids.pc1}/$everything?_type=Patient`), 'match')).toEqual(['pc1']);
  });

  it('_since returns only what changed since then', async () => {
    await sleep(5);
    const since = new Date().toISOString();
    await sleep(5);
    const oc1 = (await get(`Observation/${ids.oc1}`)).body;
    const put = await t.api.put(`${t.path}/Observation/${ids.oc1}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...oc1, status: 'amended' }));
    expect(put.status).toBe(200);
    const res = await get(`Patient/${ids.pc1}/$everything?_since=${encodeURIComponent(since)}`);
    expect(byMode(res, 'match')).toEqual(['oc1']);
    expect(byMode(res, 'include')).toEqual(['pc1']);
  });

  it('_count limits the page size', async () => {
    const res = await get(`Patient/${ids.pc1}/$everything?_count=3`);
    expect(byMode(res, 'match')).toHaveLength(3);
    expect(linkOf(res, 'next')).toBeDefined();
  });

  // The next link carries `_include=*` (and `_lastUpdated` for _since) that $everything adds internally, and
  // everything.ts then rejects those parameters with 400 EVERYTHING_PARAM_INVALID.
  it('pages through every resource with the next links', async () => {
    const seen: string[] = [];
    let url: string | undefined = `Patient/${ids.pc1}/$everything?_count=3`;
    while (url) {
      const res = await get(url);
      seen.push(...byMode(res, 'match'));
      url = linkOf(res, 'next');
      if (seen.length > 20) break;
    }
    expect(seen.sort()).toEqual(keys('pc1', 'e1', 'oc1', 'oc2', 'ai1', 'cn1', 'pv1'));
  });

  it('pages with _since and _type through the next links', async () => {
    const first = await get(`Patient/${ids.pc1}/$everything?_since=2000-01-01&_type=Observation,Encounter&_count=1`);
    const next = linkOf(first, 'next');
    expect(next).toBeDefined();
    const second = await t.api.get(new URL(next!).pathname + new URL(next!).search);
    expect(second.status).toBe(200);
  });

  it('answers 404 for an unknown patient, 410 for a deleted one, 400 for an unsupported parameter', async () => {
    const unknown = await t.api.get(`${t.path}/Patient/nobody/$everything`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
    const gone = await create(t, { resourceType: 'Patient' });
    await t.api.delete(`${t.path}/Patient/${gone.id}`);
    expect((await t.api.get(`${t.path}/Patient/${gone.id}/$everything`)).status).toBe(410);
    const bad = await t.api.get(`${t.path}/Patient/${ids.pc1}/$everything?code=A`);
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0].details.coding[0].code).toBe('EVERYTHING_PARAM_INVALID');
  });
});
