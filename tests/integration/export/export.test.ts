// Bulk Data export (Bulk 2.0 export.html, issue 12): the SMART backend-services client flow end to end, the kick-off
// parameters, Patient and Group level, the caller's authorization, bad input, isolation, cancel and the snapshot.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ASSERTION_TYPE, clientAssertion, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newBackendClient, newTenant, startServer, testBackendKey, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { download, downloadAll, kickOff, pathOf, runExport, waitForManifest } from './helpers.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
const patients: Record<string, any>[] = [];
const observations: Record<string, any>[] = [];
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

function observation(patientId: string, category: string, code: string): Record<string, unknown> {
  return {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patientId}` },
  };
}

beforeAll(async () => {
  server = await startServer({ exportFileMaxResources: 3 });
  t = await newTenant(server, 'exp');
  other = await newTenant(server, 'expo');
  for (let i = 0; i < 4; i++) patients.push(await create(t, { resourceType: 'Patient', name: [{ family: `Fam${i}`, given: ['G'] }], gender: i % 2 ? 'male' : 'female' }));
  for (const [i, p] of patients.entries()) {
    observations.push(await create(t, observation(p.id, 'vital-signs', '8867-4')));
    if (i < 2) observations.push(await create(t, observation(p.id, 'laboratory', '2345-7')));
  }
  await create(other, { resourceType: 'Patient', name: [{ family: 'Elsewhere' }] });
}, 60_000);

afterAll(async () => server?.close());

const byType = (rs: Record<string, any>[], type: string) => rs.filter((r) => r.resourceType === type);

describe('system-level export (export.html#bulk-data-kick-off-request)', () => {
  it('runs the SMART backend-services flow: token, kick-off 202 + Content-Location, polling, manifest, NDJSON files', async () => {
    const token = await tokenRequest(server.origin, {
      grant_type: 'client_credentials', scope: 'system/*.rs', client_assertion_type: ASSERTION_TYPE,
      client_assertion: clientAssertion(t.clientId, `${server.origin}/auth/token`, testBackendKey().privateKey, { kid: 'test-es384' }),
    });
    expect(token.status).toBe(200);
    const api = authed(server.origin, token.body.access_token);
    const kick = await api.get(`${t.path}/$export`).set('Prefer', 'respond-async').set('Accept', FHIR_JSON);
    expect(kick.status).toBe(202);
    expect(kick.headers['content-location']).toMatch(new RegExp(`^${t.base.replace(/[$.]/g, '\\$&')}/\\$export-status/`));
    const first = await api.get(pathOf(kick.headers['content-location']));
    if (first.status === 202) expect(first.headers['x-progress']).toBeDefined();
    const m = await waitForManifest(api, kick.headers['content-location']);
    expect(m).toMatchObject({ request: `${t.base}/$export`, requiresAccessToken: true, error: [] });
    expect(Date.parse(m.transactionTime)).not.toBeNaN();
    const all = await downloadAll(api, m);
    expect(byType(all, 'Patient').map((p) => p.id).sort()).toEqual(patients.map((p) => p.id).sort());
    expect(byType(all, 'Observation').map((p) => p.id).sort()).toEqual(observations.map((p) => p.id).sort());
    // the tenant's own Organization (created with the tenant) is there too; nothing of the other tenant
    expect(all.some((r) => r.name?.[0]?.family === 'Elsewhere')).toBe(false);
    // split at EXPORT_FILE_MAX_RESOURCES = 3: 6 observations in 2 files
    expect(m.output.filter((o) => o.type === 'Observation').map((o) => o.count)).toEqual([3, 3]);
    expect(new Set(all.map((r) => `${r.resourceType}/${r.id}`)).size).toBe(all.length);
  });

  it('answers 202 with X-Progress and Retry-After while the export runs, then 200', async () => {
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient`);
    const res = await t.api.get(pathOf(status));
    expect([200, 202]).toContain(res.status);
    if (res.status === 202) {
      expect(res.headers['x-progress']).toMatch(/progress/);
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
    }
    await waitForManifest(t.api, status);
    const done = await t.api.get(pathOf(status));
    expect(done.status).toBe(200);
    expect(done.headers.expires).toBeDefined();
  });

  it('exports only the types named in _type (repeats joined as a comma list)', async () => {
    const { manifest, resources } = await runExport(t.api, `${t.path}/$export?_type=Patient&_type=Group`);
    expect(new Set(manifest.output.map((o) => o.type))).toEqual(new Set(['Patient']));
    expect(resources).toHaveLength(patients.length);
  });

  it('exports only resources changed after _since', async () => {
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const late = await create(t, { resourceType: 'Patient', name: [{ family: 'Late' }] });
    patients.push(late);
    const { resources } = await runExport(t.api, `${t.path}/$export?_type=Patient,Observation&_since=${encodeURIComponent(cut)}`);
    expect(resources.map((r) => r.id)).toEqual([late.id]);
  });

  it('filters with _typeFilter (queries of one type are ORed; other types unfiltered)', async () => {
    const filter = encodeURIComponent(`Observation?category=${CATEGORY}|laboratory`);
    const { resources } = await runExport(t.api, `${t.path}/$export?_type=Observation,Patient&_typeFilter=${filter}`);
    expect(byType(resources, 'Observation')).toHaveLength(2);
    expect(byType(resources, 'Observation').every((o) => o.category[0].coding[0].code === 'laboratory')).toBe(true);
    expect(byType(resources, 'Patient')).toHaveLength(patients.length);
    const both = [`Observation?category=${CATEGORY}|laboratory`, `Observation?category=${CATEGORY}|vital-signs`].map(encodeURIComponent).join(',');
    const r2 = await runExport(t.api, `${t.path}/$export?_type=Observation&_typeFilter=${both}`);
    expect(r2.resources).toHaveLength(observations.length);
  });

  it('keeps only the _elements asked for (plus mandatory ones) and tags the resources SUBSETTED', async () => {
    const { resources } = await runExport(t.api, `${t.path}/$export?_type=Patient,Observation&_elements=Patient.gender,status`);
    const p = byType(resources, 'Patient').find((x) => x.id === patients[0].id)!;
    expect(p.gender).toBeDefined();
    expect(p.name).toBeUndefined();
    expect(p.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    const o = byType(resources, 'Observation')[0];
    expect(o.status).toBe('final');
    // code is mandatory in Observation
    expect(o.code).toBeDefined();
    expect(o.category).toBeUndefined();
  });

  it.each(['application/fhir+ndjson', 'application/ndjson', 'ndjson'])('accepts _outputFormat=%s and writes NDJSON', async (f) => {
    const { manifest, resources } = await runExport(t.api, `${t.path}/$export?_type=Patient&_outputFormat=${encodeURIComponent(f)}`);
    expect(manifest.output.length).toBeGreaterThan(0);
    expect(resources).toHaveLength(patients.length);
  });
});

