// _include / _revinclude (search.html#include, REST.md §10): Type:param, Type:param:Target, `*`, :iterate;
// included resources carry search.mode=include, appear once, are not counted in total and not limited by _count.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, keysByMode } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

async function get(query: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await t.api.get(`${t.path}/${query}`).set(headers);
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}
const byMode = (res: Response, mode: string) => keysByMode(ids, res, mode);
/** { match: [...], include: [...] } of a search */
async function result(query: string): Promise<{ match: string[]; include: string[] }> {
  const res = await get(query);
  const all = (res.body.entry ?? []).filter((e: any) => e.search?.mode !== 'outcome').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
  expect(new Set(all).size).toBe(all.length); // every resource appears once
  return { match: byMode(res, 'match'), include: byMode(res, 'include') };
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sinc');
  ids.org = (await create(t, { resourceType: 'Organization', name: 'Org' })).id;
  ids.dr1 = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'One' }] })).id;
  ids.dr2 = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Two' }] })).id;
  ids.p1 = (await create(t, { resourceType: 'Patient', name: [{ family: 'Pat' }], generalPractitioner: [{ reference: `Practitioner/${ids.dr1}` }], managingOrganization: { reference: `Organization/${ids.org}` } })).id;
  ids.p2 = (await create(t, { resourceType: 'Patient', name: [{ family: 'Other' }], generalPractitioner: [{ reference: `Practitioner/${ids.dr2}` }] })).id;
  const obs = (subject: string, performer: string[], code: string) => ({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: subject },
    // an empty array is not valid FHIR JSON (json.html): no performer leaves `performer` out
    ...(performer.length ? { performer: performer.map((reference) => ({ reference })) } : {}),
  });
  ids.o1 = (await create(t, obs(`Patient/${ids.p1}`, [`Practitioner/${ids.dr1}`], '718-7'))).id;
  ids.o2 = (await create(t, obs(`Patient/${ids.p1}`, [`Practitioner/${ids.dr2}`, `Organization/${ids.org}`], '2345-7'))).id;
  ids.o3 = (await create(t, obs(`Patient/${ids.p2}`, [], '718-7'))).id;
  ids.pv1 = (await create(t, { resourceType: 'Provenance', target: [{ reference: `Observation/${ids.o1}` }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: `Practitioner/${ids.dr1}` } }] })).id;
  ids.pv2 = (await create(t, { resourceType: 'Provenance', target: [{ reference: `Patient/${ids.p1}` }, { reference: `Observation/${ids.o2}` }], recorded: '2024-01-02T00:00:00Z', agent: [{ who: { reference: `Organization/${ids.org}` } }] })).id;
  ids.mr = (await create(t, {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { text: 'Aspirin' },
    subject: { reference: `Patient/${ids.p1}` },
    requester: { reference: `Practitioner/${ids.dr2}` },
  })).id;
});
afterAll(async () => server.close());

