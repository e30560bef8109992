// Reading the answers of terminology operations in tests: Parameters values by name, and error outcomes.
import { expect } from '@jest/globals';
import type { Response } from 'supertest';

/** The value[x] of each top-level parameter by name (the first one when repeated). */
export function paramsOf(res: Response): Record<string, unknown> {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status: 200, type: 'Parameters' });
  const out: Record<string, unknown> = {};
  for (const p of res.body.parameter ?? []) {
    if (p.name in out) continue;
    const value = Object.entries(p).find(([k]) => k.startsWith('value'));
    if (value) out[p.name] = value[1];
  }
  return out;
}

/** A 4xx/5xx OperationOutcome with our error code (and FHIRPath expression). */
export function expectError(res: Response, status: number, code: string, expression?: string): void {
  expect({ status: res.status, type: res.body?.resourceType, code: res.body?.issue?.[0]?.details?.coding?.[0]?.code }).toEqual({ status, type: 'OperationOutcome', code });
  if (expression !== undefined) expect(res.body.issue[0].expression).toEqual([expression]);
}

/** The codes of an $expand answer, as system|code. */
export function codesOf(res: Response): string[] {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status: 200, type: 'ValueSet' });
  return (res.body.expansion.contains ?? []).map((c: { system: string; code: string }) => `${c.system}|${c.code}`);
}
