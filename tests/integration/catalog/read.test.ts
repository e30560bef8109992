// The platform catalog, read (docs/catalog.md): the platform admins write Medication, ValueSet, CodeSystem, ConceptMap,
// StructureDefinition and SearchParameter resources through the `platform` tenant's own API; every tenant reads them
// alongside its own (read, vread, instance history, search with _include/_revinclude/chains), at its own base.
// A tenant's own entries stay its own; the platform's other types, and type/system history, stay walled off.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { matchIds, medication, newTag, platformTenant, RXNORM, send } from './helpers.js';

let server: TestServer;
let platform: TestTenant;
let a: TestTenant;
let b: TestTenant;
const tag = newTag();
const url = (kind: string) => `http://catalog.test/${tag}/${kind}`;
/** The platform's entries, by name. */
const ids: Record<string, string> = {};
let patientA: string;

beforeAll(async () => {
  server = await startServer();
  platform = await platformTenant(server);
  a = await newTenant(server, 'cat-a');
  b = await newTenant(server, 'cat-b');
  ids.med = (await create(platform, medication(tag, 'amox'))).id;
  ids.ingredient = (await create(platform, medication(tag, 'clav', 'Clavulanate'))).id;
  ids.combo = (await create(platform, { ...medication(tag, 'combo', 'Co-amoxiclav'), ingredient: [{ itemReference: { reference: `Medication/${ids.med}` } }, { itemReference: { reference: `Medication/${ids.ingredient}` } }] })).id;
  ids.codeSystem = (await create(platform, {
    resourceType: 'CodeSystem',
    url: url('CodeSystem/forms'),
    name: `Forms${tag}`,
    status: 'active',
    content: 'complete',
    concept: [{ code: 'cap', display: 'Capsule' }, { code: 'tab', display: 'Tablet' }],
  })).id;
  ids.valueSet = (await create(platform, { resourceType: 'ValueSet', url: url('ValueSet/forms'), name: `FormsVs${tag}`, status: 'active', compose: { include: [{ system: url('CodeSystem/forms') }] } })).id;
  ids.conceptMap = (await create(platform, { resourceType: 'ConceptMap', url: url('ConceptMap/forms'), name: `FormsMap${tag}`, status: 'active', sourceUri: url('ValueSet/forms') })).id;
  ids.profile = (await create(platform, {
    resourceType: 'StructureDefinition',
    url: url('StructureDefinition/catalog-medication'),
    name: `CatalogMedication${tag}`,
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'Medication',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Medication',
    derivation: 'constraint',
    differential: { element: [{ id: 'Medication.code', path: 'Medication.code', min: 1 }] },
  })).id;
  ids.searchParameter = (await create(platform, {
    resourceType: 'SearchParameter',
    url: url('SearchParameter/medication-form-text'),
    name: `FormText${tag}`,
    status: 'active',
    description: 'Medication form text',
    code: `form-text-${tag}`,
    base: ['Medication'],
    type: 'string',
    expression: 'Medication.form.text',
  })).id;
  // a platform resource of a type that is not in the catalog
  ids.patient = (await create(platform, { resourceType: 'Patient', name: [{ family: `Platform${tag}` }] })).id;
  patientA = (await create(a, { resourceType: 'Patient', name: [{ family: `Alpha${tag}` }] })).id;
});
afterAll(async () => server.close());

