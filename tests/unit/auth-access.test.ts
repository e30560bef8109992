// Resource-server enforcement (SMART.md §7): interaction -> letter, patient compartment confinement, granular
// filters, multi-type interactions, operations, _include/_revinclude filtering and the role-ceiling grant.
import { describe, expect, it } from '@jest/globals';
import { accessFromToken, decide, filterIncluded, grantAccess, type Access, type AccessRequest, type ContentChecks, type Interaction } from '../../src/auth/access.js';
import { ROLE_MATRIX, ROLES, roleCeiling } from '../../src/auth/role-matrix.js';
import { parseScopes } from '../../src/auth/scopes.js';

const LAB_VALUE = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
const VITALS_VALUE = 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const LAB = `category=${LAB_VALUE}`;
const VITALS = `category=${VITALS_VALUE}`;

function access(scope: string, patientId?: string): Access {
  const { scopes, rejected } = parseScopes(scope);
  expect(rejected).toEqual([]);
  return patientId ? { scopes, patientId } : { scopes };
}

const on = (interaction: Interaction, resourceType: string, extra: Partial<AccessRequest> = {}): AccessRequest => ({ interaction, resourceType, ...extra });

describe('interactions map to SMART letters', () => {
  const cases: [string, Interaction[]][] = [
    ['r', ['read', 'vread', 'history-instance']],
    ['s', ['search-type', 'history-type']],
    ['c', ['create']],
    ['u', ['update', 'patch']],
    ['d', ['delete']],
  ];
  const all = cases.flatMap(([, i]) => i);
  it.each(cases)('.%s allows exactly %j', (letter, allowed) => {
    const a = access(`user/Observation.${letter}`);
    for (const i of all) expect([i, decide(a, on(i, 'Observation', { id: 'o1' })).allow]).toEqual([i, allowed.includes(i)]);
  });

  it('refuses with 403 insufficient scope and names the missing letter', () => {
    expect(decide(access('user/Observation.cud'), on('read', 'Observation', { id: 'o1' }))).toEqual({
      allow: false,
      denial: 'forbidden',
      reason: "no granted scope allows read ('r') on Observation",
    });
    expect(decide(access('user/Observation.rs'), on('search-type', 'Patient')).allow).toBe(false);
  });

  it('lets update-as-create through on u alone (SMART: "allowed by the update scope")', () => {
    expect(decide(access('user/Patient.u'), on('update', 'Patient', { id: 'new-id' })).allow).toBe(true);
  });

  it('needs s as well for conditional writes, which search on the client\'s behalf', () => {
    for (const i of ['create', 'update', 'patch', 'delete'] as const) {
      const letter = i === 'create' ? 'c' : i === 'delete' ? 'd' : 'u';
      const denied = decide(access(`user/Patient.${letter}`), on(i, 'Patient', { conditional: true }));
      expect(denied).toMatchObject({ allow: false, denial: 'forbidden', reason: expect.stringContaining(`conditional ${i} searches Patient`) });
      expect(decide(access(`user/Patient.${letter}s`), on(i, 'Patient', { conditional: true })).allow).toBe(true);
    }
  });

  it('covers every type with *', () => {
    expect(decide(access('system/*.cruds'), on('delete', 'Subscription', { id: 's1' }))).toEqual({ allow: true });
  });
});

