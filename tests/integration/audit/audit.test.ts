// The audit trail (issue 12): every FHIR interaction leaves exactly one AuditEvent naming who, what, when, from where
// and how it ended; the trail cannot be written through the API; a patient sees who touched their record; another
// tenant sees nothing; the retention purge deletes old records and audits itself.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { purgeAuditTrail } from '../../../src/jobs/audit-purge.js';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { newApp, newUser } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

type Res = Record<string, any>;

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
let doctor: Api;
let patientApi: Api;
let admin: Api;
let patientId: string;
let otherPatientId: string;
let appId: string;
const DOCTOR = 'Practitioner/audit-doc';
const ADMIN = 'Practitioner/audit-admin';

async function put(tenant: TestTenant, resource: Res): Promise<Res> {
  const res = await tenant.api.put(`${tenant.path}/${resource.resourceType}/${resource.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT ${resource.resourceType}/${resource.id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every AuditEvent the search finds (following next links), oldest first. */
async function trail(api: Api, tenant: TestTenant, query: string): Promise<Res[]> {
  const out: Res[] = [];
  let url: string | undefined = `${tenant.path}/AuditEvent?_sort=date&_count=100&${query}`;
  while (url) {
    const res = await api.get(url);
    expect(res.status).toBe(200);
    out.push(...(res.body.entry ?? []).map((e: Res) => e.resource));
    const next: string | undefined = res.body.link?.find((l: Res) => l.relation === 'next')?.url;
    url = next ? next.slice(next.indexOf('/fhir/')) : undefined;
  }
  return out;
}

/** One AuditEvent as a comparable line: subtype, action, outcome, and the resources it names (without versions). */
function line(e: Res): string {
  const refs = (e.entity ?? []).filter((x: Res) => x.what).map((x: Res) => x.what.reference.replace(/\/_history\/\d+$/, ''));
  return [e.subtype[0].code, e.action, e.outcome, [...new Set(refs)].sort().join(' ')].join(' | ');
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'au');
  other = await newTenant(server, 'au2');
  const app = await newApp(server, t.slug, { scope: 'openid fhirUser launch/patient user/*.cruds patient/*.cruds' });
  appId = app.clientId;
  await put(t, { resourceType: 'Practitioner', id: 'audit-doc', name: [{ family: 'Doc' }] });
  await put(t, { resourceType: 'Practitioner', id: 'audit-admin', name: [{ family: 'Admin' }] });
  patientId = (await create(t, { resourceType: 'Patient', name: [{ family: 'Audited' }] })).id;
  otherPatientId = (await create(t, { resourceType: 'Patient', name: [{ family: 'Bystander' }] })).id;
  await newUser(server, t.slug, 'au-doctor', 'practitioner', DOCTOR);
  await newUser(server, t.slug, 'au-admin', 'tenant-admin', ADMIN);
  await newUser(server, t.slug, 'au-patient', 'patient', `Patient/${patientId}`);
  doctor = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'au-doctor', scope: 'user/*.cruds' }));
  admin = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'au-admin', scope: 'user/*.cruds' }));
  patientApi = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: 'au-patient', scope: 'patient/*.rs', patient: patientId }));
});
afterAll(async () => server?.close());

describe('every interaction records exactly one AuditEvent', () => {
  it('a practitioner: each read, search, write, history, bundle, operation and refusal, with who and how it ended', async () => {
    const enc = { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patientId}` } };
    const created = await doctor.post(`${t.path}/Encounter`).set('Content-Type', FHIR_JSON).send(JSON.stringify(enc));
    expect(created.status).toBe(201);
    const encId = created.body.id;
    expect((await doctor.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    // (on PostgreSQL a read by id records itself in its own statement: the patients come from its content there)
    expect((await doctor.get(`${t.path}/Encounter/${encId}`)).status).toBe(200);
    expect((await doctor.get(`${t.path}/Encounter/${encId}/_history/1`)).status).toBe(200);
    expect((await doctor.get(`${t.path}/Encounter?subject=Patient/${patientId}`)).status).toBe(200);
    expect((await doctor.put(`${t.path}/Encounter/${encId}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...enc, id: encId, status: 'finished' }))).status).toBe(200);
    const patched = await doctor.patch(`${t.path}/Encounter/${encId}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'add', path: '/priority', value: { text: 'routine' } }]));
    expect(patched.status).toBe(200);
    expect((await doctor.get(`${t.path}/Encounter/${encId}/_history`)).status).toBe(200);
    // refused: a practitioner may not delete (403), and an unknown id (404)
    expect((await doctor.delete(`${t.path}/Encounter/${encId}`)).status).toBe(403);
    expect((await doctor.get(`${t.path}/Patient/no-such-patient`)).status).toBe(404);
    // a transaction: one record for the Bundle, one per entry
    const tx = await doctor.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:9b1de5a6-0000-4000-8000-000000000001', resource: { ...enc, status: 'planned' }, request: { method: 'POST', url: 'Encounter' } },
        { request: { method: 'GET', url: `Patient/${patientId}` } },
      ],
    }));
    expect(tx.status).toBe(200);
    const txEnc = tx.body.entry[0].response.location.split('/')[1];
    const validate = await doctor.post(`${t.path}/Encounter/$validate`).set('Content-Type', FHIR_JSON).send(JSON.stringify(enc));
    expect(validate.status).toBe(200);

    const mine = await trail(admin, t, `agent=${DOCTOR}&type=rest`);
    const p = `Patient/${patientId}`;
    expect(mine.map(line)).toEqual([
      `create | C | 0 | Encounter/${encId} ${p}`,
      `read | R | 0 | ${p}`,
      `read | R | 0 | Encounter/${encId} ${p}`,
      `vread | R | 0 | Encounter/${encId} ${p}`,
      `search-type | E | 0 | Encounter/${encId} ${p}`,
      `update | U | 0 | Encounter/${encId} ${p}`,
      `patch | U | 0 | Encounter/${encId} ${p}`,
      `history-instance | R | 0 | Encounter/${encId} ${p}`,
      `delete | D | 4 | Encounter/${encId}`,
      `read | R | 4 | Patient/no-such-patient`,
      // inside the transaction: the entries' records come from the transaction itself, then the Bundle's
      `create | C | 0 | Encounter/${txEnc} ${p}`,
      `read | R | 0 | ${p}`,
      `transaction | E | 0 | `,
      `operation | E | 0 | `,
    ]);
    // who, from where, which client and role; the refusal says why; the update names the version it replaced
    const update = mine.find((e) => e.subtype[0].code === 'update')!;
    const user = update.agent.find((a: Res) => a.requestor);
    expect(user.who.reference).toBe(DOCTOR);
    expect(user.role[0].text).toBe('practitioner');
    expect(user.network.address).toMatch(/127\.0\.0\.1/);
    expect(update.agent.some((a: Res) => a.who?.identifier?.value)).toBe(true);
    expect(update.entity.map((x: Res) => x.what?.reference).filter(Boolean)).toEqual(expect.arrayContaining([`Encounter/${encId}/_history/2`, `Encounter/${encId}/_history/1`]));
    expect(update.type).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' });
    const refused = mine.find((e) => e.subtype[0].code === 'delete')!;
    expect(refused.outcomeDesc).toMatch(/scope/i);
    const search = mine.find((e) => e.subtype[0].code === 'search-type')!;
    const query = search.entity.find((x: Res) => x.query);
    expect(Buffer.from(query.query, 'base64').toString()).toBe(`subject=Patient/${patientId}`);
  });

  it('a patient: their own reads are recorded too, and a write they may not make', async () => {
    expect((await patientApi.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await patientApi.get(`${t.path}/Encounter`)).status).toBe(200);
    expect((await patientApi.post(`${t.path}/Encounter`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' }, subject: { reference: `Patient/${patientId}` } }))).status).toBe(403);
    const theirs = await trail(admin, t, `agent=Patient/${patientId}&type=rest`);
    expect(theirs.map((e) => `${e.subtype[0].code} | ${e.outcome}`)).toEqual(['read | 0', 'search-type | 0', 'create | 4']);
  });

  it('the system client: recorded under its client id (no user)', async () => {
    const before = (await trail(admin, t, `client=${t.clientId}&subtype=read`)).length;
    expect((await t.api.get(`${t.path}/Patient/${otherPatientId}`)).status).toBe(200);
    const after = await trail(admin, t, `client=${t.clientId}&subtype=read`);
    expect(after.length).toBe(before + 1);
    const last = after[after.length - 1];
    expect(last.agent.find((a: Res) => a.who?.identifier)?.who.identifier.value).toBe(t.clientId);
    expect(last.agent.some((a: Res) => a.who?.reference)).toBe(false);
  });

  it.each(['receptionist', 'lab-technician', 'tenant-admin'] as const)('a %s: a read, a search and a refused write, under that role', async (role) => {
    const username = `au-${role}`;
    await put(t, { resourceType: 'Practitioner', id: username, name: [{ family: role }] });
    await newUser(server, t.slug, username, role, `Practitioner/${username}`);
    const api = authed(server.origin, await tokenFor(server, t, { clientId: appId, username, scope: 'user/*.cruds' }));
    expect((await api.get(`${t.path}/Patient/${patientId}`)).status).toBe(200);
    expect((await api.get(`${t.path}/Patient?_id=${patientId}`)).status).toBe(200);
    const mr = { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationCodeableConcept: { text: 'x' }, subject: { reference: `Patient/${patientId}` } };
    expect((await api.post(`${t.path}/MedicationRequest`).set('Content-Type', FHIR_JSON).send(JSON.stringify(mr))).status).toBe(403);
    const records = await trail(admin, t, `agent=Practitioner/${username}&type=rest`);
    expect(records.map(line)).toEqual([`read | R | 0 | Patient/${patientId}`, `search-type | E | 0 | Patient/${patientId}`, 'create | C | 4 | ']);
    for (const e of records) expect(e.agent.find((a: Res) => a.who?.reference === `Practitioner/${username}`)?.role[0].text).toBe(role);
    expect((await trail(admin, t, `agent-role=${role}&agent=Practitioner/${username}&type=rest`)).map(line)).toEqual(records.map(line));
  });

  it('a rejected token is recorded as a failed authentication, with the address it came from', async () => {
    const res = await authed(server.origin, 'not-a-token').get(`${t.path}/Patient`);
    expect(res.status).toBe(401);
    const rejected = await trail(admin, t, 'subtype=token-rejected');
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    expect(rejected[rejected.length - 1]).toMatchObject({ outcome: '4', action: 'E' });
    expect(rejected[rejected.length - 1].agent[0].network.address).toMatch(/127\.0\.0\.1/);
  });

  it('a transaction that fails leaves no record of its writes, only the failed Bundle', async () => {
    const marker = `rollback-${Date.now()}`;
    const creates = (await trail(admin, t, `client=${t.clientId}&subtype=create`)).length;
    const res = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [{ value: marker }] }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: 'Patient/x' }, resource: undefined },
        { resource: { resourceType: 'Patient', name: 'not an array' }, request: { method: 'POST', url: 'Patient' } },
      ],
    }));
    expect(res.status).toBe(400);
    const records = await trail(admin, t, `client=${t.clientId}&date=ge${new Date(Date.now() - 60_000).toISOString()}`);
    const last = records[records.length - 1];
    expect(line(last)).toBe('transaction | E | 4 | ');
    expect((await t.api.get(`${t.path}/Patient?identifier=${marker}`)).body.entry ?? []).toEqual([]);
    expect(await trail(admin, t, `client=${t.clientId}&subtype=create`)).toHaveLength(creates);
  });
});

