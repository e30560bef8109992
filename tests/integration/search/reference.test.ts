// reference search (search.html#reference, REST.md §9): [id], [type]/[id], an absolute URL on this tenant's base,
// external URLs, the :[type] modifier, :identifier (Reference.identifier) and :missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keyFor, keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const EXTERNAL = 'http://other.example.org/fhir/Patient/ext-1';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sref');
  ids.pa = (await create(t, { resourceType: 'Patient', name: [{ family: 'Alpha' }] })).id;
  ids.pb = (await create(t, { resourceType: 'Patient', name: [{ family: 'Beta' }] })).id;
  ids.grp = (await create(t, { resourceType: 'Group', type: 'person', actual: true, name: 'Cohort' })).id;
  ids.dr = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Doc' }] })).id;
  const obs = (extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { text: 'ref-test' }, ...extra });
  const observations: Record<string, Record<string, unknown>> = {
    oa: obs({ subject: { reference: `Patient/${ids.pa}` } }),
    oaVersioned: obs({ subject: { reference: `Patient/${ids.pa}/_history/1` } }),
    ob: obs({ subject: { reference: `Patient/${ids.pb}` }, performer: [{ reference: `Practitioner/${ids.dr}` }, { reference: `Patient/${ids.pa}` }] }),
    og: obs({ subject: { reference: `Group/${ids.grp}` } }),
    oIdentifier: obs({ subject: { identifier: { system: 'urn:mrn', value: 'MRN-7' }, display: 'Somebody elsewhere' } }),
    oExternal: obs({ subject: { reference: EXTERNAL } }),
    oNone: obs({}),
  };
  for (const [key, body] of Object.entries(observations)) ids[key] = (await create(t, body)).id;
});
afterAll(async () => server.close());

