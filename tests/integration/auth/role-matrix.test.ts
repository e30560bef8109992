// The role matrix through the real HTTP API: every role x in-depth type x interaction of the EXPECTED table
// (tests/fixtures/role-matrix.ts, written by hand from the issue; nothing here is imported from src/auth), each sent
// with a real access token of a user of that role. Beside the cells: granular filters (EXPECTED_FILTERS: writes
// outside the filter 403, reads outside it absent), element limits (EXPECTED_ELEMENTS) and patient confinement
// (CONFINED_ROLES).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import {
  CONFINED_ROLES,
  EXPECTED,
  EXPECTED_ELEMENTS,
  EXPECTED_FILTERS,
  IN_DEPTH_TYPES,
  MAX_REQUEST,
  PATIENT_ID,
  ROLE_NAMES,
  matrixCells,
  type Cell,
  type InDepthType,
  type MatrixInteraction,
  type RoleName,
} from '../../fixtures/role-matrix.js';
import { Browser, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, create, FHIR_JSON, newTenant, startServer, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

type Params = [string, string][];
type Res = Record<string, any>;

const CELLS: Cell[] = matrixCells();

const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
/** meta.tag system marking every body this file writes (to prove a refused create stored nothing). */
const MARK = 'urn:tenfhir:test:role-matrix';
const JSON_PATCH = 'application/json-patch+json';
/** Always returned beside an element limit. */
const ALWAYS = ['id', 'meta', 'resourceType'];

let server: TestServer;
let t: TestTenant;
const apis = {} as Record<RoleName, Api>;
/** The other patient (not the one the patient user is). */
let otherPatientId: string;
let practitionerId: string;
let organizationId: string;
/** Seeded resources per type, the patient's own first. */
const seeds = new Map<InDepthType, Res[]>();
/** Per type, the seeds in the other patient's compartment. */
const otherPatientSeeds = new Map<InDepthType, Res[]>();

// ---- resource bodies ------------------------------------------------------------------------------------------

function marker(): string {
  return `m-${randomBytes(6).toString('hex')}`;
}

/** A valid body of `type` in the patient's compartment where the type has one; `category` for Observation. */
function body(type: InDepthType, o: { category?: string; patient?: string; tag?: string } = {}): Res {
  const subject = { reference: `Patient/${o.patient ?? PATIENT_ID}` };
  const meta = { tag: [{ system: MARK, code: o.tag ?? marker() }] };
  switch (type) {
    case 'Patient':
      return { resourceType: 'Patient', meta, name: [{ family: 'Newcomer', given: ['Nia'] }], gender: 'female', birthDate: '1990-01-01' };
    case 'Encounter':
      return { resourceType: 'Encounter', meta, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject };
    case 'MedicationRequest':
      return { resourceType: 'MedicationRequest', meta, status: 'active', intent: 'order', medicationCodeableConcept: { text: 'aspirin 100 mg' }, subject };
    case 'ServiceRequest':
      return { resourceType: 'ServiceRequest', meta, status: 'active', intent: 'order', code: { text: 'CBC' }, subject };
    case 'DiagnosticReport':
      return { resourceType: 'DiagnosticReport', meta, status: 'final', code: { text: 'CBC panel' }, subject };
    case 'Organization':
      return { resourceType: 'Organization', meta, name: 'Branch clinic' };
    case 'Observation': {
      const category = o.category ?? 'vital-signs';
      return {
        resourceType: 'Observation',
        meta,
        status: 'final',
        category: [{ coding: [{ system: OBS_CATEGORY, code: category }] }],
        code: { text: category === 'laboratory' ? 'hemoglobin' : 'heart rate' },
        subject,
      };
    }
    case 'Practitioner':
      return { resourceType: 'Practitioner', meta, name: [{ family: 'Quinn', given: ['Pat'] }] };
    case 'PractitionerRole':
      return { resourceType: 'PractitionerRole', meta, active: true, practitioner: { reference: `Practitioner/${practitionerId}` }, organization: { reference: `Organization/${organizationId}` } };
    case 'Location':
      return { resourceType: 'Location', meta, status: 'active', name: 'Room 1', managingOrganization: { reference: `Organization/${organizationId}` } };
    case 'Subscription':
      return {
        resourceType: 'Subscription',
        meta,
        status: 'off',
        reason: 'role matrix test',
        criteria: `Observation?subject=Patient/${PATIENT_ID}`,
        channel: { type: 'rest-hook', endpoint: 'https://hooks.example.org/tenfhir', payload: 'application/fhir+json' },
      };
    case 'AuditEvent':
      return {
        resourceType: 'AuditEvent',
        meta,
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
        recorded: '2024-05-01T10:00:00Z',
        agent: [{ requestor: true, who: { reference: `Practitioner/${practitionerId}` } }],
        source: { observer: { display: 'tenfhir' } },
        entity: [{ what: subject }],
      };
  }
}

/** The body variants a type can take (for finding content inside and outside a granular filter). */
function variants(type: InDepthType): Res[] {
  return type === 'Observation' ? [body(type, { category: 'vital-signs' }), body(type, { category: 'laboratory' })] : [body(type)];
}

/** The fixture's filter params evaluated on a resource (only the parameters the fixture uses). */
function matches(resource: Res, params: Params): boolean {
  return params.every(([name, value]) => {
    if (name === '_id') return value.split(',').includes(resource.id);
    if (name === 'category') {
      const [system, code] = value.split('|');
      return (resource.category ?? []).some((cc: Res) => (cc.coding ?? []).some((c: Res) => c.system === system && c.code === code));
    }
    throw new Error(`role-matrix test: filter parameter '${name}' is not understood here; extend matches()`);
  });
}

function filterFor(role: RoleName, type: InDepthType, flag: string): Params | undefined {
  return EXPECTED_FILTERS.find((f) => f.role === role && f.type === type && f.flags.includes(flag))?.params;
}

/** New content for a write, inside (or outside) the role's filter for that letter. */
function content(type: InDepthType, params: Params | undefined, inside = true): Res {
  if (!params) return body(type);
  const found = variants(type).find((b) => matches(b, params) === inside);
  if (!found) throw new Error(`role-matrix test: no ${type} body ${inside ? 'inside' : 'outside'} ${JSON.stringify(params)}`);
  return found;
}

/** A seeded resource inside (or outside) the filter; the default seed without one. */
function seed(type: InDepthType, params: Params | undefined, inside = true): Res {
  const list = seeds.get(type)!;
  if (!params) return list[0];
  const found = list.find((r) => matches(r, params) === inside);
  if (!found) throw new Error(`role-matrix test: no seeded ${type} ${inside ? 'inside' : 'outside'} ${JSON.stringify(params)}`);
  return found;
}

function elementLimit(role: RoleName, type: InDepthType): string[] | undefined {
  return EXPECTED_ELEMENTS.find((e) => e.role === role && e.type === type)?.elements;
}

// ---- HTTP ---------------------------------------------------------------------------------------------------

function outcome(res: Response): { status: number; resourceType: unknown; code: unknown } {
  return { status: res.status, resourceType: res.body?.resourceType, code: res.body?.issue?.[0]?.code };
}

function expectRefused(res: Response, status: 403 | 404 = 403): void {
  expect(outcome(res)).toEqual({ status, resourceType: 'OperationOutcome', code: status === 403 ? 'forbidden' : 'not-found' });
}

function expectStatus(res: Response, status: number): void {
  // the body in the message when it fails
  expect({ status: res.status, body: res.status === status ? undefined : res.body }).toEqual({ status, body: undefined });
}

/** Entry resources of a searchset/history Bundle (search outcomes left out). */
function entries(res: Response): Res[] {
  return (res.body.entry ?? []).filter((e: Res) => e.resource && e.search?.mode !== 'outcome').map((e: Res) => e.resource);
}

function ids(res: Response): string[] {
  return entries(res).map((r) => r.id);
}

function expectOnlyElements(resource: Res, elements: string[]): void {
  expect(Object.keys(resource).filter((k) => !ALWAYS.includes(k) && !elements.includes(k))).toEqual([]);
}

async function sysRead(type: string, id: string): Promise<Response> {
  return t.api.get(`${t.path}/${type}/${id}`);
}

async function sysTagCount(tag: string): Promise<number> {
  const types = IN_DEPTH_TYPES.join(',');
  const res = await t.api.get(`${t.path}?_type=${types}&_tag=${encodeURIComponent(`${MARK}|${tag}`)}&_summary=count`);
  expectStatus(res, 200);
  return res.body.total;
}

function tagOf(resource: Res): string {
  return resource.meta.tag.find((x: Res) => x.system === MARK).code;
}

// ---- setup --------------------------------------------------------------------------------------------------

const USERNAME: Record<Exclude<RoleName, 'system'>, string> = {
  // platform administrators share the 'platform' pseudo-tenant across runs on one database: a fresh name per run
  'platform-admin': `rm-platform-${randomBytes(4).toString('hex')}`,
  'tenant-admin': 'rm-admin',
  practitioner: 'rm-doctor',
  receptionist: 'rm-desk',
  'lab-technician': 'rm-lab',
  patient: 'rm-patient',
};

/** A platform administrator signs in at the tenant's authorization server (they are not users of the tenant). */
async function platformAdminToken(clientId: string): Promise<string> {
  const browser = new Browser(server.origin);
  const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId, aud: t.base, scope: MAX_REQUEST['platform-admin'].scope, username: USERNAME['platform-admin'] });
  const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: clientId });
  if (tok.status !== 200) throw new Error(`platform admin token: ${tok.status} ${JSON.stringify(tok.body)}`);
  return tok.body.access_token;
}

