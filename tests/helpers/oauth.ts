// OAuth 2 / SMART flows over plain HTTP, the way a browser and an app would run them: a cookie jar that follows
// the authorization server's redirects and submits its HTML forms, PKCE, client assertions (private_key_jwt).
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createUser } from '../../src/auth/admin.js';
import { registerClient, type NewClient } from '../../src/auth/admin.js';
import { newTenant, startServer, type TestServer, type TestTenant } from './server.js';

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const REDIRECT = 'http://app.example/callback';

/** Registers an app (public by default) for the tenant. */
export async function newApp(server: TestServer, tenant: string, o: Partial<NewClient> = {}): Promise<{ clientId: string; clientSecret?: string }> {
  const c = await registerClient(server.deps, server.app.auth.provider(), { tenant, kind: 'public', name: 'Test App', redirectUris: [REDIRECT], ...o });
  return { clientId: c.clientId, ...(c.clientSecret ? { clientSecret: c.clientSecret } : {}) };
}

/** A server, a tenant on it and a public app registered to that tenant with `scope` (the scope enforcement suites). */
export async function serverWithApp(slug: string, scope: string): Promise<{ server: TestServer; t: TestTenant; app: { clientId: string } }> {
  const server = await startServer();
  const t = await newTenant(server, slug);
  return { server, t, app: await newApp(server, t.slug, { scope }) };
}

/** HL7's Observation category code system (vital-signs, laboratory, ...). */
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

export const PASSWORD = 'correct horse battery staple';

export async function newUser(server: TestServer, tenant: string, username: string, role: string, fhirUser?: string, displayName?: string): Promise<void> {
  await createUser(server.deps, { tenant, username, password: PASSWORD, role, ...(fhirUser ? { fhirUser } : {}), ...(displayName ? { displayName } : {}) });
}

/** A minimal browser: cookies per origin, manual redirects, and HTML form reading. */
export class Browser {
  private cookies = new Map<string, string>();
  /** Every URL visited, in order. */
  readonly visited: string[] = [];

