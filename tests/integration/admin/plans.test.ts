// Plans as data (issue 11): the seeded tiers, upsertPlan's validation (every problem at once, 400 PLAN_INVALID), a
// changed plan taking effect at once in this process and on the next start of any other, and the plan table
// closed to writes from the application's role.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FhirError } from '../../../src/core/errors.js';
import type { Plan } from '../../../src/core/plans.js';
import { upsertPlan } from '../../../src/store/plans.js';
import { newTenant, randomSlug, startServer, type TestServer } from '../../helpers/server.js';
import { expectQuotaExceeded, post, putOnPlan, testPlan, UNLIMITED } from './quotas-helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => server.close());

describe('the seeded plans', () => {
  it('are the tiers of the issue: trial, solo practice, multi-branch, hospital group', async () => {
    const plans = new Map((await server.deps.plans.list()).map((p) => [p.id, p]));
    expect(plans.get('trial')).toMatchObject({ trialDays: 30, tenantTypes: [], quotas: { staffUsers: 5, patients: 1000, locations: 1 } });
    expect(plans.get('solo-practice')).toMatchObject({ trialDays: null, tenantTypes: expect.arrayContaining(['solo-practice']), quotas: { staffUsers: 10, locations: 1 } });
    expect(plans.get('multi-branch')).toMatchObject({ trialDays: null, tenantTypes: expect.arrayContaining(['multi-branch', 'diagnostic-centre']), quotas: { staffUsers: 50, locations: 10 } });
    expect(plans.get('hospital-group')).toMatchObject({ trialDays: null, quotas: UNLIMITED });
    // every plan sets every quota (null: unlimited)
    for (const p of plans.values()) expect(Object.keys(p.quotas).sort()).toEqual(Object.keys(UNLIMITED).sort());
  });
});

describe('upsertPlan', () => {
  async function problems(input: unknown): Promise<{ status: number; code?: string; expressions: string[] }> {
    const err = await upsertPlan(server.deps, input as Plan).then(() => undefined, (e: unknown) => e);
    if (!(err instanceof FhirError)) throw new Error(`expected a refusal, got ${String(err)}`);
    return { status: err.status, code: err.code, expressions: err.toOutcome().issue.flatMap((i) => i.expression ?? []) };
  }

  it('answers every problem of a plan at once (400 PLAN_INVALID, one issue each)', async () => {
    const out = await problems({
      id: 'Gold Plan',
      name: ' ',
      trialDays: 0,
      tenantTypes: ['Clinic'],
      colour: 'gold',
      quotas: { ...UNLIMITED, patients: -1, staffUsers: 2.5, sessions: '10', clients: undefined, seats: 3 },
    });
    expect(out.status).toBe(400);
    expect(out.code).toBe('PLAN_INVALID');
    expect(out.expressions.sort()).toEqual(['colour', 'id', 'name', 'quotas.clients', 'quotas.patients', 'quotas.seats', 'quotas.sessions', 'quotas.staffUsers', 'tenantTypes', 'trialDays'].sort());
  });

  it('refuses a plan that is no object, or has no quotas', async () => {
    expect(await problems(null)).toEqual({ status: 400, code: 'PLAN_INVALID', expressions: ['plan'] });
    expect((await problems({ id: 'no-quotas', name: 'No quotas' })).expressions).toEqual(['quotas']);
  });

  it('creates and replaces a plan; this server sees it at once, a server started later too', async () => {
    const id = randomSlug('plan');
    const created = await testPlan(server, { patients: 10 }, id);
    expect(created).toEqual({ id, name: `Test plan ${id}`, description: 'quota tests', trialDays: null, tenantTypes: [], quotas: { ...UNLIMITED, patients: 10 } });
    expect((await server.deps.plans.get(id))?.quotas.patients).toBe(10);
    await upsertPlan(server.deps, { ...created, name: 'Renamed', trialDays: 14, tenantTypes: ['lab'], quotas: { ...created.quotas, patients: 1 } });
    expect(await server.deps.plans.get(id)).toMatchObject({ name: 'Renamed', trialDays: 14, tenantTypes: ['lab'], quotas: { patients: 1 } });
    const later = await startServer();
    try {
      expect((await later.deps.plans.get(id))?.quotas.patients).toBe(1);
    } finally {
      await later.close();
    }
  });

  it('a changed quota applies to the next write of every tenant on the plan, and to no other tenant', async () => {
    const plan = await testPlan(server, { patients: 5 });
    const t = await newTenant(server, 'plan-t');
    const other = await newTenant(server, 'plan-o');
    await putOnPlan(server, t.slug, plan.id);
    expect((await post(t, { resourceType: 'Patient' })).status).toBe(201);
    await testPlan(server, { patients: 1 }, plan.id);
    expectQuotaExceeded(await post(t, { resourceType: 'Patient' }), plan.id, 'patients', 1, 1);
    expect((await post(other, { resourceType: 'Patient' })).status).toBe(201);
    expect((await post(other, { resourceType: 'Patient' })).status).toBe(201);
  });

  it('the application role may read plans but never write them', async () => {
    const rows = await server.deps.db.platform((q) => q.query<{ id: string }>("SELECT id FROM plan WHERE id = 'trial'"));
    expect(rows.rows).toEqual([{ id: 'trial' }]);
    await expect(server.deps.db.platform((q) => q.query("UPDATE plan SET quotas = '{}' WHERE id = 'trial'"))).rejects.toThrow(/permission denied/);
  });
});
