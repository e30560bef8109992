// Invitation links (issue 11): /admin/invite/{tenant}/{token} sets up the invited account once; a used, expired,
// made-up or other tenant's link gets a clear page and creates nothing; a tenant that requires a second factor gets
// TOTP enrolled on that page, proven with a code, before the account exists.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createInvitation } from '../../../src/admin/invitations.js';
import { currentStep, totpCode } from '../../../src/auth/totp.js';
import { findUserByName } from '../../../src/store/auth-users.js';
import { updateTenantSettings } from '../../../src/store/tenants.js';
import { Browser, errorText, hiddenValue, PASSWORD } from '../../helpers/oauth.js';
import { newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { consoleSignIn, csrfOf, pathOf } from './console-helpers.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
const BY = { userSub: 'platform|test', role: 'platform-admin' };

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'inv');
  other = await newTenant(server, 'inv-other');
});
afterAll(() => server.close());

const invite = (tenant: string, username: string, role: 'tenant-admin' | 'practitioner' = 'tenant-admin') =>
  createInvitation(server.deps, tenant, { username, role, displayName: 'Dana Admin', email: 'dana@example.org' }, BY);

async function accept(path: string, password = PASSWORD, more: Record<string, string> = {}) {
  const b = new Browser(server.origin);
  const page = await b.follow(path);
  const totp = hiddenValue(page.html ?? '', 'totp');
  const res = await b.follow(path, { form: { password, confirm: password, ...(totp ? { totp } : {}), ...more } });
  return { page, res };
}

