// Bulk Data 2.0 server rows (docs/bulk-conformance.md) that the code meets but export.test.ts and resume.test.ts did
// not prove: a patient-confined token exporting only its own compartment, Patient- and Group-level parameters, the
// manifest's field types, a deterministic in-progress 202, errored status / delete / file requests, unauthenticated
// status and file requests, repeated _typeFilter, root-only _elements, current versions only, Provenance at system level.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { downloadAll, holdExportCommits, kickOff, pathOf, runExport, waitForManifest } from './helpers.js';

let server: TestServer;
let t: TestTenant;
const patients: Record<string, any>[] = [];
const observations: Record<string, any>[] = [];
let provenance: Record<string, any>;
let group: Record<string, any>;
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function observation(patientId: string, category: string): Record<string, unknown> {
  return {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    subject: { reference: `Patient/${patientId}` },
  };
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'expc');
  for (let i = 0; i < 3; i++) patients.push(await create(t, { resourceType: 'Patient', name: [{ family: `Conf${i}` }] }));
  for (const p of patients) {
    observations.push(await create(t, observation(p.id, 'vital-signs')));
    observations.push(await create(t, observation(p.id, 'laboratory')));
  }
  provenance = await create(t, {
    resourceType: 'Provenance', recorded: new Date().toISOString(),
    target: [{ reference: `Observation/${observations[0].id}` }],
    agent: [{ who: { display: 'Lab system' } }],
  });
  group = await create(t, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${patients[0].id}` } }] });
}, 60_000);

afterAll(async () => server?.close());

const byType = (rs: Record<string, any>[], type: string) => rs.filter((r) => r.resourceType === type);

describe('Bulk Data conformance: authorization', () => {
  it("a patient user's patient/*.rs token exports only that patient's compartment at Patient level", async () => {
    const me = patients[1];
    // a backend client's ceiling is system/*.cruds (src/auth/role-matrix.ts): a patient/ token is a user's, through an app
    const app = await newApp(server, t.slug);
    await newUser(server, t.slug, 'bulk-patient', 'patient', `Patient/${me.id}`);
    const token = await tokenFor(server, t, { clientId: app.clientId, username: 'bulk-patient', scope: 'patient/*.rs', patient: me.id });
    const api = authed(server.origin, token);
    const { resources } = await runExport(api, `${t.path}/Patient/$export`);
    expect(byType(resources, 'Patient').map((p) => p.id)).toEqual([me.id]);
    const obs = byType(resources, 'Observation');
    expect(obs).toHaveLength(2);
    expect(obs.every((o) => o.subject.reference === `Patient/${me.id}`)).toBe(true);
    expect(resources.every((r) => r.resourceType === 'Patient' || r.subject?.reference === `Patient/${me.id}`)).toBe(true);
  });

  it('status and file requests without an access token are 401, with the token they succeed', async () => {
    const { manifest, status } = await runExport(t.api, `${t.path}/$export?_type=Patient`);
    expect(manifest.requiresAccessToken).toBe(true);
    const anonymous = authed(server.origin, '');
    const noTokenStatus = await anonymous.get(pathOf(status));
    expect(noTokenStatus.status).toBe(401);
    const noTokenFile = await anonymous.get(pathOf(manifest.output[0].url));
    expect(noTokenFile.status).toBe(401);
    expect((await t.api.get(pathOf(manifest.output[0].url))).status).toBe(200);
  });
});

describe('Bulk Data conformance: kick-off parameters', () => {
  it.each(['Patient', 'Group'])('%s-level export accepts _outputFormat=ndjson and _since', async (level) => {
    const path = level === 'Patient' ? `${t.path}/Patient/$export` : `${t.path}/Group/${group.id}/$export`;
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const changed = patients[0];
    const upd = await t.api.put(`${t.path}/Patient/${changed.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...changed, gender: level === 'Patient' ? 'female' : 'male' }));
    expect(upd.status).toBe(200);
    const { manifest, resources } = await runExport(t.api, `${path}?_outputFormat=ndjson&_since=${encodeURIComponent(cut)}`);
    expect(manifest.output.length).toBeGreaterThan(0);
    expect(resources.map((r) => `${r.resourceType}/${r.id}`)).toEqual([`Patient/${changed.id}`]);
  });

  it('treats repeated _typeFilter parameters as one comma-separated list', async () => {
    const lab = encodeURIComponent(`Observation?category=${CATEGORY}|laboratory`);
    const vital = encodeURIComponent(`Observation?category=${CATEGORY}|vital-signs`);
    const repeated = await runExport(t.api, `${t.path}/$export?_type=Observation&_typeFilter=${lab}&_typeFilter=${vital}`);
    const joined = await runExport(t.api, `${t.path}/$export?_type=Observation&_typeFilter=${lab},${vital}`);
    expect(repeated.resources.map((r) => r.id).sort()).toEqual(observations.map((o) => o.id).sort());
    expect(joined.resources.map((r) => r.id).sort()).toEqual(repeated.resources.map((r) => r.id).sort());
    const one = await runExport(t.api, `${t.path}/$export?_type=Observation&_typeFilter=${lab}`);
    expect(one.resources).toHaveLength(patients.length);
  });

  it('refuses _elements that are not root elements (400 OperationOutcome)', async () => {
    const res = await t.api.get(`${t.path}/$export?_elements=Patient.name.family`).set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].details.coding[0].code).toBe('EXPORT_ELEMENTS_INVALID');
  });
});

