// Tenant records (outside FHIR): one row per tenant; the application reads only its bound tenant's row.
import type { Db } from '../platform/db.js';
import { PLATFORM, TENANT_SLUG, type Tenant } from '../core/tenant.js';

type Row = { id: Tenant['id']; name: string; status: string; settings: Tenant['settings'] };

/** Looks up a tenant through the RLS-bound connection (unknown -> undefined). */
export async function findTenant(db: Db, slug: string): Promise<Tenant | undefined> {
  if (!TENANT_SLUG.test(slug)) return undefined;
  const r = await db.withTenant(slug, (q) => q.query<Row>('SELECT id, name, status, settings FROM tenant WHERE id = $1', [slug]));
  return r.rows[0];
}

/** Inserts the tenant row (admin connection). Returns false when the slug is taken. */
export async function insertTenant(db: Db, slug: string, name: string): Promise<boolean> {
  const r = await db.admin().query('INSERT INTO tenant (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [slug, name]);
  return (r.rowCount ?? 0) > 0;
}

export async function listTenants(db: Db): Promise<Row[]> {
  return (await db.admin().query<Row>('SELECT id, name, status, settings FROM tenant ORDER BY id')).rows;
}

/**
 * Every tenant id that holds sign-in rows (users, launches, tokens): the platform administrators' first, then each
 * tenant (the platform catalog's tenant row, docs/catalog.md, shares the administrators' id: listed once).
 */
export async function signInTenantIds(db: Db): Promise<string[]> {
  return [PLATFORM, ...(await listTenants(db)).map((t) => t.id).filter((id) => id !== PLATFORM)];
}

export async function updateTenantSettings(db: Db, slug: string, settings: Tenant['settings']): Promise<void> {
  await db.admin().query('UPDATE tenant SET settings = settings || $2::jsonb WHERE id = $1', [slug, JSON.stringify(settings)]);
}