describe('patient/ scopes confine everything to the launch patient\'s compartment', () => {
  const a = access('patient/*.rs patient/Appointment.c', 'p1');

  it('returns the compartment for member types', () => {
    expect(decide(a, on('read', 'Observation', { id: 'o1' }))).toEqual({ allow: true, compartment: { patientId: 'p1' } });
    expect(decide(a, on('search-type', 'Encounter'))).toEqual({ allow: true, compartment: { patientId: 'p1' } });
    expect(decide(a, on('history-type', 'AuditEvent'))).toEqual({ allow: true, compartment: { patientId: 'p1' } });
  });

  it('limits Patient to the patient itself (_id), without following Patient.link', () => {
    expect(decide(a, on('read', 'Patient', { id: 'p1' }))).toEqual({ allow: true, compartment: { patientId: 'p1' }, searchFilters: [{ params: [['_id', 'p1']] }] });
    expect(decide(a, on('search-type', 'Patient')).searchFilters).toEqual([{ params: [['_id', 'p1']] }]);
  });

  it('answers 404 for another patient named in the URL (existence is not revealed)', () => {
    expect(decide(a, on('read', 'Patient', { id: 'p2' }))).toMatchObject({ allow: false, denial: 'not-found' });
    expect(decide(a, on('history-instance', 'Patient', { id: 'p2' }))).toMatchObject({ allow: false, denial: 'not-found' });
    expect(decide(a, on('search-compartment', 'Observation', { compartmentId: 'p2' }))).toMatchObject({ allow: false, denial: 'not-found' });
    expect(decide(a, on('search-compartment', 'Observation', { compartmentId: 'p1' }))).toEqual({ allow: true, compartment: { patientId: 'p1' } });
  });

  it('confines writes: the new resource must land in the compartment', () => {
    expect(decide(a, on('create', 'Appointment'))).toEqual({ allow: true, compartment: { patientId: 'p1' } });
    expect(decide(a, on('update', 'Appointment', { id: 'a1' })).allow).toBe(false);
  });

  it('refuses types outside the compartment', () => {
    for (const t of ['Practitioner', 'Organization', 'Location', 'Subscription']) {
      expect(decide(a, on('read', t, { id: 'x' }))).toMatchObject({ allow: false, denial: 'forbidden', reason: expect.stringContaining('outside the patient compartment') });
    }
  });

  it('refuses patient/ scopes when no patient is in context', () => {
    expect(decide(access('patient/*.rs'), on('read', 'Observation', { id: 'o1' }))).toMatchObject({
      allow: false,
      denial: 'forbidden',
      reason: expect.stringContaining('needs a patient in context'),
    });
  });

  it('lets a user/ scope on the same type lift the confinement', () => {
    expect(decide(access('patient/Observation.rs user/Observation.rs', 'p1'), on('search-type', 'Observation'))).toEqual({ allow: true });
  });

  it('keeps per-region compartments when confined and unconfined scopes mix', () => {
    const d = decide(access(`patient/Observation.rs user/Observation.rs?${LAB}`, 'p1'), on('search-type', 'Observation'));
    expect(d).toEqual({ allow: true, searchFilters: [{ params: [], compartment: { patientId: 'p1' } }, { params: [['category', LAB_VALUE]] }] });
  });

  it('treats the compartment membership list as replaceable', () => {
    const opts = { isCompartmentType: (t: string) => t === 'Observation' };
    expect(decide(a, on('read', 'Encounter', { id: 'e1' }), opts).allow).toBe(false);
    expect(decide(a, on('read', 'Observation', { id: 'o1' }), opts).allow).toBe(true);
  });
});

describe('granular scopes add search filters', () => {
  it('returns the scope query to AND into the search', () => {
    expect(decide(access(`user/Observation.rs?${LAB}`), on('search-type', 'Observation'))).toEqual({ allow: true, searchFilters: [{ params: [['category', LAB_VALUE]] }] });
  });

  it('unions several granular scopes of a type (a resource may match any one)', () => {
    expect(decide(access(`user/Observation.rs?${LAB} user/Observation.rs?${VITALS}&status=final`), on('search-type', 'Observation')).searchFilters).toEqual([
      { params: [['category', LAB_VALUE]] },
      { params: [['category', VITALS_VALUE], ['status', 'final']] },
    ]);
  });

  it('drops the filter when a broader scope also covers the interaction', () => {
    expect(decide(access(`user/Observation.rs?${LAB} user/Observation.rs`), on('search-type', 'Observation'))).toEqual({ allow: true });
  });

  it('combines a granular patient/ scope with the compartment', () => {
    expect(decide(access(`patient/Observation.rs?${LAB}`, 'p1'), on('search-type', 'Observation'))).toEqual({
      allow: true,
      compartment: { patientId: 'p1' },
      searchFilters: [{ params: [['category', LAB_VALUE]] }],
    });
  });

  it('applies to writes: only filters from scopes carrying the write letter count', () => {
    const a = access(`user/Observation.rs user/Observation.cu?${VITALS}`);
    expect(decide(a, on('create', 'Observation'))).toEqual({ allow: true, searchFilters: [{ params: [['category', VITALS_VALUE]] }] });
    expect(decide(a, on('read', 'Observation', { id: 'o1' }))).toEqual({ allow: true });
    expect(decide(a, on('delete', 'Observation', { id: 'o1' })).allow).toBe(false);
  });
});

