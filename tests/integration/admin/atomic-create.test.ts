// Issue 16: creating a tenant is one transaction. The tenant row, its root Organization (history, index, outbox and
// audit rows), the creation's audit record, its operator client and its first admin's invitation all exist, or none
// does: a real failure after the row is written (an operator client id another tenant holds, an invitation refused
// last) leaves no trace, a retry of the same creation then succeeds, and another tenant works on throughout.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Queryable } from '../../../src/platform/db.js';
import { deleteClient, findClient } from '../../../src/store/auth-payloads.js';
import { create, FHIR_JSON, newTenant, randomSlug, startServer, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';
import { newApp } from '../../helpers/oauth.js';
import { JSON_TYPE, operatorApi, platformAdmin } from './api-helpers.js';

let server: TestServer;
let watcher: TestTenant;
let pa: Api;

beforeAll(async () => {
  server = await startServer();
  watcher = await newTenant(server, 'atomic-watch');
  pa = (await platformAdmin(server, watcher)).api;
}, 60_000);
afterAll(async () => server?.close());

const code = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

function draft(slug: string, admin: Record<string, unknown> = { username: 'first-admin', email: 'admin@harbour.example.org' }) {
  return { slug, name: 'Harbour Clinic', type: 'solo-practice', plan: 'solo-practice', admin };
}

function createVia(body: Record<string, unknown>) {
  return pa.post('/admin/api/tenants').set('Content-Type', JSON_TYPE).send(JSON.stringify(body));
}

/**
 * Runs `fn` on the admin connection bound to `slug`: the admin role may be the tables' owner rather than a superuser,
 * and FORCE ROW LEVEL SECURITY then shows it the bound tenant's rows only.
 */
function asOwnerOf<T>(slug: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return server.deps.db.admin().tx(async (q) => {
    await q.query("SELECT set_config('app.tenant_id', $1, true)", [slug]);
    return fn(q);
  });
}

/** Rows of `slug` in every table that has a tenant_id column (found in the catalog), plus its tenant row; 0 omitted. */
async function rowsOf(slug: string): Promise<Record<string, number>> {
  await server.deps.audit.settle();
  return asOwnerOf(slug, async (q) => {
    const tables = await q.query<{ table_name: string }>(
      `SELECT c.table_name FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.column_name = 'tenant_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' ORDER BY 1`,
    );
    const out: Record<string, number> = {};
    for (const { table_name: t } of tables.rows) {
      const n = Number((await q.query<{ n: string }>(`SELECT count(*) AS n FROM "${t}" WHERE tenant_id = $1`, [slug])).rows[0].n);
      if (n) out[t] = n;
    }
    if ((await q.query('SELECT 1 FROM tenant WHERE id = $1', [slug])).rows.length) out.tenant = 1;
    return out;
  });
}

/** The watcher at work while `during` runs: writes and reads of its own, every one answered as usual. */
async function watching<T>(during: Promise<T>): Promise<T> {
  let done = false;
  const statuses: number[] = [];
  const work = (async () => {
    while (!done) {
      const made = await watcher.api.post(`${watcher.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Watcher' }] }));
      statuses.push(made.status);
      if (made.status === 201) statuses.push((await watcher.api.get(`${watcher.path}/Patient/${made.body.id}`)).status);
    }
  })();
  try {
    return await during;
  } finally {
    done = true;
    await work;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200 && s !== 201)).toEqual([]);
  }
}

/** What a complete creation leaves: every row, once (a failed attempt before it added none). */
async function expectComplete(slug: string): Promise<void> {
  const rows = await rowsOf(slug);
  expect(rows).toMatchObject({ tenant: 1, resource: 1, resource_history: 1, tenant_invitation: 1, audit_event: expect.any(Number) });
  expect(rows.outbox).toBeGreaterThanOrEqual(1);
  expect(Object.keys(rows).some((t) => t.startsWith('sp_'))).toBe(true);
  const client = await findClient(server.deps.db, `${slug}-cli`);
  expect(client?.tenantId).toBe(slug);
  const trail = await asOwnerOf(slug, (q) =>
    q.query<{ subtype: string; n: string }>("SELECT subtype, count(*) AS n FROM audit_event WHERE tenant_id = $1 AND category = 'admin' GROUP BY subtype ORDER BY subtype", [slug]),
  );
  expect(trail.rows.map((r) => [r.subtype, Number(r.n)])).toEqual([['client-register', 1], ['invitation-create', 1], ['tenant-create', 1]]);
  const org = await (await operatorApi(server, slug)).get(`/fhir/${slug}/Organization/${slug}`);
  expect([org.status, org.body.name, org.body.meta?.versionId]).toEqual([200, 'Harbour Clinic', '1']);
}

describe('tenant creation is all or nothing (issue 16)', () => {
  it('creates the tenant row, root Organization with its rows, operator client, invitation and audit records together', async () => {
    const slug = randomSlug('atomic');
    const res = await watching(createVia(draft(slug)));
    expect(res.status).toBe(201);
    expect(res.body.invitation.url).toContain(`/admin/invite/${slug}/`);
    await expectComplete(slug);
  });

  it('leaves nothing when the operator client id is taken by another tenant, and a retry succeeds once it is free', async () => {
    const slug = randomSlug('atomic');
    // another tenant already holds the client id the new tenant's operator client would get
    const taken = await newApp(server, watcher.slug, { clientId: `${slug}-cli` });
    const watcherBefore = await rowsOf(watcher.slug);
    const res = await watching(createVia(draft(slug)));
    expect([res.status, res.body.resourceType, code(res.body)]).toEqual([409, 'OperationOutcome', 'CLIENT_EXISTS']);
    // no tenant row, Organization, index or outbox row, invitation or audit record of the tenant
    expect(await rowsOf(slug)).toEqual({});
    expect((await findClient(server.deps.db, taken.clientId))?.tenantId).toBe(watcher.slug);
    const unknown = await watcher.api.get(`/fhir/${slug}/Organization/${slug}`);
    expect(unknown.status).toBe(404);
    // the watcher's rows only grew by its own work, its client is still its own
    const watcherAfter = await rowsOf(watcher.slug);
    expect(watcherAfter.resource).toBeGreaterThan(watcherBefore.resource);
    expect(watcherAfter.tenant).toBe(1);
    await create(watcher, { resourceType: 'Patient', name: [{ family: 'Still here' }] });

    expect(await deleteClient(server.deps.db, taken.clientId)).toBe(true);
    const retry = await watching(createVia(draft(slug)));
    expect(retry.status).toBe(201);
    await expectComplete(slug);
  });

  it('leaves nothing, the operator client included, when the first admin\'s invitation fails last; a retry succeeds', async () => {
    const slug = randomSlug('atomic');
    // the e-mail address is checked when the invitation is made, after the row, the Organization and the client
    const res = await watching(createVia(draft(slug, { username: 'first-admin', email: 'not an address' })));
    expect([res.status, code(res.body)]).toEqual([400, 'USER_EMAIL_INVALID']);
    expect(await rowsOf(slug)).toEqual({});
    expect(await findClient(server.deps.db, `${slug}-cli`)).toBeUndefined();

    const retry = await createVia(draft(slug));
    expect(retry.status).toBe(201);
    await expectComplete(slug);
  });

  it('refuses the same slug while and after it is created once (409 TENANT_EXISTS), changing nothing', async () => {
    const slug = randomSlug('atomic');
    const [a, b] = await Promise.all([createVia(draft(slug)), createVia(draft(slug))]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    expect(code((a.status === 409 ? a : b).body)).toBe('TENANT_EXISTS');
    await expectComplete(slug);
  });
});
