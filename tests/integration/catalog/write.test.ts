// The platform catalog, written (docs/catalog.md): only the platform tenant changes its entries. A tenant's update,
// patch, delete, conditional update/patch/delete and transaction or batch entry on a catalog entry is refused
// (403 CATALOG_READ_ONLY) and changes nothing; a create-by-PUT on an id the catalog deleted is 409 CATALOG_ID_TAKEN.
// Row-level security keeps the catalog read-only for tenant sessions underneath, and nobody creates a tenant `platform`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTenant } from '../../../src/tenancy/create-tenant.js';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { matchIds, medication, newTag, platformTenant, refusal, RXNORM, send } from './helpers.js';

let server: TestServer;
let platform: TestTenant;
let a: TestTenant;
let b: TestTenant;
const tag = newTag();
let med: Record<string, any>;
let patientA: string;

beforeAll(async () => {
  server = await startServer();
  platform = await platformTenant(server);
  a = await newTenant(server, 'catw-a');
  b = await newTenant(server, 'catw-b');
  med = await create(platform, medication(tag, 'amox'));
  patientA = (await create(a, { resourceType: 'Patient', name: [{ family: `Alpha${tag}` }] })).id;
});
afterAll(async () => server.close());

const postBundle = (t: TestTenant, bundle: unknown) => t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));

function expectReadOnly(res: { status: number; body: any }, where?: string): void {
  expect(refusal(res as never)).toEqual({ status: 403, issue: 'forbidden', code: 'CATALOG_READ_ONLY', expression: [where ?? 'Medication'] });
  expect(res.body.issue[0].diagnostics).toContain(`Medication/${med.id}`);
}

