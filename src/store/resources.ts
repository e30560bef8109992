// The resource tables: current version, history, and search index rows, written together in one transaction.
// Multi-row statements (unnest over column arrays) keep a 1,000-entry transaction at a handful of round trips.
import type { Queryable } from '../platform/db.js';
import type { IndexRows } from '../search/extract.js';

export interface StoredVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  /** The resource JSON as stored (null for a deletion). */
  json: string | null;
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
}

type RawRow = { resource_type: string; id: string; version_id: number; last_updated: Date; deleted: boolean; content: string | null };

function toVersion(r: RawRow): StoredVersion {
  return {
    resourceType: r.resource_type,
    id: r.id,
    versionId: r.version_id,
    lastUpdated: r.last_updated,
    deleted: r.deleted,
    json: r.content,
  };
}

const COLS = 'resource_type, id, version_id, last_updated, deleted, content::text AS content';

/** The current version (or the deletion marker) of one resource. */
export async function readCurrent(q: Queryable, tenantId: string, type: string, id: string, lock = false): Promise<StoredVersion | undefined> {
  const r = await q.query<RawRow>(
    `SELECT ${COLS} FROM resource WHERE tenant_id = $1 AND resource_type = $2 AND id = $3${lock ? ' FOR UPDATE' : ''}`,
    [tenantId, type, id],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

/** Current versions of many resources at once (keys are "Type/id"). */
export async function readMany(q: Queryable, tenantId: string, refs: { type: string; id: string }[]): Promise<Map<string, StoredVersion>> {
  const out = new Map<string, StoredVersion>();
  if (refs.length === 0) return out;
  const r = await q.query<RawRow>(
    `SELECT ${COLS} FROM resource WHERE tenant_id = $1 AND (resource_type, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
    [tenantId, refs.map((x) => x.type), refs.map((x) => x.id)],
  );
  for (const row of r.rows) out.set(`${row.resource_type}/${row.id}`, toVersion(row));
  return out;
}

/** Which of the given "Type/id" references exist (and are not deleted) in the tenant. */
export async function existing(q: Queryable, tenantId: string, refs: { type: string; id: string }[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (refs.length === 0) return out;
  const r = await q.query<{ resource_type: string; id: string }>(
    `SELECT resource_type, id FROM resource WHERE tenant_id = $1 AND NOT deleted
       AND (resource_type, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
    [tenantId, refs.map((x) => x.type), refs.map((x) => x.id)],
  );
  for (const row of r.rows) out.add(`${row.resource_type}/${row.id}`);
  return out;
}

export async function readVersion(q: Queryable, tenantId: string, type: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
  const r = await q.query<RawRow>(
    `SELECT ${COLS} FROM resource_history WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 AND version_id = $4`,
    [tenantId, type, id, versionId],
  );
  return r.rows[0] ? toVersion(r.rows[0]) : undefined;
}

const INDEX_TABLES = ['sp_token', 'sp_string', 'sp_reference', 'sp_date', 'sp_number', 'sp_uri'] as const;

/** Writes versions: current rows (upsert), history rows, and replaces index rows. Call inside a transaction. */
export async function writeVersions(q: Queryable, tenantId: string, writes: ResourceWrite[]): Promise<void> {
  if (writes.length === 0) return;
  const types = writes.map((w) => w.resourceType);
  const ids = writes.map((w) => w.id);
  const versions = writes.map((w) => w.versionId);
  const times = writes.map((w) => w.lastUpdated);
  const deleted = writes.map((w) => w.json === null);
  const contents = writes.map((w) => w.json);
  await q.query(
    `INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, deleted, content)
     SELECT $1, t, i, v, l, d, c::jsonb FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::bool[], $7::text[]) AS u(t, i, v, l, d, c)
     ON CONFLICT (tenant_id, resource_type, id) DO UPDATE
       SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated, deleted = EXCLUDED.deleted, content = EXCLUDED.content`,
    [tenantId, types, ids, versions, times, deleted, contents],
  );
  await q.query(
    `INSERT INTO resource_history (tenant_id, resource_type, id, version_id, last_updated, deleted, method, content)
     SELECT $1, t, i, v, l, d, m, c::jsonb FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::bool[], $7::text[], $8::text[]) AS u(t, i, v, l, d, m, c)`,
    [tenantId, types, ids, versions, times, deleted, writes.map((w) => w.method), contents],
  );
  const replaced = writes.filter((w) => w.replaces);
  if (replaced.length) {
    const rt = replaced.map((w) => w.resourceType);
    const ri = replaced.map((w) => w.id);
    for (const table of INDEX_TABLES) {
      await q.query(
        `DELETE FROM ${table} WHERE tenant_id = $1 AND (resource_type, resource_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
        [tenantId, rt, ri],
      );
    }
  }
  await insertIndexRows(q, tenantId, writes);
}

async function insertIndexRows(q: Queryable, tenantId: string, writes: ResourceWrite[]): Promise<void> {
  const cols = {
    token: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as (string | null)[], b: [] as (string | null)[] },
    string: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as string[], b: [] as string[] },
    reference: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as (string | null)[], b: [] as (string | null)[], d: [] as (string | null)[] },
    date: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as (string | null)[], b: [] as (string | null)[] },
    number: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as number[], b: [] as (string | null)[], d: [] as (string | null)[] },
    uri: { t: [] as string[], i: [] as string[], c: [] as string[], a: [] as string[] },
  };
  for (const w of writes) {
    if (!w.index || w.json === null) continue;
    const x = w.index;
    for (const [c, a, b] of x.token) push(cols.token, w, c, { a, b });
    for (const [c, a, b] of x.string) push(cols.string, w, c, { a, b });
    for (const [c, a, b, d] of x.reference) push(cols.reference, w, c, { a, b, d });
    for (const [c, a, b] of x.date) push(cols.date, w, c, { a, b });
    for (const [c, a, b, d] of x.number) push(cols.number, w, c, { a, b, d });
    for (const [c, a] of x.uri) push(cols.uri, w, c, { a });
  }
  const k = cols;
  if (k.token.t.length)
    await q.query(
      `INSERT INTO sp_token (tenant_id, resource_type, resource_id, code, system, value)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
      [tenantId, k.token.t, k.token.i, k.token.c, k.token.a, k.token.b],
    );
  if (k.string.t.length)
    await q.query(
      `INSERT INTO sp_string (tenant_id, resource_type, resource_id, code, norm, value)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
      [tenantId, k.string.t, k.string.i, k.string.c, k.string.a, k.string.b],
    );
  if (k.reference.t.length)
    await q.query(
      `INSERT INTO sp_reference (tenant_id, resource_type, resource_id, code, target_type, target_id, url)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
      [tenantId, k.reference.t, k.reference.i, k.reference.c, k.reference.a, k.reference.b, k.reference.d],
    );
  if (k.date.t.length)
    await q.query(
      `INSERT INTO sp_date (tenant_id, resource_type, resource_id, code, low, high)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])`,
      [tenantId, k.date.t, k.date.i, k.date.c, k.date.a, k.date.b],
    );
  if (k.number.t.length)
    await q.query(
      `INSERT INTO sp_number (tenant_id, resource_type, resource_id, code, value, system, unit)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::text[])`,
      [tenantId, k.number.t, k.number.i, k.number.c, k.number.a, k.number.b, k.number.d],
    );
  if (k.uri.t.length)
    await q.query(
      `INSERT INTO sp_uri (tenant_id, resource_type, resource_id, code, value)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])`,
      [tenantId, k.uri.t, k.uri.i, k.uri.c, k.uri.a],
    );
}

function push(
  target: { t: string[]; i: string[]; c: string[]; [col: string]: unknown[] },
  w: ResourceWrite,
  code: string,
  values: Record<string, unknown>,
): void {
  target.t.push(w.resourceType);
  target.i.push(w.id);
  target.c.push(code);
  for (const [col, v] of Object.entries(values)) (target[col] as unknown[]).push(v);
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

/** History entries, newest first, keyset-paginated. */
export async function readHistory(q: Queryable, tenantId: string, h: HistoryQuery): Promise<HistoryRow[]> {
  const where = ['h.tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (h.type) where.push(`h.resource_type = ${p(h.type)}`);
  if (h.id) where.push(`h.id = ${p(h.id)}`);
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
    `SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.method, h.content::text AS content
       FROM resource_history h WHERE ${where.join(' AND ')}
      ORDER BY h.last_updated DESC, h.resource_type DESC, h.id DESC, h.version_id DESC
      LIMIT ${p(h.count + 1)}`,
    params,
  );
  return r.rows.map((row) => ({ ...toVersion(row), method: row.method }));
}
