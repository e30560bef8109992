// Invitations (issue 11, migrations/0014): single-use links to set up an account in a tenant, stored by the SHA-256
// of their token only. A tenant table under row-level security: a token is only ever looked up in the tenant its
// link names, so one tenant's link cannot work under another tenant's path.
import type { Db } from '../platform/db.js';

export interface InvitationRecord {
  tenantId: string;
  tokenHash: string;
  username: string;
  role: string;
  displayName: string | null;
  email: string | null;
  createdBy: string;
  expiresAt: Date;
  usedAt: Date | null;
}

type Row = {
  tenant_id: string; token_hash: string; username: string; role: string; display_name: string | null; email: string | null;
  created_by: string; expires_at: Date; used_at: Date | null;
};

function toInvitation(r: Row): InvitationRecord {
  return {
    tenantId: r.tenant_id,
    tokenHash: r.token_hash,
    username: r.username,
    role: r.role,
    displayName: r.display_name,
    email: r.email,
    createdBy: r.created_by,
    expiresAt: new Date(r.expires_at),
    usedAt: r.used_at === null ? null : new Date(r.used_at),
  };
}

export async function insertInvitation(db: Db, i: Omit<InvitationRecord, 'usedAt'>): Promise<void> {
  await db.withTenant(i.tenantId, (q) =>
    q.query(
      `INSERT INTO tenant_invitation (tenant_id, token_hash, username, role, display_name, email, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [i.tenantId, i.tokenHash, i.username, i.role, i.displayName, i.email, i.createdBy, i.expiresAt],
    ),
  );
}

/** The invitation with this token hash in the tenant, used or not, expired or not (undefined when there is none). */
export async function findInvitation(db: Db, tenantId: string, tokenHash: string): Promise<InvitationRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) => q.query<Row>('SELECT * FROM tenant_invitation WHERE tenant_id = $1 AND token_hash = $2', [tenantId, tokenHash]));
  return r.rows[0] ? toInvitation(r.rows[0]) : undefined;
}

/**
 * Marks an unused invitation, unexpired at `now`, used: exactly one of any number of parallel callers gets it
 * (undefined for the others, and for an expired or unknown one).
 */
export async function claimInvitation(db: Db, tenantId: string, tokenHash: string, now: Date): Promise<InvitationRecord | undefined> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<Row>(
      'UPDATE tenant_invitation SET used_at = $3 WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3 RETURNING *',
      [tenantId, tokenHash, now],
    ),
  );
  return r.rows[0] ? toInvitation(r.rows[0]) : undefined;
}

/** Gives a claimed invitation back (the account could not be created from it: the link works again). */
export async function releaseInvitation(db: Db, tenantId: string, tokenHash: string): Promise<void> {
  await db.withTenant(tenantId, (q) => q.query('UPDATE tenant_invitation SET used_at = NULL WHERE tenant_id = $1 AND token_hash = $2', [tenantId, tokenHash]));
}
