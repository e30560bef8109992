// The REST API through fhir-kit-client, the client our users use (http.html: create, read, vread, update, patch,
// search, delete, history, transaction, $validate). fhir-kit-client 2.x exports `Client` by name (no default export).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from 'fhir-kit-client';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let client: Client;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'fkc');
  client = new Client({ baseUrl: t.base, bearerToken: t.token });
});
afterAll(async () => server.close());

type Json = Record<string, any>;
const patient = { resourceType: 'Patient', name: [{ family: 'Kit', given: ['Fhir'] }], gender: 'female', birthDate: '1990-01-01', identifier: [{ system: 'urn:fkc', value: 'k-1' }] };

/** The error fhir-kit-client throws for a non-2xx answer: its status and OperationOutcome. */
async function failure(p: Promise<unknown>): Promise<{ status: number; data: Json }> {
  try {
    await p;
  } catch (err) {
    const r = (err as { response?: { status: number; data: Json } }).response;
    if (r) return r;
    throw err;
  }
  throw new Error('expected the request to fail');
}

describe('fhir-kit-client against the tenant base', () => {
  it('reads the CapabilityStatement', async () => {
    const cap = (await client.capabilityStatement()) as Json;
    expect(cap.resourceType).toBe('CapabilityStatement');
    expect(cap.fhirVersion).toBe('4.0.1');
    expect(cap.implementation.url).toBe(t.base);
  });

  it('create, read, vread, update, patch and delete one Patient', async () => {
    const created = (await client.create({ resourceType: 'Patient', body: patient })) as Json;
    expect(created).toMatchObject({ resourceType: 'Patient', gender: 'female', meta: { versionId: '1' } });
    const read = (await client.read({ resourceType: 'Patient', id: created.id })) as Json;
    expect(read).toEqual(created);

    const updated = (await client.update({ resourceType: 'Patient', id: created.id, body: { ...read, resourceType: 'Patient', gender: 'male' } })) as Json;
    expect(updated).toMatchObject({ id: created.id, gender: 'male', meta: { versionId: '2' } });

    const patched = (await client.patch({ resourceType: 'Patient', id: created.id, jsonPatch: [{ op: 'replace', path: '/gender', value: 'other' }] })) as Json;
    expect(patched).toMatchObject({ id: created.id, gender: 'other', meta: { versionId: '3' } });

    const v1 = (await client.vread({ resourceType: 'Patient', id: created.id, version: '1' })) as Json;
    expect(v1.gender).toBe('female');

    await client.delete({ resourceType: 'Patient', id: created.id });
    const gone = await failure(client.read({ resourceType: 'Patient', id: created.id }));
    expect(gone.status).toBe(410);
    expect(gone.data.issue[0].code).toBe('deleted');
    expect(gone.data.issue[0].details.coding[0].code).toBe('RESOURCE_DELETED');
  });

  it('reports errors as OperationOutcomes it can read', async () => {
    const missing = await failure(client.read({ resourceType: 'Patient', id: 'nobody' }));
    expect(missing.status).toBe(404);
    expect(missing.data.resourceType).toBe('OperationOutcome');
    expect(missing.data.issue[0].details.coding[0].code).toBe('RESOURCE_NOT_FOUND');
    const invalid = await failure(client.create({ resourceType: 'Patient', body: { ...patient, birthDate: 'someday' } }));
    expect(invalid.status).toBe(400);
    expect(invalid.data.issue[0].expression).toEqual(['Patient.birthDate']);
    const mismatch = await failure(client.update({ resourceType: 'Patient', id: 'abc', body: { ...patient, id: 'xyz' } }));
    expect(mismatch.status).toBe(400);
    expect(mismatch.data.issue[0].details.coding[0].code).toBe('RESOURCE_ID_MISMATCH');
  });

  it('conditional update through searchParams', async () => {
    const first = (await client.update({ resourceType: 'Patient', searchParams: { identifier: 'urn:fkc|cond-1' }, body: { ...patient, identifier: [{ system: 'urn:fkc', value: 'cond-1' }] } })) as Json;
    expect(first.meta.versionId).toBe('1');
    const second = (await client.update({ resourceType: 'Patient', searchParams: { identifier: 'urn:fkc|cond-1' }, body: { ...patient, gender: 'male', identifier: [{ system: 'urn:fkc', value: 'cond-1' }] } })) as Json;
    expect(second).toMatchObject({ id: first.id, gender: 'male', meta: { versionId: '2' } });
  });

  it('searches with GET and with postSearch, and pages with nextPage', async () => {
    const tenant = await newTenant(server, 'fkcs');
    const c = new Client({ baseUrl: tenant.base, bearerToken: tenant.token });
    for (let i = 0; i < 5; i++) await c.create({ resourceType: 'Patient', body: { ...patient, name: [{ family: `Searchable${i}` }] } });
    const get = (await c.search({ resourceType: 'Patient', searchParams: { family: 'searchable' } })) as Json;
    expect(get).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 5 });
    const post = (await c.search({ resourceType: 'Patient', searchParams: { family: 'searchable' }, options: { postSearch: true } })) as Json;
    expect(post.entry.map((e: Json) => e.resource.id).sort()).toEqual(get.entry.map((e: Json) => e.resource.id).sort());

    const seen: string[] = [];
    let page = (await c.search({ resourceType: 'Patient', searchParams: { family: 'searchable', _count: 2 } })) as Json | undefined;
    while (page) {
      for (const e of page.entry ?? []) seen.push(e.resource.id);
      page = (await c.nextPage({ bundle: page as never })) as Json | undefined;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });

  it('reads instance, type and system history', async () => {
    const tenant = await newTenant(server, 'fkch');
    const c = new Client({ baseUrl: tenant.base, bearerToken: tenant.token });
    const p = (await c.create({ resourceType: 'Patient', body: patient })) as Json;
    await c.update({ resourceType: 'Patient', id: p.id, body: { ...p, resourceType: 'Patient', gender: 'male' } });
    const instance = (await c.history({ resourceType: 'Patient', id: p.id })) as Json;
    expect(instance).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect(instance.entry.map((e: Json) => e.response.etag)).toEqual(['W/"2"', 'W/"1"']);
    const type = (await c.typeHistory({ resourceType: 'Patient' })) as Json;
    expect(type.entry).toHaveLength(2);
    const system = (await c.systemHistory()) as Json;
    expect(system.entry.map((e: Json) => e.request.url)).toEqual([`Patient/${p.id}`, 'Patient', `Organization/${tenant.slug}`]);
  });

  it('runs a transaction with urn:uuid references, all or nothing', async () => {
    const tenant = await newTenant(server, 'fkct');
    const c = new Client({ baseUrl: tenant.base, bearerToken: tenant.token });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:2f7c1c1e-0000-4000-8000-000000000001', resource: patient, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'bp' }, subject: { reference: 'urn:uuid:2f7c1c1e-0000-4000-8000-000000000001' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const res = (await c.transaction({ body: bundle })) as Json;
    expect(res).toMatchObject({ resourceType: 'Bundle', type: 'transaction-response' });
    expect(res.entry.map((e: Json) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const patientId = res.entry[0].response.location.split('/')[1];
    const obsId = res.entry[1].response.location.split('/')[1];
    const obs = (await c.read({ resourceType: 'Observation', id: obsId })) as Json;
    expect(obs.subject.reference).toBe(`Patient/${patientId}`);

    // A failing entry rolls the whole transaction back.
    const before = ((await c.systemHistory()) as Json).entry.length;
    const bad = await failure(
      c.transaction({
        body: {
          ...bundle,
          entry: [bundle.entry[0], { resource: { resourceType: 'Observation', status: 'final', code: { text: 'bp' }, subject: { reference: 'Patient/nobody' } }, request: { method: 'POST', url: 'Observation' } }],
        },
      }),
    );
    expect(bad.status).toBe(400);
    expect(bad.data.resourceType).toBe('OperationOutcome');
    expect(((await c.systemHistory()) as Json).entry.length).toBe(before);
  });

  it('calls $validate as an operation', async () => {
    const ok = (await client.operation({ resourceType: 'Patient', name: '$validate', input: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }] } })) as Json;
    expect(ok.issue[0].severity).toBe('information');
    const bad = (await client.operation({ resourceType: 'Patient', name: 'validate', input: { ...patient, gender: 'bogus' } })) as Json;
    expect(bad.issue[0]).toMatchObject({ severity: 'error', expression: ['Patient.gender'] });
  });
});