describe('invitation links', () => {
  it('set up the account once: a password of the policy, then sign-in works and the link is spent', async () => {
    const inv = await invite(t.slug, 'dana-admin');
    expect(inv.url).toMatch(new RegExp(`^${server.origin}/admin/invite/${t.slug}/[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(inv.expiresAt) - Date.now()).toBeGreaterThan(71 * 3_600_000);
    const path = pathOf(inv.url);

    const page = await new Browser(server.origin).follow(path);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('dana-admin');
    expect(page.res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.res.headers.get('cache-control')).toBe('no-store');

    // a refused password leaves the link usable
    const weak = await accept(path, 'short');
    expect(weak.res.res.status).toBe(400);
    expect(errorText(weak.res.html!)).toContain('at least 12 characters');
    const mismatch = await accept(path, PASSWORD, { confirm: `${PASSWORD}!` });
    expect(mismatch.res.res.status).toBe(400);
    expect(errorText(mismatch.res.html!)).toContain('not the same');
    expect(await findUserByName(server.deps.db, t.slug, 'dana-admin')).toBeUndefined();

    const done = await accept(path);
    expect(done.res.res.status).toBe(201);
    expect(done.res.html).toContain('Your account is ready');
    const user = await findUserByName(server.deps.db, t.slug, 'dana-admin');
    expect(user).toMatchObject({ role: 'tenant-admin', displayName: 'Dana Admin', totpSecret: null });

    // reused: a clear page, nothing changes (the second password does not sign in)
    const again = await new Browser(server.origin).follow(path);
    expect(again.res.status).toBe(410);
    expect(errorText(again.html!)).toContain('already been used');
    const reuse = await accept(path, 'another long password 123');
    expect(reuse.page.res.status).toBe(410);
    const direct = await new Browser(server.origin).follow(path, { form: { password: 'another long password 123', confirm: 'another long password 123' } });
    expect(direct.res.status).toBe(410);
    expect((await consoleSignIn(server, t.slug, 'dana-admin', 'another long password 123')).page.res.status).toBe(401);
    const signedIn = await consoleSignIn(server, t.slug, 'dana-admin');
    expect(signedIn.page.res.status).toBe(200);
    expect(signedIn.b.visited.at(-1)).toBe(`${server.origin}/admin/tenants/${t.slug}`);
  });

  it('stores only a hash of the token, and audits the invitation and its acceptance', async () => {
    const inv = await invite(t.slug, 'hash-check', 'practitioner');
    const token = inv.url.split('/').pop()!;
    const rows = await server.deps.db.withTenant(t.slug, (q) => q.query<Record<string, unknown>>("SELECT * FROM tenant_invitation WHERE tenant_id = $1 AND username = 'hash-check'", [t.slug]));
    expect(rows.rows).toHaveLength(1);
    expect(JSON.stringify(rows.rows[0])).not.toContain(token);
    expect((await accept(pathOf(inv.url))).res.res.status).toBe(201);
    const audit = await server.deps.db.withTenant(t.slug, (q) => q.query<{ subtype: string }>("SELECT subtype FROM audit_event WHERE tenant_id = $1 AND subtype LIKE 'invitation-%'", [t.slug]));
    expect(audit.rows.map((r) => r.subtype)).toEqual(expect.arrayContaining(['invitation-create', 'invitation-accept']));
  });

  it('works once under parallel submissions', async () => {
    const inv = await invite(t.slug, 'racer');
    const path = pathOf(inv.url);
    const form = { password: PASSWORD, confirm: PASSWORD };
    const results = await Promise.all([1, 2, 3].map(() => new Browser(server.origin).follow(path, { form })));
    expect(results.map((r) => r.res.status).sort()).toEqual([201, 410, 410]);
  });

  it('refuses an expired link with a clear page and creates nothing', async () => {
    const inv = await invite(t.slug, 'late-comer');
    const clock = server.deps.clock;
    server.deps.clock = () => new Date(Date.now() + 73 * 3_600_000);
    try {
      const page = await new Browser(server.origin).follow(pathOf(inv.url));
      expect(page.res.status).toBe(410);
      expect(errorText(page.html!)).toContain('expired');
      const post = await new Browser(server.origin).follow(pathOf(inv.url), { form: { password: PASSWORD, confirm: PASSWORD } });
      expect(post.res.status).toBe(410);
    } finally {
      server.deps.clock = clock;
    }
    expect(await findUserByName(server.deps.db, t.slug, 'late-comer')).toBeUndefined();
  });

  it("cannot be used under another tenant's path, nor with a made-up token", async () => {
    const inv = await invite(t.slug, 'wanderer');
    const token = inv.url.split('/').pop()!;
    for (const path of [`/admin/invite/${other.slug}/${token}`, `/admin/invite/${t.slug}/${'A'.repeat(43)}`, `/admin/invite/${t.slug}/short`]) {
      const page = await new Browser(server.origin).follow(path);
      expect(page.res.status).toBe(400);
      expect(errorText(page.html!)).toContain('not valid');
      const post = await new Browser(server.origin).follow(path, { form: { password: PASSWORD, confirm: PASSWORD } });
      expect(post.res.status).toBe(400);
    }
    expect(await findUserByName(server.deps.db, other.slug, 'wanderer')).toBeUndefined();
    expect(await findUserByName(server.deps.db, t.slug, 'wanderer')).toBeUndefined();
    // the link still works where it belongs
    expect((await accept(pathOf(inv.url))).res.res.status).toBe(201);
    expect(await findUserByName(server.deps.db, t.slug, 'wanderer')).toBeDefined();
  });

  it('refuses a submission from another site', async () => {
    const inv = await invite(t.slug, 'cross-site');
    const res = await fetch(`${server.origin}${pathOf(inv.url)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: new URLSearchParams({ password: PASSWORD, confirm: PASSWORD }).toString(),
    });
    expect(res.status).toBe(403);
    expect(await findUserByName(server.deps.db, t.slug, 'cross-site')).toBeUndefined();
  });
});

describe('invitations to a tenant that requires a second factor', () => {
  let mfa: TestTenant;
  beforeAll(async () => {
    mfa = await newTenant(server, 'inv-mfa');
    await updateTenantSettings(server.deps.db, mfa.slug, { mfaRequired: true });
    server.app.tenants.invalidate(mfa.slug);
  });

  it('enrols TOTP on the page: no account until a code from the key shown is entered', async () => {
    const inv = await invite(mfa.slug, 'mfa-admin');
    const path = pathOf(inv.url);
    const b = new Browser(server.origin);
    const page = await b.follow(path);
    expect(page.res.status).toBe(200);
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.html!)?.[1];
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(page.html).toContain('otpauth://totp/');
    const totp = hiddenValue(page.html!, 'totp')!;

    const noCode = await b.follow(path, { form: { password: PASSWORD, confirm: PASSWORD, totp, code: '' } });
    expect(noCode.res.status).toBe(400);
    const wrong = await b.follow(path, { form: { password: PASSWORD, confirm: PASSWORD, totp, code: '000000' === totpCode(secret!, currentStep()) ? '111111' : '000000' } });
    expect(wrong.res.status).toBe(400);
    expect(errorText(wrong.html!)).toContain('authentication code is not correct');
    expect(wrong.html).toContain(secret); // the same key stays on the page
    // a key the page did not show (forged hidden field) is not accepted either
    const forged = await b.follow(path, { form: { password: PASSWORD, confirm: PASSWORD, totp: 'KRUGS4ZANFZSAYJAMZXXEZ3FMQ.abc', code: totpCode(secret!, currentStep()) } });
    expect(forged.res.status).toBe(400);
    expect(await findUserByName(server.deps.db, mfa.slug, 'mfa-admin')).toBeUndefined();

    const code = totpCode(secret!, currentStep());
    const done = await b.follow(path, { form: { password: PASSWORD, confirm: PASSWORD, totp, code } });
    expect(done.res.status).toBe(201);
    const user = await findUserByName(server.deps.db, mfa.slug, 'mfa-admin');
    expect(user?.totpSecret).toBe(secret);

    // signing in to the console now asks for the code (and the one used on the page is spent)
    const { b: c, page: step } = await consoleSignIn(server, mfa.slug, 'mfa-admin');
    expect(step.res.status).toBe(200);
    expect(step.html).toContain('Authentication code');
    const form = { csrf: csrfOf(step), org: mfa.slug, ticket: hiddenValue(step.html!, 'ticket')! };
    const replay = await c.follow('/admin/login/totp', { form: { ...form, code } });
    expect(replay.res.status).toBe(401);
    // the next code signs in
    const clock = server.deps.clock;
    const later = Date.now() + 30_000;
    server.deps.clock = () => new Date(later);
    try {
      const signedIn = await c.follow('/admin/login/totp', { form: { ...form, code: totpCode(secret!, currentStep(later)) } });
      expect(signedIn.res.status).toBe(200);
      expect(c.visited.at(-1)).toBe(`${server.origin}/admin/tenants/${mfa.slug}`);
    } finally {
      server.deps.clock = clock;
    }
  });
});