describe('Patient- and Group-level export', () => {
  it('Patient/$export exports the Patient compartment types only', async () => {
    const { manifest, resources } = await runExport(t.api, `${t.path}/Patient/$export`);
    expect(new Set(manifest.output.map((o) => o.type))).toEqual(new Set(['Patient', 'Observation']));
    expect(byType(resources, 'Organization')).toHaveLength(0);
  });

  it('Group/[id]/$export exports the members and their compartments only', async () => {
    const group = await create(t, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${patients[0].id}` } }, { entity: { reference: `Patient/${patients[1].id}` } }] });
    const { resources } = await runExport(t.api, `${t.path}/Group/${group.id}/$export`);
    expect(byType(resources, 'Patient').map((p) => p.id).sort()).toEqual([patients[0].id, patients[1].id].sort());
    const subjects = new Set(byType(resources, 'Observation').map((o) => o.subject.reference));
    expect(subjects).toEqual(new Set([`Patient/${patients[0].id}`, `Patient/${patients[1].id}`]));
    expect(byType(resources, 'Observation')).toHaveLength(4);
  });

  it('Group/[id]/$export of an unknown group is 404', async () => {
    const res = await t.api.get(`${t.path}/Group/nope/$export`).set('Prefer', 'respond-async');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('authorization (SMART scopes bound the export)', () => {
  it('a granular system/Observation.rs?category=laboratory token exports only laboratory observations', async () => {
    const token = await tokenFor(server, t, { scope: `system/Observation.rs?category=${CATEGORY}|laboratory` });
    const api = authed(server.origin, token);
    const { resources } = await runExport(api, `${t.path}/$export`);
    expect(resources.length).toBe(2);
    expect(resources.every((r) => r.resourceType === 'Observation' && r.category[0].coding[0].code === 'laboratory')).toBe(true);
  });

  it('refuses a _type the token may not search (403)', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: 'system/Observation.rs' }));
    const res = await api.get(`${t.path}/$export?_type=Patient`).set('Prefer', 'respond-async');
    expect(res.status).toBe(403);
    expect(res.body.issue[0].code).toBe('forbidden');
  });
});

describe('kick-off errors (each an OperationOutcome)', () => {
  it.each([
    ['no Prefer: respond-async', '/$export', false, 400, 'EXPORT_PREFER_ASYNC_REQUIRED'],
    ['an unknown _type', '/$export?_type=Nope', true, 400, 'EXPORT_TYPE_UNKNOWN'],
    ['a malformed _since', '/$export?_since=yesterday', true, 400, 'EXPORT_SINCE_INVALID'],
    ['a malformed _typeFilter', `/$export?_typeFilter=${encodeURIComponent('Observation?bogus-param=1')}`, true, 400, 'EXPORT_TYPE_FILTER_INVALID'],
    ['a _typeFilter that is not Type?query', '/$export?_typeFilter=garbage', true, 400, 'EXPORT_TYPE_FILTER_INVALID'],
    ['an unsupported _outputFormat', '/$export?_outputFormat=text/csv', true, 400, 'EXPORT_FORMAT_UNSUPPORTED'],
    ['an unsupported parameter', '/$export?includeAssociatedData=LatestProvenanceResources', true, 400, 'EXPORT_PARAM_UNSUPPORTED'],
  ])('rejects %s', async (_what, path, async, status, code) => {
    let req = t.api.get(`${t.path}${path}`);
    if (async) req = req.set('Prefer', 'respond-async');
    const res = await req;
    expect(res.status).toBe(status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].details.coding[0].code).toBe(code);
  });

  it('with Prefer: handling=lenient ignores an unknown _type and reports it in the error file', async () => {
    const res = await t.api.get(`${t.path}/$export?_type=Patient,Nope`).set('Prefer', 'respond-async, handling=lenient');
    expect(res.status).toBe(202);
    const m = await waitForManifest(t.api, res.headers['content-location']);
    expect(new Set(m.output.map((o) => o.type))).toEqual(new Set(['Patient']));
    expect(m.error).toHaveLength(1);
    const errors = await download(t.api, m.error[0].url);
    expect(errors[0]).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'warning' }] });
  });
});

describe('isolation: an export belongs to its client in its tenant', () => {
  it('another client of the same tenant and another tenant get 404 on the status URL, the files and DELETE', async () => {
    const { manifest, status } = await runExport(t.api, `${t.path}/$export?_type=Patient`);
    const sameTenant = authed(server.origin, await tokenFor(server, t, { clientId: await newBackendClient(server, t.slug) }));
    for (const api of [sameTenant, other.api]) {
      const statusPath = pathOf(status).replace(t.path, api === other.api ? other.path : t.path);
      const filePath = pathOf(manifest.output[0].url).replace(t.path, api === other.api ? other.path : t.path);
      expect((await api.get(statusPath)).status).toBe(404);
      expect((await api.get(filePath)).status).toBe(404);
      expect((await api.delete(statusPath)).status).toBe(404);
    }
    // another tenant's token on this tenant's URLs: 401 (the token is for the other base)
    expect((await other.api.get(pathOf(status))).status).toBe(401);
    // the owner still sees it
    expect((await t.api.get(pathOf(status))).status).toBe(200);
  });

  it("never contains another tenant's data", async () => {
    const { resources } = await runExport(other.api, `${other.path}/$export?_type=Patient`);
    expect(resources.map((r) => r.name[0].family)).toEqual(['Elsewhere']);
  });
});

describe('cancel (export.html#bulk-data-delete-request)', () => {
  it('DELETE answers 202, then the status URL answers 404 and the files are gone', async () => {
    const { manifest, status } = await runExport(t.api, `${t.path}/$export?_type=Patient`);
    const del = await t.api.delete(pathOf(status));
    expect(del.status).toBe(202);
    const after = await t.api.get(pathOf(status));
    expect(after.status).toBe(404);
    expect(after.body.resourceType).toBe('OperationOutcome');
    expect((await t.api.get(pathOf(manifest.output[0].url))).status).toBe(404);
    expect((await t.api.delete(pathOf(status))).status).toBe(404);
  });
});

describe('snapshot (manifest transactionTime)', () => {
  it('leaves out resources created after kick-off and exports updated ones in their kick-off version', async () => {
    const p = patients[0];
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient`);
    const created = await create(t, { resourceType: 'Patient', name: [{ family: 'AfterKickOff' }] });
    const upd = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, name: [{ family: 'Changed' }] }));
    expect(upd.status).toBe(200);
    const m = await waitForManifest(t.api, status);
    const all = await downloadAll(t.api, m);
    expect(all.some((r) => r.id === created.id)).toBe(false);
    const exported = all.find((r) => r.id === p.id)!;
    expect(exported.name[0].family).toBe(p.name[0].family);
    expect(all).toHaveLength(patients.length);
    patients.push(created);
  });
});