describe('every tenant reads the platform catalog', () => {
  it('reads a platform Medication by id, and vreads it, from any tenant (the body the platform stored)', async () => {
    const own = await platform.api.get(`${platform.path}/Medication/${ids.med}`);
    expect(own.status).toBe(200);
    for (const t of [a, b]) {
      const read = await t.api.get(`${t.path}/Medication/${ids.med}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(own.body);
      expect(read.headers.etag).toBe('W/"1"');
      const vread = await t.api.get(`${t.path}/Medication/${ids.med}/_history/1`);
      expect(vread.status).toBe(200);
      expect(vread.body).toEqual(own.body);
      expect((await t.api.get(`${t.path}/Medication/${ids.med}/_history/2`)).status).toBe(404);
    }
  });

  it.each([
    ['CodeSystem', () => `url=${encodeURIComponent(url('CodeSystem/forms'))}`, 'codeSystem'],
    ['ValueSet', () => `url=${encodeURIComponent(url('ValueSet/forms'))}`, 'valueSet'],
    ['ValueSet', () => `name=FormsVs${tag}`, 'valueSet'],
    ['ConceptMap', () => `url=${encodeURIComponent(url('ConceptMap/forms'))}`, 'conceptMap'],
    ['StructureDefinition', () => `url=${encodeURIComponent(url('StructureDefinition/catalog-medication'))}`, 'profile'],
    ['SearchParameter', () => `url=${encodeURIComponent(url('SearchParameter/medication-form-text'))}`, 'searchParameter'],
    ['Medication', () => `code=${encodeURIComponent(`${RXNORM}|amox-${tag}`)}`, 'med'],
    ['Medication', () => `code=clav-${tag}`, 'ingredient'],
  ])('searches %s?%s from both tenants, with fullUrls on the tenant base', async (type, query, key) => {
    for (const t of [a, b, platform]) {
      const res = await t.api.get(`${t.path}/${type}?${query()}`);
      expect(matchIds(res)).toEqual([ids[key]]);
      expect(res.body.total).toBe(1);
      expect(res.body.entry[0].fullUrl).toBe(`${t.base}/${type}/${ids[key]}`);
      expect((await t.api.get(`${t.path}/${type}/${ids[key]}`)).status).toBe(200);
    }
  });

  it('counts, sorts and pages catalog entries with the tenant own ones, without duplicates', async () => {
    const own = await create(a, medication(tag, 'amox', 'Clinic amoxicillin'));
    const query = `code=${RXNORM}|amox-${tag},${RXNORM}|clav-${tag}`;
    expect((await a.api.get(`${a.path}/Medication?${query}&_summary=count`)).body.total).toBe(3);
    expect((await b.api.get(`${b.path}/Medication?${query}&_summary=count`)).body.total).toBe(2);
    const seen: string[] = [];
    let next: string | undefined = `${a.path}/Medication?${query}&_sort=_id&_count=1`;
    while (next) {
      const page = await a.api.get(next);
      seen.push(...matchIds(page));
      const link = page.body.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      next = link ? link.slice(server.origin.length) : undefined;
    }
    expect(seen).toEqual([ids.med, ids.ingredient, own.id].sort());
  });

  it('a system search over every type is the tenant own data; naming a catalog type in _type brings the catalog in', async () => {
    const all = await b.api.get(`${b.path}?_lastUpdated=gt2000-01-01&_count=1000`);
    expect(all.status).toBe(200);
    expect(matchIds(all)).not.toContain(ids.med);
    const named = await b.api.get(`${b.path}?_type=Medication,Patient&_id=${ids.med}`);
    expect(named.status).toBe(200);
    expect(matchIds(named)).toEqual([ids.med]);
  });

  it('instance history of a catalog entry is the platform history; type and system history stay the tenant own', async () => {
    const h = await a.api.get(`${a.path}/Medication/${ids.med}/_history`);
    expect(h.status).toBe(200);
    expect(h.body.entry.map((e: any) => `${e.request.method} ${e.fullUrl} ${e.response.etag}`)).toEqual([`POST ${a.base}/Medication/${ids.med} W/"1"`]);
    const typeHistory = await a.api.get(`${a.path}/Medication/_history?_count=1000`);
    expect(JSON.stringify(typeHistory.body)).not.toContain(ids.med);
    const systemHistory = await b.api.get(`${b.path}/_history?_count=1000`);
    expect(JSON.stringify(systemHistory.body)).not.toContain(ids.med);
  });
});

describe('references to the catalog', () => {
  let request: string;

  beforeAll(async () => {
    const res = await send(a, 'post', 'MedicationRequest', {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationReference: { reference: `Medication/${ids.med}` },
      subject: { reference: `Patient/${patientA}` },
    });
    expect(res.status).toBe(201);
    request = res.body.id;
  });

  it('a tenant MedicationRequest may reference a platform Medication (the reference check finds it); a missing one is refused', async () => {
    const res = await send(a, 'post', 'MedicationRequest', {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationReference: { reference: 'Medication/no-such-catalog-entry' },
      subject: { reference: `Patient/${patientA}` },
    });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].expression).toEqual(['MedicationRequest.medicationReference.reference']);
  });

  it('_include=MedicationRequest:medication returns the platform Medication at the tenant base', async () => {
    const res = await a.api.get(`${a.path}/MedicationRequest?subject=Patient/${patientA}&_include=MedicationRequest:medication`);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => `${e.search.mode} ${e.fullUrl}`)).toEqual([
      `match ${a.base}/MedicationRequest/${request}`,
      `include ${a.base}/Medication/${ids.med}`,
    ]);
  });

  it('chains into the catalog (medication.code) and _has / _revinclude come back out of it, per tenant', async () => {
    expect(matchIds(await a.api.get(`${a.path}/MedicationRequest?medication.code=amox-${tag}`))).toEqual([request]);
    expect(matchIds(await b.api.get(`${b.path}/MedicationRequest?medication.code=amox-${tag}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Medication?_has:MedicationRequest:medication:status=active&code=amox-${tag}`))).toEqual([ids.med]);
    expect(matchIds(await b.api.get(`${b.path}/Medication?_has:MedicationRequest:medication:status=active&code=amox-${tag}`))).toEqual([]);
    const rev = await a.api.get(`${a.path}/Medication?_id=${ids.med}&_revinclude=MedicationRequest:medication`);
    expect(rev.body.entry.map((e: any) => `${e.search.mode} ${e.resource.resourceType}/${e.resource.id}`)).toEqual([`match Medication/${ids.med}`, `include MedicationRequest/${request}`]);
    const revB = await b.api.get(`${b.path}/Medication?_id=${ids.med}&_revinclude=MedicationRequest:medication`);
    expect(revB.body.entry.map((e: any) => e.resource.id)).toEqual([ids.med]);
  });

  it('includes between catalog entries follow the catalog own references (ingredients, both directions)', async () => {
    const fwd = await a.api.get(`${a.path}/Medication?_id=${ids.combo}&_include=Medication:ingredient`);
    expect(fwd.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.id).sort()).toEqual([ids.med, ids.ingredient].sort());
    const rev = await b.api.get(`${b.path}/Medication?_id=${ids.ingredient}&_revinclude=Medication:ingredient`);
    expect(rev.body.entry.map((e: any) => `${e.search.mode} ${e.resource.id}`)).toEqual([`match ${ids.ingredient}`, `include ${ids.combo}`]);
    expect(matchIds(await a.api.get(`${a.path}/Medication?ingredient=Medication/${ids.ingredient}`))).toEqual([ids.combo]);
  });
});

describe('catalog definitions at work in a tenant', () => {
  it('a platform profile is enforced on a tenant resource that claims it', async () => {
    const claims = { meta: { profile: [url('StructureDefinition/catalog-medication')] } };
    const bad = await send(a, 'post', 'Medication', { resourceType: 'Medication', ...claims, status: 'active' });
    expect(bad.status).toBe(400);
    expect(bad.body.issue.map((i: any) => `${i.details?.coding?.[0]?.code} ${(i.expression ?? []).join()}`)).toContain('PROFILE_CARDINALITY Medication.code');
    expect((await send(a, 'post', 'Medication', { ...medication(tag, 'profiled'), ...claims })).status).toBe(201);
  });

  it('a platform ValueSet over a platform CodeSystem expands in a tenant', async () => {
    const res = await b.api.get(`${b.path}/ValueSet/$expand?url=${encodeURIComponent(url('ValueSet/forms'))}`);
    expect(res.status).toBe(200);
    expect(res.body.expansion.contains.map((c: any) => `${c.system}|${c.code}`).sort()).toEqual([`${url('CodeSystem/forms')}|cap`, `${url('CodeSystem/forms')}|tab`]);
  });
});

describe('a tenant own entries of catalog types', () => {
  let ownA: string;

  beforeAll(async () => {
    ownA = (await create(a, medication(tag, 'custom', 'Clinic compounded cream'))).id;
  });

  it('only that tenant sees them, next to the platform entries; the platform tenant sees its own alone', async () => {
    const query = `code=custom-${tag},amox-${tag}`;
    expect(matchIds(await a.api.get(`${a.path}/Medication?${query}`))).toContain(ownA);
    expect(matchIds(await a.api.get(`${a.path}/Medication?${query}`))).toContain(ids.med);
    expect(matchIds(await b.api.get(`${b.path}/Medication?${query}`))).toEqual([ids.med]);
    expect(matchIds(await platform.api.get(`${platform.path}/Medication?${query}`))).toEqual([ids.med]);
    for (const t of [b, platform]) {
      expect((await t.api.get(`${t.path}/Medication/${ownA}`)).status).toBe(404);
      expect((await t.api.get(`${t.path}/Medication/${ownA}/_history/1`)).status).toBe(404);
      expect((await t.api.get(`${t.path}/Medication/${ownA}/_history`)).status).toBe(404);
    }
  });

  it('a platform SearchParameter is a catalog entry other tenants read, not a search parameter of theirs', async () => {
    const res = await a.api.get(`${a.path}/Medication?form-text-${tag}=x`).set('Prefer', 'handling=strict');
    expect(res.status).toBe(400);
    expect((await platform.api.get(`${platform.path}/Medication?form-text-${tag}=x`).set('Prefer', 'handling=strict')).status).toBe(200);
  });
});

describe('walls that stay', () => {
  it('the platform tenant resources of other types are invisible to tenants', async () => {
    expect((await a.api.get(`${a.path}/Patient/${ids.patient}`)).status).toBe(404);
    expect(matchIds(await a.api.get(`${a.path}/Patient?_id=${ids.patient}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Patient?family=Platform${tag}`))).toEqual([]);
    expect((await a.api.get(`${a.path}/Patient/${ids.patient}/_history`)).status).toBe(404);
    const system = await a.api.get(`${a.path}/?_type=Patient,Medication&_id=${ids.patient},${ids.med}`);
    expect(matchIds(system)).toEqual([ids.med]);
  });

  it("a tenant's token on /fhir/platform is refused like at any other tenant's base (401)", async () => {
    const res = await a.api.get(`${platform.path}/Medication/${ids.med}`);
    expect(res.status).toBe(401);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const write = await send({ ...a, path: platform.path }, 'post', 'Medication', medication(tag, 'intruder'));
    expect(write.status).toBe(401);
    expect(matchIds(await platform.api.get(`${platform.path}/Medication?code=intruder-${tag}`))).toEqual([]);
  });
});
