// search basics (http.html#search, search.html; REST.md §7-§9): token, string, reference, date, _id, paging,
// unknown parameters (lenient/strict) and POST [type]/_search.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'srch');
  const people = [
    { key: 'muller', resourceType: 'Patient', name: [{ family: 'Müller', given: ['Jürgen'] }], gender: 'male', birthDate: '1980-02-03', identifier: [{ system: 'urn:sys:a', value: 'M-1' }] },
    { key: 'mullins', resourceType: 'Patient', name: [{ family: 'Mullins', given: ['Ann'] }], gender: 'female', birthDate: '1980-06-15', identifier: [{ system: 'urn:sys:b', value: 'M-1' }] },
    { key: 'ng', resourceType: 'Patient', name: [{ family: 'Ng', given: ['Bo'] }], gender: 'female', birthDate: '1975', identifier: [{ value: 'M-1' }] },
    { key: 'young', resourceType: 'Patient', name: [{ family: 'Young', given: ['Cy'] }], gender: 'other', birthDate: '2001-12-31' },
  ];
  for (const { key, ...p } of people) ids[key] = (await create(t, p)).id;
  const obs = (key: string, subject: string, system: string, code: string, effective: string) => ({
    key,
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system, code }] },
    subject: { reference: subject },
    effectiveDateTime: effective,
  });
  for (const { key, ...o } of [
    obs('o1', `Patient/${ids.muller}`, 'http://loinc.org', '29463-7', '2020-01-10T10:00:00Z'),
    obs('o2', `Patient/${ids.muller}`, 'http://loinc.org', '8302-2', '2020-01-11T10:00:00Z'),
    obs('o3', `Patient/${ids.ng}`, 'http://snomed.info/sct', '29463-7', '2021-05-01T00:00:00Z'),
  ]) {
    ids[key] = (await create(t, o)).id;
  }
  const deleted = await create(t, { resourceType: 'Patient', name: [{ family: 'Mulligan' }], gender: 'male' });
  ids.deleted = deleted.id;
  await t.api.delete(`${t.path}/Patient/${deleted.id}`);
});
afterAll(async () => server.close());

/** Ids of the matches (search.mode=match), sorted. */
function matchIds(res: Response): string[] {
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
  return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();
}

const search = (query: string) => t.api.get(`${t.path}/${query}`);
const idsOf = (...keys: string[]) => keys.map((k) => ids[k]).sort();

function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0].code).toBe(issueCode);
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  expect(res.text).not.toMatch(/\n\s+at |node_modules/);
}

