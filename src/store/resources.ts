// The resource tables: current version, history, and search index rows, written together in one transaction.
// Multi-row statements (unnest over column arrays) keep a 1,000-entry transaction at a handful of round trips.
import { patientsOf, SERVER_AGENT, type AuditAgent, type AuditRecord } from '../core/audit.js';
import type { Db, Queryable } from '../platform/db.js';
import { PLATFORM } from '../core/tenant.js';
import type { IndexRows } from '../search/extract.js';
import { auditInsertSql, ROUTED_INSERT } from './audit.js';

/**
 * The platform catalog (issue 13, docs/catalog.md): the tenant whose resources of CATALOG_TYPES every other tenant
 * reads alongside its own (never writes). migrations/0009_catalog.sql lets their rows through row-level security.
 */
export const CATALOG_TENANT: string = PLATFORM;
export const CATALOG_TYPES: readonly string[] = ['Medication', 'CodeSystem', 'ValueSet', 'ConceptMap', 'StructureDefinition', 'SearchParameter'];
const CATALOG_TYPE_SET = new Set(CATALOG_TYPES);

export function isCatalogType(type: string): boolean {
  return CATALOG_TYPE_SET.has(type);
}

/** Whether `tenantId` reads the platform catalog for (some of) `types`: every tenant but the platform itself does. */
export function readsCatalog(tenantId: string, types: readonly string[]): boolean {
  return tenantId !== CATALOG_TENANT && types.some(isCatalogType);
}

export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  /** The resource JSON as stored (null for a deletion). */
  json: string | null;
  /** True for the platform catalog's row, read by another tenant (it is never written through that tenant). */
  catalog?: boolean;
}

export interface ResourceWrite {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  method: 'POST' | 'PUT' | 'DELETE';
  /** Serialized resource, or null for a delete. */
  json: string | null;
  /** New index rows (ignored for deletes). */
  index: IndexRows | null;
  /** True when a current row may already exist (update/delete); false for a fresh create. */
  replaces: boolean;
  /** The interaction as the audit record names it, when the method does not say (a PATCH is stored as a PUT). */
  interaction?: 'patch';
  /** Patients the version belonged to, when its content does not say (a deletion: the deleted version's). */
  patients?: string[];
  /**
   * The index rows of the version this write replaces, as the server extracts them today. With them, an index table
   * whose rows for the resource do not change is left alone (most updates change a few elements); without them,
   * every index row of the resource is rewritten.
   */
  previousIndex?: IndexRows;
}

/** Who writes, for the audit record each written version gets in the same statement (null: AUDIT_TRAIL is off). */
export interface WriteAudit {
  agent: AuditAgent;
  requestId?: string;
}

type RawRow = { resource_type: string; id: string; version_id: number; last_updated: Date; deleted: boolean; content: string | null; tenant_id?: string };

/** `tenantId`: the reading tenant, when the row may be the catalog's (it carries tenant_id then). */
export function toVersion(r: RawRow, tenantId?: string): StoredVersion {
  const v: StoredVersion = {
    resourceType: r.resource_type,
    id: r.id,
    versionId: r.version_id,
    lastUpdated: r.last_updated,
    deleted: r.deleted,
    json: r.content,
  };
  if (tenantId !== undefined && r.tenant_id !== undefined && r.tenant_id !== tenantId) v.catalog = true;
  return v;
}

const COLS = 'resource_type, id, version_id, last_updated, deleted, content::text AS content';

/**
 * The tenant that owns what `tenantId` sees at type/id (SQL over the parameters named): its own resource when it has
 * a row with that id, else the catalog's. Only for catalog types of a tenant that reads the catalog.
 */
function ownerSql(tenant: string, type: string, id: string, catalog: string): string {
  return `(CASE WHEN EXISTS (SELECT 1 FROM resource o WHERE o.tenant_id = ${tenant} AND o.resource_type = ${type} AND o.id = ${id}) THEN ${tenant} ELSE ${catalog}::text END)`;
}

/**
 * The current version (or the deletion marker) of one resource: for a catalog type, the tenant's own, else the
 * platform catalog's. `lock` (a write's target, held until the transaction ends) reads the tenant's own row only: a
 * catalog row is never written through another tenant (see catalogEntry).
 */
