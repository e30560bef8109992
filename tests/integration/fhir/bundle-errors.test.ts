// batch Bundles, rejected Bundles and tenant isolation inside Bundles (http.html#transaction, bundle.html#rules).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
/** Another tenant on the same server. */
let other: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server);
  other = await newTenant(server, 'other');
});
afterAll(async () => server.close());

const SYS = 'urn:test:mrn';
const urn = () => `urn:uuid:${randomUUID()}`;
const tag = () => randomUUID().slice(0, 8);

type Entry = Record<string, unknown>;

function submit(tenant: TestTenant, entry: Entry[], opts: { type?: string } = {}) {
  return tenant.api
    .post(tenant.path)
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify({ resourceType: 'Bundle', type: opts.type ?? 'transaction', entry }));
}

const post = (resource: Entry, fullUrl?: string, ifNoneExist?: string): Entry => ({
  ...(fullUrl ? { fullUrl } : {}),
  resource,
  request: { method: 'POST', url: resource.resourceType, ...(ifNoneExist ? { ifNoneExist } : {}) },
});
const put = (url: string, resource: Entry, request: Entry = {}): Entry => ({ resource, request: { method: 'PUT', url, ...request } });
const get = (url: string): Entry => ({ request: { method: 'GET', url } });
const patient = (value: string, extra: Entry = {}): Entry => ({ resourceType: 'Patient', identifier: [{ system: SYS, value }], ...extra });
const observation = (subject: string): Entry => ({ resourceType: 'Observation', status: 'final', code: { text: 'Hb' }, subject: { reference: subject } });
const jsonPatch = (ops: unknown[]): Entry => ({ resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(ops)).toString('base64') });

const errorCode = (body: any) => body.issue?.[0]?.details?.coding?.[0]?.code;
const idOf = (location: string) => location.split('/')[1];

async function countByIdentifier(tenant: TestTenant, value: string): Promise<number> {
  const res = await tenant.api.get(`${tenant.path}/Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}`);
  expect(res.status).toBe(200);
  return res.body.total;
}

