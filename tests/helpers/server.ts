// A real server per test file: the app on a loopback port, on the run's database (see global-setup.ts). Every test
// tenant gets a registered backend client and a real access token (signed with the server's own key, exactly what
// `npm run cli -- token` prints); `t.api` sends it on every request.
import '../../src/platform/runtime-notice.js';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { registerClient } from '../../src/auth/admin.js';
import { mintAccessToken } from '../../src/auth/tokens.js';
import { buildDeps } from '../../src/compose.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import type { Deps } from '../../src/core/deps.js';
import { createApp, type AppHandle } from '../../src/http/app.js';
import { createLogger } from '../../src/platform/log.js';
import { createTenant, ensureCatalogTenant } from '../../src/tenancy/create-tenant.js';
import { startSubscriptionWorkers, type SubscriptionWorkers } from '../../src/subscriptions/runtime.js';
import { WebSocketChannel } from '../../src/subscriptions/websocket.js';
import { startExportWorker } from '../../src/export/worker.js';

export interface TestServer {
  origin: string;
  deps: Deps;
  http: Server;
  app: AppHandle;
  /** The subscription workers (startServer(..., { workers: true })). */
  workers?: SubscriptionWorkers;
  /** Tenants made through this server (newTenant): its workers work these only, as test files share one database. */
  tenants: Set<string>;
  /** The websocket channel (/fhir/{tenant}/$subscription-ws and $get-ws-binding-token), always attached. */
  websockets: WebSocketChannel;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Run the subscription workers (dispatcher, deliveries, maintenance) in this server, as the shipped server does. */
  workers?: boolean;
}

export const FHIR_JSON = 'application/fhir+json';

export async function startServer(overrides: Partial<Config> = {}, opts: ServerOptions = {}): Promise<TestServer> {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // test JWKS URLs are served on 127.0.0.1 (the SSRF guard itself is tested with it switched back off)
  const config = {
    ...loadConfig({ ...process.env, PUBLIC_BASE_URL: origin, DB_POOL_SIZE: '4', AUTH_ALLOW_PRIVATE_JWKS_URLS: 'true', SUBSCRIPTIONS_ALLOW_LOOPBACK: 'true', OUTBOX_POLL_MS: '200' }),
    // each server its own queues on the shared Redis: parallel test files never run each other's jobs
    queuePrefix: `test-${randomBytes(6).toString('hex')}`,
    ...overrides,
  };
  const deps = await buildDeps(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), process.env.TENFHIR_PGLITE_SOCKET);
  // the platform catalog tenant, as the shipped server creates it on start (idempotent across parallel test files)
  await ensureCatalogTenant(deps);
  const app = createApp(deps);
  http.on('request', app.app);
  const websockets = new WebSocketChannel(deps);
  websockets.attach(http);
  app.subscriptions.websockets = websockets;
  const tenants = new Set<string>();
  const workers = opts.workers ? await startSubscriptionWorkers(deps, { service: app.subscriptions, websockets, tenants: (t) => tenants.has(t) }) : undefined;
  // the export queue and its sweeper (resumes this server's tenants' interrupted exports)
  const stopExports = opts.workers ? startExportWorker(deps, app.exports, { tenants: (t) => tenants.has(t) }) : undefined;
  return {
    origin,
    deps,
    http,
    app,
    websockets,
    ...(workers ? { workers } : {}),
    tenants,
    async close() {
      await websockets.close();
      await workers?.stop();
      stopExports?.();
      await deps.queues.close();
      await deps.rateLimits.close();
      await deps.usage.close();
      app.auth.close();
      await deps.audit.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await deps.db.close();
    },
  };
}

export function randomSlug(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** supertest with an Authorization header on every request. */
export interface Api {
  get(url: string): request.Test;
  post(url: string): request.Test;
  put(url: string): request.Test;
  patch(url: string): request.Test;
  delete(url: string): request.Test;
  head(url: string): request.Test;
  options(url: string): request.Test;
}

export function authed(origin: string, token: string | undefined): Api {
  const base = request(origin);
  const wrap = (m: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options') => (url: string) => {
    const t = base[m](url);
    return token ? t.set('Authorization', `Bearer ${token}`) : t;
  };
  return { get: wrap('get'), post: wrap('post'), put: wrap('put'), patch: wrap('patch'), delete: wrap('delete'), head: wrap('head'), options: wrap('options') };
}

/** One ES384 key pair for the test backend clients (SMART asymmetric client authentication). */
let backendKey: { privateKey: KeyObject; publicJwk: Record<string, unknown> } | undefined;
export function testBackendKey(): { privateKey: KeyObject; publicJwk: Record<string, unknown> } {
  if (!backendKey) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    backendKey = { privateKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid: 'test-es384', alg: 'ES384', use: 'sig' } };
  }
  return backendKey;
}

export interface TestTenant {
  slug: string;
  /** Absolute FHIR base */
  base: string;
  /** Path of the FHIR base, for supertest */
  path: string;
  /** supertest carrying the tenant's system/*.cruds backend token */
  api: Api;
  token: string;
  /** The tenant's backend client (registered with testBackendKey()). */
  clientId: string;
}

export interface TokenOptions {
  scope?: string;
  username?: string;
  patient?: string;
  clientId?: string;
  ttlSeconds?: number;
  /** For the tenant's own host base (host-based tenants) instead of /fhir/{tenant}. */
  onHost?: boolean;
}

/** A real access token for a tenant's client (default: its backend client, system/*.cruds, one hour). */
export async function tokenFor(server: TestServer, t: Pick<TestTenant, 'slug' | 'clientId'>, o: TokenOptions = {}): Promise<string> {
  const minted = await mintAccessToken(server.deps, server.deps.auth.keys, {
    tenant: t.slug,
    clientId: o.clientId ?? t.clientId,
    scope: o.scope ?? 'system/*.cruds',
    ttlSeconds: o.ttlSeconds ?? 3600,
    ...(o.username ? { username: o.username } : {}),
    ...(o.patient ? { patient: o.patient } : {}),
    ...(o.onHost ? { onHost: true } : {}),
  });
  return minted.accessToken;
}

/** Registers a backend client for the tenant with testBackendKey()'s public key. */
export async function newBackendClient(server: TestServer, slug: string, scope = 'system/*.cruds'): Promise<string> {
  const c = await registerClient(server.deps, server.app.auth.provider(), { tenant: slug, kind: 'backend', name: `Test backend ${slug}`, scope, jwks: { keys: [testBackendKey().publicJwk] } });
  return c.clientId;
}

export async function newTenant(server: TestServer, prefix = 't'): Promise<TestTenant> {
  const slug = randomSlug(prefix);
  server.tenants.add(slug);
  await createTenant(server.deps, slug, `Test ${slug}`);
  const clientId = await newBackendClient(server, slug);
  const token = await tokenFor(server, { slug, clientId });
  return { slug, base: `${server.origin}/fhir/${slug}`, path: `/fhir/${slug}`, api: authed(server.origin, token), token, clientId };
}

/** The same tenant's API on another server instance (tokens name their issuer's origin). */
export async function onServer(server: TestServer, t: TestTenant): Promise<Api> {
  return authed(server.origin, await tokenFor(server, t));
}

/** POSTs a resource and returns the created body (asserting 201). */
export async function create(t: TestTenant, resource: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await t.api.post(`${t.path}/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