describe('chained searches and _has', () => {
  it('need search on the chained type (else 403, like searching it directly)', () => {
    const a = access('user/Observation.rs user/Encounter.rs');
    expect(decide(a, on('search-type', 'Observation', { chainedTypes: ['Encounter'] }))).toEqual({ allow: true });
    expect(decide(a, on('search-type', 'Observation', { chainedTypes: ['Patient'] }))).toMatchObject({
      allow: false,
      denial: 'forbidden',
      reason: "chained search through Patient: no granted scope allows search ('s') on Patient",
    });
  });

  it('restrict the inner query like a search of the chained type', () => {
    const d = decide(access('patient/*.rs', 'p1'), on('search-type', 'Observation', { chainedTypes: ['Encounter', 'Patient'] }));
    expect(d).toEqual({
      allow: true,
      compartment: { patientId: 'p1' },
      chained: { Encounter: { compartment: { patientId: 'p1' } }, Patient: { compartment: { patientId: 'p1' }, searchFilters: [{ params: [['_id', 'p1']] }] } },
    });
    expect(decide(access(`user/Encounter.rs user/Observation.rs?${LAB}`), { interaction: 'search-system', types: ['Encounter'], chainedTypes: ['Observation'] })).toEqual({
      allow: true,
      types: ['Encounter'],
      chained: { Observation: { searchFilters: [{ params: [['category', LAB_VALUE]] }] } },
    });
  });

  it('cannot go through a type whose elements are limited', () => {
    const g = grantAccess({ requested: 'user/*.rs', clientAllowed: 'user/*.rs', role: 'lab-technician' });
    expect(decide(g.access, on('search-type', 'ServiceRequest', { chainedTypes: ['Patient'] }))).toMatchObject({ allow: false, reason: expect.stringContaining('only some of its elements') });
    expect(decide(g.access, on('search-type', 'ServiceRequest', { chainedTypes: ['Practitioner'] })).allow).toBe(true);
  });
});

describe('system-level search and history', () => {
  const a = access('user/Patient.rs user/Observation.rs user/Encounter.r');

  it('needs s on every _type named', () => {
    expect(decide(a, { interaction: 'search-system', types: ['Patient', 'Observation'] })).toEqual({ allow: true, types: ['Patient', 'Observation'] });
    expect(decide(a, { interaction: 'search-system', types: ['Patient', 'Encounter'] })).toMatchObject({ allow: false, denial: 'forbidden', reason: expect.stringContaining('_type includes Encounter') });
    expect(decide(a, { interaction: 'history-system', types: ['Observation'] }).allow).toBe(true);
  });

  it('without _type, lists the searchable types (or * with a wildcard scope)', () => {
    expect(decide(a, { interaction: 'search-system' })).toEqual({ allow: true, types: ['Patient', 'Observation'] });
    expect(decide(access('system/*.rs'), { interaction: 'history-system' })).toEqual({ allow: true, types: '*' });
    expect(decide(access('user/Patient.r'), { interaction: 'search-system' })).toMatchObject({ allow: false, denial: 'forbidden' });
  });

  it('confines patient/ scopes and skips types outside the compartment', () => {
    const p = access('patient/*.rs', 'p1');
    expect(decide(p, { interaction: 'search-system' })).toEqual({ allow: true, types: '*', compartment: { patientId: 'p1' } });
    expect(decide(p, { interaction: 'search-system', types: ['Observation', 'Condition'] })).toEqual({ allow: true, types: ['Observation', 'Condition'], compartment: { patientId: 'p1' } });
    expect(decide(access('patient/Observation.rs patient/Practitioner.rs', 'p1'), { interaction: 'search-system' })).toEqual({ allow: true, types: ['Observation'], compartment: { patientId: 'p1' } });
    expect(decide(access('patient/*.rs'), { interaction: 'search-system' }).allow).toBe(false);
  });
});