describe('the trail cannot be written through the API', () => {
  it('create, update, patch, delete and their conditional forms are 405 for the broadest token, and change nothing', async () => {
    const first = (await t.api.get(`${t.path}/AuditEvent?_count=1`)).body.entry[0].resource;
    const before = (await t.api.get(`${t.path}/AuditEvent?_summary=count`)).body.total;
    const ae = { resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: '2024-01-01T00:00:00Z', agent: [{ requestor: true }], source: { observer: { display: 'x' } } };
    const attempts = [
      t.api.post(`${t.path}/AuditEvent`).set('Content-Type', FHIR_JSON).send(JSON.stringify(ae)),
      t.api.post(`${t.path}/AuditEvent`).set('Content-Type', FHIR_JSON).set('If-None-Exist', '_id=1').send(JSON.stringify(ae)),
      t.api.put(`${t.path}/AuditEvent/${first.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...ae, id: first.id })),
      t.api.put(`${t.path}/AuditEvent?_id=${first.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(ae)),
      t.api.patch(`${t.path}/AuditEvent/${first.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/outcome', value: '0' }])),
      t.api.patch(`${t.path}/AuditEvent?_id=${first.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/outcome', value: '0' }])),
      t.api.delete(`${t.path}/AuditEvent/${first.id}`),
      t.api.delete(`${t.path}/AuditEvent?_id=${first.id}`),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(405);
      expect(res.body.issue[0].details.coding[0].code).toBe('AUDIT_IMMUTABLE');
    }
    const tx = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Never' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: ae, request: { method: 'POST', url: 'AuditEvent' } },
      ],
    }));
    expect(tx.status).toBe(405);
    const batch = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'DELETE', url: `AuditEvent/${first.id}` } },
        { request: { method: 'DELETE', url: `AuditEvent?_id=${first.id}` } },
        { resource: { ...ae, id: first.id }, request: { method: 'PUT', url: `AuditEvent/${first.id}` } },
      ],
    }));
    expect(batch.status).toBe(200);
    expect(batch.body.entry.map((e: Res) => e.response.status)).toEqual(['405', '405', '405'].map((s) => expect.stringMatching(new RegExp(`^${s}`))));
    // the record is as it was, and no AuditEvent was added by any of these writes (only their failure records)
    const again = await t.api.get(`${t.path}/AuditEvent/${first.id}`);
    expect(again.body).toEqual(first);
    const after = await trail(t.api, t, `_id=${first.id}`);
    expect(after).toHaveLength(1);
    const now = (await t.api.get(`${t.path}/AuditEvent?_summary=count`)).body.total;
    expect(now).toBeGreaterThan(before);
    const writes = await trail(t.api, t, `subtype=create,update,patch,delete&outcome=0&entity=AuditEvent/${first.id}`);
    expect(writes).toEqual([]);
  });
});

