// The audit_event table (migrations/0007_audit.sql, 0008): inserting records (by a write's own statement, or in
// batches from the spool, src/store/audit-spool.ts), searching them for the AuditEvent API, and the retention purge.
import type { AuditRecord, AuditSink } from '../core/audit.js';
import type { Db, Queryable } from '../platform/db.js';

/** The columns of audit_event as parallel arrays, in the order of AUDIT_COLUMNS (for INSERT ... SELECT unnest). */
export const AUDIT_COLUMNS: [string, string][] = [
  ['recorded', 'timestamptz'], ['category', 'text'], ['subtype', 'text'], ['action', 'text'], ['outcome', 'smallint'],
  ['outcome_desc', 'text'], ['user_ref', 'text'], ['user_sub', 'text'], ['client_id', 'text'], ['role', 'text'],
  ['address', 'text'], ['purpose', 'text'], ['entity', 'text'], ['entity_version', 'text'], ['patient', 'text'],
  ['query', 'text'], ['request_id', 'text'], ['detail', 'text'], ['origin', 'text'],
];

/** Separator of list columns passed as one text per row (unnest would flatten a 2-D array): ids never contain it. */
const SEP = '\u001f';

function column(records: AuditRecord[], name: string): unknown[] {
  return records.map((r) => {
    switch (name) {
      case 'recorded': return r.recorded;
      case 'category': return r.category;
      case 'subtype': return r.subtype;
      case 'action': return r.action;
      case 'outcome': return r.outcome;
      case 'outcome_desc': return r.outcomeDesc?.slice(0, 2000) ?? null;
      case 'user_ref': return r.agent.userRef ?? null;
      case 'user_sub': return r.agent.userSub ?? null;
      case 'client_id': return r.agent.clientId ?? null;
      case 'role': return r.agent.role ?? null;
      case 'address': return r.agent.address ?? null;
      case 'purpose': return r.agent.purposeOfUse?.join(SEP) ?? null;
      case 'entity': return (r.entities ?? []).map((e) => e.ref).join(SEP);
      case 'entity_version': return (r.entities ?? []).map((e) => e.version ?? 0).join(SEP);
      case 'patient': return (r.patients ?? []).join(SEP);
      case 'query': return r.query?.slice(0, 4000) ?? null;
      case 'request_id': return r.requestId ?? null;
      case 'detail': return r.detail ? JSON.stringify(r.detail) : null;
      case 'origin': return r.origin ?? null;
      default: throw new Error(`audit column ${name}`);
    }
  });
}

/**
 * The end of an INSERT ... SELECT into a tenant table whose SELECT reads no distributed table (unnest over parameters).
 * Citus COPYs the rows of such a statement into the shards, which PostgreSQL refuses under row-level security;
 * RETURNING sends them through intermediate results and an INSERT on each shard instead (issue 16). On PostgreSQL it
 * costs one constant per row, discarded unread in a CTE. tests/unit/citus-rules.test.ts holds every statement to it.
 */
export const ROUTED_INSERT = 'RETURNING 1';

/**
 * The INSERT of `records` as SQL text over parameters pushed with `p` (tenant in $1): a statement of its own, or a
 * data-modifying CTE of a write's statement (src/store/resources.ts).
 */
export function auditInsertSql(records: AuditRecord[], p: (v: unknown, type: string) => string): string {
  const arrays = AUDIT_COLUMNS.map(([name, type]) => p(column(records, name), type));
  return `INSERT INTO audit_event (tenant_id, ${AUDIT_COLUMNS.map(([n]) => n).join(', ')})
    SELECT $1, ${AUDIT_COLUMNS.map(([n]) => columnSql(n, `u.${n}`)).join(', ')}
      FROM unnest(${arrays.join(', ')}) AS u(${AUDIT_COLUMNS.map(([n]) => n).join(', ')})
    ${ROUTED_INSERT}`;
}

/** A column's value as stored, from `v` (an SQL expression of its AUDIT_COLUMNS type): lists split, detail as jsonb. */
function columnSql(name: string, v: string): string {
  const split = `CASE WHEN ${v} IS NULL OR ${v} = '' THEN '{}'::text[] ELSE string_to_array(${v}, E'\\x1f') END`;
  switch (name) {
    case 'purpose': return `CASE WHEN ${v} IS NULL THEN NULL ELSE string_to_array(${v}, E'\\x1f') END`;
    case 'entity': case 'patient': return split;
    case 'entity_version': return `(${split})::integer[]`;
    case 'detail': return `${v}::jsonb`;
    default: return v;
  }
}

export async function insertAudit(q: Queryable, tenantId: string, records: AuditRecord[]): Promise<void> {
  if (!records.length) return;
  const params: unknown[] = [tenantId];
  const p = (v: unknown, type: string) => {
    params.push(v);
    return `$${params.length}::${type}[]`;
  };
  await q.query(auditInsertSql(records, p), params);
}

/** The sink when AUDIT_TRAIL is off (measuring what auditing costs). */
export const NO_AUDIT: AuditSink = { record: () => Promise.resolve(), settle: () => Promise.resolve(), close: () => Promise.resolve() };

/**
 * Which of the records (each with its spool origin) are stored already: looked up within their time span, on the
 * (tenant_id, recorded) index, so recovering a spool file never stores a record twice.
 */
