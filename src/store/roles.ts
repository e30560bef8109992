// The application's database role (ARCHITECTURE.md "Second wall"): the login role acts as fhir_app, which does not own
// the tables and cannot bypass row-level security. Checked at start: the server refuses to run without the wall.
import { APP_ROLE, type Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';

/**
 * When the application logs in with its own role (DATABASE_URL) and migrations run as the owner
 * (DATABASE_ADMIN_URL), let that login role act as fhir_app — and nothing more.
 */
export async function grantAppRole(db: Db, databaseUrl: string | undefined, databaseAdminUrl: string | undefined, log: Logger): Promise<void> {
  if (!databaseUrl || !databaseAdminUrl || databaseAdminUrl === databaseUrl) return;
  const user = decodeURIComponent(new URL(databaseUrl).username);
  if (!user || !/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(user)) return;
  await db
    .admin()
    .query(`GRANT ${APP_ROLE} TO "${user}"`)
    .catch((err) => log.warn({ err, role: user }, `could not GRANT ${APP_ROLE} to the application role`));
}

/** Refuses to run when the RLS wall would not hold; warns when the login role could lift it. */
export async function checkAppRole(db: Db, log: Logger): Promise<void> {
  const r = await db
    .withTenant('0', (q) =>
      q.query<{ current_user: string; session_user: string; bypass: boolean }>(
        `SELECT current_user, session_user, (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user) AS bypass`,
      ),
    )
    .catch(() => undefined);
  const row = r?.rows[0];
  if (!row || row.current_user !== APP_ROLE) {
    throw new Error(`the application connection must act as role ${APP_ROLE} (GRANT ${APP_ROLE} TO ${row?.session_user ?? '<your role>'}); got ${row?.current_user ?? 'no connection'}`);
  }
  if (row.bypass && db.kind === 'postgres') {
    log.warn({ role: row.session_user }, 'DATABASE_URL logs in as a superuser/BYPASSRLS role; use a dedicated login role that is only granted fhir_app');
  }
}
