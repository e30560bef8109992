// Bulk Data 2.0 manifest `deleted` (export.html#response---complete-status; docs/bulk-conformance.md rows 180-190):
// with _since, the resources deleted since then, as of the snapshot, as NDJSON files of transaction Bundles whose
// entries are `DELETE Type/id`, listed like output's files; within _type, the level (Patient compartment, Group
// members) and the caller's access (judged on each resource's last version before its deletion), never another
// tenant's, and never a resource that is also in `output`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { downloadAll, holdExportCommits, downloadDeleted, kickOff, runExport, waitForManifest } from './helpers.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
/** Four patients, each with a vital-signs and a laboratory Observation. */
const patients: Record<string, any>[] = [];
const vital: Record<string, any>[] = [];
const lab: Record<string, any>[] = [];

function observation(patientId: string, category: string): Record<string, unknown> {
  return {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code: category === 'laboratory' ? '2345-7' : '8867-4' }] },
    subject: { reference: `Patient/${patientId}` },
  };
}

const ref = (r: Record<string, any>) => `${r.resourceType}/${r.id}`;

async function remove(tt: TestTenant, r: Record<string, any>): Promise<void> {
  const res = await tt.api.delete(`${tt.path}/${ref(r)}`);
  expect([200, 204]).toContain(res.status);
}

/** An instant between what came before and what comes after (the server's clock is the test's). */
async function cut(): Promise<string> {
  await new Promise((r) => setTimeout(r, 20));
  const at = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  return at;
}

beforeAll(async () => {
  // 2 per file: deletions are split over files like output
  server = await startServer({ exportFileMaxResources: 2 });
  t = await newTenant(server, 'expd');
  other = await newTenant(server, 'expdo');
  for (let i = 0; i < 4; i++) {
    const p = await create(t, { resourceType: 'Patient', name: [{ family: `Del${i}` }] });
    patients.push(p);
    vital.push(await create(t, observation(p.id, 'vital-signs')));
    lab.push(await create(t, observation(p.id, 'laboratory')));
  }
}, 60_000);

afterAll(async () => server?.close());

describe("the manifest's deleted array (system level)", () => {
  let since: string;
  let practitioner: Record<string, any>;
  let recreated: Record<string, any>;
  let otherObservation: Record<string, any>;

  beforeAll(async () => {
    const early = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Early' }] });
    await remove(t, early);
    practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Gone' }] });
    recreated = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Back' }] });
    const otherPatient = await create(other, { resourceType: 'Patient', name: [{ family: 'Elsewhere' }] });
    otherObservation = await create(other, observation(otherPatient.id, 'laboratory'));
    since = await cut();
    // deleted since: two observations, a practitioner; one deleted and created again (a current resource again)
    for (const r of [vital[0], lab[1], practitioner, recreated]) await remove(t, r);
    const again = await t.api.put(`${t.path}/${ref(recreated)}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...recreated, meta: undefined }));
    expect(again.status).toBe(201);
    await remove(other, otherObservation);
  }, 60_000);

  it('lists the resources deleted since _since as transaction Bundles of DELETE Type/id entries, in deleted file items like output', async () => {
    const { manifest } = await runExport(t.api, `${t.path}/$export?_since=${encodeURIComponent(since)}`);
    const deleted = await downloadDeleted(t.api, manifest);
    expect(deleted.sort()).toEqual([ref(vital[0]), ref(lab[1]), ref(practitioner)].sort());
    // at most EXPORT_FILE_MAX_RESOURCES (2) per file, one Bundle per deleted resource
    expect(manifest.deleted.map((d) => d.count)).toEqual([2, 1]);
  });

  it('never lists a resource that is in output (deleted and created again since _since: in output only)', async () => {
    const { manifest, resources } = await runExport(t.api, `${t.path}/$export?_since=${encodeURIComponent(since)}`);
    const deleted = new Set(await downloadDeleted(t.api, manifest));
    const output = resources.map(ref);
    expect(output).toContain(ref(recreated));
    expect(output.filter((r) => deleted.has(r))).toEqual([]);
  });

  it('lists only deletions of the types named in _type', async () => {
    const { manifest } = await runExport(t.api, `${t.path}/$export?_type=Practitioner&_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(t.api, manifest)).toEqual([ref(practitioner)]);
  });

  it('is an empty array without _since', async () => {
    const { manifest } = await runExport(t.api, `${t.path}/$export?_type=Observation,Practitioner`);
    expect(manifest.deleted).toEqual([]);
  });

  it("never lists another tenant's deletions; that tenant's export lists only its own", async () => {
    const mine = await runExport(t.api, `${t.path}/$export?_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(t.api, mine.manifest)).not.toContain(ref(otherObservation));
    const theirs = await runExport(other.api, `${other.path}/$export?_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(other.api, theirs.manifest)).toEqual([ref(otherObservation)]);
  });
});