describe('_include', () => {
  it('Type:param includes the referenced resources once', async () => {
    expect(await result(`Observation?_id=${ids.o1},${ids.o2}&_include=Observation:subject`)).toEqual({ match: keys('o1', 'o2'), include: keys('p1') });
    expect(await result(`Observation?code=718-7&_include=Observation:patient`)).toEqual({ match: keys('o1', 'o3'), include: keys('p1', 'p2') });
  });

  it('Type:param:TargetType includes only that target type', async () => {
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:performer:Practitioner`)).toEqual({ match: keys('o2'), include: keys('dr2') });
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:performer:Organization`)).toEqual({ match: keys('o2'), include: keys('org') });
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:performer`)).toEqual({ match: keys('o2'), include: keys('dr2', 'org') });
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:subject:Group`)).toEqual({ match: keys('o2'), include: [] });
    expect(await result(`MedicationRequest?_include=MedicationRequest:requester:Practitioner`)).toEqual({ match: keys('mr'), include: keys('dr2') });
  });

  it('several _include parameters and a comma list add up', async () => {
    const expected = { match: keys('o2'), include: keys('p1', 'dr2', 'org') };
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:subject&_include=Observation:performer`)).toEqual(expected);
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:subject,Observation:performer`)).toEqual(expected);
  });

  it('Type:* and * include every reference', async () => {
    expect(await result(`Observation?_id=${ids.o2}&_include=Observation:*`)).toEqual({ match: keys('o2'), include: keys('p1', 'dr2', 'org') });
    expect(await result(`Observation?_id=${ids.o2}&_include=*`)).toEqual({ match: keys('o2'), include: keys('p1', 'dr2', 'org') });
    expect(await result(`Patient?_id=${ids.p1}&_include=*`)).toEqual({ match: keys('p1'), include: keys('dr1', 'org') });
  });

  it('a spec for another source type includes nothing', async () => {
    expect(await result(`Observation?_id=${ids.o1}&_include=Patient:general-practitioner`)).toEqual({ match: keys('o1'), include: [] });
  });

  it(':iterate follows references of included resources', async () => {
    expect(await result(`Observation?_id=${ids.o1}&_include=Observation:subject&_include:iterate=Patient:general-practitioner`)).toEqual({ match: keys('o1'), include: keys('p1', 'dr1') });
    expect(await result(`Observation?_id=${ids.o3}&_include=Observation:subject&_include:iterate=Patient:general-practitioner&_include:iterate=Patient:organization`)).toEqual({
      match: keys('o3'),
      include: keys('p2', 'dr2'),
    });
    expect(await result(`Observation?_id=${ids.o1}&_include=Observation:subject&_include:iterate=Patient:organization`)).toEqual({ match: keys('o1'), include: keys('p1', 'org') });
    // the STU3 spelling :recurse is read as :iterate
    expect(await result(`Observation?_id=${ids.o1}&_include=Observation:subject&_include:recurse=Patient:general-practitioner`)).toEqual({ match: keys('o1'), include: keys('p1', 'dr1') });
  });

  it('without :iterate, an include does not apply to included resources', async () => {
    expect(await result(`Observation?_id=${ids.o1}&_include=Observation:subject&_include=Patient:general-practitioner`)).toEqual({ match: keys('o1'), include: keys('p1') });
  });

  it('an included resource that is also a match appears once, as a match', async () => {
    expect(await result(`Patient?_id=${ids.p1},${ids.p2}&_revinclude=Observation:subject&_include=Observation:subject`)).toEqual({ match: keys('p1', 'p2'), include: keys('o1', 'o2', 'o3') });
  });
});

describe('_revinclude', () => {
  it('Type:param includes the resources that reference the matches', async () => {
    expect(await result(`Patient?_id=${ids.p1}&_revinclude=Observation:subject`)).toEqual({ match: keys('p1'), include: keys('o1', 'o2') });
    expect(await result(`Patient?_revinclude=Observation:subject`)).toEqual({ match: keys('p1', 'p2'), include: keys('o1', 'o2', 'o3') });
    expect(await result(`Practitioner?_id=${ids.dr2}&_revinclude=MedicationRequest:requester`)).toEqual({ match: keys('dr2'), include: keys('mr') });
    expect(await result(`Practitioner?_id=${ids.dr2}&_revinclude=Patient:general-practitioner`)).toEqual({ match: keys('dr2'), include: keys('p2') });
  });

  it('Provenance:target', async () => {
    expect(await result(`Patient?_id=${ids.p1}&_revinclude=Provenance:target`)).toEqual({ match: keys('p1'), include: keys('pv2') });
    expect(await result(`Observation?_id=${ids.o1},${ids.o2}&_revinclude=Provenance:target`)).toEqual({ match: keys('o1', 'o2'), include: keys('pv1', 'pv2') });
    expect(await result(`Observation?_id=${ids.o3}&_revinclude=Provenance:target`)).toEqual({ match: keys('o3'), include: [] });
  });

  it('_revinclude:iterate, and _include together with _revinclude', async () => {
    expect(await result(`Patient?_id=${ids.p1}&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target`)).toEqual({ match: keys('p1'), include: keys('o1', 'o2', 'pv1', 'pv2') });
    expect(await result(`Patient?_id=${ids.p2}&_revinclude=Observation:subject&_include=Patient:general-practitioner`)).toEqual({ match: keys('p2'), include: keys('o3', 'dr2') });
  });
});

