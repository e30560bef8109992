// Bulk Data 2.0 (export.html#query-parameters; docs/bulk-conformance.md rows 109 and 110): without
// includeAssociatedData (which this server does not support), a Patient- or Group-level export includes every
// Provenance whose `target` is a resource of the exported Patient compartment(s), not only those that R4's compartment
// reaches (the `patient` parameter: a target that is the Patient); once each; never one that targets another patient's resource or another tenant's;
// none when _type leaves Provenance out; as of the snapshot (transactionTime), for the Provenance and its targets.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { downloadAll, holdExportCommits, downloadDeleted, kickOff, runExport, waitForManifest } from './helpers.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let me: Record<string, any>;
let them: Record<string, any>;
let myObs: Record<string, any>;
let theirObs: Record<string, any>;
let group: Record<string, any>;
/** Provenance of t: the ones that belong in `me`'s exports, and the ones that do not. */
const mine: Record<string, any>[] = [];
const notMine: Record<string, any>[] = [];
let otherProvenance: Record<string, any>;

const ref = (r: Record<string, any>) => `${r.resourceType}/${r.id}`;

function observation(patientId: string): Record<string, unknown> {
  return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${patientId}` } };
}

function provenance(targets: string[]): Record<string, unknown> {
  return { resourceType: 'Provenance', recorded: new Date().toISOString(), target: targets.map((reference) => ({ reference })), agent: [{ who: { display: 'Lab system' } }] };
}

async function put(tt: TestTenant, r: Record<string, any>, status = 200): Promise<Record<string, any>> {
  const res = await tt.api.put(`${tt.path}/${ref(r)}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(r));
  expect(res.status).toBe(status);
  return res.body;
}

async function cut(): Promise<string> {
  await new Promise((r) => setTimeout(r, 20));
  const at = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  return at;
}

/** A patient user's patient/*.rs token for Patient/id (through a user app, as in conformance.test.ts). */
async function patientApi(patientId: string, username: string): Promise<Api> {
  const app = await newApp(server, t.slug);
  await newUser(server, t.slug, username, 'patient', `Patient/${patientId}`);
  return authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username, scope: 'patient/*.rs', patient: patientId }));
}

const provenanceIds = (rs: Record<string, any>[]) => rs.filter((r) => r.resourceType === 'Provenance').map((r) => r.id).sort();

beforeAll(async () => {
  // one resource per file: the Provenance scan crosses files (the job's cursor) with rows skipped in memory between them
  server = await startServer({ exportFileMaxResources: 1 });
  t = await newTenant(server, 'expv');
  other = await newTenant(server, 'expvo');
  me = await create(t, { resourceType: 'Patient', name: [{ family: 'Mine' }] });
  them = await create(t, { resourceType: 'Patient', name: [{ family: 'Theirs' }] });
  myObs = await create(t, observation(me.id));
  theirObs = await create(t, observation(them.id));
  const practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Outside' }] });
  // targets a resource of my compartment, names no patient
  mine.push(await create(t, provenance([ref(myObs)])));
  // targets me myself (R4's compartment: the `patient` parameter, a target that is the Patient) AND my resource: once
  mine.push(await create(t, provenance([ref(me), ref(myObs)])));
  // targets me myself only
  mine.push(await create(t, provenance([ref(me)])));
  // one of its targets is mine
  mine.push(await create(t, provenance([ref(practitioner), ref(myObs)])));
  notMine.push(await create(t, provenance([ref(theirObs)])));
  notMine.push(await create(t, provenance([ref(practitioner)])));
  notMine.push(await create(t, provenance([ref(them), ref(theirObs)])));
  group = await create(t, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: ref(me) } }] });
  // another tenant: the same ids for the patient and the observation, and a Provenance that targets them
  await put(other, { resourceType: 'Patient', id: me.id, name: [{ family: 'Elsewhere' }] }, 201);
  await put(other, { ...observation(me.id), id: myObs.id }, 201);
  otherProvenance = await create(other, provenance([ref(myObs)]));
}, 60_000);

afterAll(async () => server?.close());