async function put(resource: Res): Promise<Res> {
  const res = await t.api.put(`${t.path}/${resource.resourceType}/${resource.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT ${resource.resourceType}/${resource.id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'rm');
  const app = await newApp(server, t.slug, { scope: 'openid fhirUser launch/patient offline_access user/*.cruds patient/*.cruds' });

  // The patient the patient user is (the fixture's PATIENT_ID), with elements a lab technician must not see.
  const own = await put({
    resourceType: 'Patient',
    id: PATIENT_ID,
    meta: { tag: [{ system: MARK, code: 'seed' }] },
    active: true,
    identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: 'MRN-0001' }],
    name: [{ family: 'Ownrecord', given: ['Olivia'] }],
    gender: 'female',
    birthDate: '1980-02-03',
    address: [{ line: ['1 Main Street'], city: 'Springfield', postalCode: '12345' }],
    telecom: [{ system: 'phone', value: '+1 555 0100' }],
    maritalStatus: { text: 'married' },
  });
  const other = await create(t, { resourceType: 'Patient', name: [{ family: 'Otherperson' }], address: [{ city: 'Shelbyville' }] });
  otherPatientId = other.id;
  const organization = await create(t, body('Organization'));
  organizationId = organization.id;
  const practitioner = await create(t, body('Practitioner'));
  practitionerId = practitioner.id;
  seeds.set('Patient', [own, other]);
  seeds.set('Organization', [organization]);
  seeds.set('Practitioner', [practitioner]);
  for (const type of ['PractitionerRole', 'Location', 'Subscription'] as const) seeds.set(type, [await create(t, body(type))]);
  // Patient-compartment types: the patient's own resource(s) first, then one of the other patient's.
  for (const type of ['Encounter', 'MedicationRequest', 'ServiceRequest', 'DiagnosticReport'] as const) {
    const mine = await create(t, body(type));
    const theirs = await create(t, body(type, { patient: otherPatientId }));
    seeds.set(type, [mine, theirs]);
    otherPatientSeeds.set(type, [theirs]);
  }
  const lab = await create(t, body('Observation', { category: 'laboratory' }));
  const vitals = await create(t, body('Observation', { category: 'vital-signs' }));
  const theirLab = await create(t, body('Observation', { category: 'laboratory', patient: otherPatientId }));
  seeds.set('Observation', [lab, vitals, theirLab]);
  otherPatientSeeds.set('Observation', [theirLab]);
  otherPatientSeeds.set('Patient', [other]);
  // AuditEvents are the server's own (issue 12): the seeds are the records of the writes above, the first about each patient
  const firstAbout = async (patient: string) => (await t.api.get(`${t.path}/AuditEvent?patient=${patient}&_sort=date&_count=1`)).body.entry[0].resource;
  const theirAudit = await firstAbout(otherPatientId);
  seeds.set('AuditEvent', [await firstAbout(PATIENT_ID), theirAudit]);
  otherPatientSeeds.set('AuditEvent', [theirAudit]);

  await newUser(server, 'platform', USERNAME['platform-admin'], 'platform-admin');
  await newUser(server, t.slug, USERNAME['tenant-admin'], 'tenant-admin');
  await newUser(server, t.slug, USERNAME.practitioner, 'practitioner', `Practitioner/${practitionerId}`);
  await newUser(server, t.slug, USERNAME.receptionist, 'receptionist');
  await newUser(server, t.slug, USERNAME['lab-technician'], 'lab-technician', `Practitioner/${practitionerId}`);
  await newUser(server, t.slug, USERNAME.patient, 'patient', `Patient/${PATIENT_ID}`);
  for (const role of ROLE_NAMES) {
    if (role === 'system') apis[role] = t.api;
    else if (role === 'platform-admin') apis[role] = authed(server.origin, await platformAdminToken(app.clientId));
    else apis[role] = authed(server.origin, await tokenFor(server, t, { clientId: app.clientId, username: USERNAME[role], scope: MAX_REQUEST[role].scope }));
  }
});
afterAll(async () => server?.close());

// ---- the cells ----------------------------------------------------------------------------------------------

/** Runs one cell over HTTP and checks the answer (allowed: the interaction's success; denied: 403 forbidden). */
async function runCell(c: Cell): Promise<void> {
  const api = apis[c.role];
  const params = filterFor(c.role, c.type, c.flag);
  const limit = elementLimit(c.role, c.type);
  const url = `${t.path}/${c.type}`;
  const visible = (r: Res) => limit && expectOnlyElements(r, limit);

  switch (c.interaction) {
    case 'read':
    case 'vread': {
      const target = seed(c.type, params);
      const res = await api.get(c.interaction === 'read' ? `${url}/${target.id}` : `${url}/${target.id}/_history/1`);
      if (!c.allowed) return expectRefused(res);
      expectStatus(res, 200);
      expect(res.body).toMatchObject({ resourceType: c.type, id: target.id, meta: { versionId: '1' } });
      visible(res.body);
      return;
    }
    case 'search-type': {
      const target = seed(c.type, params);
      const res = await api.get(`${url}?_count=1000${oldestFirst(c.type)}`);
      if (!c.allowed) return expectRefused(res);
      expectStatus(res, 200);
      expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
      expect(ids(res)).toContain(target.id);
      for (const r of entries(res)) {
        expect(r.resourceType).toBe(c.type);
        visible(r);
      }
      return;
    }
    case 'history-instance':
    case 'history-type': {
      const target = seed(c.type, params);
      const res = await api.get(c.interaction === 'history-instance' ? `${url}/${target.id}/_history` : `${url}/_history?_count=1000${oldestFirst(c.type)}`);
      if (!c.allowed) return expectRefused(res);
      expectStatus(res, 200);
      expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'history' });
      const list = entries(res);
      expect(list.map((r) => r.id)).toContain(target.id);
      for (const r of list) {
        expect(r.resourceType).toBe(c.type);
        if (c.interaction === 'history-instance') expect(r.id).toBe(target.id);
        visible(r);
      }
      return;
    }
    case 'create':
    case 'update':
    case 'patch':
    case 'delete':
      if (c.type === 'AuditEvent') return auditWriteRefused(api, c.interaction);
  }
  switch (c.interaction) {
    case 'create': {
      const b = content(c.type, params);
      const res = await api.post(url).set('Content-Type', FHIR_JSON).send(JSON.stringify(b));
      if (!c.allowed) {
        expectRefused(res);
        expect(await sysTagCount(tagOf(b))).toBe(0);
        return;
      }
      expectStatus(res, 201);
      expect(res.headers.location).toMatch(new RegExp(`/${c.type}/[^/]+/_history/1$`));
      expect(await sysTagCount(tagOf(b))).toBe(1);
      return;
    }
    case 'update':
    case 'patch':
    case 'delete': {
      // a fresh target per cell (inside the role's filter for the letter), so no cell changes what others read
      const target = await create(t, content(c.type, params));
      let res: Response;
      if (c.interaction === 'update') {
        res = await api.put(`${url}/${target.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...content(c.type, params), id: target.id, language: 'en' }));
      } else if (c.interaction === 'patch') {
        res = await api.patch(`${url}/${target.id}`).set('Content-Type', JSON_PATCH).send(JSON.stringify([{ op: 'add', path: '/language', value: 'en' }]));
      } else {
        res = await api.delete(`${url}/${target.id}`);
      }
      const after = await sysRead(c.type, target.id);
      if (!c.allowed) {
        expectRefused(res);
        expectStatus(after, 200);
        expect(after.body.meta.versionId).toBe('1');
        return;
      }
      if (c.interaction === 'delete') {
        expect([200, 204]).toContain(res.status);
        expectStatus(after, 410);
        return;
      }
      expectStatus(res, 200);
      expectStatus(after, 200);
      expect(after.body).toMatchObject({ meta: { versionId: '2' }, language: 'en' });
      return;
    }
  }
}

