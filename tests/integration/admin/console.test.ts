// The admin console over HTTP form posts (issue 11): sign-in for platform and tenant administrators only, the
// organization list and page, suspend / reactivate / plan change, the onboarding wizard, invitations; every form
// refused without its session's token or from another origin; every tenant-supplied string escaped; a tenant
// administrator sees nothing of another tenant.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTenant } from '../../../src/tenancy/create-tenant.js';
import { findTenant, updateTenantSettings } from '../../../src/store/tenants.js';
import { findUserByName } from '../../../src/store/auth-users.js';
import { Browser, errorText, formAction, hiddenValue, newUser, PASSWORD } from '../../helpers/oauth.js';
import { authed, FHIR_JSON, newBackendClient, newTenant, randomSlug, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';
import { consoleSignIn, csrfOf, newPlatformAdmin, pathOf, type Page } from './console-helpers.js';

const XSS = '<script>alert(1)</script>';

let server: TestServer;
let root: string;
let t: TestTenant;
let other: TestTenant;
let hostile: string;

beforeAll(async () => {
  server = await startServer();
  root = await newPlatformAdmin(server);
  t = await newTenant(server, 'con');
  other = await newTenant(server, 'con-other');
  await newUser(server, t.slug, 'con-admin', 'tenant-admin', undefined, `Ada ${XSS}`);
  await newUser(server, t.slug, 'con-doc', 'practitioner');
  await newUser(server, other.slug, 'other-admin', 'tenant-admin');
  hostile = randomSlug('con-xss');
  await createTenant(server.deps, hostile, XSS, { branding: { primaryColor: '#123456', logoUrl: `https://x.example/"><script>alert(2)</script>` } });
});
afterAll(() => server.close());

const post = (b: Browser, path: string, form: Record<string, string>) => b.follow(path, { form });

function expectEscaped(html: string): void {
  expect(html).not.toContain('<script');
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
}

describe('admin console sign-in', () => {
  it('serves a sign-in page without script, never cached or framed, under a strict CSP; /admin needs a session', async () => {
    const res = await fetch(`${server.origin}/admin/login`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.getSetCookie().join('\n')).toMatch(/^tenfhir_admin_login=[\w-]+; Path=\/admin; HttpOnly; SameSite=Strict$/m);
    expect(await res.text()).not.toContain('<script');
    const admin = await fetch(`${server.origin}/admin`, { redirect: 'manual' });
    expect(admin.status).toBe(303);
    expect(admin.headers.get('location')).toBe('/admin/login');
  });

  it('gives a platform administrator an HttpOnly, SameSite=Strict session cookie scoped to /admin', async () => {
    const b = new Browser(server.origin);
    const login = await b.follow('/admin/login');
    const res = await b.request('/admin/login', { form: { csrf: csrfOf(login), org: 'platform', username: root, password: PASSWORD } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin');
    expect(res.headers.getSetCookie().join('\n')).toMatch(/^tenfhir_admin=[\w.%-]+; Path=\/admin; HttpOnly; SameSite=Strict$/m);
  });

  it('refuses a sign-in form without its token, wrong passwords, and accounts that are not administrators', async () => {
    const b = new Browser(server.origin);
    await b.follow('/admin/login');
    const forged = await post(b, '/admin/login', { org: 'platform', username: root, password: PASSWORD });
    expect(forged.res.status).toBe(403);
    expect((await consoleSignIn(server, 'platform', root, 'not the password at all')).page.res.status).toBe(401);
    const doc = await consoleSignIn(server, t.slug, 'con-doc');
    expect(doc.page.res.status).toBe(403);
    expect(errorText(doc.page.html!)).toContain('may not use the admin console');
    // another tenant's admin is not a user of this organization
    expect((await consoleSignIn(server, t.slug, 'other-admin')).page.res.status).toBe(401);
    expect((await consoleSignIn(server, 'no-such-org-here', 'con-admin')).page.res.status).toBe(401);
  });
});

describe('organizations', () => {
  it('lists every organization with status, plan and usage, tenant-supplied strings escaped', async () => {
    const { page } = await consoleSignIn(server, 'platform', root);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('<h1>Organizations</h1>');
    expect(page.html).toContain(`/admin/tenants/${t.slug}`);
    expect(page.html).toContain(`/admin/tenants/${hostile}`);
    expect(page.html).toMatch(/Requests today/);
    expectEscaped(page.html!);
  });

  it("shows a tenant's page with its details, usage, users and apps, escaped", async () => {
    const { b } = await consoleSignIn(server, 'platform', root);
    const page = await b.follow(`/admin/tenants/${hostile}`);
    expect(page.res.status).toBe(200);
    expectEscaped(page.html!);
    expect(page.html).toContain('&quot;&gt;&lt;script&gt;alert(2)');
    const mine = await b.follow(`/admin/tenants/${t.slug}`);
    expect(mine.html).toContain('<h2>Usage</h2>');
    expect(mine.html).toContain('con-admin');
    expect(mine.html).toContain('Ada &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mine.html).toContain(t.clientId);
    expect(mine.html).toContain('backend service');
  });

  it('suspends and reactivates only with the form token of the session, from this origin', async () => {
    const { b, page } = await consoleSignIn(server, 'platform', root);
    const csrf = csrfOf(page);
    const path = `/admin/tenants/${t.slug}/suspend`;
    expect((await post(b, path, { reason: 'unpaid' })).res.status).toBe(403);
    expect((await post(b, path, { reason: 'unpaid', csrf: 'x'.repeat(csrf.length) })).res.status).toBe(403);
    // another session's token (the tenant admin's) is not this session's
    const tenantAdmin = await consoleSignIn(server, t.slug, 'con-admin');
    expect((await post(b, path, { reason: 'unpaid', csrf: csrfOf(tenantAdmin.page) })).res.status).toBe(403);
    const cross = await b.request(path, { form: { reason: 'unpaid', csrf }, headers: { origin: 'https://evil.example' } });
    expect(cross.status).toBe(403);
    expect((await findTenant(server.deps.db, t.slug))?.status).toBe('active');

    const done = await post(b, path, { reason: 'unpaid', csrf });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('The organization is suspended');
    expect((await findTenant(server.deps.db, t.slug))?.status).toBe('suspended');
    const api = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient' }));
    expect(api.status).toBe(403);

    const back = await post(b, formAction(done.html!, '/reactivate'), { csrf });
    expect(back.res.status).toBe(200);
    expect(back.html).toContain('active again');
    expect((await findTenant(server.deps.db, t.slug))?.status).toBe('active');
  });

  it('changes the plan, and reports quotas the tenant already exceeds without removing anything', async () => {
    const slug = randomSlug('con-plan');
    await createTenant(server.deps, slug, 'Plan Lab', { type: 'lab', plan: 'multi-branch' });
    const api = authed(server.origin, await tokenFor(server, { slug, clientId: await newBackendClient(server, slug) }));
    for (const name of ['North', 'South']) {
      const res = await api.post(`/fhir/${slug}/Location`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Location', name }));
      expect(res.status).toBe(201);
    }
    const { b, page } = await consoleSignIn(server, 'platform', root);
    const before = await b.follow(`/admin/tenants/${slug}`);
    expect(before.html).toContain('<option value="solo-practice">');
    expect(before.html).not.toContain('<option value="hospital-group">'); // not made for labs
    const changed = await post(b, `/admin/tenants/${slug}/plan`, { plan: 'solo-practice', csrf: csrfOf(page) });
    expect(changed.res.status).toBe(200);
    expect(changed.html).toContain('already uses more than the new plan allows');
    expect(changed.html).toMatch(/locations: 2 in use, the plan allows 1/);
    expect((await findTenant(server.deps.db, slug))?.plan).toBe('solo-practice');
    expect((await api.get(`/fhir/${slug}/Location`)).body.entry).toHaveLength(2);
    const unknown = await post(b, `/admin/tenants/${slug}/plan`, { plan: 'gold', csrf: csrfOf(page) });
    expect(unknown.res.status).toBe(400);
    expect(errorText(unknown.html!)).toContain('Unknown plan &#39;gold&#39;');
  });
});

describe('a tenant administrator', () => {
  it('sees their own organization, and nothing of another', async () => {
    const { b, page } = await consoleSignIn(server, t.slug, 'con-admin');
    expect(page.res.status).toBe(200);
    expect(b.visited.at(-1)).toBe(`${server.origin}/admin/tenants/${t.slug}`);
    expect(page.html).toContain('con-doc');
    expect(page.html).not.toContain('<h2>Administration</h2>');
    expect((await b.request('/admin')).headers.get('location')).toBe(`/admin/tenants/${t.slug}`);
    const theirs = await b.follow(`/admin/tenants/${other.slug}`);
    expect(theirs.res.status).toBe(404);
    expect(theirs.html).not.toContain(`Test ${other.slug}`);
    expect(theirs.html).not.toContain('other-admin');
    expect((await b.follow('/admin/new')).res.status).toBe(403);
    const csrf = csrfOf(page);
    expect((await post(b, `/admin/tenants/${other.slug}/suspend`, { csrf })).res.status).toBe(404);
    expect((await post(b, `/admin/tenants/${other.slug}/invite`, { csrf, username: 'intruder', role: 'tenant-admin' })).res.status).toBe(404);
    const own = await post(b, `/admin/tenants/${t.slug}/suspend`, { csrf });
    expect(own.res.status).toBe(403);
    expect(errorText(own.html!)).toContain('Only platform administrators');
    expect((await findTenant(server.deps.db, t.slug))?.status).toBe('active');
  });

  it('invites a user whose link sets up the account', async () => {
    const { b, page } = await consoleSignIn(server, t.slug, 'con-admin');
    const bad = await post(b, `/admin/tenants/${t.slug}/invite`, { csrf: csrfOf(page), username: 'x', role: 'practitioner' });
    expect(bad.res.status).toBe(400);
    const made = await post(b, `/admin/tenants/${t.slug}/invite`, { csrf: csrfOf(page), username: 'new-nurse', role: 'practitioner', displayName: 'Nia Nurse' });
    expect(made.res.status).toBe(201);
    const link = /id="invitation-link" href="([^"]+)"/.exec(made.html!)![1].replace(/&amp;/g, '&');
    const b2 = new Browser(server.origin);
    expect((await b2.follow(pathOf(link), { form: { password: PASSWORD, confirm: PASSWORD } })).res.status).toBe(201);
    expect(await findUserByName(server.deps.db, t.slug, 'new-nurse')).toMatchObject({ role: 'practitioner', displayName: 'Nia Nurse' });
  });

  it("is held to the tenant's IP allow-list, at sign-in and for a session already open", async () => {
    const fenced = await newTenant(server, 'con-ip');
    await newUser(server, fenced.slug, 'fenced-admin', 'tenant-admin');
    const { b } = await consoleSignIn(server, fenced.slug, 'fenced-admin');
    expect((await b.request(`/admin/tenants/${fenced.slug}`)).status).toBe(200);
    await updateTenantSettings(server.deps.db, fenced.slug, { ipAllowList: ['10.0.0.0/8'] });
    expect((await b.request(`/admin/tenants/${fenced.slug}`)).status).toBe(303); // back to the sign-in page
    const again = await consoleSignIn(server, fenced.slug, 'fenced-admin');
    expect(again.page.res.status).toBe(403);
    expect(errorText(again.page.html!)).toContain('network address');
    // platform administrators sign in to 'platform', outside any tenant's network policy
    expect((await consoleSignIn(server, 'platform', root)).page.res.status).toBe(200);
  });

  it('signs out with the form token only', async () => {
    const { b, page } = await consoleSignIn(server, t.slug, 'con-admin');
    expect((await post(b, '/admin/logout', { csrf: 'nope' })).res.status).toBe(403);
    expect((await b.request(`/admin/tenants/${t.slug}`)).status).toBe(200);
    const out = await post(b, '/admin/logout', { csrf: csrfOf(page) });
    expect(b.visited.at(-1)).toBe(`${server.origin}/admin/login`);
    expect(out.res.status).toBe(200);
    expect((await b.request(`/admin/tenants/${t.slug}`)).status).toBe(303);
  });
});

describe('the onboarding wizard', () => {
  async function step(b: Browser, from: Page, form: Record<string, string>): Promise<Page> {
    return post(b, '/admin/new', { csrf: csrfOf(from), step: hiddenValue(from.html!, 'step')!, draft: hiddenValue(from.html!, 'draft')!, ...form });
  }

  it('walks organization, first administrator and plan, then shows the invitation link', async () => {
    const { b } = await consoleSignIn(server, 'platform', root);
    const one = await b.follow('/admin/new');
    expect(one.res.status).toBe(200);
    for (const slug of ['Bad Slug', 'admin', 'a/b', t.slug]) {
      const bad = await step(b, one, { slug, name: 'Lakeside', type: 'solo-practice' });
      expect(bad.res.status).toBe(400);
      expect(bad.html).toMatch(/short name/i);
    }
    const badColour = await step(b, one, { slug: 'ok-slug', name: 'Lakeside', type: 'solo-practice', primaryColor: 'red;}' });
    expect(badColour.res.status).toBe(400);
    expect(badColour.html).toContain('#rrggbb');

    const slug = randomSlug('lake');
    const two = await step(b, one, { slug, name: `Lakeside ${XSS}`, type: 'multi-branch', primaryColor: '#1f6fc5', logoUrl: 'https://lakeside.example/logo.png' });
    expect(two.res.status).toBe(200);
    expect(two.html).toContain('First administrator');
    expectEscaped(two.html!);
    // a draft changed in the browser is refused
    const tampered = await post(b, '/admin/new', { csrf: csrfOf(two), step: '2', draft: `${hiddenValue(two.html!, 'draft')!.slice(0, -2)}xx`, username: 'lake-admin' });
    expect(tampered.res.status).toBe(400);
    // back keeps what was typed
    const back = await step(b, two, { back: '1', username: 'lake-admin' });
    expect(back.html).toContain(`value="${slug}"`);
    const twoAgain = await step(b, back, { slug, name: `Lakeside ${XSS}`, type: 'multi-branch', primaryColor: '#1f6fc5', logoUrl: 'https://lakeside.example/logo.png' });
    expect(twoAgain.html).toContain('value="lake-admin"');

    const three = await step(b, twoAgain, { username: 'lake-admin', displayName: 'Lee Lake', email: 'lee@lakeside.example' });
    expect(three.res.status).toBe(200);
    expect(three.html).toContain('value="multi-branch"');
    expect(three.html).toContain('value="trial"');
    expect(three.html).not.toContain('value="solo-practice"'); // not sold to multi-branch clinics
    const noPlan = await step(b, three, {});
    expect(noPlan.res.status).toBe(400);

    const created = await step(b, three, { plan: 'multi-branch' });
    expect(created.res.status).toBe(201);
    expect(created.html).toContain('Organization created');
    const link = /id="invitation-link" href="([^"]+)"/.exec(created.html!)![1].replace(/&amp;/g, '&');
    expect(link).toMatch(new RegExp(`/admin/invite/${slug}/[A-Za-z0-9_-]{43}$`));
    expect(await findTenant(server.deps.db, slug)).toMatchObject({ name: `Lakeside ${XSS}`, type: 'multi-branch', plan: 'multi-branch', status: 'active' });

    // the same draft again: the short name is taken now
    const twice = await step(b, three, { plan: 'multi-branch' });
    expect(twice.res.status).toBe(400);
    expect(twice.html).toContain('is taken');
  });

  it('is for platform administrators only', async () => {
    const { b, page } = await consoleSignIn(server, t.slug, 'con-admin');
    const res = await post(b, '/admin/new', { csrf: csrfOf(page), step: '1', draft: '', slug: randomSlug('nope'), name: 'Nope', type: 'lab' });
    expect(res.res.status).toBe(403);
  });
});
