// Helpers of the platform catalog tests (docs/catalog.md): the `platform` tenant's API with a real token of its own
// backend client, and catalog entries that no other test file's searches can match (a random tag in every code/url).
import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import type { Response } from 'supertest';
import { authed, FHIR_JSON, newBackendClient, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

/** The platform catalog tenant, through a backend client registered for it now (system/*.cruds). */
export async function platformTenant(server: TestServer): Promise<TestTenant> {
  const slug = 'platform';
  const clientId = await newBackendClient(server, slug);
  const token = await tokenFor(server, { slug, clientId });
  return { slug, base: `${server.origin}/fhir/${slug}`, path: `/fhir/${slug}`, api: authed(server.origin, token), token, clientId };
}

/** A tag unique to this run of the file: platform entries are shared by every test file on the database. */
export function newTag(): string {
  return randomBytes(5).toString('hex');
}

export const send = (t: TestTenant, method: 'post' | 'put', path: string, body: unknown) => t.api[method](`${t.path}/${path}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

/** Ids of a searchset's matches (mode match), sorted. */
export function matchIds(res: Response): string[] {
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();
}

/** The OperationOutcome of a refusal: status, issue code, error code and expression. */
export function refusal(res: Response): { status: number; issue?: string; code?: string; expression?: string[] } {
  const i = res.body?.issue?.[0];
  return { status: res.status, issue: i?.code, code: i?.details?.coding?.[0]?.code, expression: i?.expression };
}

export function medication(tag: string, code: string, text = 'Amoxicillin 500 mg capsule'): Record<string, unknown> {
  return { resourceType: 'Medication', code: { coding: [{ system: RXNORM, code: `${code}-${tag}` }], text }, status: 'active' };
}