describe('who may read the trail', () => {
  it('a patient reads the records about their own record only, without staff network details', async () => {
    const res = await patientApi.get(`${t.path}/AuditEvent?_count=1000`);
    expect(res.status).toBe(200);
    const events: Res[] = res.body.entry.map((e: Res) => e.resource);
    expect(events.length).toBeGreaterThan(3);
    for (const e of events) {
      expect(JSON.stringify(e.entity)).toContain(`Patient/${patientId}`);
      for (const a of e.agent) expect(a.network).toBeUndefined();
    }
    // the practitioner's reads of the record are there ("who looked at my record")
    expect(events.some((e) => e.subtype[0].code === 'read' && e.agent.some((a: Res) => a.who?.reference === DOCTOR))).toBe(true);
    // a record about another patient is invisible, by search and by id
    const [bystander] = await trail(admin, t, `patient=${otherPatientId}`);
    expect(bystander).toBeDefined();
    expect(events.some((e) => e.id === bystander.id)).toBe(false);
    expect((await patientApi.get(`${t.path}/AuditEvent/${bystander.id}`)).status).toBe(404);
    expect((await patientApi.get(`${t.path}/AuditEvent?patient=${otherPatientId}`)).body.entry ?? []).toEqual([]);
    // and the patient may not write it either
    expect((await patientApi.delete(`${t.path}/AuditEvent/${events[0].id}`)).status).toBe(405);
  });

  it('a practitioner (no AuditEvent scope in the role matrix) is refused', async () => {
    expect((await doctor.get(`${t.path}/AuditEvent`)).status).toBe(403);
  });

  it('Patient/[id]/AuditEvent is the trail about that patient', async () => {
    const res = await admin.get(`${t.path}/Patient/${patientId}/AuditEvent?_count=1000`);
    expect(res.status).toBe(200);
    const all = await trail(admin, t, `patient=${patientId}`);
    expect(res.body.entry.map((e: Res) => e.resource.id).sort()).toEqual(all.map((e) => e.id).sort());
  });

  it('another tenant sees none of it: not by search, not by id, not through a patient compartment', async () => {
    const mine = (await admin.get(`${t.path}/AuditEvent?_count=1`)).body.entry[0].resource;
    const theirs = await trail(other.api, other, '');
    expect(theirs.every((e) => !JSON.stringify(e).includes(t.slug))).toBe(true);
    expect(theirs.some((e) => e.id === mine.id)).toBe(false);
    expect((await other.api.get(`${other.path}/AuditEvent/${mine.id}`)).status).toBe(404);
    expect((await other.api.get(`${other.path}/AuditEvent?patient=${patientId}`)).body.entry ?? []).toEqual([]);
    expect((await other.api.get(`${other.path}/Patient/${patientId}/AuditEvent`)).body.entry ?? []).toEqual([]);
    // and t's token on the other tenant's base is refused
    expect((await t.api.get(`${other.path}/AuditEvent`)).status).toBe(401);
  });
});

