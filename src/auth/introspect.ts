// Token introspection (RFC 7662, SMART token-introspection.html): POST /auth/introspect for this server's JWT access
// tokens (oidc-provider cannot introspect those). The caller authenticates with its own bearer token; only tokens of
// the caller's tenant are ever reported active.
import type { Request, Response } from 'express';
import { FhirError } from '../core/errors.js';
import type { Principal, TokenVerifier } from './verify.js';

export async function introspect(verifier: TokenVerifier, who: Principal, req: Request, res: Response): Promise<void> {
  if (who.claims.role !== 'system' && who.claims.role !== 'tenant-admin') throw new FhirError('forbidden', 'Introspection needs a backend (system) or tenant-admin token', { code: 'SCOPE_INSUFFICIENT' });
  const token = typeof req.body?.token === 'string' ? req.body.token : '';
  if (!token) throw new FhirError('invalid', "the 'token' parameter is required", { code: 'TOKEN_MISSING' });
  res.setHeader('Cache-Control', 'no-store');
  try {
    const c = (await verifier.verify(`Bearer ${token}`, who.claims.aud, who.claims.tenant)).claims;
    // SMART: every launch context parameter of the token response (patient, encounter, tenant, banner, style)
    res.json({
      active: true, scope: c.scope, client_id: c.client_id, sub: c.sub, iss: c.iss, aud: c.aud, exp: c.exp, iat: c.iat, token_type: 'Bearer',
      ...(c.patient ? { patient: c.patient } : {}),
      ...(c.encounter ? { encounter: c.encounter } : {}),
      ...(c.fhirUser ? { fhirUser: `${c.aud}/${c.fhirUser}` } : {}),
      ...(c.role !== 'system' ? { tenant: c.tenant } : {}),
      ...(c.need_patient_banner !== undefined ? { need_patient_banner: c.need_patient_banner } : {}),
      ...(c.smart_style_url ? { smart_style_url: c.smart_style_url } : {}),
    });
  } catch {
    res.json({ active: false });
  }
}
