// Tenant records (outside FHIR): one row per tenant; the application reads only its bound tenant's row, the platform
// administration (create, list, plan, lifecycle) goes through the admin connection.
import type { Db, Queryable } from '../platform/db.js';
import { FhirError } from '../core/errors.js';
import { PLATFORM, TENANT_SLUG, type Tenant, type TenantId, type TenantStatus } from '../core/tenant.js';

/** A tenant as its administrators see it: the Tenant every layer reads, plus branding and its lifecycle dates. */
export interface TenantRecord extends Tenant {
  branding: Record<string, unknown>;
  createdAt: string;
  statusChangedAt: string | null;
  /** A terminated tenant's erasure date. */
  terminateAfter: string | null;
}

type Row = {
  id: Tenant['id'];
  name: string;
  status: string;
  settings: Tenant['settings'];
  plan: string | null;
  type: string | null;
  host: string | null;
  trial_ends_at: Date | string | null;
  branding: Record<string, unknown>;
  created_at: Date | string;
  status_changed_at: Date | string | null;
  terminate_after: Date | string | null;
};

const COLUMNS = 'id, name, status, settings, plan, type, host, trial_ends_at, branding, created_at, status_changed_at, terminate_after';

const iso = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

function tenantOf(r: Row): Tenant {
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    settings: r.settings,
    ...(r.plan !== null ? { plan: r.plan } : {}),
    ...(r.type !== null ? { type: r.type } : {}),
    host: r.host,
    trialEndsAt: iso(r.trial_ends_at),
  };
}

function recordOf(r: Row): TenantRecord {
  return { ...tenantOf(r), branding: r.branding, createdAt: iso(r.created_at)!, statusChangedAt: iso(r.status_changed_at), terminateAfter: iso(r.terminate_after) };
}

/** Looks up a tenant through the RLS-bound connection (unknown -> undefined). */
export async function findTenant(db: Db, slug: string): Promise<Tenant | undefined> {
  if (!TENANT_SLUG.test(slug)) return undefined;
  const r = await db.withTenant(slug, (q) => q.query<Row>(`SELECT ${COLUMNS} FROM tenant WHERE id = $1`, [slug]));
  return r.rows[0] && tenantOf(r.rows[0]);
}

/**
 * Every tenant host name and the tenant it names (host-based tenants, src/tenancy/tenant-hosts.ts): read before any
 * tenant is bound, through migration 0016's tenant_hosts(), which shows those two columns and nothing else.
 */
export async function tenantHosts(db: Db): Promise<Map<string, TenantId>> {
  const r = await db.platform((q) => q.query<{ host: string; tenant_id: TenantId }>('SELECT host, tenant_id FROM tenant_hosts()'));
  return new Map(r.rows.map((x) => [x.host, x.tenant_id]));
}

/** A tenant with its administration fields (admin connection). */
export async function findTenantRecord(db: Db, slug: string): Promise<TenantRecord | undefined> {
  if (!TENANT_SLUG.test(slug)) return undefined;
  const r = await db.admin().query<Row>(`SELECT ${COLUMNS} FROM tenant WHERE id = $1`, [slug]);
  return r.rows[0] && recordOf(r.rows[0]);
}

/** What a new tenant row says beyond its slug and name (defaults: active, no plan, no type, no branding). */
export interface NewTenantRow {
  status?: Extract<TenantStatus, 'trial' | 'active'>;
  plan?: string;
  type?: string;
  branding?: Record<string, unknown>;
  trialEndsAt?: Date;
}

/**
 * Creates a tenant in ONE transaction (issue 16): inserts its row, then runs `fn`, which writes the tenant's first rows
 * on the same connection; a throw from `fn` rolls the row back with them. Undefined when the slug is taken (`fn` does
 * not run; a concurrent creation of the same slug waits here until the first commits or rolls back).
 *
 * It runs on the admin connection because fhir_app may read its tenant's row but never insert one (migrations/0001).
 * The transaction is bound to the new tenant with the same `SET LOCAL app.tenant_id` statement the tenant-bound
 * transactions run, so the tables under FORCE ROW LEVEL SECURITY take the rows `fn` writes (the admin role owns the
 * tables, and FORCE holds the owner to the policies too), and Citus carries the binding to the workers.
 */
export async function insertTenantWith<T>(db: Db, slug: TenantId, name: string, more: NewTenantRow, fn: (q: Queryable) => Promise<T>): Promise<{ value: T } | undefined> {
  if (!TENANT_SLUG.test(slug)) throw new Error(`invalid tenant id ${JSON.stringify(slug)}`);
  return db.admin().tx(async (q) => {
    // the slug grammar (checked above) excludes quotes: inlined, as a simple-protocol statement (Citus carries only those)
    await q.query(`SET LOCAL app.tenant_id = '${slug}'`);
    const r = await q.query(
      `INSERT INTO tenant (id, name, status, plan, type, branding, trial_ends_at, status_changed_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now()) ON CONFLICT (id) DO NOTHING`,
      [slug, name, more.status ?? 'active', more.plan ?? null, more.type ?? null, JSON.stringify(more.branding ?? {}), more.trialEndsAt ?? null],
    );
    if ((r.rowCount ?? 0) === 0) return undefined;
    // (a statement of `fn` that failed inside a caller that logs and carries on, as an audit record's store does, makes
    // the COMMIT answer ROLLBACK, which admin().tx refuses as an error)
    return { value: await fn(q) };
  });
}

