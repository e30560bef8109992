// Status changes the server makes (requested -> active after a handshake, -> error with the reason, -> off at `end`):
// a new version of the Subscription resource, so a client reading it sees what the server does, plus the state row,
// in one transaction. Never silently back to active from error (Backport IG, errors.html): only the client does that.
import { now as nowOf, stamp, stored } from '../fhir/write.js';
import type { FhirContext } from '../fhir/context.js';
import { findState, setStatus, type SubscriptionStatus } from '../store/subscriptions.js';

/**
 * Sets the subscription's status (and error text) when its current status is one of `from`. Returns whether it
 * changed. `ctx` is a system context of the tenant (tenantContext).
 */
export async function changeStatus(ctx: FhirContext, id: string, to: SubscriptionStatus, error: string | null, from: SubscriptionStatus[]): Promise<boolean> {
  return ctx.store.tx(async (s) => {
    const state = await findState(s.q, s.tenantId, id, true);
    if (!state || !from.includes(state.status)) return false;
    const current = await s.readCurrent('Subscription', id, true);
    if (!current || current.deleted || !current.json) return false;
    const resource = JSON.parse(current.json) as Record<string, unknown>;
    resource.status = to;
    if (error) resource.error = error.slice(0, 1000);
    else delete resource.error;
    const versionId = current.versionId + 1;
    const p = stored(ctx, 'PUT', stamp(resource, id, versionId, nowOf(ctx)), versionId, true, 200, 'u');
    await s.commit([p.row]);
    await setStatus(s.q, s.tenantId, id, to, error);
    return true;
  });
}
