// The twelve resource types tested in depth: create, read, search, update, vread, history, invalid -> 400, delete.
// AuditEvent is written by the server only (issue 12): its reads and searches are tested in tests/integration/audit/;
// here, that the API refuses to write it while $validate still judges it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fill, IN_DEPTH } from '../../fixtures/resources.js';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
const ids: Record<string, string> = {};

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'types');
  other = await newTenant(server, 'types-other');
  ids.org = t.slug; // the tenant's root Organization
  ids.patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Root' }] })).id;
  ids.practitioner = (await create(t, { resourceType: 'Practitioner', name: [{ family: 'Root' }] })).id;
});
afterAll(async () => server.close());

describe.each(IN_DEPTH.filter((f) => f.type !== 'AuditEvent'))('$type', (f) => {
  it('create, read, search, update, vread, history and delete', async () => {
    const body = fill(f.resource, ids);
    const created = await create(t, body);
    expect(created.meta.versionId).toBe('1');
    const read = await t.api.get(`${t.path}/${f.type}/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject(body);

    const found = await t.api.get(`${t.path}/${f.type}?${fill(f.search, ids)}`);
    expect(found.status).toBe(200);
    expect(found.body.entry?.map((e: any) => e.resource.id)).toContain(created.id);
    expect(found.body.entry?.find((e: any) => e.search.mode === 'outcome')).toBeUndefined(); // every parameter applied
    // the same search from another tenant finds nothing
    const elsewhere = await other.api.get(`${other.path}/${f.type}?_id=${created.id}`);
    expect(elsewhere.body.entry ?? []).toEqual([]);

    const changed = f.update(read.body);
    const updated = await t.api.put(`${t.path}/${f.type}/${created.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"1"').send(JSON.stringify(changed));
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');
    const v1 = await t.api.get(`${t.path}/${f.type}/${created.id}/_history/1`);
    expect(v1.body).toMatchObject(body);
    const history = await t.api.get(`${t.path}/${f.type}/${created.id}/_history`);
    expect(history.body.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);

    expect((await t.api.delete(`${t.path}/${f.type}/${created.id}`)).status).toBe(204);
    expect((await t.api.get(`${t.path}/${f.type}/${created.id}`)).status).toBe(410);
    const gone = await t.api.get(`${t.path}/${f.type}?_id=${created.id}`);
    expect(gone.body.entry ?? []).toEqual([]);
  });

  it('rejects an invalid example with 400 naming the element, and stores nothing', async () => {
    const before = await t.api.get(`${t.path}/${f.type}/_history?_count=1000`);
    const res = await t.api.post(`${t.path}/${f.type}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(fill(f.invalid.resource, ids)));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const expressions = res.body.issue.flatMap((i: any) => i.expression ?? []);
    expect(expressions.some((e: string) => e.startsWith(f.invalid.expression))).toBe(true);
    const after = await t.api.get(`${t.path}/${f.type}/_history?_count=1000`);
    expect(after.body.entry?.length ?? 0).toBe(before.body.entry?.length ?? 0);
  });
});

describe('AuditEvent', () => {
  const f = IN_DEPTH.find((x) => x.type === 'AuditEvent')!;
  it('is never written through the API (405), and $validate still names what is wrong with an invalid one', async () => {
    const res = await t.api.post(`${t.path}/AuditEvent`).set('Content-Type', FHIR_JSON).send(JSON.stringify(fill(f.resource, ids)));
    expect(res.status).toBe(405);
    expect(res.body.issue[0].details.coding[0].code).toBe('AUDIT_IMMUTABLE');
    const ok = await t.api.post(`${t.path}/AuditEvent/$validate`).set('Content-Type', FHIR_JSON).send(JSON.stringify(fill(f.resource, ids)));
    expect(ok.status).toBe(200);
    const bad = await t.api.post(`${t.path}/AuditEvent/$validate`).set('Content-Type', FHIR_JSON).send(JSON.stringify(fill(f.invalid.resource, ids)));
    expect(bad.body.issue.flatMap((i: any) => i.expression ?? []).some((e: string) => e.startsWith(f.invalid.expression))).toBe(true);
  });
});
