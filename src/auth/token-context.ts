// The SMART context behind a token oidc-provider is issuing: which grant, which role today, which scopes.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Deps } from '../core/deps.js';
import { findPayload } from '../store/auth-payloads.js';
import { findUserById } from '../store/auth-users.js';
import { grantAccess } from './access.js';
import { parseAccountId, SMART_GRANT, type SmartContext } from './claims.js';
import { isRole, type Role } from './role-matrix.js';

export type SmartCtx = KoaContextWithOIDC & { smart?: SmartContext };

/**
 * The SMART context of the token being issued: the grant's (authorization code, refresh) or the backend client's
 * (client_credentials). Effective scopes are re-intersected with the user's CURRENT role ceiling, and a refresh
 * request's `scope` narrows them further (SMART: a strict subset).
 */
export async function tokenContext(deps: Deps, ctx: SmartCtx, token: { grantId?: string; accountId?: string }): Promise<SmartContext | undefined> {
  if (ctx.smart) return ctx.smart;
  if (!token.grantId) return undefined;
  const stored = (await findPayload(deps.db, SMART_GRANT, token.grantId)) as unknown as SmartContext | undefined;
  if (!stored) return undefined;
  let role: Role = stored.role;
  const acct = token.accountId ? parseAccountId(token.accountId) : undefined;
  if (acct) {
    const user = await findUserById(deps.db, acct.tenantId, acct.userId);
    if (user && isRole(user.role)) role = user.role;
  }
  // a refresh request may narrow the grant (SMART: "a strict subset"; absent = the same scopes)
  const narrow = ctx.oidc.params?.grant_type === 'refresh_token' ? (ctx.oidc.params.scope as string | undefined) : undefined;
  const requested = narrow ?? stored.scope;
  const g = grantAccess({ requested, clientAllowed: stored.scope, role, patientId: stored.patient });
  const other = narrow ? stored.other.filter((s) => narrow.split(' ').includes(s)) : stored.other;
  ctx.smart = { ...stored, role, scope: g.scope, other };
  return ctx.smart;
}


/** The granted scope string: effective resource scopes plus the granted launch/identity/refresh scopes. */
export function fullScope(smart: SmartContext): string {
  return [smart.scope, ...smart.other].filter(Boolean).join(' ');
}
