// Bulk Data export jobs (issue 12): an export interrupted when its server stops continues on a new server over the same
// database from the job row's cursor, with nothing duplicated or missing; a storage failure (disk full) ends the export
// with an OperationOutcome in `error` and never serves a partial file.
import { afterAll, describe, expect, it } from '@jest/globals';
import type { ExportStorage } from '../../../src/export/storage.js';
import { authed, create, newTenant, startServer, tokenFor, type TestServer } from '../../helpers/server.js';
import { download, downloadAll, downloadDeleted, kickOff, pathOf, waitForManifest } from './helpers.js';

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
});

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('export jobs survive a restart', () => {
  it('an export interrupted after its first file completes on a new server without duplicated or missing resources', async () => {
    const first = await startServer({ exportFileMaxResources: 2 }, { workers: true });
    servers.push(first);
    const t = await newTenant(first, 'expr');
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) ids.push((await create(t, { resourceType: 'Patient', name: [{ family: `R${i}` }] })).id);
    // slow the storage down so the export is caught between files
    const real = first.app.exports.storage;
    first.app.exports.storage = {
      ...real,
      put: async (...a) => {
        const w = await real.put(...a);
        return { ...w, commit: async () => { await new Promise((r) => setTimeout(r, 150)); await w.commit(); } };
      },
      get: (...a) => real.get(...a),
      delete: (...a) => real.delete(...a),
    } satisfies ExportStorage;
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient`);
    const id = status.split('/').at(-1)!;
    await waitFor('the first file', async () => {
      const r = await first.deps.db.withTenant(t.slug, (q) => q.query<{ done: number }>('SELECT done FROM job WHERE tenant_id = $1 AND id = $2', [t.slug, id]));
      return (r.rows[0]?.done ?? 0) >= 2;
    });
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await startServer({ exportFileMaxResources: 2 }, { workers: false });
    servers.push(second);
    second.tenants.add(t.slug);
    const { startExportWorker } = await import('../../../src/export/worker.js');
    const stop = startExportWorker(second.deps, second.app.exports, { tenants: (x) => x === t.slug, staleSeconds: 0 });
    try {
      const api = authed(second.origin, await tokenFor(second, t));
      const m = await waitForManifest(api, status.replace(first.origin, second.origin));
      const all = await downloadAll(api, { ...m, output: m.output.map((o) => ({ ...o, url: o.url })) });
      expect(all.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect(m.output.map((o) => o.count).reduce((a, b) => a + b, 0)).toBe(9);
    } finally {
      stop();
    }
  }, 90_000);

  it('an export interrupted in its deletions (_since) completes on a new server listing each deletion once', async () => {
    const first = await startServer({ exportFileMaxResources: 2 }, { workers: true });
    servers.push(first);
    const t = await newTenant(first, 'exprd');
    const refs: string[] = [];
    for (let i = 0; i < 5; i++) refs.push(`Patient/${(await create(t, { resourceType: 'Patient', name: [{ family: `RD${i}` }] })).id}`);
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    for (const ref of refs) expect((await t.api.delete(`${t.path}/${ref}`)).status).toBe(204);
    const real = first.app.exports.storage;
    first.app.exports.storage = {
      ...real,
      put: async (...a) => {
        const w = await real.put(...a);
        return { ...w, commit: async () => { await new Promise((r) => setTimeout(r, 150)); await w.commit(); } };
      },
      get: (...a) => real.get(...a),
      delete: (...a) => real.delete(...a),
    } satisfies ExportStorage;
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient&_since=${encodeURIComponent(since)}`);
    const id = status.split('/').at(-1)!;
    await waitFor('the first file of deletions', async () => {
      const r = await first.deps.db.withTenant(t.slug, (q) => q.query<{ done: number }>('SELECT done FROM job WHERE tenant_id = $1 AND id = $2', [t.slug, id]));
      return (r.rows[0]?.done ?? 0) >= 2;
    });
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await startServer({ exportFileMaxResources: 2 }, { workers: false });
    servers.push(second);
    second.tenants.add(t.slug);
    // stopped within the Patient deletions: the cursor names the step
    const row = await second.deps.db.withTenant(t.slug, (q) => q.query<{ cursor: unknown; status: string }>('SELECT cursor, status FROM job WHERE tenant_id = $1 AND id = $2', [t.slug, id]));
    expect(row.rows[0]).toEqual({ status: 'running', cursor: ['Patient', expect.any(String), 'deleted'] });
    const { startExportWorker } = await import('../../../src/export/worker.js');
    const stop = startExportWorker(second.deps, second.app.exports, { tenants: (x) => x === t.slug, staleSeconds: 0 });
    try {
      const api = authed(second.origin, await tokenFor(second, t));
      const m = await waitForManifest(api, status.replace(first.origin, second.origin));
      expect(m.output).toEqual([]);
      expect((await downloadDeleted(api, m)).sort()).toEqual([...refs].sort());
      expect(m.deleted.map((d) => d.count)).toEqual([2, 2, 1]);
    } finally {
      stop();
    }
  }, 90_000);
});