describe('operations', () => {
  const op = (operation: string, extra: Partial<AccessRequest> = {}): AccessRequest => ({ interaction: 'operation', operation, ...extra });

  it('$everything reads the patient (own patient only under patient/ scopes)', () => {
    const p = access('patient/*.rs', 'p1');
    expect(decide(p, op('$everything', { resourceType: 'Patient', id: 'p1' }))).toMatchObject({ allow: true, compartment: { patientId: 'p1' } });
    expect(decide(p, op('$everything', { resourceType: 'Patient', id: 'p2' }))).toMatchObject({ allow: false, denial: 'not-found' });
    expect(decide(access('user/Patient.rs'), op('$everything', { resourceType: 'Patient', id: 'p2' }))).toEqual({ allow: true });
    expect(decide(access('user/Observation.rs'), op('$everything', { resourceType: 'Patient', id: 'p2' })).allow).toBe(false);
  });

  it('$export needs search on every exported type, and read on the Group', () => {
    const a = access('system/Patient.rs system/Observation.rs');
    expect(decide(a, op('$export', { types: ['Patient', 'Observation'] }))).toEqual({ allow: true, types: ['Patient', 'Observation'] });
    expect(decide(a, op('$export', { types: ['Patient', 'Condition'] }))).toMatchObject({ allow: false, reason: expect.stringContaining('Condition') });
    expect(decide(a, op('$export'))).toEqual({ allow: true, types: ['Patient', 'Observation'] });
    expect(decide(a, op('$export', { resourceType: 'Group', id: 'g1' })).allow).toBe(false);
    expect(decide(access('system/*.rs'), op('$export', { resourceType: 'Group', id: 'g1' }))).toEqual({ allow: true, types: '*' });
  });

  it('$validate needs create or update on the type', () => {
    expect(decide(access('user/Observation.c'), op('$validate', { resourceType: 'Observation' })).allow).toBe(true);
    expect(decide(access('user/Observation.u'), op('$validate', { resourceType: 'Observation' })).allow).toBe(true);
    expect(decide(access('user/Observation.rs'), op('$validate', { resourceType: 'Observation' })).allow).toBe(false);
  });

  it('$reindex needs unrestricted update on the types (on * at system level)', () => {
    expect(decide(access('system/Observation.u'), op('$reindex', { resourceType: 'Observation' })).allow).toBe(true);
    expect(decide(access(`user/Observation.u?${LAB}`), op('$reindex', { resourceType: 'Observation' })).allow).toBe(false);
    expect(decide(access('patient/*.cruds', 'p1'), op('$reindex', { resourceType: 'Observation' })).allow).toBe(false);
    expect(decide(access('system/Observation.u'), op('$reindex')).allow).toBe(false);
    expect(decide(access('system/*.u'), op('$reindex')).allow).toBe(true);
    expect(decide(access('system/Observation.u system/Patient.u'), op('$reindex', { types: ['Observation', 'Patient'] })).allow).toBe(true);
  });

  it('refuses operations without a rule', () => {
    expect(decide(access('system/*.cruds'), op('$purge'))).toEqual({ allow: false, denial: 'forbidden', reason: "no authorization rule for operation '$purge'" });
    expect(decide(access('system/*.cruds'), op('toString')).allow).toBe(false);
  });
});