  constructor(private readonly origin: string) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** One request (no redirect following). */
  async request(url: string, init: { method?: string; form?: Record<string, string | string[]>; headers?: Record<string, string> } = {}): Promise<Response> {
    const abs = new URL(url, this.origin).toString();
    this.visited.push(abs);
    const headers: Record<string, string> = { ...init.headers };
    if (abs.startsWith(this.origin) && this.cookies.size) headers.cookie = this.cookieHeader();
    let body: string | undefined;
    if (init.form) {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
      body = p.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(abs, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    if (abs.startsWith(this.origin)) this.keep(res);
    return res;
  }

  /**
   * Follows redirects inside the server; stops at a page (200/4xx) or at a redirect leaving the server (the app's
   * redirect_uri), returning that URL.
   */
  async follow(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<{ res: Response; html?: string; leftTo?: string }> {
    let res = await this.request(url, init);
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location')!, url.startsWith('http') ? url : this.origin).toString();
      if (!next.startsWith(this.origin)) return { res, leftTo: next };
      url = next;
      res = await this.request(next);
    }
    return { res, html: await res.text() };
  }
}

/** The action of the form on an HTML page (the first one whose action contains `part`). */
export function formAction(html: string, part: string): string {
  const m = [...html.matchAll(/<form[^>]*action="([^"]+)"/g)].map((x) => x[1].replace(/&amp;/g, '&')).find((a) => a.includes(part));
  if (!m) throw new Error(`no form with action *${part}* in:\n${html.slice(0, 2000)}`);
  return m;
}

/** The error message a server-rendered page shows (its element of class "error"). */
export function errorText(html: string): string | undefined {
  return /<[^>]*class="error"[^>]*>([\s\S]*?)<\//.exec(html)?.[1];
}

/**
 * Resolves once `username`'s sign-in is locked (for some client address): parallel wrong guesses have been counted up
 * to the lock, so a right password sent now must be refused, however slowly the machine checks passwords.
 */
export async function signInLocked(server: TestServer, tenant: string, username: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await server.deps.db.withTenant(tenant, (q) =>
      q.query(
        `SELECT 1 FROM signin_counter c JOIN app_user u ON u.tenant_id = c.tenant_id AND u.id = c.user_id
          WHERE u.tenant_id = $1 AND u.username = $2 AND c.locked_until > now()`,
        [tenant, username],
      ),
    );
    if (r.rowCount) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${username} was never locked`);
}

export function hiddenValue(html: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, '&');
}

/** Checkbox values (scopes) offered on the consent page. */
export function offeredScopes(html: string): string[] {
  return [...html.matchAll(/type="checkbox" name="scope" value="([^"]+)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
}

export interface AuthorizeOptions {
  clientId: string;
  scope: string;
  aud: string;
  redirectUri?: string;
  state?: string;
  launch?: string;
  pkce?: { verifier: string; challenge: string } | false;
  challengeMethod?: string;
  extra?: Record<string, string>;
}

export function authorizeUrl(origin: string, o: AuthorizeOptions): string {
  const p = new URLSearchParams({ response_type: 'code', client_id: o.clientId, redirect_uri: o.redirectUri ?? REDIRECT, scope: o.scope, state: o.state ?? randomBytes(16).toString('base64url'), aud: o.aud });
  if (o.pkce !== false) {
    const k = o.pkce ?? pkce();
    p.set('code_challenge', k.challenge);
    p.set('code_challenge_method', o.challengeMethod ?? 'S256');
  }
  if (o.launch) p.set('launch', o.launch);
  for (const [k, v] of Object.entries(o.extra ?? {})) p.set(k, v);
  return `${origin}/auth/authorize?${p.toString()}`;
}

export interface LaunchOptions extends AuthorizeOptions {
  username: string;
  password?: string;
  /** Name to search for in the patient picker, and the id to pick. */
  pickPatient?: string;
  /** Scopes to untick on the consent page. */
  untick?: string[];
  deny?: boolean;
}

/** Runs authorize -> sign in -> (patient picker) -> consent; returns the redirect back to the app. */
export async function runAuthorization(browser: Browser, origin: string, o: LaunchOptions): Promise<{ redirect: URL; consentHtml?: string; pkce: { verifier: string; challenge: string } }> {
  const k = o.pkce || pkce();
  let step = await browser.follow(authorizeUrl(origin, { ...o, pkce: k }));
  if (step.html?.includes('name="password"')) {
    step = await browser.follow(formAction(step.html, '/login'), { form: { username: o.username, password: o.password ?? PASSWORD } });
  }
  if (step.html?.includes('Choose a patient')) {
    if (!o.pickPatient) throw new Error('the patient picker appeared but no patient was given');
    const picked = await browser.follow(`${origin}/auth/interaction/${interactionUid(step.html)}?patient=${encodeURIComponent(o.pickPatient)}`);
    step = picked;
  }
  let consentHtml: string | undefined;
  if (step.html?.includes('Allow access?')) {
    consentHtml = step.html;
    const scopes = offeredScopes(step.html).filter((s) => !(o.untick ?? []).includes(s));
    const patient = hiddenValue(step.html, 'patient');
    step = await browser.follow(formAction(step.html, '/consent'), { form: { scope: scopes, decision: o.deny ? 'deny' : 'allow', ...(patient ? { patient } : {}) } });
  }
  if (!step.leftTo) throw new Error(`the flow did not return to the app: ${step.res.status} ${step.html?.slice(0, 1500)}`);
  return { redirect: new URL(step.leftTo), consentHtml, pkce: k };
}

export function interactionUid(html: string): string {
  const m = /\/auth\/interaction\/([A-Za-z0-9_-]+)/.exec(html);
  if (!m) throw new Error('no interaction uid on the page');
  return m[1];
}

/** POST to the token endpoint (form encoded). */
export async function tokenRequest(origin: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, any>; headers: Headers }> {
  const res = await fetch(`${origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  const text = await res.text();
  let body: Record<string, any>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body, headers: res.headers };
}

/** A SMART Backend Services client assertion (RFC 7523), ES384 by default. */
export function clientAssertion(clientId: string, audience: string, key: KeyObject, o: { alg?: jwt.Algorithm; kid?: string; expiresIn?: number; jti?: string; sub?: string; header?: Record<string, unknown> } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { iss: clientId, sub: o.sub ?? clientId, aud: audience, exp: now + (o.expiresIn ?? 240), jti: o.jti ?? randomBytes(16).toString('base64url') },
    key,
    { algorithm: o.alg ?? 'ES384', header: { alg: o.alg ?? 'ES384', typ: 'JWT', kid: o.kid ?? 'test-es384', ...o.header } },
  );
}

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
