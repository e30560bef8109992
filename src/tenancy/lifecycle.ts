// What a tenant's lifecycle state allows (issue 11): trial -> active -> suspended -> active; active|suspended ->
// archived (read-only); -> terminated (erased after a grace period). A trial past its end is read-only.
import type { Tenant } from '../core/tenant.js';

/**
 * full: everything the token allows. read-only: reads only (archived, or a trial that has ended). suspended: nothing
 * but a tenant admin's reads and exports (to take data out). gone: terminated, answered as unknown.
 */
export type ServiceLevel = 'full' | 'read-only' | 'suspended' | 'gone';

export function serviceLevel(t: Tenant, now: Date): ServiceLevel {
  switch (t.status) {
    case 'active':
      return 'full';
    case 'trial':
      return t.trialEndsAt && Date.parse(t.trialEndsAt) <= now.getTime() ? 'read-only' : 'full';
    case 'suspended':
      return 'suspended';
    case 'archived':
      return 'read-only';
    default:
      return 'gone';
  }
}