describe('token (search.html#token)', () => {
  it('matches system|code, code in any system, |code without system and system| for any code', async () => {
    expect(matchIds(await search('Observation?code=http://loinc.org|29463-7'))).toEqual(idsOf('o1'));
    expect(matchIds(await search('Observation?code=29463-7'))).toEqual(idsOf('o1', 'o3'));
    expect(matchIds(await search('Observation?code=http://loinc.org|'))).toEqual(idsOf('o1', 'o2'));
    expect(matchIds(await search('Observation?code=http://other.org|29463-7'))).toEqual([]);
    expect(matchIds(await search('Patient?identifier=M-1'))).toEqual(idsOf('muller', 'mullins', 'ng'));
    expect(matchIds(await search('Patient?identifier=urn:sys:a|M-1'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?identifier=|M-1'))).toEqual(idsOf('ng'));
  });

  it('ORs comma-separated values and ANDs repeated parameters', async () => {
    expect(matchIds(await search('Patient?gender=male,other'))).toEqual(idsOf('muller', 'young'));
    expect(matchIds(await search('Patient?gender=female&identifier=urn:sys:b|M-1'))).toEqual(idsOf('mullins'));
    expect(matchIds(await search('Patient?gender:not=female'))).toEqual(idsOf('muller', 'young'));
  });

  it('never finds deleted resources', async () => {
    expect(matchIds(await search('Patient?gender=male'))).toEqual(idsOf('muller'));
    expect(matchIds(await search(`Patient?_id=${ids.deleted}`))).toEqual([]);
  });
});

describe('string (search.html#string)', () => {
  it('matches case- and accent-insensitive prefixes: "muller" finds Müller', async () => {
    expect(matchIds(await search('Patient?family=muller'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?family=MÜLL'))).toEqual(idsOf('muller', 'mullins'));
    expect(matchIds(await search('Patient?family=MÜLLE'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?family=mul'))).toEqual(idsOf('muller', 'mullins'));
    expect(matchIds(await search(`Patient?family=${encodeURIComponent('müll')}`))).toEqual(idsOf('muller', 'mullins'));
    expect(matchIds(await search(`Patient?family=${encodeURIComponent('müller')}`))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?name=jurgen'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?family=uller'))).toEqual([]);
  });

  it(':exact is case- and accent-sensitive and whole-value; :contains matches anywhere', async () => {
    expect(matchIds(await search(`Patient?family:exact=${encodeURIComponent('Müller')}`))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?family:exact=Muller'))).toEqual([]);
    expect(matchIds(await search('Patient?family:exact=Mül'))).toEqual([]);
    expect(matchIds(await search('Patient?family:contains=LL'))).toEqual(idsOf('muller', 'mullins'));
  });

  it('treats LIKE wildcards in the value literally', async () => {
    expect(matchIds(await search('Patient?family=%25'))).toEqual([]);
    expect(matchIds(await search('Patient?family=M_ll'))).toEqual([]);
  });
});

describe('reference (search.html#reference)', () => {
  it('matches Type/id, a bare id, the :Type modifier and an absolute URL on this base', async () => {
    expect(matchIds(await search(`Observation?subject=Patient/${ids.muller}`))).toEqual(idsOf('o1', 'o2'));
    expect(matchIds(await search(`Observation?subject=${ids.muller}`))).toEqual(idsOf('o1', 'o2'));
    expect(matchIds(await search(`Observation?subject:Patient=${ids.ng}`))).toEqual(idsOf('o3'));
    expect(matchIds(await search(`Observation?subject=${encodeURIComponent(`${t.base}/Patient/${ids.ng}`)}`))).toEqual(idsOf('o3'));
    expect(matchIds(await search(`Observation?patient=Patient/${ids.muller}`))).toEqual(idsOf('o1', 'o2'));
    expect(matchIds(await search('Observation?subject=Patient/nobody'))).toEqual([]);
  });
});

describe('date prefixes (search.html#prefix)', () => {
  it('eq by precision, ne, ge and le', async () => {
    expect(matchIds(await search('Patient?birthdate=1980-02-03'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?birthdate=eq1980-02-03'))).toEqual(idsOf('muller'));
    expect(matchIds(await search('Patient?birthdate=1980'))).toEqual(idsOf('muller', 'mullins'));
    expect(matchIds(await search('Patient?birthdate=1980-06'))).toEqual(idsOf('mullins'));
    expect(matchIds(await search('Patient?birthdate=ne1980-02-03'))).toEqual(idsOf('mullins', 'ng', 'young'));
    expect(matchIds(await search('Patient?birthdate=ge1980-02-03'))).toEqual(idsOf('muller', 'mullins', 'young'));
    expect(matchIds(await search('Patient?birthdate=le1980-02-03'))).toEqual(idsOf('muller', 'ng'));
    expect(matchIds(await search('Patient?birthdate=ge1980&birthdate=le1980-12-31'))).toEqual(idsOf('muller', 'mullins'));
  });

  // gt, lt, sa, eb and ap bind only one end of the searched range (or neither): regression for the 500 these gave
  // when dateCondition bound both ends and PostgreSQL could not type the unused parameter (42P18).
  const oneSided: [string, string[]][] = [
    ['Patient?birthdate=gt1980-02-03', ['mullins', 'young']],
    ['Patient?birthdate=lt1980-02-03', ['ng']],
    ['Patient?birthdate=sa1980-12-31', ['young']],
    ['Patient?birthdate=eb1980-01-01', ['ng']],
    ['Patient?birthdate=ge1980&birthdate=lt1981', ['muller', 'mullins']],
    ['Patient?_lastUpdated=gt2000-01-01', ['muller', 'mullins', 'ng', 'young']],
    ['Patient?_lastUpdated=lt2000-01-01', []],
  ];
  it.each(oneSided)('%s', async (query, expected) => {
    expect(matchIds(await search(query))).toEqual(idsOf(...expected));
  });

  it('ap matches values near the searched date', async () => {
    const found = matchIds(await search('Patient?birthdate=ap1980-02-03'));
    expect(found).toEqual(expect.arrayContaining(idsOf('muller', 'mullins')));
    expect(found).not.toContain(ids.young);
  });

  it('compares dateTimes with zones', async () => {
    expect(matchIds(await search(`Observation?date=${encodeURIComponent('2020-01-10T10:00:00Z')}`))).toEqual(idsOf('o1'));
    expect(matchIds(await search(`Observation?date=${encodeURIComponent('2020-01-10T12:00:00+02:00')}`))).toEqual(idsOf('o1'));
    expect(matchIds(await search('Observation?date=2020-01'))).toEqual(idsOf('o1', 'o2'));
    expect(matchIds(await search('Observation?date=ge2021'))).toEqual(idsOf('o3'));
  });

  it('answers 400 SEARCH_PARAM_INVALID to a malformed date or an unknown prefix', async () => {
    expectOutcome(await search('Patient?birthdate=yesterday'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
    expectOutcome(await search('Patient?birthdate=xx1980'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
  });
});

describe('_id (search.html#id)', () => {
  it('matches one or several ids', async () => {
    expect(matchIds(await search(`Patient?_id=${ids.ng}`))).toEqual(idsOf('ng'));
    expect(matchIds(await search(`Patient?_id=${ids.ng},${ids.young},nobody`))).toEqual(idsOf('ng', 'young'));
    expect(matchIds(await search(`Patient?_id=${ids.o1}`))).toEqual([]);
  });
});

describe('paging (http.html#paging) and the Bundle', () => {
  it('pages with _count through next links, without duplicates or gaps, with fullUrl and self', async () => {
    const seen: string[] = [];
    let url: string | undefined = `${t.path}/Patient?_count=2`;
    const sizes: number[] = [];
    while (url) {
      const res: Response = await t.api.get(url);
      expect(res.status).toBe(200);
      const entries = res.body.entry ?? [];
      sizes.push(entries.length);
      for (const e of entries) {
        expect(e.fullUrl).toBe(`${t.base}/Patient/${e.resource.id}`);
        seen.push(e.resource.id);
      }
      expect(res.body.link.find((l: any) => l.relation === 'self').url).toMatch(/_count=2/);
      const next: string | undefined = res.body.link.find((l: any) => l.relation === 'next')?.url;
      url = next ? new URL(next).pathname + new URL(next).search : undefined;
      if (sizes.length > 10) throw new Error('paging does not end');
    }
    // 4 live Patients with _count=2: the last page is empty of a next link only once there is nothing left.
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(4);
    expect(sizes.every((n) => n <= 2)).toBe(true);
    expect(seen.sort()).toEqual(idsOf('muller', 'mullins', 'ng', 'young'));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('reports total when it is known, and _total=accurate on the first page', async () => {
    const all = await search('Patient');
    expect(all.body.total).toBe(4);
    const first = await search('Patient?_count=1&_total=accurate');
    expect(first.body.total).toBe(4);
    expect(first.body.entry).toHaveLength(1);
  });

  it('_count=0 answers no entries and no next link (it does not loop)', async () => {
    const res = await search('Patient?_count=0');
    expect(res.status).toBe(200);
    expect(res.body.entry).toBeUndefined();
    expect(res.body.link.map((l: any) => l.relation)).not.toContain('next');
    expect(res.body.total).toBe(4);
  });

  it('answers 400 to a _count or _offset that is not a sane integer', async () => {
    expectOutcome(await search('Patient?_count=abc'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
    expectOutcome(await search('Patient?_count=-1'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
    expectOutcome(await search('Patient?_offset=1e30'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
    expectOutcome(await search('Patient?_offset=99999999999'), 400, 'invalid', 'SEARCH_PARAM_INVALID');
  });

  it('answers an empty Bundle (no entry array) when nothing matches', async () => {
    const res = await search('Patient?family=zzz');
    expect(res.status).toBe(200);
    expect(res.body.entry).toBeUndefined();
    expect(res.body.total).toBe(0);
  });
});

describe('unknown parameters (search.html#errors: lenient vs Prefer: handling=strict)', () => {
  it('ignores an unknown parameter with an outcome entry, and leaves it out of the self link', async () => {
    const res = await search('Patient?family=ng&shoe-size=42');
    expect(matchIds(res)).toEqual(idsOf('ng'));
    const outcome = res.body.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcome.resource.resourceType).toBe('OperationOutcome');
    expect(outcome.resource.issue[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
    expect(outcome.resource.issue[0].diagnostics).toContain('shoe-size');
    const self = new URL(res.body.link.find((l: any) => l.relation === 'self').url);
    expect(self.searchParams.get('family')).toBe('ng');
    expect(self.searchParams.has('shoe-size')).toBe(false);
  });

  it('answers 400 SEARCH_PARAM_UNKNOWN with Prefer: handling=strict', async () => {
    const res = await t.api.get(`${t.path}/Patient?family=ng&shoe-size=42`).set('Prefer', 'handling=strict');
    expectOutcome(res, 400, 'not-supported', 'SEARCH_PARAM_UNKNOWN');
    expect(res.body.issue[0].diagnostics).toContain('shoe-size');
    const lenient = await t.api.get(`${t.path}/Patient?family=ng&shoe-size=42`).set('Prefer', 'handling=lenient');
    expect(matchIds(lenient)).toEqual(idsOf('ng'));
  });

  it('answers 400 to an unknown modifier', async () => {
    expectOutcome(await search('Patient?family:sounds-like=ng'), 400, 'invalid', 'SEARCH_MODIFIER_INVALID');
  });

  it('answers 404 to a search on an unknown type', async () => {
    expectOutcome(await search('Widget?name=x'), 404, 'not-supported', 'RESOURCE_TYPE_UNKNOWN');
  });
});

describe('POST [type]/_search (http.html#search: application/x-www-form-urlencoded)', () => {
  const postSearch = (body: string, query = '') => t.api.post(`${t.path}/Patient/_search${query}`).set('Content-Type', 'application/x-www-form-urlencoded').send(body);

  it('gives the same results as GET', async () => {
    for (const q of ['family=muller', 'gender=female', `birthdate=ge1980&birthdate=le1980-12-31`, 'identifier=urn%3Asys%3Ab%7CM-1', `_id=${ids.ng}`]) {
      const get = await search(`Patient?${q}`);
      const post = await postSearch(q);
      expect({ q, ids: matchIds(post) }).toEqual({ q, ids: matchIds(get) });
      expect(post.body.total).toBe(get.body.total);
    }
  });

  it('combines parameters from the URL and the body (AND)', async () => {
    expect(matchIds(await postSearch('gender=female', '?family=mul'))).toEqual(idsOf('mullins'));
  });

  it('pages with _count in the body; the next link is a GET that continues the same search', async () => {
    const first = await postSearch('_count=1&gender=female');
    expect(first.body.entry).toHaveLength(1);
    const next = first.body.link.find((l: any) => l.relation === 'next').url;
    const second = await t.api.get(new URL(next).pathname + new URL(next).search);
    expect(second.body.entry).toHaveLength(1);
    expect([first.body.entry[0].resource.id, second.body.entry[0].resource.id].sort()).toEqual(idsOf('mullins', 'ng'));
  });

  it('answers 415 to a JSON body and 400 to strict unknown parameters', async () => {
    const json = await t.api.post(`${t.path}/Patient/_search`).set('Content-Type', FHIR_JSON).send('{"family":"ng"}');
    expectOutcome(json, 415, 'not-supported', 'CONTENT_TYPE_UNSUPPORTED');
    const strict = await postSearch('shoe-size=42').set('Prefer', 'handling=strict');
    expectOutcome(strict, 400, 'not-supported', 'SEARCH_PARAM_UNKNOWN');
  });
});