describe('filterIncluded (_include/_revinclude results)', () => {
  const obs = (id: string, subject: string, category: string) => ({ resourceType: 'Observation', id, subject, category });
  const checks: ContentChecks = {
    inCompartment: (r, pid) => (r as { subject?: string }).subject === `Patient/${pid}`,
    matches: (r, params) => params.every(([k, v]) => k === 'category' && v.endsWith(`|${(r as { category?: string }).category}`)),
  };

  it('keeps only types the scopes can read', () => {
    const a = access('user/Observation.rs user/Practitioner.rs user/AuditEvent.s');
    const res = filterIncluded(a, [{ resourceType: 'Practitioner', id: 'pr1' }, { resourceType: 'AuditEvent', id: 'ae1' }, { resourceType: 'Organization', id: 'o1' }]);
    expect(res.kept).toEqual([{ resource: { resourceType: 'Practitioner', id: 'pr1' } }]);
    expect(res.dropped.map((d) => [d.resource.id, d.reason])).toEqual([
      ['ae1', "no granted scope allows read ('r') on AuditEvent"],
      ['o1', "no granted scope allows read ('r') on Organization"],
    ]);
  });

  it('keeps only the patient\'s own compartment under patient/ scopes', () => {
    const a = access('patient/*.rs', 'p1');
    const res = filterIncluded(a, [
      { resourceType: 'Patient', id: 'p1' },
      { resourceType: 'Patient', id: 'p2' },
      obs('o1', 'Patient/p1', 'laboratory'),
      obs('o2', 'Patient/p2', 'laboratory'),
      { resourceType: 'Practitioner', id: 'pr1' },
    ], checks);
    expect(res.kept.map((k) => k.resource.id)).toEqual(['p1', 'o1']);
    expect(res.dropped.map((d) => d.resource.id)).toEqual(['p2', 'o2', 'pr1']);
  });

  it('applies granular filters', () => {
    const a = access(`user/Observation.rs?${LAB}`);
    const res = filterIncluded(a, [obs('o1', 'Patient/p1', 'laboratory'), obs('o2', 'Patient/p1', 'vital-signs')], checks);
    expect(res.kept.map((k) => k.resource.id)).toEqual(['o1']);
    expect(res.dropped).toEqual([{ resource: obs('o2', 'Patient/p1', 'vital-signs'), reason: 'outside the granted filters or patient compartment' }]);
  });

  it('fails closed when a filter needs a content check nobody supplied', () => {
    const res = filterIncluded(access('patient/*.rs', 'p1'), [obs('o1', 'Patient/p1', 'laboratory'), { resourceType: 'Patient', id: 'p1' }]);
    expect(res.kept.map((k) => k.resource.id)).toEqual(['p1']);
    expect(res.dropped[0].reason).toMatch(/no content check was supplied/);
  });

  it('passes on element limits (lab technician: minimal Patient data)', () => {
    const g = grantAccess({ requested: 'user/*.rs', clientAllowed: 'user/*.cruds', role: 'lab-technician' });
    const res = filterIncluded(g.access, [{ resourceType: 'Patient', id: 'p1' }, { resourceType: 'ServiceRequest', id: 'sr1' }]);
    expect(res.kept).toEqual([
      { resource: { resourceType: 'Patient', id: 'p1' }, elements: ['identifier', 'name', 'birthDate', 'gender'] },
      { resource: { resourceType: 'ServiceRequest', id: 'sr1' } },
    ]);
  });
});