describe('reference forms', () => {
  it('Type/id and a bare id', async () => {
    expect(await found(`Observation?subject=Patient/${ids.pa}`)).toEqual(keys('oa', 'oaVersioned'));
    expect(await found(`Observation?subject=${ids.pa}`)).toEqual(keys('oa', 'oaVersioned'));
    expect(await found(`Observation?subject=Group/${ids.grp}`)).toEqual(keys('og'));
    expect(await found(`Observation?subject=${ids.grp}`)).toEqual(keys('og'));
    expect(await found(`Observation?subject=Group/${ids.pa}`)).toEqual([]);
    expect(await found('Observation?subject=Patient/nobody')).toEqual([]);
  });

  it('a versioned search value matches the resource (R4: version-specific references match the resource)', async () => {
    expect(await found(`Observation?subject=Patient/${ids.pa}/_history/1`)).toEqual(keys('oa', 'oaVersioned'));
  });

  it('an absolute URL on this tenant base is the same as Type/id', async () => {
    expect(await found(`Observation?subject=${enc(`${t.base}/Patient/${ids.pa}`)}`)).toEqual(keys('oa', 'oaVersioned'));
    expect(await found(`Observation?subject=${enc(`${t.base}/Group/${ids.grp}`)}`)).toEqual(keys('og'));
  });

  it('an absolute URL elsewhere matches only that URL', async () => {
    expect(await found(`Observation?subject=${enc(EXTERNAL)}`)).toEqual(keys('oExternal'));
    expect(await found(`Observation?subject=ext-1`)).toEqual([]);
    expect(await found(`Observation?subject=${enc(`http://other.example.org/fhir/Patient/${ids.pa}`)}`)).toEqual([]);
  });

  it('OR over reference values', async () => {
    expect(await found(`Observation?subject=Patient/${ids.pa},Group/${ids.grp},${enc(EXTERNAL)}`)).toEqual(keys('oa', 'oaVersioned', 'og', 'oExternal'));
  });

  it('patient (subject restricted to Patient) and performer (several targets)', async () => {
    expect(await found(`Observation?patient=${ids.pa}`)).toEqual(keys('oa', 'oaVersioned'));
    expect(await found(`Observation?patient=Patient/${ids.pb}`)).toEqual(keys('ob'));
    expect(await found(`Observation?patient=${ids.grp}`)).toEqual([]);
    expect(await found(`Observation?performer=Practitioner/${ids.dr}`)).toEqual(keys('ob'));
    expect(await found(`Observation?performer=${ids.pa}`)).toEqual(keys('ob'));
  });
});

describe(':[type] modifier', () => {
  it('restricts a bare id to one target type', async () => {
    expect(await found(`Observation?subject:Patient=${ids.pa}`)).toEqual(keys('oa', 'oaVersioned'));
    expect(await found(`Observation?subject:Group=${ids.grp}`)).toEqual(keys('og'));
    expect(await found(`Observation?subject:Group=${ids.pa}`)).toEqual([]);
    expect(await found(`Observation?performer:Practitioner=${ids.dr}`)).toEqual(keys('ob'));
    expect(await found(`Observation?performer:Patient=${ids.pa}`)).toEqual(keys('ob'));
    expect(await found(`Observation?performer:Patient=${ids.dr}`)).toEqual([]);
  });
});

describe(':identifier modifier (Reference.identifier)', () => {
  it('matches system|value, value and |value like a token', async () => {
    expect(await found(`Observation?subject:identifier=${enc('urn:mrn|MRN-7')}`)).toEqual(keys('oIdentifier'));
    expect(await found('Observation?subject:identifier=MRN-7')).toEqual(keys('oIdentifier'));
    expect(await found(`Observation?subject:identifier=${enc('urn:mrn|')}`)).toEqual(keys('oIdentifier'));
    expect(await found(`Observation?subject:identifier=${enc('urn:other|MRN-7')}`)).toEqual([]);
    expect(await found(`Observation?subject:identifier=${enc('|MRN-7')}`)).toEqual([]);
    expect(await found(`Observation?subject:identifier=${ids.pa}`)).toEqual([]);
  });
});

describe(':missing on references', () => {
  it('subject:missing=false finds every Observation with a literal subject reference', async () => {
    expect(await found('Observation?subject:missing=false')).toEqual(expect.arrayContaining(['oa', 'oaVersioned', 'ob', 'og', 'oExternal']));
    expect(await found('Observation?subject:missing=false')).not.toContain('oNone');
    expect(await found('Observation?performer:missing=false')).toEqual(keys('ob'));
    expect(await found('Observation?performer:missing=true')).toEqual(keys('oa', 'oaVersioned', 'og', 'oIdentifier', 'oExternal', 'oNone'));
  });

  // search.html#missing: ":missing=true returns resources that do not have a value for the element". An
  // Observation whose subject is a Reference carrying only an identifier has a subject.
  it('subject:missing=true does not match an Observation whose subject is an identifier-only Reference', async () => {
    expect(await found('Observation?subject:missing=true')).toEqual(keys('oNone'));
  });
});

describe('stored absolute references to this tenant (references.html: an absolute URL on the server base is the same resource)', () => {
  beforeAll(async () => {
    ids.oAbsolute = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'ref-test' }, subject: { reference: `${t.base}/Patient/${ids.pb}` } })).id;
  });

  it('the write is accepted and the reference kept as sent', async () => {
    const res = await t.api.get(`${t.path}/Observation/${ids.oAbsolute}`);
    expect(res.body.subject.reference).toBe(`${t.base}/Patient/${ids.pb}`);
  });

  it('is found by Patient/id and by the bare id', async () => {
    expect(await found(`Observation?subject=Patient/${ids.pb}`)).toEqual(keys('ob', 'oAbsolute'));
    expect(await found(`Observation?subject=${ids.pb}`)).toEqual(keys('ob', 'oAbsolute'));
  });

  it('is found by searching for the very URL it stores', async () => {
    expect(await found(`Observation?subject=${enc(`${t.base}/Patient/${ids.pb}`)}`)).toEqual(keys('ob', 'oAbsolute'));
  });

  it('is followed by _include and counts for the Patient compartment', async () => {
    const inc = await t.api.get(`${t.path}/Observation?_id=${ids.oAbsolute}&_include=Observation:subject`);
    expect((inc.body.entry ?? []).filter((e: any) => e.search.mode === 'include').map((e: any) => keyOf(e.resource.id))).toEqual(['pb']);
    expect(await found(`Patient/${ids.pb}/Observation`)).toEqual(keys('ob', 'oAbsolute'));
  });
});
