// Admin API test helpers: real tokens of a platform administrator (signed in through the authorization server, as a
// person would) and of a tenant's users, and the database's own view of a tenant row.
import { randomBytes } from 'node:crypto';
import { Browser, newApp, newUser, REDIRECT, runAuthorization, tokenRequest } from '../../helpers/oauth.js';
import { authed, tokenFor, type Api, type TestServer, type TestTenant } from '../../helpers/server.js';

/**
 * A new platform administrator (users of the `platform` pseudo-tenant are shared by every test file: a fresh name)
 * and their access token, got by signing in at `t`'s authorization server (its audience: t's FHIR base).
 */
export async function platformAdmin(server: TestServer, t: TestTenant): Promise<{ username: string; token: string; api: Api }> {
  const username = `pa-${randomBytes(4).toString('hex')}`;
  await newUser(server, 'platform', username, 'platform-admin');
  const app = await newApp(server, t.slug, { scope: 'openid fhirUser user/*.cruds' });
  const browser = new Browser(server.origin);
  const { redirect, pkce } = await runAuthorization(browser, server.origin, { clientId: app.clientId, aud: t.base, scope: 'user/*.cruds', username });
  const tok = await tokenRequest(server.origin, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: app.clientId });
  if (tok.status !== 200) throw new Error(`platform admin token: ${tok.status} ${JSON.stringify(tok.body)}`);
  return { username, token: tok.body.access_token, api: authed(server.origin, tok.body.access_token) };
}

/** A user of `role` in the tenant and a token of theirs (through a new app of the tenant, user/*.cruds). */
export async function userToken(server: TestServer, t: Pick<TestTenant, 'slug'>, role: string): Promise<{ username: string; token: string; api: Api }> {
  const username = `${role}-${randomBytes(3).toString('hex')}`;
  await newUser(server, t.slug, username, role);
  const app = await newApp(server, t.slug, { scope: 'openid fhirUser user/*.cruds' });
  const token = await tokenFor(server, { slug: t.slug, clientId: app.clientId }, { username, scope: 'user/*.cruds' });
  return { username, token, api: authed(server.origin, token) };
}

/** The operator client's token of a tenant made through the admin API (`<slug>-cli`, system/*.cruds). */
export async function operatorApi(server: TestServer, slug: string): Promise<Api> {
  return authed(server.origin, await tokenFor(server, { slug, clientId: `${slug}-cli` }));
}

/** The tenant's row as the database holds it. */
export async function tenantRow(server: TestServer, slug: string): Promise<Record<string, any> | undefined> {
  return (await server.deps.db.admin().query('SELECT id, name, status, plan, type, branding, host, trial_ends_at, status_changed_at, terminate_after, settings FROM tenant WHERE id = $1', [slug])).rows[0];
}

/** The admin audit records of a tenant (newest first). */
export async function adminAudit(server: TestServer, slug: string): Promise<{ subtype: string; outcome: number; detail: Record<string, any> }[]> {
  await server.deps.audit.settle();
  const r = await server.deps.db.admin().query("SELECT subtype, outcome, detail FROM audit_event WHERE tenant_id = $1 AND category = 'admin' ORDER BY recorded DESC", [slug]);
  return r.rows as never;
}

export const JSON_TYPE = 'application/json';