/** The platform's entry is exactly as created: version 1, one history entry, the same body from every tenant. */
async function expectCatalogUntouched(): Promise<void> {
  for (const t of [platform, a, b]) {
    const read = await t.api.get(`${t.path}/Medication/${med.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(med);
    const h = await t.api.get(`${t.path}/Medication/${med.id}/_history`);
    expect(h.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"1"']);
  }
}

describe('a tenant cannot change a catalog entry', () => {
  it('update, update with If-Match, patch and delete: 403 CATALOG_READ_ONLY naming the resource, nothing changes', async () => {
    const changed = { ...med, code: { text: 'hijacked' } };
    expectReadOnly(await send(a, 'put', `Medication/${med.id}`, changed));
    expectReadOnly(await a.api.put(`${a.path}/Medication/${med.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"1"').send(JSON.stringify(changed)));
    const patch = [{ op: 'replace', path: '/status', value: 'inactive' }];
    expectReadOnly(await a.api.patch(`${a.path}/Medication/${med.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify(patch)));
    expectReadOnly(await a.api.delete(`${a.path}/Medication/${med.id}`));
    await expectCatalogUntouched();
  });

  it('conditional update, patch and delete that match a catalog entry: 403 CATALOG_READ_ONLY, nothing changes', async () => {
    const condition = `code=${encodeURIComponent(`${RXNORM}|amox-${tag}`)}`;
    expectReadOnly(await a.api.put(`${a.path}/Medication?${condition}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...medication(tag, 'amox'), status: 'inactive' })));
    const patch = [{ op: 'replace', path: '/status', value: 'inactive' }];
    expectReadOnly(await a.api.patch(`${a.path}/Medication?${condition}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify(patch)));
    expectReadOnly(await a.api.delete(`${a.path}/Medication?${condition}`));
    await expectCatalogUntouched();
  });

  it('a transaction with a write on a catalog entry fails as a whole (nothing of it is stored); a batch refuses that entry only', async () => {
    const marker = { system: 'urn:catalog-test', value: `tx-${tag}` };
    for (const entry of [
      { request: { method: 'PUT', url: `Medication/${med.id}` }, resource: { ...med, status: 'inactive' } },
      { request: { method: 'DELETE', url: `Medication/${med.id}` } },
      { request: { method: 'PUT', url: `Medication?code=amox-${tag}` }, resource: { ...medication(tag, 'amox'), status: 'inactive' } },
    ]) {
      const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier: [marker] } }, entry] };
      const res = await postBundle(a, bundle);
      expect(refusal(res)).toEqual({ status: 403, issue: 'forbidden', code: 'CATALOG_READ_ONLY', expression: ['Bundle.entry[1].resource'] });
      expect(matchIds(await a.api.get(`${a.path}/Patient?identifier=${marker.system}|${marker.value}`))).toEqual([]);
    }
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'PUT', url: `Medication/${med.id}` }, resource: { ...med, status: 'inactive' } },
        { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier: [marker] } },
      ],
    };
    const res = await postBundle(a, batch);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['403 Forbidden', '201 Created']);
    expect(res.body.entry[0].response.outcome.issue[0].details.coding[0].code).toBe('CATALOG_READ_ONLY');
    await expectCatalogUntouched();
  });

  it('a transaction may reference a catalog entry, conditionally too', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          request: { method: 'POST', url: 'MedicationRequest' },
          resource: { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationReference: { reference: `Medication?code=amox-${tag}` }, subject: { reference: `Patient/${patientA}` } },
        },
      ],
    };
    const res = await postBundle(a, bundle);
    expect(res.status).toBe(200);
    const id = res.body.entry[0].response.location.split('/')[1];
    expect((await a.api.get(`${a.path}/MedicationRequest/${id}`)).body.medicationReference).toEqual({ reference: `Medication/${med.id}` });
  });

  it('a conditional create that matches a catalog entry answers with it and stores nothing', async () => {
    const res = await a.api.post(`${a.path}/Medication`).set('Content-Type', FHIR_JSON).set('If-None-Exist', `code=amox-${tag}`).send(JSON.stringify(medication(tag, 'amox')));
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(med.id);
    expect(matchIds(await a.api.get(`${a.path}/Medication?code=amox-${tag}`))).toEqual([med.id]);
  });

  it('underneath, row-level security lets a tenant session read catalog rows and change none', async () => {
    await server.deps.db.tx(a.slug, async (q) => {
      const seen = await q.query(`SELECT resource_type FROM resource WHERE tenant_id = 'platform' AND id = ANY($1::text[])`, [[med.id, 'platform']]);
      // the Medication, not the platform's root Organization/platform
      expect(seen.rows).toEqual([{ resource_type: 'Medication' }]);
      for (const table of ['resource', 'resource_history', 'sp_token', 'sp_string']) {
        expect((await q.query(`DELETE FROM ${table} WHERE tenant_id = 'platform'`)).rowCount).toBe(0);
        expect((await q.query(`UPDATE ${table} SET tenant_id = tenant_id WHERE tenant_id = 'platform'`)).rowCount).toBe(0);
      }
    });
    await expect(
      server.deps.db.tx(a.slug, (q) => q.query(`INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, content) VALUES ('platform', 'Medication', 'x', 1, now(), '{}')`)),
    ).rejects.toThrow(/row-level security/);
    await expectCatalogUntouched();
  });
});

describe('ids', () => {
  it('a create-by-PUT on an id the catalog deleted is 409 CATALOG_ID_TAKEN; patch and delete see the deletion', async () => {
    const gone = await create(platform, medication(tag, 'withdrawn'));
    expect((await platform.api.delete(`${platform.path}/Medication/${gone.id}`)).status).toBe(204);
    expect((await a.api.get(`${a.path}/Medication/${gone.id}`)).status).toBe(410);
    const put = await send(a, 'put', `Medication/${gone.id}`, { ...medication(tag, 'mine'), id: gone.id });
    expect(refusal(put)).toEqual({ status: 409, issue: 'conflict', code: 'CATALOG_ID_TAKEN', expression: ['Medication.id'] });
    const patch = await a.api.patch(`${a.path}/Medication/${gone.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/status', value: 'active' }]));
    expect(patch.status).toBe(410);
    expect((await a.api.delete(`${a.path}/Medication/${gone.id}`)).status).toBe(204);
    const h = await platform.api.get(`${platform.path}/Medication/${gone.id}/_history`);
    expect(h.body.entry.map((e: any) => e.response.etag)).toEqual(['W/"2"', 'W/"1"']);
    expect(matchIds(await a.api.get(`${a.path}/Medication?code=mine-${tag}`))).toEqual([]);
  });

  it('a tenant own resource wins an id collision (the platform adding an id a tenant already had)', async () => {
    const id = `collide-${tag}`;
    expect((await send(a, 'put', `Medication/${id}`, { ...medication(tag, 'clinic'), id })).status).toBe(201);
    expect((await send(platform, 'put', `Medication/${id}`, { ...medication(tag, 'catalog'), id })).status).toBe(201);
    expect((await a.api.get(`${a.path}/Medication/${id}`)).body.code.coding[0].code).toBe(`clinic-${tag}`);
    expect((await b.api.get(`${b.path}/Medication/${id}`)).body.code.coding[0].code).toBe(`catalog-${tag}`);
    // the shadowed catalog entry is not found by A's searches; its own is
    expect(matchIds(await a.api.get(`${a.path}/Medication?code=catalog-${tag}`))).toEqual([]);
    expect(matchIds(await a.api.get(`${a.path}/Medication?code=catalog-${tag},clinic-${tag}`))).toEqual([id]);
    expect(matchIds(await b.api.get(`${b.path}/Medication?code=catalog-${tag},clinic-${tag}`))).toEqual([id]);
    expect((await send(a, 'put', `Medication/${id}`, { ...medication(tag, 'clinic', 'v2'), id })).status).toBe(200);
    expect((await a.api.get(`${a.path}/Medication/${id}/_history`)).body.entry).toHaveLength(2);
    expect((await b.api.get(`${b.path}/Medication/${id}/_history`)).body.entry).toHaveLength(1);
  });

  it('ids of the platform tenant other types mean nothing to a tenant (its own Patient with the same id)', async () => {
    const p = await create(platform, { resourceType: 'Patient', name: [{ family: `Platform${tag}` }] });
    const put = await send(a, 'put', `Patient/${p.id}`, { resourceType: 'Patient', id: p.id, name: [{ family: `Own${tag}` }] });
    expect(put.status).toBe(201);
    expect((await platform.api.get(`${platform.path}/Patient/${p.id}`)).body.name[0].family).toBe(`Platform${tag}`);
  });

  it('the platform changes its own entries, and every tenant reads the new version at once', async () => {
    const entry = await create(platform, medication(tag, 'updated'));
    const v2 = await send(platform, 'put', `Medication/${entry.id}`, { ...entry, status: 'inactive' });
    expect(v2.status).toBe(200);
    for (const t of [a, b]) {
      const read = await t.api.get(`${t.path}/Medication/${entry.id}`);
      expect({ version: read.body.meta.versionId, status: read.body.status }).toEqual({ version: '2', status: 'inactive' });
      expect((await t.api.get(`${t.path}/Medication/${entry.id}/_history/1`)).body.status).toBe('active');
      expect(matchIds(await t.api.get(`${t.path}/Medication?code=updated-${tag}&status=inactive`))).toEqual([entry.id]);
    }
  });
});

describe('the platform tenant', () => {
  it('exists, with its root Organization, and nobody can create a tenant named platform', async () => {
    expect((await platform.api.get(`${platform.path}/Organization/platform`)).status).toBe(200);
    await expect(createTenant(server.deps, 'platform', 'Impostor')).rejects.toMatchObject({ code: 'TENANT_SLUG_INVALID' });
  });
});
