// The admin console in a real browser (issue 11): Chromium (Debian's, else the npm-shipped build;
// tests/helpers/chromium.ts) driven by playwright-core. A platform administrator signs in, walks the onboarding
// wizard and gets the invitation link; the invited administrator opens it in a browser of their own, sets a
// password, signs in to the console and sees the new tenant's usage. Plain forms all the way: the pages carry no script.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chooseChromium } from '../../helpers/chromium.js';
import { PASSWORD } from '../../helpers/oauth.js';
import { randomSlug, startServer, type TestServer } from '../../helpers/server.js';
import { newPlatformAdmin } from './console-helpers.js';

let server: TestServer;
let browser: Browser;
let root: string;

beforeAll(async () => {
  const choice = await chooseChromium(['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']);
  server = await startServer();
  root = await newPlatformAdmin(server);
  browser = await chromium.launch({ executablePath: choice.executablePath, args: choice.args, ...(choice.env ? { env: choice.env } : {}) }).catch((err: Error) => {
    throw new Error(`could not start ${choice.source} (${choice.executablePath}): ${err.message}`);
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
}, 60_000);

/** Runs `fn`; a failure says where the page was, what it showed and what the browser reported. */
async function explained<T>(page: Page, fn: () => Promise<T>): Promise<T> {
  const log: string[] = [];
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  try {
    return await fn();
  } catch (err) {
    const text = await page.textContent('body').catch(() => '');
    throw new Error(`${(err as Error).message}\nat ${page.url()}\npage: ${text?.slice(0, 1500)}\nbrowser:\n${log.join('\n')}`);
  }
}

async function heading(page: Page): Promise<string> {
  return ((await page.textContent('h1')) ?? '').trim();
}

/** Clicks a form's button and waits for the page the form leads to (after any redirect). */
async function submit(page: Page, button: string): Promise<void> {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: button, exact: true }).click()]);
}

describe('admin console in chromium', () => {
  it('onboards an organization, and its invited administrator signs in and sees its usage', async () => {
    const slug = randomSlug('browser-org');
    const admin = `${slug}-admin`;

    const platform = await browser.newContext();
    let link = '';
    try {
      const page = await platform.newPage();
      await explained(page, async () => {
        await page.goto(`${server.origin}/admin/login`);
        await page.fill('input[name="org"]', 'platform');
        await page.fill('input[name="username"]', root);
        await page.fill('input[name="password"]', PASSWORD);
        await submit(page, 'Sign in');
        expect(await heading(page)).toBe('Organizations');

        await page.click('text=Onboard a new organization');
        expect(await heading(page)).toBe('New organization: organization');
        await page.fill('input[name="slug"]', slug);
        await page.fill('input[name="name"]', 'Browser Clinic');
        await page.selectOption('select[name="type"]', 'solo-practice');
        await page.fill('input[name="primaryColor"]', '#2a7f62');
        await submit(page, 'Next');
        expect(await heading(page)).toBe('New organization: first administrator');
        await page.fill('input[name="username"]', admin);
        await page.fill('input[name="displayName"]', 'Bria Browser');
        await page.fill('input[name="email"]', 'bria@clinic.example');
        await submit(page, 'Next');
        expect(await heading(page)).toBe('New organization: plan');
        await page.check('input[name="plan"][value="trial"]');
        await submit(page, 'Create organization');
        expect(await heading(page)).toBe('Organization created');
        link = (await page.getAttribute('#invitation-link', 'href')) ?? '';
      });
    } finally {
      await platform.close();
    }
    expect(link).toMatch(new RegExp(`^${server.origin}/admin/invite/${slug}/[A-Za-z0-9_-]{43}$`));

    // the invited administrator, in a browser of their own
    const invited = await browser.newContext();
    try {
      const page = await invited.newPage();
      await explained(page, async () => {
        await page.goto(link);
        expect(await heading(page)).toBe('Set up your account');
        expect(await page.textContent('main')).toContain('Browser Clinic');
        await page.fill('input[name="password"]', PASSWORD);
        await page.fill('input[name="confirm"]', PASSWORD);
        await submit(page, 'Create my account');
        expect(await heading(page)).toBe('Your account is ready');

        await page.click('text=Sign in to the admin console');
        expect(await page.inputValue('input[name="org"]')).toBe(slug);
        await page.fill('input[name="username"]', admin);
        await page.fill('input[name="password"]', PASSWORD);
        await submit(page, 'Sign in');
        expect(await heading(page)).toBe('Browser Clinic');
        expect(new URL(page.url()).pathname).toBe(`/admin/tenants/${slug}`);
        const usage = (await page.textContent('table[aria-label="Usage"]')) ?? '';
        expect(usage).toContain('Resources');
        expect(usage).toContain('Requests today');
        expect(await page.textContent('main')).toContain('trial');
        expect(await page.textContent('main')).toContain(admin);

        // the link is spent
        await page.goto(link);
        expect(await page.textContent('main')).toContain('already been used');
      });
    } finally {
      await invited.close();
    }
  }, 90_000);
});
