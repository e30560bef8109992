// Tenant isolation of search (REST.md §8-§11, STYLE.md §3 "another tenant's resource is not-found"): every search
// form run on tenant A's base returns only tenant A's resources — parameters, chains, _has, _include, _revinclude,
// compartments, $everything, system search, _text/_content, paging cursors. Tenant B holds look-alike data that WOULD
// match, including resources with the very same ids (update-as-create), referencing those ids.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keyFor, keys, linkOf } from '../../helpers/search.js';

let server: TestServer;
let a: TestTenant;
let b: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);
const enc = encodeURIComponent;

/** The entries of a search on tenant A, asserting that each one is tenant A's (meta.source marks the tenant). */
async function onA(query: string, method: 'GET' | 'POST' = 'GET'): Promise<{ match: string[]; include: string[]; res: Response }> {
  const res =
    method === 'GET'
      ? await a.api.get(query.startsWith('http') ? new URL(query).pathname + new URL(query).search : `${a.path}/${query}`)
      : await a.api.post(`${a.path}/${query.split('?')[0]}/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(query.split('?')[1]);
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  const entries = (res.body.entry ?? []).filter((e: any) => e.search?.mode !== 'outcome');
  for (const e of entries) {
    const isRootOrg = e.resource.resourceType === 'Organization' && e.resource.id === a.slug;
    expect({ query, resource: `${e.resource.resourceType}/${e.resource.id}`, source: isRootOrg ? 'urn:A' : e.resource.meta?.source }).toEqual({ query, resource: `${e.resource.resourceType}/${e.resource.id}`, source: 'urn:A' });
    expect(e.fullUrl.startsWith(`${a.base}/`)).toBe(true);
  }
  const by = (mode: string) => entries.filter((e: any) => e.search.mode === mode).map((e: any) => keyOf(e.resource.id)).sort();
  return { match: by('match'), include: by('include'), res };
}

async function put(t: TestTenant, resource: Record<string, unknown>): Promise<void> {
  const res = await t.api.put(`${t.path}/${resource.resourceType}/${resource.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 201) throw new Error(`PUT failed ${res.status} ${JSON.stringify(res.body)}`);
}

/** The same data in both tenants, under the same ids; meta.source says whose copy it is. */
async function seed(t: TestTenant, source: 'urn:A' | 'urn:B'): Promise<Record<string, string>> {
  const meta = (extra: Record<string, unknown> = {}) => ({ meta: { source, tag: [{ system: 'urn:tags', code: 'twin' }], ...extra } });
  await put(t, { resourceType: 'Organization', id: 'shared-org', ...meta(), name: 'Twin Org' });
  await put(t, { resourceType: 'Practitioner', id: 'shared-dr', ...meta(), name: [{ family: 'Twindoc' }] });
  await put(t, {
    resourceType: 'Patient',
    id: 'shared-pat',
    ...meta(),
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Twin narrative</div>' },
    name: [{ family: 'Twin', given: ['Tüwin'] }],
    identifier: [{ system: 'urn:mrn', value: 'T-1' }],
    generalPractitioner: [{ reference: 'Practitioner/shared-dr' }],
    managingOrganization: { reference: 'Organization/shared-org' },
  });
  await put(t, { resourceType: 'Observation', id: 'shared-obs', ...meta(), status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: 'Patient/shared-pat' }, performer: [{ reference: 'Practitioner/shared-dr' }], valueQuantity: { value: 13 } });
  await put(t, { resourceType: 'Encounter', id: 'shared-enc', ...meta(), status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/shared-pat' } });
  await put(t, { resourceType: 'Provenance', id: 'shared-prov', ...meta(), target: [{ reference: 'Patient/shared-pat' }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: 'Practitioner/shared-dr' } }] });
  const own: Record<string, string> = {};
  own.obsX = (await create(t, { resourceType: 'Observation', ...meta(), status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: 'Patient/shared-pat' }, valueQuantity: { value: 14 } })).id;
  own.patX = (await create(t, { resourceType: 'Patient', ...meta(), name: [{ family: 'Twinx' }], identifier: [{ system: 'urn:mrn', value: 'T-2' }] })).id;
  return own;
}

