// The authorization endpoint in front of oidc-provider's (SMART app-launch.html#obtain-authorization-code): GET and
// POST, and offline_access kept without prompt=consent.
import type { NextFunction, Request, Response } from 'express';

/** SMART: the authorization endpoint takes GET and POST. A POSTed form becomes the same request as a GET (303). */
export function authorizePost(req: Request, res: Response): void {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (typeof v === 'string') params.append(k, v);
  res.redirect(303, `/auth/authorize?${params.toString()}`);
}

/**
 * oidc-provider drops offline_access unless prompt includes consent (an OIDC Core rule); SMART apps do not send
 * prompt=consent, and every launch here shows the consent page anyway, so it is added for them.
 */
export function authorizeGet(req: Request, _res: Response, next: NextFunction): void {
  const q = req.url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  const scopes = (params.get('scope') ?? '').split(' ');
  const prompt = (params.get('prompt') ?? '').split(' ').filter(Boolean);
  if (scopes.includes('offline_access') && !prompt.includes('consent') && !prompt.includes('none')) {
    params.set('prompt', [...prompt, 'consent'].join(' '));
    req.url = `/authorize?${params.toString()}`;
  }
  next();
}
