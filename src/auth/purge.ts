// Upkeep of the authorization server's storage (issue 8): expired oidc-provider artifacts, launch contexts,
// registration tokens and sign-in counters are deleted every few minutes instead of piling up for ever.
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { purgeExpiredPayloads } from '../store/auth-payloads.js';
import { purgeExpiredSignInCounters } from '../store/auth-signin-counters.js';
import { purgeExpiredLaunchesAndTokens } from '../store/auth-users.js';
import { repeat } from '../store/maintenance.js';
import { signInTenantIds } from '../store/tenants.js';

/** How often main.ts purges. */
const PURGE_INTERVAL_MS = 10 * 60_000;

/**
 * One purge pass; returns how many rows went. The tenant tables are under FORCE ROW LEVEL SECURITY, which hides
 * every row from the owner connection too (unless it is a superuser), so they are purged tenant by tenant, the
 * platform administrators' pseudo-tenant included. One tenant failing does not stop the others.
 */
export async function purgeExpiredAuthRecords(db: Db, log: Logger): Promise<number> {
  let removed = await purgeExpiredPayloads(db);
  for (const tenantId of await signInTenantIds(db)) {
    try {
      removed += await purgeExpiredLaunchesAndTokens(db, tenantId);
      removed += await purgeExpiredSignInCounters(db, tenantId);
    } catch (err) {
      log.warn({ err, tenantId }, 'purging expired authorization records failed');
    }
  }
  if (removed) log.info({ removed }, 'purged expired authorization records');
  return removed;
}

/** Purges every `intervalMs` until stopped (the timer does not keep the process alive). */
export function startAuthPurge(db: Db, log: Logger, intervalMs = PURGE_INTERVAL_MS): () => void {
  return repeat(() => purgeExpiredAuthRecords(db, log), intervalMs, log, 'purging expired authorization records failed');
}
