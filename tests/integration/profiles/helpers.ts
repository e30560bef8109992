// Helpers of the profile tests: small differential StructureDefinitions, $validate and the issues of an outcome.
import { expect } from '@jest/globals';
import type { Response } from 'supertest';
import { FHIR_JSON, type TestTenant } from '../../helpers/server.js';

export const CORE = 'http://hl7.org/fhir/StructureDefinition/';
export const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';
export const LOINC = 'http://loinc.org';

/** A constraint profile given as a differential only (ids are derived from the paths the way a snapshot names them). */
export function profile(id: string, type: string, elements: Record<string, unknown>[], base = `${CORE}${type}`, kind = 'resource'): Record<string, unknown> {
  return {
    resourceType: 'StructureDefinition',
    url: `http://example.org/fhir/StructureDefinition/${id}`,
    name: id.replace(/[^A-Za-z0-9]/g, ''),
    status: 'active',
    fhirVersion: '4.0.1',
    kind,
    abstract: false,
    type,
    baseDefinition: base,
    derivation: 'constraint',
    differential: {
      element: elements.map((e) => {
        const id = e.id as string;
        const path = id.split('.').map((s) => s.split(':')[0]).join('.');
        const last = id.split('.').pop()!;
        return { path, ...(last.includes(':') ? { sliceName: last.slice(last.indexOf(':') + 1) } : {}), ...e };
      }),
    },
  };
}

export const send = (t: TestTenant, method: 'post' | 'put', path: string, body: unknown) => t.api[method](`${t.path}/${path}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

/** "severity CODE expression" of every issue. */
export function issuesOf(res: Response): string[] {
  expect(res.body?.resourceType).toBe('OperationOutcome');
  return (res.body.issue ?? []).map((i: any) => `${i.severity} ${i.details?.coding?.[0]?.code} ${(i.expression ?? []).join(',')}`);
}

/** Issues other than information. */
export function problemsOf(res: Response): string[] {
  return issuesOf(res).filter((i) => !i.startsWith('information'));
}

/** A 400 whose issues (errors and warnings) are exactly `expected`, each naming the profile. */
export function expectRefused(res: Response, expected: string[], profileUrl?: string): void {
  expect({ status: res.status, problems: problemsOf(res).sort() }).toEqual({ status: 400, problems: [...expected].sort() });
  if (profileUrl) {
    const ours = res.body.issue.filter((i: any) => /^PROFILE_/.test(i.details?.coding?.[0]?.code ?? ''));
    for (const i of ours) {
      expect(i.diagnostics).toContain(profileUrl);
      expect(i.extension).toEqual([{ url: 'urn:tenfhir:profile', valueCanonical: profileUrl }]);
    }
  }
}

export async function uploadProfile(t: TestTenant, sd: Record<string, unknown>): Promise<string> {
  const res = await send(t, 'post', 'StructureDefinition', sd);
  if (res.status !== 201) throw new Error(`upload ${String(sd.url)}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

export const validate = (t: TestTenant, path: string, body: unknown) => send(t, 'post', path, body);
