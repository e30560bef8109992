// The role matrix (ARCHITECTURE.md "Auth"): every role x in-depth type x interaction, decide() against the expected
// table written from the issue (tests/fixtures/role-matrix.ts), with the role's maximal scopes requested.
import { describe, expect, it } from '@jest/globals';
import { decide, grantAccess, type AccessRequest } from '../../src/auth/access.js';
import { ROLES, type Role } from '../../src/auth/role-matrix.js';
import {
  COLUMNS,
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
  type RoleName,
} from '../fixtures/role-matrix.js';

const cells: Cell[] = matrixCells();

function requestFor(c: Cell): AccessRequest {
  const instance = ['read', 'vread', 'history-instance', 'update', 'patch', 'delete'].includes(c.interaction);
  const req: AccessRequest = { interaction: c.interaction, resourceType: c.type };
  if (instance) req.id = c.type === 'Patient' && CONFINED_ROLES.includes(c.role) ? PATIENT_ID : 'id-1';
  return req;
}

function accessFor(role: RoleName) {
  const max = MAX_REQUEST[role];
  return grantAccess({ requested: max.scope, clientAllowed: max.scope, role: role as Role, patientId: max.patientId }).access;
}

describe('role matrix fixture', () => {
  it('covers exactly the roles of src/auth/role-matrix.ts', () => {
    expect([...ROLES].sort()).toEqual([...ROLE_NAMES].sort());
  });

  it('has well-formed cells (6 characters, each its column letter or -)', () => {
    for (const role of ROLE_NAMES) {
      for (const type of IN_DEPTH_TYPES) {
        const row = EXPECTED[role][type];
        expect(row).toHaveLength(COLUMNS.length);
        COLUMNS.forEach((col, i) => expect([col.flag, '-']).toContain(row[i]));
      }
    }
  });
});

describe.each(ROLE_NAMES)('%s', (role) => {
  const access = accessFor(role);
  const mine = cells.filter((c) => c.role === role);

  it.each(mine.map((c) => [`${c.allowed ? 'allows' : 'denies'} ${c.interaction} on ${c.type}`, c] as const))('%s', (_name, c) => {
    const d = decide(access, requestFor(c));
    expect(d.allow).toBe(c.allowed);
    if (!c.allowed) {
      expect(d.denial).toBe('forbidden');
      expect(d.reason).toEqual(expect.any(String));
      return;
    }
    const filter = EXPECTED_FILTERS.find((f) => f.role === role && f.type === c.type && f.flags.includes(c.flag));
    if (filter) expect(d.searchFilters).toEqual([{ params: filter.params }]);
    else expect(d.searchFilters).toBeUndefined();
    const elements = EXPECTED_ELEMENTS.find((e) => e.role === role && e.type === c.type);
    if (elements) expect([...(d.elements ?? [])].sort()).toEqual([...elements.elements].sort());
    else expect(d.elements).toBeUndefined();
    if (CONFINED_ROLES.includes(role)) expect(d.compartment).toEqual({ patientId: PATIENT_ID });
    else expect(d.compartment).toBeUndefined();
  });
});
