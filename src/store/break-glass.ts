// Break-glass grants (migrations/0012_break_glass.sql): a platform administrator's time-limited, reasoned access to one
// tenant's data (src/auth/break-glass.ts decides who may do what). Every function runs bound to the tenant (row-level
// security); state changes are one conditional UPDATE each, so two administrators deciding at once cannot both win.
import type { Db } from '../platform/db.js';
import { advisoryXactLock } from './locks.js';

export type GrantStatus = 'pending' | 'approved' | 'denied' | 'revoked';

export interface GrantRecord {
  tenantId: string;
  id: string;
  requestedBy: string;
  requestedName: string;
  reason: string;
  requestedAt: Date;
  minutes: number;
  status: GrantStatus;
  decidedBy: string | null;
  decidedName: string | null;
  decidedAt: Date | null;
  startsAt: Date | null;
  expiresAt: Date | null;
  revokedBy: string | null;
  revokedName: string | null;
  revokedAt: Date | null;
  revokeReason: string | null;
}

type Row = {
  tenant_id: string; id: string; requested_by: string; requested_name: string; reason: string; requested_at: Date; minutes: number;
  status: GrantStatus; decided_by: string | null; decided_name: string | null; decided_at: Date | null; starts_at: Date | null; expires_at: Date | null;
  revoked_by: string | null; revoked_name: string | null; revoked_at: Date | null; revoke_reason: string | null;
};

const COLUMNS = `tenant_id, id, requested_by, requested_name, reason, requested_at, minutes, status, decided_by, decided_name, decided_at,
  starts_at, expires_at, revoked_by, revoked_name, revoked_at, revoke_reason`;

function toRecord(r: Row): GrantRecord {
  return {
    tenantId: r.tenant_id,
    id: r.id,
    requestedBy: r.requested_by,
    requestedName: r.requested_name,
    reason: r.reason,
    requestedAt: r.requested_at,
    minutes: r.minutes,
    status: r.status,
    decidedBy: r.decided_by,
    decidedName: r.decided_name,
    decidedAt: r.decided_at,
    startsAt: r.starts_at,
    expiresAt: r.expires_at,
    revokedBy: r.revoked_by,
    revokedName: r.revoked_name,
    revokedAt: r.revoked_at,
    revokeReason: r.revoke_reason,
  };
}

/** A new grant: pending, or approved at once (starts_at = requested_at) when the tenant requires no approval. */
export interface NewGrant {
  id: string;
  requestedBy: string;
  requestedName: string;
  reason: string;
  requestedAt: Date;
  minutes: number;
  approved: boolean;
}

/**
 * Inserts the grant unless the requester already has an open one in the tenant (pending, or approved and not expired
 * at `requestedAt`): that one is returned instead, with `created: false`. Serialized per (tenant, requester).
 */
export async function insertGrant(db: Db, tenantId: string, g: NewGrant): Promise<{ created: boolean; grant: GrantRecord }> {
  return db.tx(tenantId, async (q) => {
    await advisoryXactLock(q, `break-glass:${tenantId}:${g.requestedBy}`);
    const open = await q.query<Row>(
      `SELECT ${COLUMNS} FROM break_glass_grant
        WHERE tenant_id = $1 AND requested_by = $2 AND (status = 'pending' OR (status = 'approved' AND expires_at > $3))
        ORDER BY requested_at DESC LIMIT 1`,
      [tenantId, g.requestedBy, g.requestedAt],
    );
    if (open.rows[0]) return { created: false, grant: toRecord(open.rows[0]) };
    const expires = g.approved ? new Date(g.requestedAt.getTime() + g.minutes * 60_000) : null;
    const r = await q.query<Row>(
      `INSERT INTO break_glass_grant (tenant_id, id, requested_by, requested_name, reason, requested_at, minutes, status, decided_at, starts_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING ${COLUMNS}`,
      [tenantId, g.id, g.requestedBy, g.requestedName, g.reason, g.requestedAt, g.minutes, g.approved ? 'approved' : 'pending', g.approved ? g.requestedAt : null, expires],
    );
    return { created: true, grant: toRecord(r.rows[0]) };
  });
}

