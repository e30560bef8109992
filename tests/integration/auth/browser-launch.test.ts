// SMART App Launch in a real browser: Chromium (Debian's, else the npm-shipped build; tests/helpers/chromium.ts)
// driven by playwright-core runs a small app built on the official SMART JavaScript client (fhirclient, browser
// bundle). The app is served from another origin than the FHIR server, so discovery, the token endpoint and the FHIR
// API are all reached cross-origin (CORS), and the user signs in, picks a patient and consents on the server's own
// pages. Assertions are on what the app page shows.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chooseChromium } from '../../helpers/chromium.js';
import { newApp, newUser, PASSWORD } from '../../helpers/oauth.js';
import { create, newTenant, startServer, tokenFor, type TestServer, type TestTenant } from '../../helpers/server.js';

const FHIR_CLIENT_JS = new URL('../../../node_modules/fhirclient/build/fhir-client.js', import.meta.url);
const STANDALONE_SCOPE = 'launch/patient patient/Patient.rs patient/Observation.rs openid fhirUser';
const EHR_SCOPE = 'launch patient/Patient.rs patient/Observation.rs openid fhirUser';

let server: TestServer;
let t: TestTenant;
let appServer: Server;
let appOrigin: string;
let client: { clientId: string };
let browser: Browser;
let patient: Record<string, any>;
let other: Record<string, any>;
let practitioner: Record<string, any>;
let encounter: Record<string, any>;

interface AppResult {
  error?: string;
  patientId?: string;
  encounterId?: string | null;
  patientName?: string;
  fhirUser?: string | null;
  observationsForPatient?: number;
  observationsAll?: number;
  observationSubjects?: string[];
  refused?: { status?: number; body?: string };
}

/** launch.html: standalone launch (iss given by the app) or, when the URL carries iss & launch, an EHR launch. */
function launchPage(cfg: { clientId: string; iss: string; redirectUri: string }): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Test app: launch</title>
<script src="/fhir-client.js"></script></head><body><p id="status">Launching...</p><script>
const cfg = ${JSON.stringify(cfg)};
const ehr = new URLSearchParams(location.search).has('launch');
FHIR.oauth2.authorize(ehr
  ? { clientId: cfg.clientId, scope: ${JSON.stringify(EHR_SCOPE)}, redirectUri: cfg.redirectUri }
  : { clientId: cfg.clientId, scope: ${JSON.stringify(STANDALONE_SCOPE)}, iss: cfg.iss, redirectUri: cfg.redirectUri }
).catch((e) => { document.getElementById('status').textContent = 'authorize failed: ' + e.message; });
</script></body></html>`;
}

/** index.html: completes the authorization, reads the patient and its data, tries a type the scopes do not cover. */
const INDEX_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Test app</title>
<script src="/fhir-client.js"></script></head><body><h1>Test app</h1><pre id="result"></pre><script>
const show = (r) => { const el = document.getElementById('result'); el.textContent = JSON.stringify(r); el.dataset.done = '1'; };
FHIR.oauth2.ready().then(async (client) => {
  const r = { patientId: client.patient.id, encounterId: client.encounter.id, fhirUser: client.getFhirUser() };
  const p = await client.patient.read();
  const n = (p.name || [])[0] || {};
  r.patientName = [...(n.given || []), n.family].filter(Boolean).join(' ');
  const mine = await client.request('Observation?patient=' + encodeURIComponent(client.patient.id), { pageLimit: 0, flat: true });
  r.observationsForPatient = mine.length;
  const all = await client.request('Observation', { pageLimit: 0, flat: true });
  r.observationsAll = all.length;
  r.observationSubjects = [...new Set(all.map((o) => o.subject && o.subject.reference))];
  try {
    await client.request('MedicationRequest?patient=' + encodeURIComponent(client.patient.id));
    r.refused = { status: 200 };
  } catch (e) {
    r.refused = { status: e.status || e.statusCode, body: String(e.message).slice(0, 300) };
  }
  show(r);
}).catch((e) => show({ error: String(e && e.stack || e) }));
</script></body></html>`;