describe("the manifest's deleted array: Patient and Group level and the caller's access", () => {
  let since: string;
  let group: Record<string, any>;

  beforeAll(async () => {
    group = await create(t, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${patients[3].id}` } }] });
    since = await cut();
    for (const r of [lab[2], vital[3], lab[3]]) await remove(t, r);
  }, 60_000);

  it("a patient user's Patient-level export lists only deletions from that patient's compartment", async () => {
    const me = patients[2];
    const app = await newApp(server, t.slug);
    await newUser(server, t.slug, 'deleted-patient', 'patient', `Patient/${me.id}`);
    const token = await tokenFor(server, t, { clientId: app.clientId, username: 'deleted-patient', scope: 'patient/*.rs', patient: me.id });
    const api = authed(server.origin, token);
    const { manifest } = await runExport(api, `${t.path}/Patient/$export?_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(api, manifest)).toEqual([ref(lab[2])]);
  });

  it("a system client's Patient-level export lists the deletions of every patient's compartment types", async () => {
    const { manifest } = await runExport(t.api, `${t.path}/Patient/$export?_since=${encodeURIComponent(since)}`);
    expect((await downloadDeleted(t.api, manifest)).sort()).toEqual([ref(lab[2]), ref(vital[3]), ref(lab[3])].sort());
  });

  it("a Group-level export lists only deletions from its members' compartments", async () => {
    const { manifest } = await runExport(t.api, `${t.path}/Group/${group.id}/$export?_since=${encodeURIComponent(since)}`);
    expect((await downloadDeleted(t.api, manifest)).sort()).toEqual([ref(vital[3]), ref(lab[3])].sort());
  });

  it('a granular system/Observation.rs?category=laboratory token lists only deletions of laboratory observations', async () => {
    const api = authed(server.origin, await tokenFor(server, t, { scope: `system/Observation.rs?category=${CATEGORY}|laboratory` }));
    const { manifest } = await runExport(api, `${t.path}/$export?_since=${encodeURIComponent(since)}`);
    expect((await downloadDeleted(api, manifest)).sort()).toEqual([ref(lab[2]), ref(lab[3])].sort());
  });

  it('with _typeFilter lists only deletions whose last version matched it', async () => {
    const filter = encodeURIComponent(`Observation?category=${CATEGORY}|vital-signs`);
    const { manifest } = await runExport(t.api, `${t.path}/$export?_type=Observation&_typeFilter=${filter}&_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(t.api, manifest)).toEqual([ref(vital[3])]);
  });
});

describe("the manifest's deleted array as of the snapshot (transactionTime)", () => {
  it('lists what was deleted at kick-off: not a deletion after it; a resource deleted before it and created again after it', async () => {
    const since = await cut();
    const changed = await t.api.put(`${t.path}/${ref(patients[0])}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...patients[0], gender: 'other' }));
    expect(changed.status).toBe(200);
    const [x, y, z] = [lab[0], vital[1], vital[2]];
    await remove(t, x);
    await remove(t, y);
    // hold the export at its first file (Patient) until the changes after kick-off are written
    const hold = holdExportCommits(server);
    try {
      const status = await kickOff(t.api, `${t.path}/$export?_type=Patient,Observation&_since=${encodeURIComponent(since)}`);
      await new Promise((r) => setTimeout(r, 20));
      const back = await t.api.put(`${t.path}/${ref(x)}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...x, meta: undefined }));
      expect(back.status).toBe(201);
      await remove(t, z);
      hold.release();
      const m = await waitForManifest(t.api, status);
      expect((await downloadDeleted(t.api, m)).sort()).toEqual([ref(x), ref(y)].sort());
      expect((await downloadAll(t.api, m)).map(ref)).toEqual([ref(patients[0])]);
    } finally {
      hold.restore();
    }
  });
});
