// :missing=true|false on every parameter type (search.html#missing), and "search matches current versions only":
// an update makes the old values unsearchable, a delete removes the resource from every search form
// (parameters, chains, _has, _include, _revinclude, _text/_content, compartments).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keyFor, keys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);

async function entries(query: string): Promise<{ mode: string; key: string }[]> {
  const res = await t.api.get(`${t.path}/${query}`);
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body.entry ?? []).map((e: any) => ({ mode: e.search?.mode, key: keyOf(e.resource?.id) }));
}
async function found(query: string): Promise<string[]> {
  return (await entries(query)).filter((e) => e.mode === 'match').map((e) => e.key).sort();
}
async function included(query: string): Promise<string[]> {
  return (await entries(query)).filter((e) => e.mode === 'include').map((e) => e.key).sort();
}

const enc = encodeURIComponent;
const LOINC = 'http://loinc.org';

async function update(resource: Record<string, any>): Promise<void> {
  const res = await t.api.put(`${t.path}/${resource.resourceType}/${resource.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 200) throw new Error(`update failed: ${res.status} ${JSON.stringify(res.body)}`);
}
async function remove(type: string, key: string): Promise<void> {
  const res = await t.api.delete(`${t.path}/${type}/${ids[key]}`);
  if (res.status !== 200 && res.status !== 204) throw new Error(`delete failed: ${res.status}`);
}

describe(':missing on each parameter type', () => {
  beforeAll(async () => {
    server = await startServer();
    t = await newTenant(server, 'smis');
    ids.full = (await create(t, {
      resourceType: 'Patient',
      name: [{ family: 'Full' }],
      gender: 'female',
      birthDate: '1990-01-01',
      meta: { profile: ['http://example.org/StructureDefinition/p'] },
    })).id;
    ids.empty = (await create(t, { resourceType: 'Patient' })).id;
    ids.givenOnly = (await create(t, { resourceType: 'Patient', name: [{ given: ['Only'] }] })).id;
    ids.org = (await create(t, { resourceType: 'Organization', name: 'Org' })).id;
    ids.managed = (await create(t, { resourceType: 'Patient', managingOrganization: { reference: `Organization/${ids.org}` } })).id;
    const obs = (extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '718-7' }] }, ...extra });
    ids.oQty = (await create(t, obs({ valueQuantity: { value: 13, system: 'http://unitsofmeasure.org', code: 'g/dL' }, effectiveDateTime: '2024-01-01' }))).id;
    ids.oStr = (await create(t, obs({ valueString: 'x' }))).id;
  });
  afterAll(async () => server.close());

  it.each([
    ['Patient?family:missing=true', ['empty', 'givenOnly', 'managed']],
    ['Patient?family:missing=false', ['full']],
    ['Patient?name:missing=false', ['full', 'givenOnly']],
    ['Patient?gender:missing=true', ['empty', 'givenOnly', 'managed']],
    ['Patient?gender:missing=false', ['full']],
    ['Patient?birthdate:missing=true', ['empty', 'givenOnly', 'managed']],
    ['Patient?birthdate:missing=false', ['full']],
    ['Patient?organization:missing=false', ['managed']],
    ['Patient?organization:missing=true', ['full', 'empty', 'givenOnly']],
    ['Patient?_profile:missing=false', ['full']],
    ['Observation?value-quantity:missing=false', ['oQty']],
    ['Observation?value-quantity:missing=true', ['oStr']],
    ['Observation?date:missing=true', ['oStr']],
    ['Observation?code-value-quantity:missing=false', ['oQty']],
    ['Observation?code-value-quantity:missing=true', ['oStr']],
    ['Observation?value-string:missing=false', ['oStr']],
  ])('%s', async (query, expected) => {
    expect(await found(query)).toEqual(keys(...expected));
  });

  it('combines with other criteria', async () => {
    expect(await found('Patient?family:missing=true&given=only')).toEqual(keys('givenOnly'));
  });

  it('answers 400 to a :missing value other than true or false', async () => {
    const res = await t.api.get(`${t.path}/Patient?family:missing=yes`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].details.coding[0].code).toBe('SEARCH_PARAM_INVALID');
    expect(res.body.issue[0].diagnostics).toContain('family:missing');
  });
});

describe('superseded and deleted versions are never matched', () => {
  let old: Record<string, any>;
  let oldObs: Record<string, any>;
  beforeAll(async () => {
    server = await startServer();
    t = await newTenant(server, 'sver');
    ids.org = (await create(t, { resourceType: 'Organization', name: 'Old Org Name' })).id;
    ids.drOld = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Oldgp' }] })).id;
    ids.drNew = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Newgp' }] })).id;
    old = await create(t, {
      resourceType: 'Patient',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Formerly known as Oldname</div>' },
      meta: { tag: [{ system: 'urn:tags', code: 'old-tag' }] },
      name: [{ family: 'Oldname', given: ['Stays'] }],
      identifier: [{ system: 'urn:ids', value: 'old-id' }],
      birthDate: '1970-01-01',
      generalPractitioner: [{ reference: `Practitioner/${ids.drOld}` }],
      managingOrganization: { reference: `Organization/${ids.org}` },
    });
    ids.updated = old.id;
    oldObs = await create(t, {
      resourceType: 'Observation',
      status: 'preliminary',
      code: { coding: [{ system: LOINC, code: '718-7' }] },
      subject: { reference: `Patient/${ids.updated}` },
      valueQuantity: { value: 11, system: 'http://unitsofmeasure.org', code: 'g/dL' },
    });
    ids.obsUpdated = oldObs.id;
    ids.gone = (await create(t, { resourceType: 'Patient', name: [{ family: 'Gonename' }], identifier: [{ system: 'urn:ids', value: 'gone-id' }], generalPractitioner: [{ reference: `Practitioner/${ids.drOld}` }] })).id;
    ids.goneObs = (await create(t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '2345-7' }] }, subject: { reference: `Patient/${ids.updated}` } })).id;
    ids.goneProv = (await create(t, { resourceType: 'Provenance', target: [{ reference: `Patient/${ids.updated}` }], recorded: '2024-01-01T00:00:00Z', agent: [{ who: { reference: `Practitioner/${ids.drOld}` } }] })).id;

    await update({
      resourceType: 'Patient',
      id: ids.updated,
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Now known as Newname</div>' },
      meta: { tag: [{ system: 'urn:tags', code: 'new-tag' }] },
      name: [{ family: 'Newname', given: ['Stays'] }],
      identifier: [{ system: 'urn:ids', value: 'new-id' }],
      birthDate: '1980-06-06',
      generalPractitioner: [{ reference: `Practitioner/${ids.drNew}` }],
    });
    await update({ ...oldObs, status: 'final', valueQuantity: { value: 14, system: 'http://unitsofmeasure.org', code: 'g/dL' } });
    await update({ resourceType: 'Organization', id: ids.org, name: 'New Org Name' });
    await remove('Observation', 'goneObs');
    await remove('Provenance', 'goneProv');
    await remove('Patient', 'gone');
  });
  afterAll(async () => server.close());

  it('string, token, date and reference parameters see only the current version', async () => {
    expect(await found('Patient?family=oldname')).toEqual([]);
    expect(await found('Patient?family=newname')).toEqual(keys('updated'));
    expect(await found('Patient?given=stays')).toEqual(keys('updated'));
    expect(await found('Patient?identifier=urn:ids|old-id')).toEqual([]);
    expect(await found('Patient?identifier=urn:ids|new-id')).toEqual(keys('updated'));
    expect(await found('Patient?birthdate=1970-01-01')).toEqual([]);
    expect(await found('Patient?birthdate=1980-06-06')).toEqual(keys('updated'));
    expect(await found(`Patient?general-practitioner=Practitioner/${ids.drOld}`)).toEqual([]);
    expect(await found(`Patient?general-practitioner=Practitioner/${ids.drNew}`)).toEqual(keys('updated'));
    expect(await found(`Patient?organization=${ids.org}`)).toEqual([]);
    expect(await found('Patient?organization:missing=true')).toEqual(keys('updated'));
    expect(await found('Patient?_tag=old-tag')).toEqual([]);
    expect(await found('Patient?_tag=urn:tags|new-tag')).toEqual(keys('updated'));
  });

  it('quantity, composite and status of an updated Observation', async () => {
    expect(await found('Observation?value-quantity=11')).toEqual([]);
    expect(await found('Observation?value-quantity=14')).toEqual(keys('obsUpdated'));
    expect(await found(`Observation?code-value-quantity=${enc(`${LOINC}|718-7$lt12`)}`)).toEqual([]);
    expect(await found(`Observation?code-value-quantity=${enc(`${LOINC}|718-7$gt12`)}`)).toEqual(keys('obsUpdated'));
    expect(await found('Observation?status=preliminary')).toEqual([]);
  });

  it('_text and _content see only the current version', async () => {
    expect(await found('Patient?_text=formerly')).toEqual([]);
    expect(await found('Patient?_text=newname')).toEqual(keys('updated'));
    expect(await found('Patient?_content=oldname')).toEqual([]);
    expect(await found('Patient?_content=gonename')).toEqual([]);
    expect(await found('Patient?_content=newname')).toEqual(keys('updated'));
  });

  it('a deleted resource is found by no parameter, not even _id', async () => {
    expect(await found('Patient?family=gonename')).toEqual([]);
    expect(await found('Patient?identifier=gone-id')).toEqual([]);
    expect(await found(`Patient?_id=${ids.gone}`)).toEqual([]);
    expect(await found(`Observation?_id=${ids.goneObs}`)).toEqual([]);
    expect(await found('Observation?code=2345-7')).toEqual([]);
    expect(await found('Patient')).toEqual(keys('updated'));
  });

  it('chains follow the current version of the referenced resource', async () => {
    expect(await found('Observation?subject:Patient.name=oldname')).toEqual([]);
    expect(await found('Observation?subject:Patient.name=newname')).toEqual(keys('obsUpdated'));
    expect(await found('Patient?organization.name=old')).toEqual([]);
    expect(await found('Patient?general-practitioner:Practitioner.family=oldgp')).toEqual([]);
    expect(await found('Patient?general-practitioner:Practitioner.family=newgp')).toEqual(keys('updated'));
  });

  it('_has ignores deleted and superseded referrers', async () => {
    expect(await found('Patient?_has:Observation:subject:code=2345-7')).toEqual([]);
    expect(await found('Patient?_has:Observation:subject:status=preliminary')).toEqual([]);
    expect(await found('Patient?_has:Observation:subject:status=final')).toEqual(keys('updated'));
    expect(await found(`Practitioner?_has:Patient:general-practitioner:family=gonename`)).toEqual([]);
    expect(await found(`Practitioner?_has:Provenance:agent:recorded=2024-01-01`)).toEqual([]);
  });

  it('_include and _revinclude skip deleted resources and old references', async () => {
    expect(await included(`Observation?_id=${ids.obsUpdated}&_include=Observation:subject`)).toEqual(keys('updated'));
    expect(await included(`Patient?_id=${ids.updated}&_revinclude=Observation:subject`)).toEqual(keys('obsUpdated'));
    expect(await included(`Patient?_id=${ids.updated}&_revinclude=Provenance:target`)).toEqual([]);
    expect(await included(`Patient?_id=${ids.updated}&_include=Patient:general-practitioner`)).toEqual(keys('drNew'));
    expect(await included(`Practitioner?_id=${ids.drOld}&_revinclude=Patient:general-practitioner`)).toEqual([]);
  });

  it('the compartment holds only current members', async () => {
    expect(await found(`Patient/${ids.updated}/Observation`)).toEqual(keys('obsUpdated'));
    expect(await found(`Patient/${ids.updated}/*`)).toEqual(keys('obsUpdated'));
  });
});