describe('grantAccess: requested ∩ client-allowed ∩ role ceiling', () => {
  it('renders the granted scope, v1 where v1 was asked and still fits', () => {
    const g = grantAccess({ requested: 'openid fhirUser launch/patient patient/*.read', clientAllowed: 'openid fhirUser launch/patient patient/*.rs user/*.rs', role: 'patient', patientId: 'p1' });
    expect(g.scope).toBe('openid fhirUser launch/patient patient/*.read');
    expect(g.access.patientId).toBe('p1');
    expect(g.notGranted).toEqual([]);
  });

  it('reports what was ignored and what was not granted', () => {
    const g = grantAccess({ requested: 'user/Observation.dus user/Observation.crud user/Subscription.rs offline_access', clientAllowed: 'user/*.cruds openid', role: 'receptionist' });
    expect(g.rejected.map((r) => r.scope)).toEqual(['user/Observation.dus']);
    expect(g.notGranted).toEqual(['user/Observation.crud', 'user/Subscription.rs', 'offline_access']);
    expect(g.scope).toBe('');
  });

  it('narrows a patient user\'s user/ request to their compartment', () => {
    expect(grantAccess({ requested: 'user/*.rs', clientAllowed: 'user/*.rs', role: 'patient' }).scope).toBe('patient/*.rs');
  });

  it('does not add a patient/ copy of a user/ scope the client is also registered for', () => {
    expect(grantAccess({ requested: 'user/Patient.rs', clientAllowed: 'patient/*.cruds user/*.cruds', role: 'practitioner' }).scope).toBe('user/Patient.rs');
    // ... but a patient user, whose ceiling has only patient/, still gets the compartment-confined one
    expect(grantAccess({ requested: 'user/Patient.rs', clientAllowed: 'patient/*.cruds user/*.cruds', role: 'patient', patientId: 'p1' }).scope).toBe('patient/Patient.rs');
  });

  it('never gives system/ scopes to a user role, nor identity scopes to a backend client', () => {
    expect(grantAccess({ requested: 'system/*.rs', clientAllowed: 'system/*.rs', role: 'tenant-admin' }).scope).toBe('');
    expect(grantAccess({ requested: 'system/Observation.rs openid offline_access', clientAllowed: 'system/*.rs openid offline_access', role: 'system' }).scope).toBe('system/Observation.rs');
  });

  it('keeps the practitioner\'s vitals-only Observation writes granular', () => {
    const g = grantAccess({ requested: 'user/Observation.cruds', clientAllowed: 'user/*.cruds', role: 'practitioner' });
    expect(g.scope).toBe(`user/Observation.rs user/Observation.cu?${VITALS}`);
  });

  it('keeps platform admins out of clinical data even with user/*.*', () => {
    const g = grantAccess({ requested: 'user/*.*', clientAllowed: 'user/*.*', role: 'platform-admin' });
    expect(g.scope).toBe('user/Organization.* user/AuditEvent.read user/Subscription.read');
    for (const t of ['Patient', 'Observation', 'Encounter', 'Condition', 'Appointment']) expect(decide(g.access, on('search-type', t)).allow).toBe(false);
  });
});

describe('accessFromToken', () => {
  it('re-applies the role ceiling to the token scope, bringing back element limits', () => {
    const g = grantAccess({ requested: 'user/Patient.read', clientAllowed: 'user/*.rs', role: 'lab-technician' });
    expect(g.scope).toBe('user/Patient.read');
    const a = accessFromToken({ scope: g.scope, role: 'lab-technician' });
    expect(decide(a, on('read', 'Patient', { id: 'p1' }))).toEqual({ allow: true, elements: ['identifier', 'name', 'birthDate', 'gender'] });
  });

  it('applies a ceiling narrower than the token (a role changed after issue)', () => {
    const a = accessFromToken({ scope: 'user/*.cruds', role: 'receptionist' });
    expect(decide(a, on('read', 'Observation', { id: 'o1' })).allow).toBe(false);
    expect(decide(a, on('update', 'Patient', { id: 'p1' })).allow).toBe(true);
    expect(accessFromToken({ scope: 'patient/*.rs', role: 'patient', patientId: 'p1' }).patientId).toBe('p1');
  });
});

describe('role-matrix data file', () => {
  it('parses every grant of every role, each with its reason', () => {
    for (const role of ROLES) {
      expect(() => roleCeiling(role)).not.toThrow();
      for (const g of ROLE_MATRIX[role].grants) expect(g.why.length).toBeGreaterThan(5);
    }
  });

  it('keeps staff ceilings user/, the patient\'s patient/ and backends\' system/', () => {
    const contexts = (role: (typeof ROLES)[number]) => new Set(roleCeiling(role).flatMap((s) => (s.kind === 'resource' ? [s.context] : [])));
    for (const role of ['platform-admin', 'tenant-admin', 'practitioner', 'receptionist', 'lab-technician'] as const) expect(contexts(role)).toEqual(new Set(['user']));
    expect(contexts('patient')).toEqual(new Set(['patient']));
    expect(contexts('system')).toEqual(new Set(['system']));
  });
});