export async function findGrant(db: Db, tenantId: string, id: string): Promise<GrantRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<Row>(`SELECT ${COLUMNS} FROM break_glass_grant WHERE tenant_id = $1 AND id = $2`, [tenantId, id]));
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

/** The tenant's grants, newest first (`requestedBy`: one requester's only), at most `limit`. */
export async function listGrants(db: Db, tenantId: string, opts: { requestedBy?: string; limit?: number } = {}): Promise<GrantRecord[]> {
  const limit = Math.max(1, Math.min(opts.limit ?? 200, 1000));
  const r = await db.withTenant(tenantId, (q) =>
    opts.requestedBy === undefined
      ? q.query<Row>(`SELECT ${COLUMNS} FROM break_glass_grant WHERE tenant_id = $1 ORDER BY requested_at DESC, id LIMIT ${limit}`, [tenantId])
      : q.query<Row>(`SELECT ${COLUMNS} FROM break_glass_grant WHERE tenant_id = $1 AND requested_by = $2 ORDER BY requested_at DESC, id LIMIT ${limit}`, [tenantId, opts.requestedBy]),
  );
  return r.rows.map(toRecord);
}

/**
 * The requester's open grants in the tenant at `now`: the one active (approved, started, not expired) and the one
 * pending, if any (the FHIR API's per-request lookup, cached by src/auth/break-glass.ts).
 */
export async function openGrants(db: Db, tenantId: string, requestedBy: string, now: Date): Promise<{ active?: GrantRecord; pending?: GrantRecord }> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<Row>(
      `SELECT ${COLUMNS} FROM break_glass_grant
        WHERE tenant_id = $1 AND requested_by = $2
          AND (status = 'pending' OR (status = 'approved' AND starts_at <= $3 AND expires_at > $3))
        ORDER BY requested_at DESC LIMIT 2`,
      [tenantId, requestedBy, now],
    ),
  );
  const grants = r.rows.map(toRecord);
  const active = grants.find((g) => g.status === 'approved');
  const pending = grants.find((g) => g.status === 'pending');
  return { ...(active ? { active } : {}), ...(pending ? { pending } : {}) };
}

export interface Decision {
  by: string;
  name: string;
  at: Date;
}

/**
 * pending -> approved (starting now) or denied; undefined when the grant is not pending any more (or unknown). The
 * expiry is epoch seconds + minutes through the immutable to_timestamp(float8): Citus refuses timestamptz + interval
 * (a STABLE operator) over a column in an UPDATE (issue 16).
 */
export async function decideGrant(db: Db, tenantId: string, id: string, approve: boolean, d: Decision): Promise<GrantRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<Row>(
      approve
        ? `UPDATE break_glass_grant SET status = 'approved', decided_by = $3, decided_name = $4, decided_at = $5, starts_at = $5,
             expires_at = to_timestamp($6::float8 + minutes * 60)
            WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING ${COLUMNS}`
        : `UPDATE break_glass_grant SET status = 'denied', decided_by = $3, decided_name = $4, decided_at = $5
            WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING ${COLUMNS}`,
      approve ? [tenantId, id, d.by, d.name, d.at, d.at.getTime() / 1000] : [tenantId, id, d.by, d.name, d.at],
    ),
  );
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

/**
 * Ends a pending or active grant: status revoked, an active one's expires_at moved back to `d.at` (the row keeps when
 * access really ended, and who approved it). Undefined when it was neither (denied, revoked, expired, or unknown).
 */
export async function revokeGrant(db: Db, tenantId: string, id: string, d: Decision & { reason?: string }): Promise<GrantRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<Row>(
      `UPDATE break_glass_grant SET status = 'revoked', revoked_by = $3, revoked_name = $4, revoked_at = $5, revoke_reason = $6,
              expires_at = CASE WHEN status = 'approved' THEN least(expires_at, $5::timestamptz) ELSE expires_at END
        WHERE tenant_id = $1 AND id = $2 AND (status = 'pending' OR (status = 'approved' AND expires_at > $5::timestamptz)) RETURNING ${COLUMNS}`,
      [tenantId, id, d.by, d.name, d.at, d.reason ?? null],
    ),
  );
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}