export async function readCurrent(q: Queryable, tenantId: string, type: string, id: string, lock = false): Promise<StoredVersion | undefined> {
  if (!lock && readsCatalog(tenantId, [type])) {
    const shared = await q.query<RawRow>(
      `SELECT tenant_id, ${COLS} FROM resource WHERE tenant_id = ANY($1::text[]) AND resource_type = $2 AND id = $3 ORDER BY tenant_id = $4 DESC LIMIT 1`,
      [[tenantId, CATALOG_TENANT], type, id, tenantId],
    );
    return shared.rows[0] ? toVersion(shared.rows[0], tenantId) : undefined;
  }
  const r = await q.query<RawRow>(
    `SELECT ${COLS} FROM resource WHERE tenant_id = $1 AND resource_type = $2 AND id = $3${lock ? ' FOR UPDATE' : ''}`,
    [tenantId, type, id],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/** The platform catalog's current row at type/id, as `tenantId` would read it (undefined: none, or not a catalog type). */
export async function catalogEntry(q: Queryable, tenantId: string, type: string, id: string): Promise<StoredVersion | undefined> {
  if (!readsCatalog(tenantId, [type])) return undefined;
  const r = await q.query<RawRow>(`SELECT tenant_id, ${COLS} FROM resource WHERE tenant_id = $1 AND resource_type = $2 AND id = $3`, [CATALOG_TENANT, type, id]);
  return r.rows[0] ? toVersion(r.rows[0], tenantId) : undefined;
}

/**
 * The current rows `tenantId` sees at the given "Type/id" keys, deleted ones left out: its own, or for a catalog type
 * with no own row (a deletion marker counts), the platform catalog's.
 */
export async function visibleCurrent(q: Queryable, tenantId: string, refs: { type: string; id: string }[]): Promise<StoredVersion[]> {
  if (refs.length === 0) return [];
  const r = await q.query<RawRow>(
    `SELECT v.* FROM (
       SELECT DISTINCT ON (resource_type, id) tenant_id, ${COLS} FROM resource
        WHERE tenant_id = ANY($1::text[]) AND (tenant_id = $2 OR resource_type = ANY($5::text[]))
          AND (resource_type, id) IN (SELECT * FROM unnest($3::text[], $4::text[]))
        ORDER BY resource_type, id, tenant_id = $2 DESC) v
      WHERE NOT v.deleted`,
    [[tenantId, CATALOG_TENANT], tenantId, refs.map((x) => x.type), refs.map((x) => x.id), CATALOG_TYPES],
  );
  return r.rows.map((row) => toVersion(row, tenantId));
}

/** Which of the given "Type/id" references exist (and are not deleted) in the tenant (or, read by it, the catalog). */
export async function existing(q: Queryable, tenantId: string, refs: { type: string; id: string }[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (refs.length === 0) return out;
  if (readsCatalog(tenantId, refs.map((x) => x.type))) {
    for (const v of await visibleCurrent(q, tenantId, refs)) out.add(`${v.resourceType}/${v.id}`);
    return out;
  }
  const r = await q.query<{ resource_type: string; id: string }>(
    `SELECT resource_type, id FROM resource WHERE tenant_id = $1 AND NOT deleted
       AND (resource_type, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
    [tenantId, refs.map((x) => x.type), refs.map((x) => x.id)],
  );
  for (const row of r.rows) out.add(`${row.resource_type}/${row.id}`);
  return out;
}

/** One version; for a catalog type, of the tenant's own resource when it has one, else of the catalog's. */
export async function readVersion(q: Queryable, tenantId: string, type: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
  if (readsCatalog(tenantId, [type])) {
    const shared = await q.query<RawRow>(
      `SELECT tenant_id, ${COLS} FROM resource_history WHERE tenant_id = ${ownerSql('$1', '$2', '$3', '$5')} AND resource_type = $2 AND id = $3 AND version_id = $4`,
      [tenantId, type, id, versionId, CATALOG_TENANT],
    );
    return shared.rows[0] ? toVersion(shared.rows[0], tenantId) : undefined;
  }
  const r = await q.query<RawRow>(
    `SELECT ${COLS} FROM resource_history WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 AND version_id = $4`,
    [tenantId, type, id, versionId],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/** Each index table and the key of its rows in IndexRows. */
const INDEX_TABLES = [
  ['sp_token', 'token'],
  ['sp_string', 'string'],
  ['sp_reference', 'reference'],
  ['sp_date', 'date'],
  ['sp_number', 'number'],
  ['sp_uri', 'uri'],
  ['sp_composite', 'composite'],
  ['sp_fulltext', 'fulltext'],
] as const;

/** The same rows, in any order (extraction removes duplicates). */
function sameRows(a: readonly unknown[][], b: readonly unknown[][]): boolean {
  if (a.length !== b.length) return false;
  const seen = new Set(a.map((row) => JSON.stringify(row)));
  return b.every((row) => seen.has(JSON.stringify(row)));
}

/** Whether a write leaves the resource's rows in this index table as they are (an update that did not touch them). */
function keepsRows(w: ResourceWrite, key: keyof IndexRows): boolean {
  return w.replaces && w.json !== null && !!w.index && !!w.previousIndex && sameRows(w.previousIndex[key], w.index[key]);
}

/** Column layout of each index table after (tenant_id, resource_type, resource_id, code), with SQL array types. */
const INDEX_COLUMNS: Record<Exclude<keyof IndexRows, 'fulltext'>, { table: string; cols: [string, string][] }> = {
  token: { table: 'sp_token', cols: [['system', 'text'], ['value', 'text']] },
  string: { table: 'sp_string', cols: [['norm', 'text'], ['value', 'text']] },
  reference: { table: 'sp_reference', cols: [['target_type', 'text'], ['target_id', 'text'], ['url', 'text']] },
  date: { table: 'sp_date', cols: [['low', 'timestamptz'], ['high', 'timestamptz']] },
  number: { table: 'sp_number', cols: [['value', 'numeric'], ['system', 'text'], ['unit', 'text']] },
  uri: { table: 'sp_uri', cols: [['value', 'text']] },
  composite: {
    table: 'sp_composite',
    cols: [['system1', 'text'], ['value1', 'text'], ['system2', 'text'], ['value2', 'text'], ['num2', 'numeric'], ['low2', 'timestamptz'], ['high2', 'timestamptz']],
  },
};

/**
 * Writes versions in ONE statement (data-modifying CTEs): current rows (upsert), history rows, removal of the
 * replaced versions' index rows and insertion of the new ones. All parts see the same snapshot, so the DELETEs
 * never touch the rows the INSERTs add. Call inside a transaction.
 *
 * Every INSERT ... SELECT FROM unnest(...) ends in RETURNING (ROUTED_INSERT) although nothing reads it: without it
 * Citus would COPY the rows into the shards, which PostgreSQL refuses under row-level security; with it they go
 * through intermediate results and an INSERT on each shard (issue 16). PostgreSQL discards the unread rows.
 */
export async function writeVersions(q: Queryable, tenantId: string, writes: ResourceWrite[], opts: { indexOnly?: boolean; audit?: WriteAudit | null } = {}): Promise<void> {
  if (writes.length === 0) return;
  const params: unknown[] = [tenantId];
  const p = (v: unknown, type: string) => {
    params.push(v);
    return `$${params.length}::${type}[]`;
  };
  const parts: string[] = [];
  if (!opts.indexOnly) {
    const types = p(writes.map((w) => w.resourceType), 'text');
    const ids = p(writes.map((w) => w.id), 'text');
    const versions = p(writes.map((w) => w.versionId), 'int');
    const times = p(writes.map((w) => w.lastUpdated), 'timestamptz');
    const deleted = p(writes.map((w) => w.json === null), 'bool');
    const contents = p(writes.map((w) => w.json), 'text');
    const methods = p(writes.map((w) => w.method), 'text');
    parts.push(`cur AS (INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, deleted, content)
     SELECT $1, t, i, v, l, d, c::jsonb FROM unnest(${types}, ${ids}, ${versions}, ${times}, ${deleted}, ${contents}) AS u(t, i, v, l, d, c)
     ON CONFLICT (tenant_id, resource_type, id) DO UPDATE
       SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated, deleted = EXCLUDED.deleted, content = EXCLUDED.content)`);
    parts.push(`hist AS (INSERT INTO resource_history (tenant_id, resource_type, id, version_id, last_updated, deleted, method, content)
     SELECT $1, t, i, v, l, d, m, c::jsonb FROM unnest(${types}, ${ids}, ${versions}, ${times}, ${deleted}, ${methods}, ${contents}) AS u(t, i, v, l, d, m, c)
     ${ROUTED_INSERT})`);
    // the change event (transactional outbox, issue 10): in the same statement, so it exists exactly when the version does
    const actions = p(writes.map(actionOf), 'text');
    parts.push(`ob AS (INSERT INTO outbox (tenant_id, resource_type, resource_id, version_id, action)
     SELECT $1, t, i, v, a FROM unnest(${types}, ${ids}, ${versions}, ${actions}) AS u(t, i, v, a) ${ROUTED_INSERT})`);
    // the audit record of each version (issue 12): likewise in the same statement, so no write goes unaudited
    if (opts.audit !== null) parts.push(`au AS (${auditInsertSql(writes.map((w) => auditRecordOf(w, opts.audit ?? undefined)), p)})`);
  }
  // Per index table, the writes whose rows there change: their old rows are deleted and their new rows inserted.
  const rewrites = new Map<keyof IndexRows, ResourceWrite[]>(INDEX_TABLES.map(([, key]) => [key, opts.indexOnly ? writes : writes.filter((w) => !keepsRows(w, key))]));
  // tables that delete the rows of the same resources share their parameters
  const deleteParams = new Map<string, { ids: string; keys: string }>();
  INDEX_TABLES.forEach(([table, key], n) => {
    const replaced = rewrites.get(key)!.filter((w) => opts.indexOnly || w.replaces);
    if (replaced.length === 0) return;
    const keyList = replaced.map((w) => `${w.resourceType}/${w.id}`);
    const memo = keyList.join('\n');
    let dp = deleteParams.get(memo);
    if (!dp) deleteParams.set(memo, (dp = { ids: p(replaced.map((w) => w.id), 'text'), keys: p(keyList, 'text') }));
    // Keyed on resource_id alone (plus a type check) so the planner always takes the primary key, which leads with
    // (tenant_id, resource_id): with an equality on resource_type it may pick the value index and filter a whole
    // type's rows.
    parts.push(`d${n} AS (DELETE FROM ${table} x
       WHERE x.tenant_id = $1 AND x.resource_id = ANY(${dp.ids}) AND (x.resource_type || '/' || x.resource_id) = ANY(${dp.keys}))`);
  });
  for (const [key, spec] of Object.entries(INDEX_COLUMNS) as [Exclude<keyof IndexRows, 'fulltext'>, (typeof INDEX_COLUMNS)['token']][]) {
    const rt: string[] = [];
    const ri: string[] = [];
    const code: string[] = [];
    const cols: unknown[][] = spec.cols.map(() => []);
    for (const w of rewrites.get(key)!) {
      if (!w.index || w.json === null) continue;
      for (const row of w.index[key] as unknown[][]) {
        rt.push(w.resourceType);
        ri.push(w.id);
        code.push(row[0] as string);
        for (let c = 0; c < cols.length; c++) cols[c].push(row[c + 1]);
      }
    }
    if (rt.length === 0) continue;
    const arrays = [p(rt, 'text'), p(ri, 'text'), p(code, 'text'), ...spec.cols.map(([, type], c) => p(cols[c], type))];
    parts.push(`i_${key} AS (INSERT INTO ${spec.table} (tenant_id, resource_type, resource_id, code, ${spec.cols.map(([n]) => n).join(', ')})
       SELECT $1, * FROM unnest(${arrays.join(', ')}) ${ROUTED_INSERT})`);
  }
  const ft = rewrites.get('fulltext')!.filter((w) => w.index && w.json !== null && w.index.fulltext.length);
  if (ft.length) {
    const arrays = [
      p(ft.map((w) => w.resourceType), 'text'),
      p(ft.map((w) => w.id), 'text'),
      p(ft.map((w) => w.index!.fulltext[0][0]), 'text'),
      p(ft.map((w) => w.index!.fulltext[0][1]), 'text'),
    ];
    parts.push(`i_fulltext AS (INSERT INTO sp_fulltext (tenant_id, resource_type, resource_id, narrative, content)
       SELECT $1, t, i, CASE WHEN n = '' THEN NULL ELSE to_tsvector('simple', n) END, to_tsvector('simple', c) FROM unnest(${arrays.join(', ')}) AS u(t, i, n, c) ${ROUTED_INSERT})`);
  }
  // NOTIFY reaches other processes' dispatchers at COMMIT (nothing when the write rolls back). Only tenants with live
  // subscriptions notify: NOTIFY serialises committing transactions, and events nobody subscribed to can wait for the
  // dispatcher's poll (this process wakes its own dispatcher directly).
  const notify = `SELECT pg_notify('${OUTBOX_CHANNEL}', $1) WHERE EXISTS (SELECT 1 FROM subscription_state WHERE tenant_id = $1 AND status <> 'off')`;
  await q.query(`WITH ${parts.join(',\n')} ${opts.indexOnly ? 'SELECT 1' : notify}`, params);
}

/** The LISTEN/NOTIFY channel on which committed writes announce their tenant (payload: the tenant id). */
export const OUTBOX_CHANNEL = 'tenfhir_outbox';

export type ChangeAction = 'create' | 'update' | 'delete';

function actionOf(w: ResourceWrite): ChangeAction {
  if (w.json === null) return 'delete';
  return w.versionId === 1 ? 'create' : 'update';
}

const AUDIT_ACTION = { create: 'C', update: 'U', delete: 'D' } as const;

/** The audit record of one written version: the version written and, for an update or delete, the one it replaced. */
function auditRecordOf(w: ResourceWrite, audit: WriteAudit | undefined): AuditRecord {
  const action = actionOf(w);
  const ref = `${w.resourceType}/${w.id}`;
  const entities = [{ ref, version: w.versionId }];
  if (w.versionId > 1) entities.push({ ref, version: w.versionId - 1 });
  return {
    recorded: w.lastUpdated,
    category: 'rest',
    subtype: w.interaction ?? action,
    action: AUDIT_ACTION[action],
    outcome: 0,
    agent: audit?.agent ?? SERVER_AGENT,
    entities,
    patients: w.patients ?? patientsOf(w.resourceType, w.id, w.json),
    ...(audit?.requestId ? { requestId: audit.requestId } : {}),
  };
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  since?: string;
  /** Versions current at this instant: created at or before it, and not superseded before it. */
  at?: string;
  count: number;
  /** Keyset cursor: continue strictly after this row in (last_updated, type, id, version) descending order. */
  after?: { lastUpdated: string; type: string; id: string; versionId: number };
}

export interface HistoryRow extends StoredVersion {
  method: string;
}

/**
 * History entries, newest first, keyset-paginated. An instance's history of a catalog type is the tenant's own
 * resource's when it has one, else the catalog's; type and system history are the tenant's own (docs/catalog.md).
 */
export async function readHistory(q: Queryable, tenantId: string, h: HistoryQuery): Promise<HistoryRow[]> {
  const where = ['h.tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const shared = !!(h.type && h.id && readsCatalog(tenantId, [h.type]));
  if (shared) {
    const type = p(h.type);
    const id = p(h.id);
    where[0] = `h.tenant_id = ${ownerSql('$1', type, id, p(CATALOG_TENANT))}`;
    where.push(`h.resource_type = ${type}`, `h.id = ${id}`);
  } else {
    if (h.type) where.push(`h.resource_type = ${p(h.type)}`);
    if (h.id) where.push(`h.id = ${p(h.id)}`);
  }
  if (h.since) where.push(`h.last_updated >= ${p(h.since)}::timestamptz`);
  if (h.at) {
    const at = p(h.at);
    where.push(`h.last_updated <= ${at}::timestamptz`);
    where.push(`NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.tenant_id = h.tenant_id AND n.resource_type = h.resource_type
                 AND n.id = h.id AND n.version_id > h.version_id AND n.last_updated <= ${at}::timestamptz)`);
  }
  if (h.after) {
    // Rows sort by (last_updated, type, id, version) descending, so "after" is a row-wise less-than.
    where.push(
      `(h.last_updated, h.resource_type, h.id, h.version_id) < (${p(h.after.lastUpdated)}::timestamptz, ${p(h.after.type)}, ${p(h.after.id)}, ${p(h.after.versionId)})`,
    );
  }
  const r = await q.query<RawRow & { method: string }>(
    `SELECT ${shared ? 'h.tenant_id, ' : ''}h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.method, h.content::text AS content
       FROM resource_history h WHERE ${where.join(' AND ')}
      ORDER BY h.last_updated DESC, h.resource_type DESC, h.id DESC, h.version_id DESC
      LIMIT ${p(h.count + 1)}`,
    params,
  );
  return r.rows.map((row) => ({ ...toVersion(row, tenantId), method: row.method }));
}

/** The current version of one resource, on a connection of its own bound to the tenant (outside FHIR interactions). */
export function currentVersion(db: Db, tenantId: string, type: string, id: string): Promise<StoredVersion | undefined> {
  return db.withTenant(tenantId, (q) => readCurrent(q, tenantId, type, id));
}