/** Every tenant (the platform catalog's row included), by slug. */
export async function listTenants(db: Db): Promise<TenantRecord[]> {
  return (await db.admin().query<Row>(`SELECT ${COLUMNS} FROM tenant ORDER BY id`)).rows.map(recordOf);
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

/** Fields an administrator may change in place (undefined: unchanged; host null: none; a setting null: unset). */
export interface TenantFields {
  name?: string;
  branding?: Record<string, unknown>;
  host?: string | null;
  settings?: Tenant['settings'];
}

/**
 * Changes the given fields (settings merged into the current ones) in one statement. Returns the record, undefined
 * for an unknown tenant; 409 TENANT_HOST_TAKEN when another tenant has the host name.
 */
export async function updateTenantFields(db: Db, slug: string, f: TenantFields): Promise<TenantRecord | undefined> {
  const r = await db.admin().query<Row>(
    `UPDATE tenant SET name = COALESCE($2, name), branding = COALESCE($3::jsonb, branding),
       host = CASE WHEN $4::boolean THEN $5 ELSE host END, settings = jsonb_strip_nulls(settings || COALESCE($6::jsonb, '{}'::jsonb))
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [slug, f.name ?? null, f.branding ? JSON.stringify(f.branding) : null, f.host !== undefined, f.host ?? null, f.settings ? JSON.stringify(f.settings) : null],
  ).catch((err: unknown) => {
    if ((err as { code?: string }).code === '23505') throw new FhirError('conflict', `Host name '${f.host}' belongs to another tenant`, { code: 'TENANT_HOST_TAKEN', cause: err });
    throw err;
  });
  return r.rows[0] && recordOf(r.rows[0]);
}

/** A plan change: the plan, and the trial's end (set for a trial plan, cleared otherwise). */
export async function setTenantPlan(q: Queryable, slug: string, plan: string, trialEndsAt: Date | null): Promise<TenantRecord | undefined> {
  const r = await q.query<Row>(`UPDATE tenant SET plan = $2, trial_ends_at = $3 WHERE id = $1 RETURNING ${COLUMNS}`, [slug, plan, trialEndsAt]);
  return r.rows[0] && recordOf(r.rows[0]);
}

export interface Transition {
  to: TenantStatus;
  /** The states the tenant may be in for the change to happen. */
  from: readonly TenantStatus[];
  /** A terminated tenant's erasure date. */
  terminateAfter?: Date;
  /** A trial that becomes active leaves its end behind. */
  clearTrial?: boolean;
}

/**
 * Moves a tenant from one of `t.from` to `t.to` in one transaction: the row is locked, then changed by an UPDATE that
 * names the allowed states itself (applyTransition), so two concurrent transitions cannot skip a state (the second
 * sees the first's result). Returns the status before and the record after; `changed: false` with the current record
 * when the tenant is in none of `t.from` (nothing changed), undefined when there is no such tenant.
 */
export async function transitionTenant(db: Db, slug: string, t: Transition): Promise<{ changed: boolean; previous: string; record: TenantRecord } | undefined> {
  return withTenantLocked(db, slug, async (q, before) => {
    const after = await applyTransition(q, slug, t);
    return { changed: !!after, previous: before.status, record: after ?? before };
  });
}

/** The guarded UPDATE of a transition: `WHERE id = $1 AND status = ANY(from)`; undefined when it matched nothing. */
export async function applyTransition(q: Queryable, slug: string, t: Transition): Promise<TenantRecord | undefined> {
  const r = await q.query<Row>(
    `UPDATE tenant SET status = $2, status_changed_at = now(), terminate_after = $4,
       trial_ends_at = CASE WHEN $5::boolean THEN NULL ELSE trial_ends_at END
     WHERE id = $1 AND status = ANY($3::text[]) RETURNING ${COLUMNS}`,
    [slug, t.to, [...t.from], t.terminateAfter ?? null, t.clearTrial ?? false],
  );
  return r.rows[0] && recordOf(r.rows[0]);
}

/** Runs `fn` in one admin transaction with the tenant's row locked (a plan change that may also end a trial). */
export async function withTenantLocked<T>(db: Db, slug: string, fn: (q: Queryable, current: TenantRecord) => Promise<T>): Promise<T | undefined> {
  if (!TENANT_SLUG.test(slug)) return undefined;
  return db.admin().tx(async (q) => {
    const r = await q.query<Row>(`SELECT ${COLUMNS} FROM tenant WHERE id = $1 FOR UPDATE`, [slug]);
    return r.rows[0] ? fn(q, recordOf(r.rows[0])) : undefined;
  });
}
