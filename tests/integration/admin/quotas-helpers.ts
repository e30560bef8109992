// Plans for the quota tests: a plan of the test's own (random id, so parallel test files never share one), and a
// tenant put on a plan the way the admin API's plan change does it (the row, then this process's tenant cache).
import { expect } from '@jest/globals';
import type { Response } from 'supertest';
import { QUOTA_NAMES, type Plan, type QuotaName, type Quotas } from '../../../src/core/plans.js';
import { upsertPlan } from '../../../src/store/plans.js';
import { FHIR_JSON, randomSlug, type TestServer, type TestTenant } from '../../helpers/server.js';

export const UNLIMITED = Object.fromEntries(QUOTA_NAMES.map((q) => [q, null])) as unknown as Quotas;

/** Creates (or with `id`, replaces) a plan with `quotas` (every other quota unlimited). */
export async function testPlan(server: TestServer, quotas: Partial<Quotas>, id = randomSlug('plan')): Promise<Plan> {
  return upsertPlan(server.deps, { id, name: `Test plan ${id}`, description: 'quota tests', trialDays: null, tenantTypes: [], quotas: { ...UNLIMITED, ...quotas } });
}

/** Puts the tenant on `planId` (tenant.plan, then this server's tenant cache forgets the tenant). */
export async function putOnPlan(server: TestServer, slug: string, planId: string | null): Promise<void> {
  await server.deps.db.admin().query('UPDATE tenant SET plan = $2 WHERE id = $1', [slug, planId]);
  server.app.tenants.invalidate(slug);
}

/** The 403 OperationOutcome of a quota: its name, limit and usage in the diagnostics, code QUOTA_EXCEEDED. */
export function expectQuotaExceeded(res: Pick<Response, 'status' | 'body'>, plan: string, quota: QuotaName, limit: number, usage: number): void {
  expect({ status: res.status, issue: res.body.issue?.[0] }).toEqual({
    status: 403,
    issue: {
      severity: 'error',
      code: 'forbidden',
      diagnostics: `Quota '${quota}' of plan '${plan}' exceeded: limit ${limit}, usage ${usage}`,
      details: { coding: [{ system: 'urn:tenfhir:error-code', code: 'QUOTA_EXCEEDED' }], text: `Quota '${quota}' of plan '${plan}' exceeded: limit ${limit}, usage ${usage}` },
    },
  });
}

export function post(t: TestTenant, resource: Record<string, unknown>, headers: Record<string, string> = {}) {
  let req = t.api.post(`${t.path}/${resource.resourceType}`).set('Content-Type', FHIR_JSON);
  for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
  return req.send(JSON.stringify(resource));
}

/** How many current resources of `type` the tenant holds (a _summary=count search). */
export async function countOf(t: TestTenant, type: string): Promise<number> {
  const res = await t.api.get(`${t.path}/${type}?_summary=count`);
  expect(res.status).toBe(200);
  return res.body.total;
}
