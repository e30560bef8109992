// Server-rendered pages of the authorization server (sign-in, second factor, patient picker, consent, errors):
// plain HTML forms that work without JavaScript, escaped everywhere, no external assets.

import type { Response } from 'express';

/**
 * Sends a page: never cached, never framed, no script or outside asset. `formsTo` is the CSP form-action: the sign-in
 * pages' forms end in a redirect to the app (any origin), the connected-apps page's stay on this server.
 */
export function sendPage(res: Response, status: number, html: string, formsTo: "'self'" | "'self' *" = "'self'"): void {
  res.status(status).setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; form-action ${formsTo}; frame-ancestors 'none'`);
  res.send(html);
}

export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;color:#1d2733;margin:0}
main{max-width:34rem;margin:2.5rem auto;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12);padding:1.5rem 2rem}
header{border-bottom:1px solid #e3e7eb;margin-bottom:1rem;padding-bottom:.5rem}
header .tenant{font-size:.9rem;color:#55606b;text-transform:uppercase;letter-spacing:.04em}
h1{font-size:1.4rem;margin:.2rem 0}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],input[type=search]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #b8c1ca;border-radius:4px;font-size:1rem}
button{margin-top:1rem;padding:.55rem 1.2rem;font-size:1rem;border-radius:4px;border:1px solid #1f5fa8;background:#1f6fc5;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f5fa8}
.error{background:#fdecea;border:1px solid #f5c2bd;color:#8a1c12;padding:.6rem .8rem;border-radius:4px}
.note{color:#55606b;font-size:.92rem}
ul.scopes{list-style:none;padding:0}
ul.scopes li{padding:.35rem 0;border-bottom:1px solid #eef1f4}
ul.patients{list-style:none;padding:0}
ul.patients li{padding:.5rem 0;border-bottom:1px solid #eef1f4}
code{background:#eef1f4;padding:.1rem .3rem;border-radius:3px;word-break:break-all}
`;

export interface PageOptions {
  title: string;
  /** The tenant (organization) the user signs in to, shown on every page. */
  tenantName?: string;
  body: string;
}

export function page(o: PageOptions): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(o.title)}${o.tenantName ? ` · ${esc(o.tenantName)}` : ''}</title><style>${STYLE}</style></head>
<body><main>
<header>${o.tenantName ? `<div class="tenant">${esc(o.tenantName)}</div>` : ''}<h1>${esc(o.title)}</h1></header>
${o.body}
</main></body></html>`;
}

export function errorBox(message: string | undefined): string {
  return message ? `<p class="error" role="alert">${esc(message)}</p>` : '';
}