describe('Provenance at Patient and Group level (includeAssociatedData not supported)', () => {
  it("a patient user's Patient-level export includes every Provenance that targets a resource of the compartment, once each, and none that targets another patient's resource", async () => {
    const api = await patientApi(me.id, 'prov-me');
    const { resources } = await runExport(api, `${t.path}/Patient/$export`);
    const ids = provenanceIds(resources);
    expect(ids).toEqual(mine.map((r) => r.id).sort());
    expect(new Set(resources.map(ref)).size).toBe(resources.length);
    expect(ids).not.toContain(otherProvenance.id);
  });

  it("another patient's Patient-level export has the Provenance of that patient's resources only", async () => {
    const api = await patientApi(them.id, 'prov-them');
    const { resources } = await runExport(api, `${t.path}/Patient/$export`);
    expect(provenanceIds(resources)).toEqual([notMine[0].id, notMine[2].id].sort());
  });

  it("a Group-level export includes every Provenance that targets its members' resources, once each; not another patient's, not another tenant's", async () => {
    const { resources } = await runExport(t.api, `${t.path}/Group/${group.id}/$export`);
    const ids = provenanceIds(resources);
    expect(ids).toEqual(mine.map((r) => r.id).sort());
    expect(new Set(resources.map(ref)).size).toBe(resources.length);
    const theirs = await runExport(other.api, `${other.path}/Patient/$export`);
    expect(provenanceIds(theirs.resources)).toEqual([otherProvenance.id]);
  });

  it('with a _type list without Provenance, no Provenance at Patient and Group level', async () => {
    const api = await patientApi(me.id, 'prov-typed');
    const patientLevel = await runExport(api, `${t.path}/Patient/$export?_type=Observation`);
    expect(patientLevel.resources.map(ref)).toEqual([ref(myObs)]);
    const groupLevel = await runExport(t.api, `${t.path}/Group/${group.id}/$export?_type=Observation`);
    expect(groupLevel.resources.map(ref)).toEqual([ref(myObs)]);
  });

  it('with _type=Provenance alone, the Provenance of the compartment all the same', async () => {
    const { resources } = await runExport(t.api, `${t.path}/Group/${group.id}/$export?_type=Provenance`);
    expect(provenanceIds(resources)).toEqual(mine.map((r) => r.id).sort());
  });

  it("with _since, the deleted array lists the deleted Provenance that targeted a member's resource, not another patient's", async () => {
    const before = [await create(t, provenance([ref(myObs)])), await create(t, provenance([ref(theirObs)]))];
    const since = await cut();
    for (const r of before) expect([200, 204]).toContain((await t.api.delete(`${t.path}/${ref(r)}`)).status);
    const { manifest } = await runExport(t.api, `${t.path}/Group/${group.id}/$export?_type=Provenance&_since=${encodeURIComponent(since)}`);
    expect(await downloadDeleted(t.api, manifest)).toEqual([ref(before[0])]);
  });
});

describe('Provenance at Group level as of the snapshot (transactionTime)', () => {
  it('judges each Provenance and its targets in their kick-off versions: changes after kick-off neither add nor remove one', async () => {
    const myObs2 = await create(t, observation(me.id));
    const movedAway = await create(t, observation(me.id));
    const movedIn = await create(t, observation(them.id));
    // at kick-off: targets my resource; after it, another patient's (exported, in its kick-off version)
    const changed = await create(t, provenance([ref(myObs2)]));
    // at kick-off its target is mine; after it, the target moves to another patient (still exported)
    const toMovedAway = await create(t, provenance([ref(movedAway)]));
    // at kick-off its target is another patient's; after it, the target moves to me (not exported)
    const toMovedIn = await create(t, provenance([ref(movedIn)]));
    const hold = holdExportCommits(server);
    let created: Record<string, any> | undefined;
    try {
      // Observation comes before Provenance: its first file holds the run until the changes are written
      const status = await kickOff(t.api, `${t.path}/Group/${group.id}/$export?_type=Observation,Provenance`);
      await new Promise((r) => setTimeout(r, 20));
      await put(t, { ...changed, target: [{ reference: ref(theirObs) }] });
      await put(t, { ...movedAway, subject: { reference: ref(them) } });
      await put(t, { ...movedIn, subject: { reference: ref(me) } });
      created = await create(t, provenance([ref(myObs)]));
      hold.release();
      const m = await waitForManifest(t.api, status);
      const all = await downloadAll(t.api, m);
      const prov = all.filter((r) => r.resourceType === 'Provenance');
      expect(prov.map((r) => r.id).sort()).toEqual([...mine, changed, toMovedAway].map((r) => r.id).sort());
      const old = prov.find((r) => r.id === changed.id)!;
      expect(old.meta.versionId).toBe('1');
      expect(old.target).toEqual([{ reference: ref(myObs2) }]);
      expect(prov.map((r) => r.id)).not.toContain(toMovedIn.id);
      expect(prov.map((r) => r.id)).not.toContain(created.id);
    } finally {
      hold.restore();
    }
  });
});
