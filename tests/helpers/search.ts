// Search-test helpers shared by tests/integration/search/*: run a search on a tenant and name its results by the
// keys the test gave its resources (`ids[key] = id`).
import type { Response } from 'supertest';
import type { TestTenant } from './server.js';

/** The test's key of a resource id, or `?id` for a resource the test did not name. */
export const keyFor = (ids: Record<string, string>, id: string): string => Object.keys(ids).find((k) => ids[k] === id) ?? `?${id}`;

/** Expected keys, sorted (to compare with a search's sorted keys). */
export const keys = (...k: string[]): string[] => [...k].sort();

/** The URL of a Bundle link by relation. */
export const linkOf = (res: Response, rel: string): string | undefined => res.body.link?.find((l: any) => l.relation === rel)?.url;

/** The keys of the entries of a search Bundle with the given search.mode, sorted. */
export const keysByMode = (ids: Record<string, string>, res: Response, mode: string): string[] =>
  (res.body.entry ?? []).filter((e: any) => e.search?.mode === mode).map((e: any) => keyFor(ids, e.resource.id)).sort();

/** GET of a query relative to the tenant base, or of an absolute URL (a Bundle link); fails on anything but 200. */
export async function getOk(t: TestTenant, url: string): Promise<Response> {
  const res = await t.api.get(url.startsWith('http') ? new URL(url).pathname + new URL(url).search : `${t.path}/${url}`);
  if (res.status !== 200) throw new Error(`${url} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/** The keys of the matches (search.mode=match) of a search relative to the tenant base, sorted; fails on anything but 200. */
export async function searchKeys(t: TestTenant, ids: Record<string, string>, query: string): Promise<string[]> {
  const res = await t.api.get(`${t.path}/${query}`);
  if (res.status !== 200) throw new Error(`${query} -> ${res.status} ${JSON.stringify(res.body)}`);
  return keysByMode(ids, res, 'match');
}
