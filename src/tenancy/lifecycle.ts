// What a tenant's lifecycle state allows (issue 11): trial -> active -> suspended -> active; active|suspended ->
// archived (read-only); -> terminated (erased after a grace period). A trial past its end is read-only. The
// admission check of every FHIR request (src/tenancy/admission.ts) answers from here.
import { FhirError } from '../core/errors.js';
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

/** Operations that read (or take data out) whatever the method: POST to them changes nothing of the tenant's data. */
const READ_OPERATIONS = new Set([
  '_search', '$validate', '$lookup', '$validate-code', '$subsumes', '$expand', '$translate', '$everything',
  '$export', '$export-status', '$export-file', '$status', '$events', '$get-ws-binding-token',
]);

/**
 * Whether a FHIR request may change the tenant's data: PUT, PATCH and DELETE (except cancelling one's own export),
 * and POST except searches and the read operations above. A POST to the base (a batch or transaction Bundle) counts
 * as a write, its entries unread at admission; $reindex and $resend write (index rows, deliveries).
 */
export function isWrite(method: string, path: string[]): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  if (method === 'DELETE' && path[0] === '$export-status') return false;
  if (method !== 'POST') return true;
  const last = path[path.length - 1];
  return last === undefined || !READ_OPERATIONS.has(last);
}

/** What the lifecycle check needs of a request (src/tenancy/admission.ts AdmissionRequest has it). */
export interface LifecycleRequest {
  method: string;
  path: string[];
  /** The verified token's role (undefined for discovery). */
  role?: string;
}

/**
 * Refuses what the tenant's state does not allow: terminated -> 404 TENANT_UNKNOWN; suspended -> 403
 * TENANT_SUSPENDED except a tenant admin's reads and exports; read-only -> writes 403 TENANT_TRIAL_EXPIRED (a trial
 * past its end, naming the day) or TENANT_READ_ONLY (archived).
 */
export function assertLifecycle(t: Tenant, now: Date, r: LifecycleRequest): void {
  const level = serviceLevel(t, now);
  if (level === 'full') return;
  if (level === 'gone') throw new FhirError('not-found', `Unknown tenant '${t.id}'`, { code: 'TENANT_UNKNOWN' });
  const write = isWrite(r.method, r.path);
  if (level === 'suspended') {
    if (r.role === 'tenant-admin' && !write) return;
    throw new FhirError('forbidden', `Tenant '${t.id}' is suspended: its API is closed (its administrators may still read and export its data)`, { code: 'TENANT_SUSPENDED' });
  }
  if (!write) return;
  if (t.status === 'trial') {
    const ended = t.trialEndsAt ? new Date(t.trialEndsAt).toISOString().slice(0, 10) : 'an earlier day';
    throw new FhirError('forbidden', `The trial of tenant '${t.id}' ended on ${ended}: its data can be read and exported, not changed, until it moves to a paid plan`, { code: 'TENANT_TRIAL_EXPIRED' });
  }
  throw new FhirError('forbidden', `Tenant '${t.id}' is archived: its data can be read and exported, not changed`, { code: 'TENANT_READ_ONLY' });
}
