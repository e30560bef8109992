// The application's database role (ARCHITECTURE.md "Second wall"): the login role works with fhir_app's privileges
// (as itself when it is a plain member, otherwise after SET ROLE fhir_app), never as a role that owns the tables or
// can bypass row-level security. Checked at start: the server refuses to run without the wall.
import { APP_ROLE, type Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { isCitus } from './citus.js';

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
  // Citus carries a role grant to the workers only for roles it created through this database; the application's
  // queries reach the shards as the login role, so the grant must be there too (roles are per node, not per database).
  if (await isCitus(db.admin())) {
    await db
      .admin()
      .query('SELECT success, result FROM run_command_on_workers($1)', [`GRANT ${APP_ROLE} TO "${user}"`])
      .then((r) => {
        for (const row of r.rows as { success: boolean; result: string }[]) if (!row.success) log.warn({ role: user, result: row.result }, `could not GRANT ${APP_ROLE} on a Citus worker`);
      })
      .catch((err) => log.warn({ err, role: user }, `could not GRANT ${APP_ROLE} on the Citus workers`));
  }
}

/** Refuses to run when the RLS wall would not hold; warns when the login role could lift it. */
export async function checkAppRole(db: Db, log: Logger): Promise<void> {
  const r = await db
    .withTenant('0', (q) =>
      q.query<{ current_user: string; session_user: string; bypass: boolean; lifts: boolean; app: boolean }>(
        `SELECT current_user, session_user,
                (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user) AS bypass,
                (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
                  OR EXISTS (SELECT 1 FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND relkind IN ('r', 'p')) AS lifts,
                pg_has_role(current_user, '${APP_ROLE}', 'USAGE') AS app`,
      ),
    )
    .catch(() => undefined);
  const row = r?.rows[0];
  if (!row || !row.app || row.lifts) {
    throw new Error(`the application connection must work as a plain member of role ${APP_ROLE} (GRANT ${APP_ROLE} TO ${row?.session_user ?? '<your role>'}); got ${row?.current_user ?? 'no connection'}`);
  }
  if (row.bypass && db.kind === 'postgres') {
    log.warn({ role: row.session_user }, `DATABASE_URL logs in as a superuser/BYPASSRLS role; use a dedicated login role that is only granted ${APP_ROLE}`);
  }
}
