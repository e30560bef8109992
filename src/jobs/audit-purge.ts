// The audit trail's retention (issue 12): records older than the tenant's retention (AUDIT_RETENTION_DAYS, 6 years by
// default, or the tenant's own `auditRetentionDays`) are deleted, and each purge that deleted something is itself
// recorded in that tenant's trail (who: the server; what: how many, recorded before when).
import type { Deps } from '../core/deps.js';
import { SERVER_AGENT } from '../core/audit.js';
import { auditRetentions, purgeAudit } from '../store/audit.js';
import { repeat } from '../store/maintenance.js';

export interface AuditPurgeResult {
  tenantId: string;
  retentionDays: number;
  before: string;
  deleted: number;
}

/** Purges every tenant's expired audit records (or one tenant's: `only`). */
export async function purgeAuditTrail(deps: Deps, only?: string): Promise<AuditPurgeResult[]> {
  const out: AuditPurgeResult[] = [];
  for (const { tenantId, days } of await auditRetentions(deps.db)) {
    if (only !== undefined && tenantId !== only) continue;
    const retentionDays = days ?? deps.config.auditRetentionDays;
    const now = deps.clock();
    const before = new Date(now.getTime() - retentionDays * 86_400_000);
    const deleted = await purgeAudit(deps.db, tenantId, before);
    if (deleted > 0) {
      await deps.audit.record(tenantId, [{
        recorded: now.toISOString(),
        category: 'maintenance',
        subtype: 'audit-purge',
        action: 'D',
        outcome: 0,
        agent: SERVER_AGENT,
        detail: { deleted, recordedBefore: before.toISOString(), retentionDays },
      }]);
    }
    out.push({ tenantId, retentionDays, before: before.toISOString(), deleted });
  }
  return out;
}

/** Runs the purge every AUDIT_PURGE_INTERVAL_MINUTES until stopped (several processes may: deletes are idempotent). */
export function startAuditPurge(deps: Deps): () => void {
  return repeat(() => purgeAuditTrail(deps), deps.config.auditPurgeIntervalMinutes * 60_000, deps.log, 'audit retention purge failed');
}
