// The admin console's page frame (issue 11): plain HTML that works without JavaScript, no external asset, every
// value escaped with esc() (tenant names, usernames, branding are all tenant-supplied), sent by the sign-in pages'
// sendPage (never cached or framed; CSP default-src 'none', forms to this server only).
import type { Response } from 'express';
import { errorBox, esc, sendPage } from '../auth/pages.js';
import type { ConsoleSession } from './console-session.js';

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;color:#1d2733;margin:0}
nav{background:#1d2733;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
nav a{color:#fff}nav .who{margin-left:auto;font-size:.9rem;color:#c9d2db}
nav form{margin:0}nav button{margin:0;padding:.3rem .8rem;font-size:.9rem}
main{max-width:64rem;margin:1.5rem auto;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12);padding:1.5rem 2rem}
main.narrow{max-width:34rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem;border-bottom:1px solid #e3e7eb;padding-bottom:.3rem}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],input[type=email],input[type=url],select{width:100%;max-width:28rem;box-sizing:border-box;padding:.5rem;border:1px solid #b8c1ca;border-radius:4px;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1.1rem;font-size:1rem;border-radius:4px;border:1px solid #1f5fa8;background:#1f6fc5;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f5fa8}button.danger{background:#b3261e;border-color:#8a1c12}
table{border-collapse:collapse;width:100%;font-size:.95rem}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #eef1f4;vertical-align:top}
th{color:#55606b;font-weight:600}td.num,th.num{text-align:right}
.error{background:#fdecea;border:1px solid #f5c2bd;color:#8a1c12;padding:.6rem .8rem;border-radius:4px}
.ok{background:#e7f4ea;border:1px solid #b7dfc0;color:#1d5a2b;padding:.6rem .8rem;border-radius:4px}
.note{color:#55606b;font-size:.92rem}
.status{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;background:#eef1f4}
.status.active{background:#e7f4ea}.status.trial{background:#e8f0fb}.status.suspended,.status.terminated{background:#fdecea}.status.archived{background:#f3f0e8}
.swatch{display:inline-block;width:1rem;height:1rem;border-radius:3px;vertical-align:middle;border:1px solid #b8c1ca}
.plans{list-style:none;padding:0}.plans li{margin:.6rem 0}
.steps{list-style:none;display:flex;gap:1rem;padding:0;color:#55606b}.steps .now{color:#1d2733;font-weight:700}
.actions{display:flex;gap:1.5rem;flex-wrap:wrap;align-items:flex-end}.actions form{margin:0}
code{background:#eef1f4;padding:.1rem .3rem;border-radius:3px;word-break:break-all}
`;

export interface ConsolePage {
  title: string;
  body: string;
  /** The signed-in administrator (navigation and sign-out); none on the sign-in and invitation pages. */
  session?: ConsoleSession;
  /** A one-column page (forms), as the sign-in pages are. */
  narrow?: boolean;
}

function nav(s: ConsoleSession): string {
  const home = s.actor.kind === 'platform-admin'
    ? '<a href="/admin">Organizations</a><a href="/admin/new">New organization</a>'
    : `<a href="/admin/tenants/${encodeURIComponent(s.actor.tenant)}">Your organization</a>`;
  return `<nav aria-label="Console"><strong>tenfhir admin</strong>${home}
<span class="who">${esc(s.user.displayName ?? s.user.username)} · ${s.actor.kind === 'platform-admin' ? 'platform administrator' : 'organization administrator'}</span>
<form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button class="secondary" type="submit">Sign out</button></form></nav>`;
}

export function consolePage(p: ConsolePage): string {
  // same-origin referrers: a POST to this server keeps its Origin header (no-referrer would send `Origin: null`)
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>${esc(p.title)} · tenfhir admin</title><style>${STYLE}</style></head>
<body>${p.session ? nav(p.session) : ''}<main${p.narrow ? ' class="narrow"' : ''}>
<h1>${esc(p.title)}</h1>
${p.body}
</main></body></html>`;
}

export function sendConsole(res: Response, status: number, p: ConsolePage): void {
  sendPage(res, status, consolePage(p));
}

/** A page that only says what went wrong. */
export function sendProblem(res: Response, status: number, title: string, message: string, session?: ConsoleSession): void {
  sendConsole(res, status, { title, session, narrow: true, body: errorBox(message) });
}

/** The hidden form token of a signed-in page. */
export const csrfField = (s: ConsoleSession) => `<input type="hidden" name="csrf" value="${esc(s.csrf)}">`;

export const okBox = (message: string | undefined) => (message ? `<p class="ok" role="status">${esc(message)}</p>` : '');

export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export const count = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString('en'));

export function statusBadge(status: string): string {
  return `<span class="status ${esc(status)}">${esc(status)}</span>`;
}

export { errorBox, esc };
