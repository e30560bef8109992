// Shared by the security-policy suites (policy-*.test.ts): a browser and a backend client that present a client
// address through X-Forwarded-For (the test servers trust 127.0.0.1 as their proxy), and tenant settings/status
// changes that take effect at once.
import jwt from 'jsonwebtoken';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import type { TenantSettings } from '../../../src/core/tenant.js';
import { ASSERTION_TYPE, Browser, clientAssertion, REDIRECT, runAuthorization, tokenRequest, type LaunchOptions } from '../../helpers/oauth.js';
import { testBackendKey, type TestServer } from '../../helpers/server.js';

/** A browser behind the test's proxy: every request says it comes from `address` (changeable between requests). */
export class BrowserAt extends Browser {
  constructor(
    origin: string,
    public address: string,
  ) {
    super(origin);
  }

  override request(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    return super.request(url, { ...init, headers: { ...init.headers, 'x-forwarded-for': this.address } });
  }
}

/** Merges security settings into the tenant and drops this server's cached copy. */
export async function setSettings(server: TestServer, slug: string, settings: TenantSettings): Promise<void> {
  await updateTenantSettings(server.deps.db, slug, settings);
  server.app.tenants.invalidate(slug);
}

/** Moves the tenant to a lifecycle state directly in its row (the lifecycle API is tested in lifecycle*.test.ts). */
export async function setStatus(server: TestServer, slug: string, status: string): Promise<void> {
  await server.deps.db.admin().query('UPDATE tenant SET status = $2 WHERE id = $1', [slug, status]);
  server.app.tenants.invalidate(slug);
}

/** SMART Backend Services token request of a testBackendKey() client, from `address` when given. */
export function backendToken(server: TestServer, clientId: string, address?: string) {
  const assertion = clientAssertion(clientId, `${server.origin}/auth/token`, testBackendKey().privateKey);
  return tokenRequest(server.origin, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }, address ? { 'x-forwarded-for': address } : {});
}

/** Authorization (sign-in, consent) then the code exchange, from the browser's address. */
export async function signInForTokens(server: TestServer, browser: BrowserAt, o: LaunchOptions) {
  const { redirect, pkce } = await runAuthorization(browser, server.origin, o);
  const code = redirect.searchParams.get('code');
  if (!code) throw new Error(`no code: ${redirect.toString()}`);
  return tokenRequest(server.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: o.clientId }, { 'x-forwarded-for': browser.address });
}

/** An access token's lifetime as signed: exp - iat. */
export function lifetimeOf(accessToken: string): number {
  const c = jwt.decode(accessToken) as { exp: number; iat: number };
  return c.exp - c.iat;
}