describe('Bulk Data conformance: the completion manifest', () => {
  it('has transactionTime (an instant of the kick-off), request (the full kick-off URL), requiresAccessToken, output and error arrays', async () => {
    const before = Date.now();
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient,Observation&_outputFormat=ndjson`);
    const after = Date.now();
    const m = await waitForManifest(t.api, status);
    expect(m.transactionTime).toMatch(INSTANT);
    expect(Date.parse(m.transactionTime)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(m.transactionTime)).toBeLessThanOrEqual(after + 1000);
    expect(typeof m.request).toBe('string');
    expect(m.request).toBe(`${t.base}/$export?_type=Patient%2CObservation&_outputFormat=ndjson`);
    expect(typeof m.requiresAccessToken).toBe('boolean');
    expect(Array.isArray(m.output)).toBe(true);
    expect(Array.isArray(m.error)).toBe(true);
    expect(m).not.toHaveProperty('extension');
    for (const o of m.output) {
      expect(Object.keys(o).sort()).toEqual(['count', 'type', 'url']);
      expect(new URL(o.url).origin).toBe(server.origin);
      expect(o.url.startsWith(`${t.base}/`)).toBe(true);
      expect(typeof o.count).toBe('number');
    }
    const all = await downloadAll(t.api, m);
    expect(byType(all, 'Observation')).toHaveLength(observations.length);
  });

  it('exports only the current version of a resource updated before kick-off', async () => {
    const p = await create(t, { resourceType: 'Patient', name: [{ family: 'Versioned1' }] });
    for (const family of ['Versioned2', 'Versioned3']) {
      const upd = await t.api.put(`${t.path}/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...p, name: [{ family }] }));
      expect(upd.status).toBe(200);
    }
    patients.push(p);
    const { resources } = await runExport(t.api, `${t.path}/$export?_type=Patient`);
    const mine = resources.filter((r) => r.id === p.id);
    expect(mine).toHaveLength(1);
    expect(mine[0].name[0].family).toBe('Versioned3');
    expect(mine[0].meta.versionId).toBe('3');
  });

  it('a system-level export without _type includes the Provenance resources; with a _type list without Provenance it does not', async () => {
    const { resources } = await runExport(t.api, `${t.path}/$export`);
    expect(byType(resources, 'Provenance').map((r) => r.id)).toEqual([provenance.id]);
    const typed = await runExport(t.api, `${t.path}/$export?_type=Observation`);
    expect(byType(typed.resources, 'Provenance')).toHaveLength(0);
  });
});

describe('Bulk Data conformance: status, delete and file requests', () => {
  it('answers a status request of a running export 202 with X-Progress, then 200 with the manifest', async () => {
    const hold = holdExportCommits(server);
    try {
      const status = await kickOff(t.api, `${t.path}/$export?_type=Patient`);
      const running = await t.api.get(pathOf(status));
      expect(running.status).toBe(202);
      expect(running.headers['x-progress']).toMatch(/progress/);
      hold.release();
      const m = await waitForManifest(t.api, status);
      expect(m.output.length).toBeGreaterThan(0);
    } finally {
      hold.restore();
    }
  });

  it('answers an errored status request (unknown export) 404 with a FHIR JSON OperationOutcome', async () => {
    const res = await t.api.get(`${t.path}/$export-status/00000000-0000-4000-8000-000000000000`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('answers an errored delete request (unknown export) 404 with a JSON OperationOutcome', async () => {
    const res = await t.api.delete(`${t.path}/$export-status/00000000-0000-4000-8000-000000000000`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/json/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('answers an errored output file request (unknown file) 404', async () => {
    const { status } = await runExport(t.api, `${t.path}/$export?_type=Patient`);
    const id = pathOf(status).split('/').at(-1)!;
    const res = await t.api.get(`${t.path}/$export-file/${id}/Nope-1.ndjson`);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