describe('searching the trail', () => {
  it('filters by date, action, outcome, type, subtype and entity, pages with next links, and refuses what it cannot filter', async () => {
    const all = await trail(admin, t, '');
    const reads = await trail(admin, t, 'action=R');
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((e) => e.action === 'R')).toBe(true);
    const failures = await trail(admin, t, 'outcome=4');
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((e) => e.outcome === '4')).toBe(true);
    // (each search is recorded too: compare up to the last record `all` saw)
    const upTo = `date=le${all[all.length - 1].recorded}`;
    expect(await trail(admin, t, `type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest&${upTo}`)).toHaveLength(all.filter((e) => e.type.code === 'rest').length);
    expect((await trail(admin, t, `subtype=http://hl7.org/fhir/restful-interaction|vread&${upTo}`)).map(line)).toEqual(all.filter((e) => e.subtype[0].code === 'vread').map(line));
    const about = all.find((e) => e.subtype[0].code === 'vread')!.entity[0].what.reference.replace(/\/_history\/\d+$/, '');
    expect((await trail(admin, t, `entity=${about}&${upTo}`)).map((e) => e.id)).toEqual(all.filter((e) => JSON.stringify(e.entity ?? []).includes(`"${about}`)).map((e) => e.id));
    const mid = all[Math.floor(all.length / 2)].recorded;
    const later = await trail(admin, t, `date=gt${mid}`);
    expect(later.every((e) => Date.parse(e.recorded) > Date.parse(mid))).toBe(true);
    expect(later.length).toBeLessThan(all.length);
    const paged = await admin.get(`${t.path}/AuditEvent?_count=2`);
    expect(paged.body.entry).toHaveLength(2);
    expect(paged.body.link.find((l: Res) => l.relation === 'next')).toBeDefined();
    // newest first by default
    expect(Date.parse(paged.body.entry[0].resource.recorded)).toBeGreaterThanOrEqual(Date.parse(paged.body.entry[1].resource.recorded));
    const bad = await admin.get(`${t.path}/AuditEvent?site=anything`);
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0].details.coding[0].code).toBe('AUDIT_SEARCH_UNSUPPORTED');
    expect((await admin.get(`${t.path}/AuditEvent?date=yesterday`)).status).toBe(400);
    expect((await admin.get(`${t.path}/AuditEvent?action=X`)).status).toBe(400);
  });
});