/**
 * AuditEvents grow with every request, newest first: their searches list the oldest first, so the seeds (the first
 * records) stay on the page however many records the cells before have added.
 */
function oldestFirst(type: InDepthType): string {
  return type === 'AuditEvent' ? '&_sort=date' : '';
}

/** Every write of an AuditEvent is refused with 405 whoever asks, whatever the scopes allow, and changes nothing. */
async function auditWriteRefused(api: Api, interaction: MatrixInteraction): Promise<void> {
  const url = `${t.path}/AuditEvent`;
  const target = seed('AuditEvent', undefined);
  const res =
    interaction === 'create' ? await api.post(url).set('Content-Type', FHIR_JSON).send(JSON.stringify(content('AuditEvent', undefined)))
    : interaction === 'update' ? await api.put(`${url}/${target.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...target, outcome: '8' }))
    : interaction === 'patch' ? await api.patch(`${url}/${target.id}`).set('Content-Type', JSON_PATCH).send(JSON.stringify([{ op: 'replace', path: '/outcome', value: '8' }]))
    : await api.delete(`${url}/${target.id}`);
  expect({ status: res.status, code: res.body?.issue?.[0]?.details?.coding?.[0]?.code }).toEqual({ status: 405, code: 'AUDIT_IMMUTABLE' });
  const after = await sysRead('AuditEvent', target.id);
  expectStatus(after, 200);
  expect(after.body).toEqual(target);
}

describe.each(ROLE_NAMES)('%s', (role) => {
  const mine = CELLS.filter((c) => c.role === role);
  it.each(mine.map((c) => [`${c.role} · ${c.type} · ${c.interaction} → ${c.allowed ? 'allowed' : 'denied'}`, c] as const))('%s', async (_name, c) => {
    await runCell(c);
  });
});

// ---- granular filters ---------------------------------------------------------------------------------------

interface FilterCase {
  name: string;
  role: RoleName;
  type: InDepthType;
  params: Params;
  flag: string;
}

const FILTER_CASES: FilterCase[] = EXPECTED_FILTERS.flatMap((f) =>
  [...f.flags].map((flag) => ({ name: `${f.role} · ${f.type} · ${flag} outside ${f.params.map(([k, v]) => `${k}=${v}`).join('&')}`, role: f.role, type: f.type, params: f.params, flag })),
);

describe('granular filters: outside the filter is refused or absent', () => {
  it('every filtered flag is an allowed cell of the fixture', () => {
    for (const f of FILTER_CASES) expect(EXPECTED[f.role][f.type]).toContain(f.flag);
  });

  it.each(FILTER_CASES.map((f) => [f.name, f] as const))('%s', async (_name, f) => {
    const api = apis[f.role];
    const url = `${t.path}/${f.type}`;
    const inside = () => seed(f.type, f.params, true);
    const outside = () => seed(f.type, f.params, false);
    switch (f.flag) {
      case 'r': {
        expectRefused(await api.get(`${url}/${outside().id}`), 404);
        expectRefused(await api.get(`${url}/${outside().id}/_history/1`), 404);
        expectStatus(await api.get(`${url}/${inside().id}`), 200);
        return;
      }
      case 's': {
        const res = await api.get(`${url}?_id=${inside().id},${outside().id}`);
        expectStatus(res, 200);
        expect(ids(res)).toEqual([inside().id]);
        const all = await api.get(`${url}?_count=1000`);
        expectStatus(all, 200);
        for (const r of entries(all)) expect(matches(r, f.params)).toBe(true);
        return;
      }
      case 'h': {
        expectRefused(await api.get(`${url}/${outside().id}/_history`), 404);
        const res = await api.get(`${url}/_history?_count=1000`);
        expectStatus(res, 200);
        const list = entries(res);
        expect(list.map((r) => r.id)).toContain(inside().id);
        expect(list.map((r) => r.id)).not.toContain(outside().id);
        // the region is judged on the current version; every entry shown belongs to a resource inside it
        for (const r of list) {
          const current = await sysRead(f.type, r.id);
          if (current.status === 200) expect(matches(current.body, f.params)).toBe(true);
        }
        return;
      }
      case 'c': {
        const b = content(f.type, f.params, false);
        expectRefused(await api.post(url).set('Content-Type', FHIR_JSON).send(JSON.stringify(b)));
        expect(await sysTagCount(tagOf(b))).toBe(0);
        return;
      }
      case 'u': {
        // the target outside the filter: as absent as for a read
        const out = await create(t, content(f.type, f.params, false));
        expectRefused(await api.put(`${url}/${out.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...content(f.type, f.params, true), id: out.id })), 404);
        expectRefused(await api.patch(`${url}/${out.id}`).set('Content-Type', JSON_PATCH).send(JSON.stringify([{ op: 'add', path: '/language', value: 'en' }])), 404);
        expect((await sysRead(f.type, out.id)).body.meta.versionId).toBe('1');
        // the target inside, the new content outside: 403, nothing written
        const target = await create(t, content(f.type, f.params, true));
        const moved = content(f.type, f.params, false);
        expectRefused(await api.put(`${url}/${target.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...moved, id: target.id })));
        const replaced = Object.entries(moved).filter(([k]) => !['resourceType', 'meta'].includes(k)).map(([k, v]) => ({ op: 'add', path: `/${k}`, value: v }));
        expectRefused(await api.patch(`${url}/${target.id}`).set('Content-Type', JSON_PATCH).send(JSON.stringify(replaced)));
        const after = await sysRead(f.type, target.id);
        expect(after.body.meta.versionId).toBe('1');
        expect(matches(after.body, f.params)).toBe(true);
        return;
      }
      default:
        throw new Error(`role-matrix test: no outside check for flag '${f.flag}'`);
    }
  });
});

// ---- element limits -----------------------------------------------------------------------------------------

describe.each(EXPECTED_ELEMENTS.map((e) => [`${e.role} · ${e.type} · only ${e.elements.join(', ')}`, e] as const))('element limit: %s', (_name, e) => {
  const hidden = () => Object.keys(seed(e.type, filterFor(e.role, e.type, 'r'))).filter((k) => !ALWAYS.includes(k) && !e.elements.includes(k));

  it('the seeded resource has elements to hide', () => {
    expect(hidden()).toEqual(expect.arrayContaining(e.type === 'Patient' ? ['address', 'telecom'] : []));
    expect(hidden().length).toBeGreaterThan(0);
  });

  it('read, vread and instance history return only the visible elements', async () => {
    const target = seed(e.type, filterFor(e.role, e.type, 'r'));
    const api = apis[e.role];
    for (const path of [`${target.id}`, `${target.id}/_history/1`]) {
      const res = await api.get(`${t.path}/${e.type}/${path}`);
      expectStatus(res, 200);
      expectOnlyElements(res.body, e.elements);
      for (const k of e.elements) if (target[k] !== undefined) expect(res.body[k]).toEqual(target[k]);
      for (const k of hidden()) expect(res.body[k]).toBeUndefined();
    }
    const h = await api.get(`${t.path}/${e.type}/${target.id}/_history`);
    expectStatus(h, 200);
    for (const r of entries(h)) expectOnlyElements(r, e.elements);
  });

  it('search and _elements cannot widen the limit', async () => {
    const target = seed(e.type, filterFor(e.role, e.type, 's'));
    const api = apis[e.role];
    for (const q of [`_id=${target.id}`, `_id=${target.id}&_elements=${hidden().join(',')}`, `_id=${target.id}&_summary=false`]) {
      const res = await api.get(`${t.path}/${e.type}?${q}`);
      expectStatus(res, 200);
      expect(ids(res)).toEqual([target.id]);
      for (const r of entries(res)) {
        expectOnlyElements(r, e.elements);
        for (const k of hidden()) expect(r[k]).toBeUndefined();
      }
    }
    const read = await api.get(`${t.path}/${e.type}/${target.id}?_elements=${hidden().join(',')}`);
    expectStatus(read, 200);
    for (const k of hidden()) expect(read.body[k]).toBeUndefined();
  });

  it('searching by a parameter over a visible element works', async () => {
    if (e.type !== 'Patient') return;
    const res = await apis[e.role].get(`${t.path}/Patient?family=Ownrecord&birthdate=1980-02-03&gender=female`);
    expectStatus(res, 200);
    expect(ids(res)).toEqual([PATIENT_ID]);
  });

  const HIDDEN_QUERIES = e.type === 'Patient' ? ['address-city=Springfield', 'address=Main', 'telecom=%2B1%20555%200100', 'phone=%2B1%20555%200100', '_content=Springfield', '_sort=address'] : [];

  it.each(HIDDEN_QUERIES.map((q) => [q]))('searching by %s (a hidden element) is 403', async (q) => {
    expectRefused(await apis[e.role].get(`${t.path}/${e.type}?${q}`));
  });

  // a system-level search is no way round it: the type's hidden elements are as unsearchable there
  const SYSTEM_QUERIES = [
    ...HIDDEN_QUERIES.map((q) => `_type=${e.type}&${q}`),
    ...(e.type === 'Patient' ? ['_type=Patient,Organization&address-city=Springfield', '_type=Patient,Organization&_content=Springfield', '_content=Springfield'] : []),
  ];
  it.each(SYSTEM_QUERIES.map((q) => [q]))('system search ?%s (a hidden element) is 403', async (q) => {
    expectRefused(await apis[e.role].get(`${t.path}?${q}`));
  });

  it('a system search over visible elements returns only the visible elements', async () => {
    const target = seed(e.type, filterFor(e.role, e.type, 's'));
    const res = await apis[e.role].get(`${t.path}?_type=${e.type}&_id=${target.id}`);
    expectStatus(res, 200);
    expect(ids(res)).toEqual([target.id]);
    for (const r of entries(res)) expectOnlyElements(r, e.elements);
  });
});

// ---- patient confinement ------------------------------------------------------------------------------------

const CONFINED_TYPES = CONFINED_ROLES.flatMap((role) => IN_DEPTH_TYPES.filter((type) => EXPECTED[role][type].startsWith('r')).map((type) => [`${role} · ${type}`, role, type] as const));

describe('patient confinement: another patient\'s resources are absent', () => {
  it('the fixture confines a role to a patient with readable types', () => {
    expect(CONFINED_TYPES.length).toBeGreaterThan(0);
  });

  it.each(CONFINED_TYPES)('%s: read, vread, instance history of the other patient\'s → 404', async (_name, role, type) => {
    const theirs = otherPatientSeeds.get(type);
    expect(theirs?.length).toBeGreaterThan(0);
    for (const r of theirs!) {
      for (const path of [`${r.id}`, `${r.id}/_history/1`, `${r.id}/_history`]) expectRefused(await apis[role].get(`${t.path}/${type}/${path}`), 404);
    }
  });

  it.each(CONFINED_TYPES)('%s: search and type history return exactly the own compartment', async (_name, role, type) => {
    // AuditEvents: the ones recorded before this test (each request below adds its own), oldest first
    const q = type === 'AuditEvent' ? `&_sort=date&date=lt${new Date().toISOString()}` : '';
    await new Promise((r) => setTimeout(r, 5));
    // what the system client finds in the patient's compartment (Patient itself: only the record)
    const compartment =
      type === 'Patient' ? [PATIENT_ID] : ids(await t.api.get(`${t.path}/Patient/${PATIENT_ID}/${type}?_count=1000${q}`));
    expect(compartment).toContain(seed(type, undefined).id);
    const all = ids(await t.api.get(`${t.path}/${type}?_count=1000${q}`));
    expect(all.length).toBeGreaterThan(compartment.length);
    const res = await apis[role].get(`${t.path}/${type}?_count=1000${q}`);
    expectStatus(res, 200);
    expect(ids(res).sort()).toEqual([...compartment].sort());
    for (const theirs of otherPatientSeeds.get(type)!) {
      const byId = await apis[role].get(`${t.path}/${type}?_id=${theirs.id}`);
      expectStatus(byId, 200);
      expect(ids(byId)).toEqual([]);
    }
    const h = await apis[role].get(`${t.path}/${type}/_history?_count=1000${q}`);
    expectStatus(h, 200);
    // each version is judged on its own content (it may since have been deleted): every entry shown is about the patient
    // (an AuditEvent names the version it saw: Patient/[id]/_history/[n])
    const foreign = entries(h).filter((r) => (type === 'Patient' ? r.id !== PATIENT_ID : !new RegExp(`"Patient/${PATIENT_ID}["/]`).test(JSON.stringify(r))));
    expect(foreign).toEqual([]);
    expect(entries(h).map((r) => r.id)).toEqual(expect.arrayContaining(compartment));
    for (const theirs of otherPatientSeeds.get(type)!) expect(entries(h).map((r) => r.id)).not.toContain(theirs.id);
  });

  it.each(CONFINED_ROLES.map((r) => [r] as const))('%s: the compartment search of another patient → 404', async (role) => {
    expectRefused(await apis[role].get(`${t.path}/Patient/${otherPatientId}/Observation`), 404);
  });
});
