// Shared steps of the Bulk Data export tests: kick-off, poll until the manifest, download and parse NDJSON.
import { expect } from '@jest/globals';
import type { ExportStorage } from '../../../src/export/storage.js';
import type { Api, TestServer } from '../../helpers/server.js';

export async function kickOff(api: Api, path: string): Promise<string> {
  const res = await api.get(path).set('Prefer', 'respond-async').set('Accept', 'application/fhir+json');
  if (res.status !== 202) throw new Error(`kick-off ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.headers['content-location'];
}

/** The path of an absolute URL of the server (supertest takes paths). */
export function pathOf(url: string): string {
  return new URL(url).pathname + new URL(url).search;
}

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  /** Files of transaction Bundles of DELETE entries (with _since; always an array on this server). */
  deleted: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count?: number }[];
}

export async function waitForManifest(api: Api, statusUrl: string, timeoutMs = 60_000): Promise<Manifest> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await api.get(pathOf(statusUrl)).set('Accept', 'application/json');
    if (res.status === 200) {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      return JSON.parse(res.text) as Manifest;
    }
    if (res.status !== 202) throw new Error(`status: ${res.status} ${res.text}`);
    if (Date.now() > until) throw new Error('export did not complete in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function download(api: Api, url: string): Promise<Record<string, any>[]> {
  const res = await api.get(pathOf(url)).set('Accept', 'application/fhir+ndjson').buffer(true).parse((r, cb) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (text += c));
    r.on('end', () => cb(null, text));
  });
  if (res.status !== 200) throw new Error(`download ${url}: ${res.status}`);
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
  const text = res.body as string;
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Every resource of the manifest's output files. */
export async function downloadAll(api: Api, m: Manifest): Promise<Record<string, any>[]> {
  const out: Record<string, any>[] = [];
  for (const o of m.output) {
    const rows = await download(api, o.url);
    expect(rows.length).toBe(o.count);
    for (const r of rows) expect(r.resourceType).toBe(o.type);
    out.push(...rows);
  }
  return out;
}

export async function runExport(api: Api, path: string): Promise<{ manifest: Manifest; resources: Record<string, any>[]; status: string }> {
  const status = await kickOff(api, path);
  const manifest = await waitForManifest(api, status);
  return { manifest, resources: await downloadAll(api, manifest), status };
}

/**
 * Every `Type/id` of the manifest's `deleted` files, each file checked on the way: an item like output's (type
 * Bundle, url, count = its lines), every line a transaction Bundle with one or more entries, each entry's request
 * `DELETE Type/id`.
 */
export async function downloadDeleted(api: Api, m: Manifest): Promise<string[]> {
  expect(Array.isArray(m.deleted)).toBe(true);
  const refs: string[] = [];
  for (const item of m.deleted) {
    expect(Object.keys(item).sort()).toEqual(['count', 'type', 'url']);
    expect(item.type).toBe('Bundle');
    const bundles = await download(api, item.url);
    expect(bundles.length).toBe(item.count);
    for (const b of bundles) {
      expect(b).toMatchObject({ resourceType: 'Bundle', type: 'transaction' });
      expect(b.entry.length).toBeGreaterThanOrEqual(1);
      for (const e of b.entry) {
        expect(e.request.method).toBe('DELETE');
        expect(e.request.url).toMatch(/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/);
        refs.push(e.request.url);
      }
    }
  }
  return refs;
}

/**
 * Holds every export file's commit until `release()`: the export stays running while a test looks at it or writes
 * after its kick-off. `restore()` releases and puts the server's own storage back (call it in `finally`).
 */
export function holdExportCommits(server: TestServer): { release(): void; restore(): void } {
  const real = server.app.exports.storage;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  server.app.exports.storage = {
    ...real,
    put: async (...a) => {
      const w = await real.put(...a);
      return { ...w, commit: async () => { await gate; await w.commit(); } };
    },
    get: (...a) => real.get(...a),
    delete: (...a) => real.delete(...a),
  } satisfies ExportStorage;
  return {
    release,
    restore() {
      release();
      server.app.exports.storage = real;
    },
  };
}
