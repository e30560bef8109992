// A real server per test file: the app on a loopback port, on the run's database (see global-setup.ts).
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildDeps } from '../../src/compose.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import type { Deps } from '../../src/fhir/context.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/platform/log.js';
import { createTenant } from '../../src/tenancy/create-tenant.js';

export interface TestServer {
  origin: string;
  deps: Deps;
  http: Server;
  close(): Promise<void>;
}

export const FHIR_JSON = 'application/fhir+json';

export async function startServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const config = { ...loadConfig({ ...process.env, PUBLIC_BASE_URL: origin, DB_POOL_SIZE: '4' }), ...overrides };
  const deps = await buildDeps(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), process.env.TENFHIR_PGLITE_SOCKET);
  const { app } = createApp(deps);
  http.on('request', app);
  return {
    origin,
    deps,
    http,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await deps.db.close();
    },
  };
}

export function randomSlug(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export interface TestTenant {
  slug: string;
  /** Absolute FHIR base */
  base: string;
  /** Path of the FHIR base, for supertest */
  path: string;
  api: ReturnType<typeof request>;
}

export async function newTenant(server: TestServer, prefix = 't'): Promise<TestTenant> {
  const slug = randomSlug(prefix);
  await createTenant(server.deps, slug, `Test ${slug}`);
  return { slug, base: `${server.origin}/fhir/${slug}`, path: `/fhir/${slug}`, api: request(server.origin) };
}

/** POSTs a resource and returns the created body (asserting 201). */
export async function create(t: TestTenant, resource: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await t.api.post(`${t.path}/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