/** Asserts a rejected Bundle: status, issue.code, error code and expression. */
function expectRejected(res: { status: number; body: any }, status: number, code: string, expression: string[], issueType?: string) {
  expect(res.status).toBe(status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(errorCode(res.body)).toBe(code);
  expect(res.body.issue[0].expression).toEqual(expression);
  if (issueType) expect(res.body.issue[0].code).toBe(issueType);
}

describe('batch (http.html#transaction: entries succeed or fail independently)', () => {
  it('answers 200 batch-response with a per-entry status and an OperationOutcome for the failed entry', async () => {
    const k = tag();
    const res = await submit(
      t,
      [
        post(patient(`b0-${k}`)),
        post(patient(`b1-${k}`, { foo: 'bar' })),
        get('Patient/no-such-patient'),
        put(`Patient/b3-${k}`, patient(`b3-${k}`, { id: `b3-${k}` })),
        post(observation('Patient/no-such-patient')),
      ],
      { type: 'batch' },
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'batch-response' });
    const e = res.body.entry;
    expect(e.map((x: any) => x.response.status)).toEqual(['201 Created', '400 Bad Request', '404 Not Found', '201 Created', '400 Bad Request']);
    expect(e[0].response.location).toMatch(/^Patient\/[^/]+\/_history\/1$/);
    expect(e[3].response).toMatchObject({ location: `Patient/b3-${k}/_history/1`, etag: 'W/"1"' });
    const invalid = e[1].response.outcome;
    expect(invalid.resourceType).toBe('OperationOutcome');
    expect(invalid.issue[0].expression).toEqual(['Bundle.entry[1].resource.foo']);
    expect(errorCode(invalid)).toBe('SCHEMA_VIOLATION');
    expect(errorCode(e[2].response.outcome)).toBe('RESOURCE_NOT_FOUND');
    expect(errorCode(e[4].response.outcome)).toBe('REFERENCE_NOT_FOUND');
    expect(e[4].response.outcome.issue[0].expression).toEqual(['Bundle.entry[4].resource.subject.reference']);
    expect(await countByIdentifier(t, `b0-${k}`)).toBe(1);
    expect(await countByIdentifier(t, `b1-${k}`)).toBe(0);
    expect(await countByIdentifier(t, `b3-${k}`)).toBe(1);
  });

  it('reports an entry without request as that entry failing, and still runs the others', async () => {
    const k = tag();
    const res = await submit(t, [{ resource: patient(`nr-${k}`) }, post(patient(`nr2-${k}`))], { type: 'batch' });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('400 Bad Request');
    expect(errorCode(res.body.entry[0].response.outcome)).toBe('BUNDLE_ENTRY_NO_REQUEST');
    expect(res.body.entry[0].response.outcome.issue[0].expression).toEqual(['Bundle.entry[0]']);
    expect(res.body.entry[1].response.status).toBe('201 Created');
    expect(await countByIdentifier(t, `nr-${k}`)).toBe(0);
  });

  it('does not resolve urn:uuid references between batch entries (no interdependencies in a batch)', async () => {
    const p = urn();
    const res = await submit(t, [post(patient(`bu-${tag()}`), p), post(observation(p))], { type: 'batch' });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(res.body.entry[1].response.status).toBe('400 Bad Request');
    expect(errorCode(res.body.entry[1].response.outcome)).toBe('REFERENCE_UNRESOLVED');
  });

  it('applies If-Match per entry (412 for a stale version) and supports conditional delete', async () => {
    const k = tag();
    const p = await create(t, patient(`bm-${k}`));
    const gone = await create(t, patient(`bd-${k}`));
    const res = await submit(
      t,
      [put(`Patient/${p.id}`, { ...p, gender: 'male' }, { ifMatch: 'W/"7"' }), { request: { method: 'DELETE', url: `Patient?identifier=${SYS}|bd-${k}` } }],
      { type: 'batch' },
    );
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('412 Precondition Failed');
    expect(errorCode(res.body.entry[0].response.outcome)).toBe('VERSION_CONFLICT');
    expect(res.body.entry[1].response.status).toBe('204 No Content');
    expect((await t.api.get(`${t.path}/Patient/${gone.id}`)).status).toBe(410);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  it('refuses FHIRPath Patch in a batch entry with 400 and applies JSON Patch', async () => {
    const p = await create(t, patient(`bp-${tag()}`));
    const res = await submit(
      t,
      [
        { resource: { resourceType: 'Parameters', parameter: [{ name: 'operation' }] }, request: { method: 'PATCH', url: `Patient/${p.id}` } },
        { resource: jsonPatch([{ op: 'add', path: '/gender', value: 'female' }]), request: { method: 'PATCH', url: `Patient/${p.id}` } },
      ],
      { type: 'batch' },
    );
    expect(res.body.entry[0].response.status).toBe('400 Bad Request');
    expect(errorCode(res.body.entry[0].response.outcome)).toBe('PATCH_FORMAT_UNSUPPORTED');
    expect(res.body.entry[1].response).toMatchObject({ status: '200 OK', etag: 'W/"2"' });
  });
});

describe('rejected Bundles (http.html#transaction, bundle.html#rules)', () => {
  it('rejects a Bundle type other than batch or transaction with 400 BUNDLE_TYPE_INVALID', async () => {
    const res = await submit(t, [{ resource: patient('x') }], { type: 'collection' });
    expectRejected(res, 400, 'BUNDLE_TYPE_INVALID', ['Bundle.type'], 'invalid');
  });

  it('rejects a body that is not a Bundle with 400 BUNDLE_EXPECTED', async () => {
    const res = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify(patient('x')));
    expectRejected(res, 400, 'BUNDLE_EXPECTED', ['resourceType'], 'invalid');
  });

  it('rejects an entry without request with 400 naming the entry', async () => {
    const k = tag();
    const res = await submit(t, [post(patient(`nr-${k}`)), { resource: patient(`nr-${k}`) }]);
    expectRejected(res, 400, 'BUNDLE_ENTRY_NO_REQUEST', ['Bundle.entry[1]']);
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[1\]/);
    expect(await countByIdentifier(t, `nr-${k}`)).toBe(0);
  });

  it('rejects an invalid resource with 400 and the expression re-rooted on the entry', async () => {
    const k = tag();
    const res = await submit(t, [post(patient(`iv-${k}`)), post(patient(`iv-${k}`)), post(patient(`iv-${k}`)), post(patient(`iv-${k}`, { foo: 1 }))]);
    expectRejected(res, 400, 'SCHEMA_VIOLATION', ['Bundle.entry[3].resource.foo'], 'structure');
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[3\]/);
    expect(await countByIdentifier(t, `iv-${k}`)).toBe(0);
  });

  it('rejects a urn:uuid reference that names no entry with 400 naming the entry', async () => {
    const k = tag();
    const res = await submit(t, [post(patient(`ur-${k}`), urn()), post(observation(urn()))]);
    expectRejected(res, 400, 'REFERENCE_UNRESOLVED', ['Bundle.entry[1].resource.subject.reference'], 'not-found');
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[1]');
    expect(await countByIdentifier(t, `ur-${k}`)).toBe(0);
  });

  it('rejects two entries creating the same conditional resource with 400 BUNDLE_DUPLICATE_CONDITIONAL', async () => {
    const k = `dc-${tag()}`;
    const res = await submit(t, [post(patient(k), urn(), `identifier=${SYS}|${k}`), post(patient(k), urn(), `identifier=${SYS}|${k}`)]);
    expectRejected(res, 400, 'BUNDLE_DUPLICATE_CONDITIONAL', ['Bundle.entry[1]']);
    expect(await countByIdentifier(t, k)).toBe(0);
  });

  it('recognises the same condition however it is spelled (encoding, parameter order, leading "Type?")', async () => {
    const k = `dcs-${tag()}`;
    const spellings = [`identifier=${encodeURIComponent(`${SYS}|${k}`)}&gender=male`, `gender=male&identifier=${SYS}|${k}`, `Patient?identifier=${SYS}%7C${k}&gender=male`];
    for (const second of spellings) {
      const res = await submit(t, [post(patient(k, { gender: 'male' }), urn(), `identifier=${SYS}|${k}&gender=male`), post(patient(k, { gender: 'male' }), urn(), second)]);
      expectRejected(res, 400, 'BUNDLE_DUPLICATE_CONDITIONAL', ['Bundle.entry[1]']);
    }
    expect(await countByIdentifier(t, k)).toBe(0);
  });

  it('rejects the same resource twice (two PUTs to Patient/x) with 400 BUNDLE_DUPLICATE_RESOURCE', async () => {
    const id = `dup-${tag()}`;
    const res = await submit(t, [put(`Patient/${id}`, patient(id, { id })), put(`Patient/${id}`, patient(id, { id, gender: 'male' }))]);
    expectRejected(res, 400, 'BUNDLE_DUPLICATE_RESOURCE', ['Bundle.entry[1]']);
    expect((await t.api.get(`${t.path}/Patient/${id}`)).status).toBe(404);
  });

  it('rejects a conditional update that resolves to a resource another entry also writes', async () => {
    const k = `ov-${tag()}`;
    const p = await create(t, patient(k));
    const res = await submit(t, [put(`Patient?identifier=${SYS}|${k}`, patient(k, { gender: 'male' })), { request: { method: 'DELETE', url: `Patient/${p.id}` } }]);
    expectRejected(res, 400, 'BUNDLE_DUPLICATE_RESOURCE', ['Bundle.entry[1]']);
    expect((await t.api.get(`${t.path}/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  it('rejects a reference to a resource that exists only in another tenant (400 REFERENCE_NOT_FOUND), storing nothing', async () => {
    const theirs = await create(other, patient(`theirs-${tag()}`));
    const k = tag();
    const res = await submit(t, [post(patient(`ot-${k}`)), post(observation(`Patient/${theirs.id}`))]);
    expectRejected(res, 400, 'REFERENCE_NOT_FOUND', ['Bundle.entry[1].resource.subject.reference'], 'not-found');
    expect(await countByIdentifier(t, `ot-${k}`)).toBe(0);
  });

  it("rejects an absolute reference to another tenant's base (400 REFERENCE_OTHER_TENANT), storing nothing", async () => {
    const theirs = await create(other, patient(`theirs-${tag()}`));
    const k = tag();
    const res = await submit(t, [post(patient(`ota-${k}`)), post(observation(`${other.base}/Patient/${theirs.id}`))]);
    expectRejected(res, 400, 'REFERENCE_OTHER_TENANT', ['Bundle.entry[1].resource.subject.reference'], 'business-rule');
    expect(await countByIdentifier(t, `ota-${k}`)).toBe(0);
  });

  it('rejects another tenant\'s URL however it is spelled (scheme/host case, dot segments) and inside contained resources', async () => {
    const theirs = await create(other, patient(`theirs-${tag()}`));
    const origin = new URL(other.base).origin;
    const spellings = [
      `${origin.toUpperCase()}/fhir/${other.slug}/Patient/${theirs.id}`,
      `${origin}/fhir/./${other.slug}/Patient/${theirs.id}`,
      `${origin}/fhir/${t.slug}/../${other.slug}/Patient/${theirs.id}`,
    ];
    for (const ref of spellings) {
      const res = await submit(t, [post(observation(ref))]);
      expectRejected(res, 400, 'REFERENCE_OTHER_TENANT', ['Bundle.entry[0].resource.subject.reference']);
    }
    const contained = await submit(t, [
      post({ ...observation('#p'), contained: [{ resourceType: 'Patient', id: 'p', link: [{ type: 'seealso', other: { reference: `${other.base}/Patient/${theirs.id}` } }] }] }),
    ]);
    expectRejected(contained, 400, 'REFERENCE_OTHER_TENANT', ['Bundle.entry[0].resource.contained[0].link[0].other.reference']);
  });

  it('rejects a request.url on another tenant base with 400 BUNDLE_ENTRY_URL', async () => {
    const theirs = await create(other, patient(`theirs-${tag()}`));
    const res = await submit(t, [get(`${other.base}/Patient/${theirs.id}`)]);
    expectRejected(res, 400, 'BUNDLE_ENTRY_URL', ['Bundle.entry[0]']);
  });

  it('rejects a PATCH entry carrying FHIRPath Patch (Parameters) with 400, rolling back the others', async () => {
    const k = tag();
    const p = await create(t, patient(`fp-${k}`));
    const res = await submit(t, [
      post(patient(`fp2-${k}`)),
      { resource: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'delete' }] }] }, request: { method: 'PATCH', url: `Patient/${p.id}` } },
    ]);
    expectRejected(res, 400, 'PATCH_FORMAT_UNSUPPORTED', ['Bundle.entry[1]']);
    expect(await countByIdentifier(t, `fp2-${k}`)).toBe(0);
  });

  it('rejects a PUT or PATCH that targets a version, and a POST to an instance URL', async () => {
    const p = await create(t, patient(`vu-${tag()}`));
    const res = await submit(t, [put(`Patient/${p.id}/_history/1`, p)]);
    expectRejected(res, 400, 'BUNDLE_ENTRY_URL', ['Bundle.entry[0]']);
    const post2 = await submit(t, [{ resource: patient('x'), request: { method: 'POST', url: `Patient/${p.id}` } }]);
    expectRejected(post2, 400, 'BUNDLE_ENTRY_URL', ['Bundle.entry[0]']);
  });

  it('answers 413 BUNDLE_TOO_LARGE for more entries than MAX_BUNDLE_ENTRIES, for batch and transaction', async () => {
    const small = await startServer({ maxBundleEntries: 5 });
    try {
      const s = await newTenant(small);
      const k = tag();
      const six = Array.from({ length: 6 }, (_, i) => post(patient(`big-${k}-${i}`)));
      for (const type of ['transaction', 'batch']) {
        const res = await submit(s, six, { type });
        expectRejected(res, 413, 'BUNDLE_TOO_LARGE', ['Bundle.entry'], 'too-costly');
      }
      expect(await countByIdentifier(s, `big-${k}-0`)).toBe(0);
      const five = await submit(s, six.slice(0, 5));
      expect(five.status).toBe(200);
      expect(five.body.entry).toHaveLength(5);
    } finally {
      await small.close();
    }
  });
});

describe('tenant isolation inside Bundles (STYLE §3: another tenant\'s resource is not-found)', () => {
  it("answers 404 in the entry for a GET of another tenant's id, without failing the transaction", async () => {
    const theirs = await create(other, patient(`iso-${tag()}`, { name: [{ family: 'Secret' }] }));
    const k = tag();
    const res = await submit(t, [get(`Patient/${theirs.id}`), get(`Patient?_id=${theirs.id}`), post(patient(`iso-${k}`))]);
    expect(res.status).toBe(200);
    const [read, search, created] = res.body.entry;
    expect(read.response.status).toBe('404 Not Found');
    expect(read.resource).toBeUndefined();
    expect(read.response.outcome.issue[0].code).toBe('not-found');
    expect(errorCode(read.response.outcome)).toBe('RESOURCE_NOT_FOUND');
    expect(JSON.stringify(res.body)).not.toContain('Secret');
    expect(search.response.status).toBe('200 OK');
    expect(search.resource.total).toBe(0);
    expect(created.response.status).toBe('201 Created');
    const batch = await submit(t, [get(`Patient/${theirs.id}`)], { type: 'batch' });
    expect(batch.body.entry[0].response.status).toBe('404 Not Found');
  });

  it("cannot update another tenant's resource: PUT with If-Match fails 412 and theirs stays unchanged", async () => {
    const theirs = await create(other, patient(`iso-put-${tag()}`, { gender: 'female' }));
    const k = tag();
    const res = await submit(t, [post(patient(`iso-put-${k}`)), put(`Patient/${theirs.id}`, { ...theirs, gender: 'male' }, { ifMatch: 'W/"1"' })]);
    expectRejected(res, 412, 'VERSION_CONFLICT', ['Bundle.entry[1]']);
    expect(await countByIdentifier(t, `iso-put-${k}`)).toBe(0);
    const after = await other.api.get(`${other.path}/Patient/${theirs.id}`);
    expect(after.body).toMatchObject({ gender: 'female', meta: { versionId: '1', lastUpdated: theirs.meta.lastUpdated } });
    expect((await t.api.get(`${t.path}/Patient/${theirs.id}`)).status).toBe(404);
  });

  it("a PUT or DELETE of another tenant's id only ever touches this tenant's own resource of that id", async () => {
    const theirs = await create(other, patient(`iso-own-${tag()}`, { gender: 'female' }));
    const res = await submit(t, [put(`Patient/${theirs.id}`, { resourceType: 'Patient', id: theirs.id, gender: 'male' })]);
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response).toMatchObject({ status: '201 Created', location: `Patient/${theirs.id}/_history/1` });
    const del = await submit(t, [{ request: { method: 'DELETE', url: `Patient/${theirs.id}` } }]);
    expect(del.body.entry[0].response.status).toBe('204 No Content');
    expect((await t.api.get(`${t.path}/Patient/${theirs.id}`)).status).toBe(410);
    const after = await other.api.get(`${other.path}/Patient/${theirs.id}`);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ gender: 'female', meta: { versionId: '1' } });
    const history = await other.api.get(`${other.path}/Patient/${theirs.id}/_history`);
    expect(history.body.entry).toHaveLength(1);
  });

  it("cannot resolve a conditional reference or conditional create against another tenant's resources", async () => {
    const k = `iso-cond-${tag()}`;
    const theirs = await create(other, patient(k));
    const ref = await submit(t, [post(observation(`Patient?identifier=${SYS}|${k}`))]);
    expectRejected(ref, 400, 'REFERENCE_CONDITIONAL_NO_MATCH', ['Bundle.entry[0].resource.subject.reference']);
    const cc = await submit(t, [post(patient(k), urn(), `identifier=${SYS}|${k}`)]);
    expect(cc.body.entry[0].response.status).toBe('201 Created');
    expect(idOf(cc.body.entry[0].response.location)).not.toBe(theirs.id);
    expect(await countByIdentifier(other, k)).toBe(1);
  });
});