describe('what the client sent is recorded as sent', () => {
  it('a query with quotes, backslashes and SQL in it is stored verbatim (and runs nothing)', async () => {
    const name = `o'brien\\'); DELETE FROM audit_event; --\\\\ é`;
    const res = await t.api.get(`${t.path}/Patient?name=${encodeURIComponent(name)}`);
    expect(res.status).toBe(200);
    const [rec] = (await t.api.get(`${t.path}/AuditEvent?subtype=search-type&client=${t.clientId}&_count=1`)).body.entry.map((e: Res) => e.resource);
    const query = rec.entity.find((x: Res) => x.query);
    expect(Buffer.from(query.query, 'base64').toString()).toBe(`name=${name}`);
    expect((await t.api.get(`${t.path}/AuditEvent?_summary=count`)).body.total).toBeGreaterThan(5);
  });
});

describe('retention', () => {
  it('the purge deletes records older than the tenant\'s retention, records that it did, and leaves other tenants alone', async () => {
    const otherBefore = (await other.api.get(`${other.path}/AuditEvent?_summary=count`)).body.total;
    await updateTenantSettings(server.deps.db, t.slug, { auditRetentionDays: 1 });
    // two days from now, every record of t is older than its one-day retention; the other tenant keeps six years
    const later = { ...server.deps, clock: () => new Date(Date.now() + 2 * 86_400_000) };
    const results = await purgeAuditTrail(later);
    const mine = results.find((r) => r.tenantId === t.slug)!;
    expect(mine.deleted).toBeGreaterThan(10);
    expect(results.find((r) => r.tenantId === other.slug)!.deleted).toBe(0);
    const left = await trail(t.api, t, '_sort=date');
    // what is left: the purge's own record, then the searches made since (this one)
    expect(left[0]).toMatchObject({ action: 'D', subtype: [{ code: 'audit-purge' }] });
    expect(left[0].entity.find((x: Res) => x.detail).detail).toEqual(expect.arrayContaining([{ type: 'deleted', valueString: String(mine.deleted) }]));
    const otherAfter = (await other.api.get(`${other.path}/AuditEvent?_summary=count`)).body.total;
    expect(otherAfter).toBeGreaterThanOrEqual(otherBefore);
  });
});