beforeAll(async () => {
  server = await startServer();
  a = await newTenant(server, 'isoa');
  b = await newTenant(server, 'isob');
  Object.assign(ids, { org: 'shared-org', dr: 'shared-dr', pat: 'shared-pat', obs: 'shared-obs', enc: 'shared-enc', prov: 'shared-prov' });
  const ownA = await seed(a, 'urn:A');
  ids.obsX = ownA.obsX;
  ids.patX = ownA.patX;
  const ownB = await seed(b, 'urn:B');
  ids.bObsX = ownB.obsX;
  ids.bPatX = ownB.patX;
  // B-only look-alikes that would match A's searches, several pointing at the shared ids
  const meta = { source: 'urn:B', tag: [{ system: 'urn:tags', code: 'twin' }] };
  ids.bPat = (await create(b, { resourceType: 'Patient', meta, name: [{ family: 'Twin' }], identifier: [{ system: 'urn:mrn', value: 'T-1' }], text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Twin narrative</div>' } })).id;
  ids.bObs = (await create(b, { resourceType: 'Observation', meta, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }, { system: 'urn:b', code: 'B-ONLY' }] }, subject: { reference: 'Patient/shared-pat' }, performer: [{ reference: 'Practitioner/shared-dr' }] })).id;
  ids.bProv = (await create(b, { resourceType: 'Provenance', meta, target: [{ reference: 'Patient/shared-pat' }, { reference: 'Observation/shared-obs' }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: 'Practitioner/shared-dr' } }] })).id;
  ids.bCond = (await create(b, { resourceType: 'Condition', meta, subject: { reference: 'Patient/shared-pat' }, code: { text: 'Twin condition' } })).id;
});
afterAll(async () => server.close());

const A_PATIENTS = ['pat', 'patX'];
const A_OBS = ['obs', 'obsX'];

describe('type-level search on tenant A never returns tenant B resources', () => {
  it.each([
    ['Patient?family=twin', A_PATIENTS],
    ['Patient?name=tuwin', ['pat']],
    ['Patient?identifier=urn:mrn|T-1', ['pat']],
    ['Patient?identifier=urn:mrn|', A_PATIENTS],
    ['Patient?_id=shared-pat', ['pat']],
    [`Patient?_id=${'BPAT'}`, []],
    ['Patient?_tag=twin', A_PATIENTS],
    ['Patient?_source=urn:B', []],
    ['Patient?general-practitioner=Practitioner/shared-dr', ['pat']],
    ['Observation?subject=Patient/shared-pat', A_OBS],
    ['Observation?subject=shared-pat', A_OBS],
    ['Observation?code=urn:b|B-ONLY', []],
    ['Observation?value-quantity=ge13', A_OBS],
    ['Observation?code-value-quantity=http://loinc.org|718-7$gt12', A_OBS],
    ['Observation?performer=Practitioner/shared-dr', ['obs']],
    ['Observation?date:missing=true', A_OBS],
    ['Observation?code:not=B-ONLY', A_OBS],
    ['Condition?subject=Patient/shared-pat', []],
    ['Provenance?target=Patient/shared-pat', ['prov']],
  ])('%s', async (query, expected) => {
    expect((await onA(query.replace('BPAT', ids.bPat))).match).toEqual(keys(...expected));
  });

  it('an absolute reference to tenant B is matched against nothing', async () => {
    expect((await onA(`Observation?subject=${enc(`${b.base}/Patient/shared-pat`)}`)).match).toEqual([]);
  });

  it('tenant A cannot store a reference into tenant B (so includes cannot reach it)', async () => {
    const res = await a.api.post(`${a.path}/Observation`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `${b.base}/Patient/${ids.bPat}` } }));
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('REFERENCE_OTHER_TENANT');
  });
});

describe('chains, _has, _include, _revinclude', () => {
  it('chains', async () => {
    expect((await onA('Observation?subject:Patient.name=twin')).match).toEqual(keys(...A_OBS));
    expect((await onA('Observation?subject:Patient.identifier=urn:mrn|T-1')).match).toEqual(keys(...A_OBS));
    expect((await onA('Observation?subject:Patient.organization.name=twin')).match).toEqual(keys(...A_OBS));
    expect((await onA('Observation?performer:Practitioner.name=twindoc')).match).toEqual(['obs']);
    expect((await onA(`Observation?subject:Patient._id=${ids.bPat}`)).match).toEqual([]);
  });

  it('_has', async () => {
    expect((await onA('Patient?_has:Observation:subject:code=718-7')).match).toEqual(['pat']);
    expect((await onA('Patient?_has:Observation:subject:code=B-ONLY')).match).toEqual([]);
    expect((await onA('Patient?_has:Condition:subject:code:text=twin')).match).toEqual([]);
    expect((await onA('Practitioner?_has:Provenance:agent:target=Observation/shared-obs')).match).toEqual([]);
    expect((await onA('Practitioner?_has:Patient:general-practitioner:_has:Observation:subject:code=B-ONLY')).match).toEqual([]);
    expect((await onA('Organization?_has:Patient:organization:_has:Observation:subject:code=718-7')).match).toEqual(['org']);
  });

  it('_include and _include:iterate', async () => {
    expect(await onA('Observation?_id=shared-obs&_include=Observation:subject&_include=Observation:performer').then((r) => r.include)).toEqual(keys('pat', 'dr'));
    expect(await onA('Observation?_include=*&_include:iterate=Patient:organization').then((r) => r.include)).toEqual(keys('pat', 'dr', 'org'));
  });

  it('_revinclude and _revinclude:iterate', async () => {
    const r = await onA('Patient?_id=shared-pat&_revinclude=Observation:subject&_revinclude=Provenance:target&_revinclude=Condition:subject&_revinclude=Encounter:subject');
    expect(r.match).toEqual(['pat']);
    expect(r.include).toEqual(keys('obs', 'obsX', 'prov', 'enc'));
    const it2 = await onA('Patient?_id=shared-pat&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target');
    expect(it2.include).toEqual(keys('obs', 'obsX', 'prov'));
    expect((await onA('Practitioner?_id=shared-dr&_revinclude=*')).include).toEqual(keys('pat', 'obs', 'prov'));
  });
});