async function startAppServer(): Promise<void> {
  const js = readFileSync(FHIR_CLIENT_JS);
  appServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    const send = (type: string, body: string | Buffer) => {
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (url.pathname === '/fhir-client.js') return send('text/javascript; charset=utf-8', js);
    if (url.pathname === '/launch.html') return send('text/html; charset=utf-8', launchPage({ clientId: client.clientId, iss: t.base, redirectUri: `${appOrigin}/index.html` }));
    if (url.pathname === '/index.html') return send('text/html; charset=utf-8', INDEX_PAGE);
    if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  appOrigin = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const chromiumChoice = await chooseChromium(['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']);
  server = await startServer();
  await startAppServer();
  t = await newTenant(server, 'browser');
  client = await newApp(server, t.slug, { name: 'Browser Test App', redirectUris: [`${appOrigin}/index.html`] });
  practitioner = await create(t, { resourceType: 'Practitioner', name: [{ family: 'Quincy', given: ['Quinn'] }] });
  patient = await create(t, { resourceType: 'Patient', name: [{ family: 'Browserly', given: ['Bea'] }], birthDate: '1981-02-03' });
  other = await create(t, { resourceType: 'Patient', name: [{ family: 'Hiddenfield', given: ['Hal'] }] });
  for (const text of ['heart rate', 'body weight', 'body height']) {
    await create(t, { resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: `Patient/${patient.id}` } });
  }
  for (const text of ['heart rate', 'blood pressure']) {
    await create(t, { resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: `Patient/${other.id}` } });
  }
  await create(t, { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationCodeableConcept: { text: 'aspirin' }, subject: { reference: `Patient/${patient.id}` } });
  encounter = await create(t, { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${patient.id}` } });
  await newUser(server, t.slug, 'dr-quincy', 'practitioner', `Practitioner/${practitioner.id}`, 'Dr Quinn Quincy');
  const { executablePath, args, env } = chromiumChoice;
  browser = await chromium.launch({ executablePath, args, ...(env ? { env } : {}) }).catch((err: Error) => {
    throw new Error(`could not start ${chromiumChoice.source} (${chromiumChoice.executablePath}): ${err.message}`);
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (appServer) {
    appServer.closeAllConnections();
    await new Promise<void>((resolve) => appServer.close(() => resolve()));
  }
  await server?.close();
}, 60_000);

/** Signs in on the server's login page; returns the heading of the page that follows. */
async function signIn(page: Page): Promise<string> {
  await page.waitForSelector('input[name="password"]');
  const loginUrl = page.url();
  await page.fill('input[name="username"]', 'dr-quincy');
  await page.fill('input[name="password"]', PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.href !== loginUrl);
  return ((await page.textContent('h1')) ?? '').trim();
}

/** Clicks Allow on the consent page; returns the page's text (what the user was shown). */
async function allow(page: Page): Promise<string> {
  await page.waitForSelector('h1:has-text("Allow access?")');
  const text = (await page.textContent('main')) ?? '';
  await page.getByRole('button', { name: 'Allow', exact: true }).click();
  return text;
}

/** Waits for the app page's result; fails with what the page shows if the app reported an error. */
async function appResult(page: Page): Promise<AppResult> {
  await page.waitForURL(`${appOrigin}/index.html**`);
  await page.waitForSelector('#result[data-done="1"]', { state: 'attached', timeout: 20_000 });
  const r = JSON.parse((await page.textContent('#result')) ?? '{}') as AppResult;
  if (r.error) throw new Error(`the app failed: ${r.error}`);
  return r;
}

/** Collects what the browser reports (console errors, failed requests) to explain a failure. */
function watch(page: Page): string[] {
  const log: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  return log;
}

async function withDiagnostics<T>(log: string[], page: Page, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const text = await page.textContent('body').catch(() => '');
    throw new Error(`${(err as Error).message}\nat ${page.url()}\npage: ${text?.slice(0, 1500)}\nbrowser:\n${log.join('\n')}`);
  }
}

describe('fhirclient in chromium', () => {
  it('standalone launch: sign in, pick the patient, consent; the app reads only that patient and is refused other types', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const log = watch(page);
      let next = '';
      let consent = '';
      const r = await withDiagnostics(log, page, async () => {
        await page.goto(`${appOrigin}/launch.html`);
        next = await signIn(page);
        // the patient picker: search by name, choose the patient
        await page.waitForSelector('input[name="q"]');
        await page.fill('input[name="q"]', 'Browserly');
        await page.getByRole('button', { name: 'Search', exact: true }).click();
        await page.click('ul.patients a:has-text("Bea Browserly")');
        consent = await allow(page);
        return appResult(page);
      });
      expect(next).toBe('Choose a patient');
      expect(consent).toContain('Patient: Bea Browserly, born 1981-02-03');
      expect(consent).toContain('Dr Quinn Quincy');
      expect(r.patientId).toBe(patient.id);
      expect(r.patientName).toBe('Bea Browserly');
      expect(r.fhirUser).toBe(`Practitioner/${practitioner.id}`);
      expect(r.observationsForPatient).toBe(3);
      // the other patient's two Observations never show, even on an unfiltered search
      expect(r.observationsAll).toBe(3);
      expect(r.observationSubjects).toEqual([`Patient/${patient.id}`]);
      expect(r.refused?.status).toBe(403);
      expect(r.encounterId).toBeNull();
    } finally {
      await context.close();
    }
  }, 60_000);

  it('EHR launch: the app opened with iss & launch gets the launch patient and encounter without a picker', async () => {
    const staffToken = await tokenFor(server, t, { clientId: client.clientId, username: 'dr-quincy', scope: 'user/Patient.rs user/Encounter.rs' });
    const res = await fetch(`${server.origin}/auth/launch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patient: patient.id, encounter: encounter.id, client_id: client.clientId }),
    });
    const launch = (await res.json()) as { launch: string; iss: string };
    expect(res.status).toBe(201);
    expect(launch.iss).toBe(t.base);

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const log = watch(page);
      let next = '';
      let consent = '';
      const r = await withDiagnostics(log, page, async () => {
        await page.goto(`${appOrigin}/launch.html?${new URLSearchParams({ iss: launch.iss, launch: launch.launch })}`);
        next = await signIn(page);
        consent = await allow(page);
        return appResult(page);
      });
      // no patient picker: sign-in leads straight to consent, for the launch's patient, which cannot be changed
      expect(next).toBe('Allow access?');
      expect(consent).toContain('Patient: Bea Browserly, born 1981-02-03');
      expect(consent).not.toContain('choose another');
      expect(r.patientId).toBe(patient.id);
      expect(r.encounterId).toBe(encounter.id);
      expect(r.patientName).toBe('Bea Browserly');
      expect(r.fhirUser).toBe(`Practitioner/${practitioner.id}`);
      expect(r.observationsForPatient).toBe(3);
      expect(r.observationsAll).toBe(3);
      expect(r.refused?.status).toBe(403);
    } finally {
      await context.close();
    }
  }, 60_000);
});