describe('includes and the Bundle', () => {
  it('included entries have search.mode=include and a fullUrl, and do not count in total', async () => {
    const res = await get(`Patient?_id=${ids.p1}&_revinclude=Observation:subject&_total=accurate`);
    expect(res.body.total).toBe(1);
    for (const e of res.body.entry) {
      expect(e.fullUrl).toBe(`${t.base}/${e.resource.resourceType}/${e.resource.id}`);
      expect(['match', 'include']).toContain(e.search.mode);
    }
    expect(res.body.entry[0].search.mode).toBe('match');
  });

  it('includes are computed per page and do not eat into _count', async () => {
    const first = await get(`Observation?subject=${ids.p1}&_include=Observation:subject&_include=Observation:performer&_count=1&_total=accurate`);
    expect(first.body.total).toBe(2);
    expect(byMode(first, 'match')).toHaveLength(1);
    const next = first.body.link.find((l: any) => l.relation === 'next').url as string;
    const second = await t.api.get(new URL(next).pathname + new URL(next).search);
    expect(byMode(second, 'match')).toHaveLength(1);
    expect([...byMode(first, 'match'), ...byMode(second, 'match')].sort()).toEqual(keys('o1', 'o2'));
    for (const page of [first, second]) {
      const o = byMode(page, 'match')[0];
      expect(byMode(page, 'include')).toEqual(o === 'o1' ? keys('p1', 'dr1') : keys('p1', 'dr2', 'org'));
    }
  });

  it('_summary and _elements apply to included resources too', async () => {
    const res = await get(`Observation?_id=${ids.o1}&_include=Observation:subject&_elements=status`);
    const inc = res.body.entry.find((e: any) => e.search.mode === 'include').resource;
    expect(inc.resourceType).toBe('Patient');
    expect(inc.name).toBeUndefined();
    expect(inc.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });

  it('the self link keeps the include parameters', async () => {
    const res = await get(`Observation?_id=${ids.o1}&_include=Observation:subject&_revinclude=Provenance:target`);
    const self = new URL(res.body.link.find((l: any) => l.relation === 'self').url);
    expect(self.searchParams.getAll('_include')).toEqual(['Observation:subject']);
    expect(self.searchParams.getAll('_revinclude')).toEqual(['Provenance:target']);
  });
});

describe('invalid _include values', () => {
  it('lenient: an unknown include parameter is ignored and reported in an outcome entry', async () => {
    const res = await get(`Observation?_id=${ids.o1}&_include=Observation:nonsense`);
    expect(byMode(res, 'match')).toEqual(['o1']);
    expect(byMode(res, 'include')).toEqual([]);
    const outcome = res.body.entry.find((e: any) => e.search.mode === 'outcome').resource;
    expect(outcome.issue[0].severity).toBe('warning');
    expect(outcome.issue[0].diagnostics).toContain('Observation:nonsense');
  });

  // REST.md §8: "Either way the self link SHALL list only the parameters actually applied."
  it('lenient: the ignored include spec is left out of the self link', async () => {
    const res = await get(`Observation?_id=${ids.o1}&_include=Observation:nonsense,Observation:subject`);
    expect(byMode(res, 'include')).toEqual(['p1']);
    const self = new URL(res.body.link.find((l: any) => l.relation === 'self').url);
    expect(self.searchParams.getAll('_include')).toEqual(['Observation:subject']);
  });

  it('strict: an unknown or non-reference include parameter is a 400', async () => {
    for (const spec of ['Observation:nonsense', 'Observation:code']) {
      const res = await t.api.get(`${t.path}/Observation?_include=${spec}`).set('Prefer', 'handling=strict');
      expect({ spec, status: res.status }).toEqual({ spec, status: 400 });
      expect(res.body.issue[0].diagnostics).toContain(spec);
    }
  });

  it('a malformed spec or modifier is a 400', async () => {
    for (const q of ['_include=Observation', '_include=:subject', '_include=a:b:c:d', '_include:deep=Observation:subject']) {
      const res = await t.api.get(`${t.path}/Observation?${q}`);
      expect({ q, status: res.status, code: res.body.issue?.[0]?.details?.coding?.[0]?.code }).toEqual({ q, status: 400, code: 'SEARCH_PARAM_INVALID' });
    }
  });
});
