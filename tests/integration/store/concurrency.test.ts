// Integrity: concurrent If-Match updates of one resource never lose an update (http.html#concurrency).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;

beforeAll(async () => {
  server = await startServer({ dbPoolSize: 8 });
  t = await newTenant(server, 'conc');
});
afterAll(async () => server.close());

async function increment(id: string): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const got = await t.api.get(`${t.path}/Basic/${id}`);
    const counter = got.body.extension[0].valueInteger as number;
    const body = { ...got.body, extension: [{ url: 'urn:counter', valueInteger: counter + 1 }] };
    const put = await t.api.put(`${t.path}/Basic/${id}`).set('Content-Type', FHIR_JSON).set('If-Match', got.headers.etag).send(JSON.stringify(body));
    if (put.status === 200) return attempt;
    expect(put.status).toBe(412);
  }
  throw new Error('too many conflicts');
}

describe('concurrent If-Match updates', () => {
  it('8 writers x 10 read-modify-write increments end at exactly 80, with one version per success', async () => {
    const b = await create(t, { resourceType: 'Basic', code: { text: 'counter' }, extension: [{ url: 'urn:counter', valueInteger: 0 }] });
    const retries = await Promise.all(
      Array.from({ length: 8 }, async () => {
        let r = 0;
        for (let i = 0; i < 10; i++) r += await increment(b.id);
        return r;
      }),
    );
    const final = await t.api.get(`${t.path}/Basic/${b.id}`);
    expect(final.body.extension[0].valueInteger).toBe(80);
    expect(final.body.meta.versionId).toBe('81');
    const h = await t.api.get(`${t.path}/Basic/${b.id}/_history?_count=1000`);
    expect(h.body.entry).toHaveLength(81);
    // On a real multi-connection database the writers really collide; PGlite serialises them.
    if (server.deps.db.kind === 'postgres') expect(retries.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
  });
});
