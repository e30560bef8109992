// What the admin console and invitation tests share: signing in to /admin through its forms, as a browser would
// (cookie jar: tests/helpers/oauth.ts Browser), and accepting an invitation link.
import { createUser } from '../../../src/auth/admin.js';
import { Browser, hiddenValue, PASSWORD } from '../../helpers/oauth.js';
import { randomSlug, type TestServer } from '../../helpers/server.js';

export type Page = Awaited<ReturnType<Browser['follow']>>;

/** Signs in on /admin/login (organization, username, password); returns the browser and the page it ends on. */
export async function consoleSignIn(server: TestServer, org: string, username: string, password = PASSWORD): Promise<{ b: Browser; page: Page }> {
  const b = new Browser(server.origin);
  const login = await b.follow('/admin/login');
  const page = await b.follow('/admin/login', { form: { csrf: hiddenValue(login.html!, 'csrf')!, org, username, password } });
  return { b, page };
}

/** A new platform administrator (users of the reserved 'platform' scope). */
export async function newPlatformAdmin(server: TestServer): Promise<string> {
  const username = randomSlug('root');
  await createUser(server.deps, { tenant: 'platform', username, password: PASSWORD, role: 'platform-admin' });
  return username;
}

/** The path of an invitation URL (the server's origin is the test server's). */
export function pathOf(url: string): string {
  return new URL(url).pathname;
}

/** The page's form token. */
export function csrfOf(page: Page): string {
  const v = hiddenValue(page.html ?? '', 'csrf');
  if (!v) throw new Error(`no form token on the page: ${page.res.status} ${page.html?.slice(0, 1500)}`);
  return v;
}