describe('export jobs survive a restart: Provenance by target (Patient and Group level)', () => {
  it("a Group-level export interrupted in its Provenance completes on a new server with each Provenance of the members' resources once", async () => {
    const first = await startServer({ exportFileMaxResources: 2 }, { workers: true });
    servers.push(first);
    const t = await newTenant(first, 'exprp');
    const me = await create(t, { resourceType: 'Patient', name: [{ family: 'Member' }] });
    const them = await create(t, { resourceType: 'Patient', name: [{ family: 'Other' }] });
    const obs = (p: Record<string, any>) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${p.id}` } });
    const mine = await create(t, obs(me));
    const theirs = await create(t, obs(them));
    const prov = (target: Record<string, any>) => ({ resourceType: 'Provenance', recorded: new Date().toISOString(), target: [{ reference: `Observation/${target.id}` }], agent: [{ who: { display: 'x' } }] });
    const wanted: string[] = [];
    for (let i = 0; i < 7; i++) {
      wanted.push((await create(t, prov(mine))).id);
      await create(t, prov(theirs));
    }
    const group = await create(t, { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${me.id}` } }] });
    const real = first.app.exports.storage;
    first.app.exports.storage = {
      ...real,
      put: async (...a) => {
        const w = await real.put(...a);
        return { ...w, commit: async () => { await new Promise((r) => setTimeout(r, 150)); await w.commit(); } };
      },
      get: (...a) => real.get(...a),
      delete: (...a) => real.delete(...a),
    } satisfies ExportStorage;
    const status = await kickOff(t.api, `${t.path}/Group/${group.id}/$export?_type=Provenance`);
    const id = status.split('/').at(-1)!;
    await waitFor('the first file', async () => {
      const r = await first.deps.db.withTenant(t.slug, (q) => q.query<{ done: number }>('SELECT done FROM job WHERE tenant_id = $1 AND id = $2', [t.slug, id]));
      return (r.rows[0]?.done ?? 0) >= 2;
    });
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await startServer({ exportFileMaxResources: 2 }, { workers: false });
    servers.push(second);
    second.tenants.add(t.slug);
    const row = await second.deps.db.withTenant(t.slug, (q) => q.query<{ cursor: unknown; status: string }>('SELECT cursor, status FROM job WHERE tenant_id = $1 AND id = $2', [t.slug, id]));
    expect(row.rows[0]).toEqual({ status: 'running', cursor: ['Provenance', expect.any(String)] });
    const { startExportWorker } = await import('../../../src/export/worker.js');
    const stop = startExportWorker(second.deps, second.app.exports, { tenants: (x) => x === t.slug, staleSeconds: 0 });
    try {
      const api = authed(second.origin, await tokenFor(second, t));
      const m = await waitForManifest(api, status.replace(first.origin, second.origin));
      const all = await downloadAll(api, m);
      expect(all.map((r) => r.id).sort()).toEqual([...wanted].sort());
      expect(m.output.map((o) => o.count)).toEqual([2, 2, 2, 1]);
    } finally {
      stop();
    }
  }, 90_000);
});

describe('storage failure (disk full)', () => {
  it('completes the export with an error entry and serves no partial file', async () => {
    const server = await startServer();
    servers.push(server);
    const t = await newTenant(server, 'expd');
    for (let i = 0; i < 3; i++) await create(t, { resourceType: 'Patient', name: [{ family: `D${i}` }] });
    const real = server.app.exports.storage;
    server.app.exports.storage = {
      put: async (...a) => {
        const w = await real.put(...a);
        return {
          ...w,
          // the disk fills up in the middle of the file's first write (the run writes a batch of lines at a time)
          write: async (text) => {
            await w.write(text.slice(0, Math.floor(text.length / 2)));
            throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
          },
        };
      },
      get: (...a) => real.get(...a),
      delete: (...a) => real.delete(...a),
    };
    const status = await kickOff(t.api, `${t.path}/$export?_type=Patient`);
    const m = await waitForManifest(t.api, status);
    expect(m.output).toEqual([]);
    expect(m.error).toHaveLength(1);
    const errors = await download(t.api, m.error[0].url);
    expect(errors[0]).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] });
    // nothing was published under the file's name
    const id = pathOf(status).split('/').at(-1)!;
    expect(await real.get(t.slug, id, 'Patient-1.ndjson')).toBeUndefined();
    expect((await t.api.get(`${t.path}/$export-file/${id}/Patient-1.ndjson`)).status).toBe(404);
  });
});
