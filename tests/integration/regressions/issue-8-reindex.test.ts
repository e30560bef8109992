// Issue 8, "a reindex that freezes the embedded server": $reindex of a tenant of 30,000 resources on the embedded
// database (one connection shared by everything) completes while reads and searches of the same and another tenant
// keep being answered.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

const onEmbedded = process.env.DATABASE_URL ? describe.skip : describe;

onEmbedded('$reindex of 30,000 resources on the embedded database', () => {
  let server: TestServer;
  let t: TestTenant;
  let other: TestTenant;
  beforeAll(async () => {
    server = await startServer();
    t = await newTenant(server, 'big');
    other = await newTenant(server, 'small');
    for (let b = 0; b < 30; b++) {
      const entry = Array.from({ length: 1000 }, (_, i) => ({
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        resource: { resourceType: 'Patient', name: [{ family: `Big${b * 1000 + i}` }], gender: i % 2 ? 'male' : 'female' },
        request: { method: 'POST', url: 'Patient' },
      }));
      const res = await t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }));
      expect(res.status).toBe(200);
    }
  }, 600_000);
  afterAll(() => server.close());

  it('completes while reads and searches keep being answered', async () => {
    const mine = await create(t, { resourceType: 'Patient', name: [{ family: 'Reader' }] });
    const theirs = await create(other, { resourceType: 'Patient', name: [{ family: 'Neighbour' }] });
    const start = await t.api.post(`${t.path}/$reindex`).set('Content-Type', FHIR_JSON).send('{}');
    expect(start.status).toBe(202);
    const status = new URL(start.headers['content-location']);
    const statuses: number[] = [];
    let state = 'running';
    let reads = 0;
    while (state === 'running') {
      const [a, b, c] = await Promise.all([
        t.api.get(`${t.path}/Patient/${mine.id}`),
        other.api.get(`${other.path}/Patient/${theirs.id}`),
        t.api.get(`${t.path}/Patient?name=Big12&_count=5`),
      ]);
      statuses.push(a.status, b.status, c.status);
      reads += 3;
      const s = await t.api.get(`${status.pathname}${status.search}`);
      state = s.body.parameter.find((p: { name: string }) => p.name === 'status').valueCode;
    }
    expect(state).toBe('completed');
    const done = await t.api.get(`${status.pathname}${status.search}`);
    const param = (n: string) => done.body.parameter.find((p: { name: string }) => p.name === n);
    expect(param('total').valueInteger).toBeGreaterThanOrEqual(30_000);
    expect(param('processed').valueInteger).toBe(param('total').valueInteger);
    // the server answered throughout: every request succeeded, and many were served while the job ran
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(reads).toBeGreaterThanOrEqual(30);
    expect((await t.api.get(`${t.path}/Patient?name=Big29999`)).body.total).toBe(1);
  }, 600_000);
});