describe('compartments, $everything and system search', () => {
  it('Patient/shared-pat/[type] and /*', async () => {
    expect((await onA('Patient/shared-pat/Observation')).match).toEqual(keys(...A_OBS));
    expect((await onA('Patient/shared-pat/Condition')).match).toEqual([]);
    expect((await onA('Patient/shared-pat/*')).match.filter((k) => k !== 'pat')).toEqual(keys('obs', 'obsX', 'enc', 'prov'));
    expect((await onA(`Patient/${ids.bPat}/*`)).match).toEqual([]);
  });

  it('$everything', async () => {
    const r = await onA('Patient/shared-pat/$everything?_count=100');
    expect(r.match).toEqual(keys('pat', 'obs', 'obsX', 'enc', 'prov'));
    expect(r.include).toEqual(keys('dr', 'org'));
    expect((await a.api.get(`${a.path}/Patient/${ids.bPat}/$everything`)).status).toBe(404);
  });

  it('system search', async () => {
    expect((await onA('?_type=Patient,Observation&_tag=twin')).match).toEqual(keys(...A_PATIENTS, ...A_OBS));
    expect((await onA('?_id=shared-pat,shared-obs,shared-prov')).match).toEqual(keys('pat', 'obs', 'prov'));
    expect((await onA(`?_id=${ids.bPat},${ids.bObs},${ids.bProv},${ids.bCond}`)).match).toEqual([]);
    const all = await onA('?_lastUpdated=gt2000-01-01&_count=1000');
    expect(all.match.filter((k) => k !== `?${a.slug}`)).toEqual(keys('org', 'dr', 'pat', 'obs', 'enc', 'prov', 'obsX', 'patX'));
    expect((await onA('?_type=Patient,Observation&_tag=twin&_summary=count')).res.body.total).toBe(4);
  });

  it('_text and _content', async () => {
    expect((await onA('Patient?_text=twin')).match).toEqual(['pat']);
    expect((await onA('Patient?_content=twin')).match).toEqual(['pat']);
    expect((await onA('Patient?_content=twinx')).match).toEqual(['patX']);
    expect((await onA('?_content=twin&_count=100')).match).toEqual(keys('org', 'pat'));
    expect((await onA('?_text=narrative')).match).toEqual(['pat']);
    expect((await onA('Condition?_content=twin')).match).toEqual([]);
  });
});

describe('POST _search, totals and paging cursors', () => {
  it('POST _search', async () => {
    expect((await onA('Patient?family=twin&_revinclude=Provenance:target', 'POST')).match).toEqual(keys(...A_PATIENTS));
    expect((await onA('Observation?subject:Patient.name=twin', 'POST')).match).toEqual(keys(...A_OBS));
  });

  it('totals count only tenant A', async () => {
    expect((await onA('Patient?_summary=count')).res.body.total).toBe(2);
    expect((await onA('Observation?_total=accurate&_count=1')).res.body.total).toBe(2);
  });

  it('paging on A never crosses into B, and a cursor made on B gives only A resources on A', async () => {
    const seen: string[] = [];
    let url: string | undefined = 'Observation?_count=1';
    while (url) {
      const r = await onA(url);
      seen.push(...r.match);
      url = linkOf(r.res, 'next');
    }
    expect(seen.sort()).toEqual(keys(...A_OBS));
    const onB = await b.api.get(`${b.path}/Observation?_count=1`);
    const cursor = new URL(linkOf(onB, 'next')!).searchParams.get('_cursor')!;
    const r = await onA(`Observation?_count=10&_cursor=${cursor}`);
    for (const k of r.match) expect(A_OBS).toContain(k);
  });
});
