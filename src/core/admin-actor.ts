// Who calls the admin API and console (issue 11): a platform administrator (every tenant) or a tenant administrator
// (their own tenant only). src/admin/auth.ts derives it from a bearer token, src/admin/console.ts from its session.

export interface AdminActor {
  kind: 'platform-admin' | 'tenant-admin';
  /** The tenant the actor administers ('platform' for platform administrators). */
  tenant: string;
  /** The account id (as tokens name it in `sub`). */
  sub: string;
  username?: string;
  /** The OAuth client the token was issued to (bearer tokens only). */
  clientId?: string;
  /** The caller's network address (for the audit trail). */
  address?: string;
}
