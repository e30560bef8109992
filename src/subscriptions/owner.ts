// A subscription delivers only what its owner could read NOW (issue 10): the owner's recorded scopes are
// re-intersected with the client's registered scopes and the user's current role on every use, and a client that
// was removed or a user who was disabled stops the subscription.
import { grantAccess } from '../auth/access.js';
import { parseAccountId } from '../auth/claims.js';
import { clientScopes } from '../auth/provider.js';
import { isRole } from '../auth/role-matrix.js';
import { TokenGuard } from '../auth/verify.js';
import type { Deps } from '../core/deps.js';
import type { Guard } from '../core/guard.js';
import { findClient } from '../store/auth-payloads.js';
import { findUserById } from '../store/auth-users.js';
import type { SubscriptionOwner } from '../store/subscriptions.js';

export type OwnerAccess = { guard: Guard } | { revoked: string };

/** The owner's access as it is now. */
export async function ownerAccess(deps: Deps, tenantId: string, owner: SubscriptionOwner): Promise<OwnerAccess> {
  if (!owner?.clientId) return { revoked: 'the subscription has no recorded owner' };
  const client = await findClient(deps.db, owner.clientId);
  if (!client || client.tenantId !== tenantId) return { revoked: `the client ${owner.clientId} that owns this subscription is no longer registered` };
  let role = owner.role;
  const account = parseAccountId(owner.sub);
  if (account) {
    const user = account.tenantId === tenantId ? await findUserById(deps.db, tenantId, account.userId) : undefined;
    if (!user || user.disabled) return { revoked: 'the user who owns this subscription is disabled or no longer exists' };
    role = user.role;
  }
  if (!isRole(role)) return { revoked: `the owner's role ${role} no longer exists` };
  const g = grantAccess({ requested: owner.scope, clientAllowed: clientScopes(client.metadata), role, ...(owner.patient ? { patientId: owner.patient } : {}) });
  return { guard: new TokenGuard(g.access) };
}

/** Owner look-ups for a few seconds (a burst of events asks for the same owner many times). */
export class OwnerCache {
  private readonly entries = new Map<string, { at: number; access: Promise<OwnerAccess> }>();
  constructor(private readonly deps: Deps, private readonly ttlMs = 2000) {}

  get(tenantId: string, subscriptionId: string, owner: SubscriptionOwner): Promise<OwnerAccess> {
    const key = `${tenantId}\0${subscriptionId}\0${JSON.stringify(owner)}`;
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.access;
    if (this.entries.size > 10_000) this.entries.clear();
    const access = ownerAccess(this.deps, tenantId, owner);
    this.entries.set(key, { at: now, access });
    access.catch(() => this.entries.delete(key));
    return access;
  }
}