export async function storedOrigins(q: Queryable, tenantId: string, records: AuditRecord[]): Promise<Set<string>> {
  const times = records.map((r) => Date.parse(r.recorded)).filter(Number.isFinite);
  if (!times.length) return new Set();
  const r = await q.query<{ origin: string }>(
    `SELECT origin FROM audit_event WHERE tenant_id = $1 AND recorded BETWEEN $2 AND $3 AND origin = ANY($4::text[])`,
    [tenantId, new Date(Math.min(...times)).toISOString(), new Date(Math.max(...times)).toISOString(), records.map((x) => x.origin)],
  );
  return new Set(r.rows.map((x) => x.origin));
}

export type AuditRow = {
  seq: string;
  recorded: Date;
  category: string;
  subtype: string;
  action: string;
  outcome: number;
  outcome_desc: string | null;
  user_ref: string | null;
  user_sub: string | null;
  client_id: string | null;
  role: string | null;
  address: string | null;
  purpose: string[] | null;
  entity: string[];
  entity_version: number[];
  patient: string[];
  query: string | null;
  request_id: string | null;
  detail: Record<string, unknown> | null;
};

/** One condition of an audit search: values ORed (a comma list); conditions ANDed. */
export type AuditCondition =
  | { kind: 'seq'; values: string[] }
  | { kind: 'patient' | 'entity' | 'user_ref' | 'user_sub' | 'client_id' | 'action' | 'category' | 'subtype' | 'address' | 'role'; values: string[] }
  | { kind: 'outcome'; values: number[] }
  | { kind: 'recorded'; op: 'gt' | 'ge' | 'lt' | 'le'; value: string }
  | { kind: 'none' };

export interface AuditQuery {
  conditions: AuditCondition[];
  /** Restriction by authorization: only records about this patient. */
  patient?: string;
  ascending: boolean;
  count: number;
  /** Keyset: continue strictly after this (recorded, seq) in the sort order. */
  after?: { recorded: string; seq: string };
}

const ARRAY_COLUMNS = new Set(['patient', 'entity']);

function where(q: AuditQuery, params: unknown[]): string[] {
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const out = ['tenant_id = $1'];
  if (q.patient !== undefined) out.push(`patient && ARRAY[${p(q.patient)}::text]`);
  for (const c of q.conditions) {
    switch (c.kind) {
      case 'none':
        out.push('false');
        break;
      case 'seq':
        out.push(`seq = ANY(${p(c.values.filter((v) => /^\d{1,18}$/.test(v)))}::bigint[])`);
        break;
      case 'outcome':
        out.push(`outcome = ANY(${p(c.values)}::smallint[])`);
        break;
      case 'recorded': {
        const op = { gt: '>', ge: '>=', lt: '<', le: '<=' }[c.op];
        out.push(`recorded ${op} ${p(c.value)}::timestamptz`);
        break;
      }
      default:
        // column names come from the fixed kinds above
        out.push(ARRAY_COLUMNS.has(c.kind) ? `${c.kind} && ${p(c.values)}::text[]` : `${c.kind} = ANY(${p(c.values)}::text[])`);
    }
  }
  return out;
}

const ROW_COLS = `seq::text AS seq, recorded, category, subtype, action, outcome, outcome_desc, user_ref, user_sub, client_id, role, address,
  purpose, entity, entity_version, patient, query, request_id, detail`;

/** A page of records (count + 1 rows: the extra one says there is more), newest first unless `ascending`. */
export async function searchAudit(q: Queryable, tenantId: string, query: AuditQuery): Promise<AuditRow[]> {
  const params: unknown[] = [tenantId];
  const conds = where(query, params);
  const dir = query.ascending ? 'ASC' : 'DESC';
  if (query.after) {
    params.push(query.after.recorded, query.after.seq);
    conds.push(`(recorded, seq) ${query.ascending ? '>' : '<'} ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  }
  params.push(query.count + 1);
  const r = await q.query<AuditRow>(
    `SELECT ${ROW_COLS} FROM audit_event WHERE ${conds.join(' AND ')} ORDER BY recorded ${dir}, seq ${dir} LIMIT $${params.length}`,
    params,
  );
  return r.rows;
}

export async function countAudit(q: Queryable, tenantId: string, query: AuditQuery): Promise<number> {
  const params: unknown[] = [tenantId];
  const r = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM audit_event WHERE ${where(query, params).join(' AND ')}`, params);
  return Number(r.rows[0].n);
}

export async function readAudit(q: Queryable, tenantId: string, seq: string): Promise<AuditRow | undefined> {
  if (!/^\d{1,18}$/.test(seq)) return undefined;
  const r = await q.query<AuditRow>(`SELECT ${ROW_COLS} FROM audit_event WHERE tenant_id = $1 AND seq = $2::bigint`, [tenantId, seq]);
  return r.rows[0];
}

/**
 * Deletes a tenant's records recorded before `before`, on the owner's connection (the application role cannot
 * delete audit records), in slices so a purge of years never holds one long transaction. Returns how many went.
 */
export async function purgeAudit(db: Db, tenantId: string, before: Date, slice = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await db.admin().query(
      `DELETE FROM audit_event WHERE tenant_id = $1 AND seq IN (
         SELECT seq FROM audit_event WHERE tenant_id = $1 AND recorded < $2 ORDER BY recorded LIMIT $3)`,
      [tenantId, before.toISOString(), slice],
    );
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < slice) return total;
  }
}

/** Tenants with their audit retention (days; null: the configured default), for the purge. */
export async function auditRetentions(db: Db): Promise<{ tenantId: string; days: number | null }[]> {
  const r = await db.admin().query<{ id: string; days: string | null }>(
    `SELECT id, settings->>'auditRetentionDays' AS days FROM tenant ORDER BY id`,
  );
  return r.rows.map((row) => ({ tenantId: row.id, days: row.days === null ? null : Number(row.days) }));
}
