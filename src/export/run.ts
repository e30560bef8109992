// One Bulk Data export job, run in a worker (Bulk 2.0 export.html): for each type, keyset batches in id order as of
// the snapshot (transactionTime), shaped for the caller (its current access, rebuilt from the job row; _elements;
// element limits), written to NDJSON files of at most EXPORT_FILE_MAX_RESOURCES. With _since, each type's output is
// followed by its deletions since then (the manifest's `deleted`: one transaction Bundle with one DELETE entry per
// resource). After each file the cursor is stored in the job row, so a resumed run continues exactly after the last
// file it recorded: nothing twice, nothing missed.
import { r4ResourceTypes } from '../core/definitions.js';
import type { Deps } from '../core/deps.js';
import type { Guard, GuardDecision } from '../core/guard.js';
import { isServing } from '../core/tenant.js';
import { isInPatientCompartment, patientCompartment } from '../fhir/compartment.js';
import type { FhirContext } from '../fhir/context.js';
import { authorizeSearch, versionInRegion } from '../fhir/guard.js';
import { shapeResource } from '../fhir/subset.js';
import { extractIndexRows } from '../search/extract.js';
import { planSearch, type Restriction, type SearchPlan } from '../search/plan.js';
import { advanceExport, deletedBatch, exportBatch, statesAt, touchExport, type ByTarget, type LiftedPlan } from '../store/export.js';
import { failJob, findJob } from '../store/jobs.js';
import { TenantStore, type TenantSession } from '../store/session.js';
import { findTenant } from '../store/tenants.js';
import { ownerAccess } from '../subscriptions/owner.js';
import { serviceLevel } from '../tenancy/lifecycle.js';
import { outcome, type ExportParams } from './job.js';
import { alternativesHold } from './criteria.js';
import type { ExportFileWriter, ExportStorage } from './storage.js';

/** How a run ended: finished (or nothing left to do), or interrupted (shutdown: the queue runs it again). */
export type RunEnd = 'done' | 'interrupted';

/** Most rows of one database read (embedded: small, so requests keep their turn on the one in-process database). */
function batchSize(deps: Deps): number {
  return deps.db.kind === 'pglite' ? 50 : 1000;
}

/**
 * About how much text one read may bring (the run holds at most two reads): the rows of the next read are cut to fit
 * by the size of the rows so far, so memory stays flat whether resources are 1 kB or 1 MB. The first read of a file
 * is small until the size is known.
 */
const BATCH_BYTES = 4 * 1024 * 1024;
const FIRST_BATCH = 100;

function pause(deps: Deps): Promise<void> {
  return new Promise((r) => setTimeout(r, deps.db.kind === 'pglite' ? 5 : 0));
}

/** The caller's context, as a request of it would have now (its client and user re-checked). */
async function callerContext(deps: Deps, tenantId: string, id: string, p: ExportParams): Promise<FhirContext | string> {
  const tenant = await findTenant(deps.db, tenantId);
  // a read-only tenant exports as before; a suspended one only for its administrators (to take its data out)
  if (!isServing(tenant)) return 'the tenant no longer exists';
  if (serviceLevel(tenant, deps.clock()) === 'suspended' && p.caller.role !== 'tenant-admin') return 'the tenant is suspended';
  const access = await ownerAccess(deps, tenantId, p.caller);
  if ('revoked' in access) return access.revoked.replace('subscription', 'export');
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${tenantId}`;
  const guard: Guard = access.guard;
  return {
    deps, tenant, baseUrl, guard, caller: p.caller,
    store: new TenantStore(deps.db, tenantId, baseUrl, undefined, deps.config.auditTrail ? undefined : null),
    registry: await deps.searchParams.forTenant(tenantId),
    requestId: `export-${id}`,
    log: deps.log.child({ tenantId, jobId: id }),
  };
}

type Check = (json: string | null) => boolean;

interface TypeScan {
  plans: SearchPlan[];
  /** The in-memory twins of `plans` (one each, in the same order). */
  checks: Check[];
  /**
   * In-memory checks of a version changed after the snapshot, or of a deleted resource's last version (judged on its
   * own content; fail closed). `holds(null)` is true only when nothing restricts the type (no content needed).
   */
  holds: Check;
  /** Provenance at Patient and Group level: also the ones whose target lies in the exported compartments. */
  byTarget?: ByTarget & {
    /** Parallel to `checks`: the check with its Patient compartments lifted, and those patients. */
    liftedChecks: ({ check: Check; patients: string[] } | undefined)[];
  };
  elements?: string[];
  limit?: string[];
}

/** A plan without the Patient compartments that confine `type` (undefined when none does). */
function liftPlan(plan: SearchPlan, type: string): LiftedPlan | undefined {
  const r = plan.restrictions?.[type];
  if (!r) return undefined;
  const patients = new Set<string>();
  if (r.compartment) patients.add(r.compartment.id);
  for (const alt of r.anyOf ?? []) if (alt.compartment) patients.add(alt.compartment.id);
  if (!patients.size) return undefined;
  const lifted: Restriction = r.anyOf ? { anyOf: r.anyOf.map((alt) => ({ criteria: alt.criteria })) } : {};
  return { plan: { ...plan, restrictions: { ...plan.restrictions, [type]: lifted } }, patients: [...patients] };
}

/** The same for a decision judged in memory (its filters kept, their compartments lifted). */
function liftDecision(ctx: FhirContext, type: string, d: GuardDecision): { check: Check; patients: string[] } | undefined {
  const patients = new Set<string>();
  if (d.compartment) patients.add(d.compartment.patientId);
  for (const f of d.searchFilters ?? []) if (f.compartment) patients.add(f.compartment.patientId);
  if (!patients.size) return undefined;
  const lifted: GuardDecision = { allow: true, ...(d.searchFilters ? { searchFilters: d.searchFilters.map((f) => ({ params: f.params })) } : {}) };
  return { check: (json) => versionInRegion(ctx, type, json, lifted), patients: [...patients] };
}

/**
 * The types a Provenance's target may have to bring it into the export: members of the Patient compartment the
 * caller may search with no filter (a Patient also under `_id` filters: the patient in context). Targets of a type
 * the caller sees only through a granular filter do not count (fail closed: the target itself is not judged).
 */
function targetTypes(ctx: FhirContext): string[] {
  return [...r4ResourceTypes()].filter((t) => {
    if (t !== 'Patient' && !isInPatientCompartment(t)) return false;
    const d = ctx.guard.forType(t, 's');
    return d.allow && (!d.searchFilters || (t === 'Patient' && d.searchFilters.every((f) => f.params.every(([k]) => k === '_id'))));
  });
}

/** The SQL plans and in-memory checks of one type: the caller's region, _typeFilter, the Group's members. */
function scanOf(ctx: FhirContext, p: ExportParams, type: string): TypeScan {
  const base = planSearch(ctx.registry, type, { strict: true, params: [], now: ctx.deps.clock() });
  const limits = authorizeSearch(ctx, base, { interaction: 'search-type', resourceType: type }, 's');
  const plans: SearchPlan[] = [base];
  const decision = ctx.guard.forType(type, 's');
  // each plan's in-memory twin, and the same with its Patient compartments lifted (for Provenance by target)
  const checks: Check[] = [(json) => versionInRegion(ctx, type, json, decision)];
  const liftedChecks: ({ check: Check; patients: string[] } | undefined)[] = [liftDecision(ctx, type, decision)];
  const filters = p.typeFilter?.[type];
  const members = p.level === 'group' ? (p.members ?? []) : undefined;
  if (filters || members) {
    const alternatives: Restriction['anyOf'] = [];
    for (const params of filters ?? [[]]) {
      const criteria = params.length ? planSearch(ctx.registry, type, { strict: true, params, now: ctx.deps.clock() }).criteria : [];
      if (!members) alternatives.push({ criteria });
      else for (const m of members) alternatives.push({ criteria, compartment: { ...patientCompartment(m, [type]), includeSelf: type === 'Patient' } });
    }
    plans.push({ ...base, criteria: [], restrictions: { [type]: { anyOf: alternatives } } });
    // the same alternatives judged on the historic version (every criterion the SQL search understands, but chains,
    // _has, full text and composites: those fail closed)
    checks.push((json) => alternativesHold(ctx.registry, ctx.baseUrl, type, json, alternatives));
    const open = alternatives.map((alt) => ({ criteria: alt.criteria }));
    liftedChecks.push(members?.length ? { check: (json) => alternativesHold(ctx.registry, ctx.baseUrl, type, json, open), patients: members } : undefined);
  }
  // Bulk 2.0 (includeAssociatedData not supported): a Patient- or Group-level export has every Provenance whose
  // target is in the exported compartments, not only those naming the patient
  let byTarget: TypeScan['byTarget'];
  const lifted = type === 'Provenance' && p.level !== 'system' ? plans.map((plan) => liftPlan(plan, type)) : [];
  if (lifted.some(Boolean)) {
    byTarget = {
      lifted,
      liftedChecks,
      targetTypes: targetTypes(ctx),
      compartmentParams: patientCompartment('-').params,
    };
  }
  const elements = p.elements ? p.elements.filter((e) => !e.includes('.') || e.startsWith(`${type}.`)) : undefined;
  const scoped = p.elements?.some((e) => e.includes('.')) && !elements?.length;
  return {
    plans,
    checks,
    holds: (json) => checks.every((c) => c(json)),
    ...(byTarget ? { byTarget } : {}),
    ...(elements?.length && !scoped ? { elements } : {}),
    ...(limits.get(type) ? { limit: limits.get(type) } : {}),
  };
}

/** A step of a run: one type's resources (`output`), then, with _since, its deletions (`deleted`). */
type Phase = 'output' | 'deleted';

/** The job row's cursor: the type, the last id scanned of it, and 'deleted' in that type's deletion step. */
type Cursor = [type: string, afterId: string] | [type: string, afterId: string, phase: 'deleted'];

/**
 * The file's name: type and a sequence number (deterministic, so a resumed chunk replaces its half-written twin);
 * deletion files `Type-deleted-n.ndjson` (no resource type has a '-').
 */
function fileName(p: ExportParams, type: string, phase: Phase): string {
  if (phase === 'output') return `${type}-${p.output.filter((o) => o.type === type).length + 1}.ndjson`;
  const prefix = `${type}-deleted-`;
  return `${prefix}${(p.deleted ?? []).filter((o) => o.name.startsWith(prefix)).length + 1}.ndjson`;
}

/** Runs (or resumes) the export until done, cancelled, or interrupted by `signal`. */
export async function runExport(deps: Deps, storage: ExportStorage, tenantId: string, id: string, signal: AbortSignal): Promise<RunEnd> {
  const job = await findJob(deps.db, tenantId, id);
  if (!job || job.kind !== 'export' || job.status !== 'running') return 'done';
  const p = job.params as unknown as ExportParams;
  const ctx = await callerContext(deps, tenantId, id, p);
  if (typeof ctx === 'string') {
    await failJob(deps.db, tenantId, id, ctx);
    return 'done';
  }
  p.deleted ??= [];
  const phases: Phase[] = p.since ? ['output', 'deleted'] : ['output'];
  let cursor: Cursor = (job.cursor as Cursor | null) ?? [p.types[0] ?? '', ''];
  const maxFile = deps.config.exportFileMaxResources;
  const first = Math.max(0, p.types.indexOf(cursor[0]));
  let afterId = p.types[first] === cursor[0] ? cursor[1] : '';
  let ph = p.types[first] === cursor[0] && cursor[2] === 'deleted' && p.since ? 1 : 0;
  for (let t = first; t < p.types.length; t++, ph = 0) {
    const type = p.types[t];
    const scan = scanOf(ctx, p, type);
    for (; ph < phases.length; ph++, afterId = '') {
      const phase = phases[ph];
      const files = phase === 'output' ? p.output : p.deleted;
      const source = phase === 'output' ? outputLines(ctx, p, type, scan) : deletionLines(ctx, p, type, scan);
      for (;;) {
        const name = fileName(p, type, phase);
        const chunk = await writeChunk(ctx, storage, source, afterId, maxFile, signal, tenantId, id, name);
        if (chunk === 'interrupted' || chunk === 'cancelled') {
          if (chunk === 'cancelled') await storage.delete(tenantId, id).catch(() => undefined);
          return chunk === 'interrupted' ? 'interrupted' : 'done';
        }
        if ('failed' in chunk) {
          const what = phase === 'output' ? `The ${type} export file` : `The file of ${type} deletions`;
          p.errors.push(outcome('error', 'exception', `${what} could not be written (storage failure); the export stopped there`));
          ctx.log.warn({ err: chunk.failed, resourceType: type }, 'export file could not be written');
          p.completedAt = new Date().toISOString();
          if (!(await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, cursor, 0, true))) await storage.delete(tenantId, id).catch(() => undefined);
          return 'done';
        }
        if (chunk.count) files.push({ type: phase === 'output' ? type : 'Bundle', name, count: chunk.count });
        const stepDone = !chunk.more;
        const last = stepDone && t === p.types.length - 1 && ph === phases.length - 1;
        if (!stepDone) cursor = phase === 'deleted' ? [type, chunk.lastId, 'deleted'] : [type, chunk.lastId];
        else cursor = ph + 1 < phases.length ? [type, '', 'deleted'] : [p.types[t + 1] ?? type, ''];
        if (last) p.completedAt = new Date().toISOString();
        if (!(await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, cursor, chunk.count, last))) {
          await storage.delete(tenantId, id).catch(() => undefined);
          return 'done';
        }
        afterId = chunk.lastId;
        if (stepDone) break;
      }
    }
  }
  if (!p.types.length) {
    p.completedAt = new Date().toISOString();
    await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, null, 0, true);
  }
  return 'done';
}

/**
 * One batch of a step, read from the database: `rows` rows scanned (an upper bound of its lines), the scan stopped at
 * `lastId` and may go on (`more`); render() makes its NDJSON text (`count` lines).
 */
interface Batch {
  rows: number;
  lastId?: string;
  more: boolean;
  render(): { text: string; count: number };
}

/** Reads the next batch of a step after `afterId` (at most `limit` rows scanned). */
type LineSource = (afterId: string, limit: number) => Promise<Batch>;

/** A batch read from the store as a Batch: its admitted rows (`keep`), each one NDJSON line of `line` when rendered. */
function batchOf<R>(read: { rows: R[]; lastId?: string; more: boolean; keep: boolean[] }, line: (row: R) => string): Batch {
  return {
    rows: read.rows.length,
    ...(read.lastId !== undefined ? { lastId: read.lastId } : {}),
    more: read.more,
    render() {
      let text = '';
      let count = 0;
      for (const [i, row] of read.rows.entries()) {
        if (!read.keep[i]) continue;
        text += `${line(row)}\n`;
        count++;
      }
      return { text, count };
    },
  };
}

/**
 * One version to admit: judged on its own content (`historic`: a version of the snapshot read from history, or a
 * deleted resource's last version), or a current row that SQL matched, with the plans it met only lifted (`pending`).
 */
interface Candidate {
  json: string | null;
  historic: boolean;
  pending?: number[];
}

/**
 * Which candidates belong in the export. Only a Provenance at Patient or Group level (scan.byTarget) needs more than
 * its own content: whether one of its targets lay, at the snapshot, in a lifted plan's compartments (read in one query
 * per batch; a target changed since the snapshot is judged on its version then).
 */
async function admit(ctx: FhirContext, s: TenantSession, scan: TypeScan, transactionTime: string, list: Candidate[]): Promise<boolean[]> {
  const out = list.map((c) => (c.historic ? scan.holds(c.json) : !c.pending?.length));
  const bt = scan.byTarget;
  if (!bt) return out;
  const targets = new Map<number, string[]>();
  for (const [i, c] of list.entries()) {
    if (out[i] || c.json === null) continue;
    const rows = extractIndexRows(ctx.registry, JSON.parse(c.json) as Record<string, unknown>, ctx.baseUrl).reference;
    const keys = rows.filter(([code, t, id]) => code === 'target' && t !== null && id !== null && bt.targetTypes.includes(t)).map(([, t, id]) => `${t}/${id}`);
    if (keys.length) targets.set(i, keys);
  }
  if (!targets.size) return out;
  const keys = [...new Set([...targets.values()].flat())];
  const states = await statesAt(s.q, ctx.tenant.id, keys.map((k) => k.split('/') as [string, string]), transactionTime, bt.compartmentParams);
  const patientsOf = new Map<string, Set<string>>();
  for (const key of keys) {
    const [type, id] = key.split('/');
    const st = states.get(key);
    const ids = new Set<string>();
    if (st && type === 'Patient') ids.add(id);
    if (st && 'patients' in st) st.patients.forEach((x) => ids.add(x));
    else if (st) {
      for (const [code, t, target] of extractIndexRows(ctx.registry, JSON.parse(st.json) as Record<string, unknown>, ctx.baseUrl).reference) {
        if (t === 'Patient' && target !== null && bt.compartmentParams.includes(`${type}:${code}`)) ids.add(target);
      }
    }
    patientsOf.set(key, ids);
  }
  const reaches = (keys: string[], patients: string[]) => keys.some((k) => patients.some((x) => patientsOf.get(k)?.has(x)));
  for (const [i, keys] of targets) {
    const c = list[i];
    if (c.historic) {
      out[i] = scan.checks.every((check, k) => {
        if (check(c.json)) return true;
        const l = bt.liftedChecks[k];
        return !!l && l.check(c.json) && reaches(keys, l.patients);
      });
    } else out[i] = c.pending!.every((k) => reaches(keys, bt.lifted[k]!.patients));
  }
  return out;
}

/** A type's resources as of the snapshot, shaped for the caller. */
function outputLines(ctx: FhirContext, p: ExportParams, type: string, scan: TypeScan): LineSource {
  const raw = !scan.elements && !scan.limit;
  return async (afterId, limit) => {
    const batch = await ctx.store.read(async (s) => {
      const b = await exportBatch(s.q, ctx.tenant.id, ctx.baseUrl, {
        type, plans: scan.plans, ...(p.since ? { since: p.since } : {}), transactionTime: p.transactionTime, afterId, limit, ...(scan.byTarget ? { byTarget: scan.byTarget } : {}),
      });
      return { ...b, keep: await admit(ctx, s, scan, p.transactionTime, b.rows) };
    });
    // unshaped, the stored JSON text goes out as it is (as read and search send it; jsonb's text has no newlines)
    return batchOf(batch, (row) => (raw ? row.json : JSON.stringify(shapeResource(JSON.parse(row.json) as Record<string, unknown>, undefined, scan.elements, scan.limit))));
  };
}

/**
 * A type's deletions since _since (Bulk 2.0 `deleted`): one transaction Bundle per deleted resource, with one entry
 * whose request is `DELETE Type/id`. A deletion carries no content, so whether the resource was in the caller's region
 * (a patient's compartment, a Group's members, granular scopes, _typeFilter) is judged on its last version before the
 * deletion, like a version changed after the snapshot (`holds`: fail closed); with nothing restricting the type, no
 * content is read.
 */
function deletionLines(ctx: FhirContext, p: ExportParams, type: string, scan: TypeScan): LineSource {
  const open = scan.holds(null);
  return async (afterId, limit) => {
    const batch = await ctx.store.read(async (s) => {
      const b = await deletedBatch(s.q, ctx.tenant.id, { type, since: p.since!, transactionTime: p.transactionTime, afterId, limit, withContent: !open });
      return { ...b, keep: open ? b.rows.map(() => true) : await admit(ctx, s, scan, p.transactionTime, b.rows.map((r) => ({ json: r.live, historic: true }))) };
    });
    return batchOf(batch, (row) => JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `${type}/${row.id}` } }] }));
  };
}

type Chunk = { count: number; lastId: string; more: boolean } | { failed: unknown };

/**
 * Up to `max` lines of one step after `afterId` into one file, committed whole (or nothing: no lines, a failure). The
 * database reads the next batch while this one is rendered and written (one query in flight at a time, so at most
 * two batches in memory).
 */
async function writeChunk(
  ctx: FhirContext, storage: ExportStorage, source: LineSource, afterId: string, max: number, signal: AbortSignal,
  tenantId: string, id: string, name: string,
): Promise<Chunk | 'interrupted' | 'cancelled'> {
  const deps = ctx.deps;
  const most = batchSize(deps);
  let size = Math.min(most, FIRST_BATCH);
  // a read ahead is never awaited when the chunk stops early (interrupted, cancelled, failed): mark it handled
  const read = (after: string, limit: number): Promise<Batch> => {
    const b = source(after, limit);
    b.catch(() => undefined);
    return b;
  };
  let file: ExportFileWriter | undefined;
  let count = 0;
  let lastId = afterId;
  let more = true;
  let batches = 0;
  let next: Promise<Batch> | undefined = read(lastId, Math.min(size, max));
  try {
    while (next) {
      if (signal.aborted) {
        await file?.abort();
        return 'interrupted';
      }
      const batch: Batch = await next;
      next = undefined;
      if (batch.lastId !== undefined) lastId = batch.lastId;
      more = batch.more;
      // read ahead while this batch is rendered and written, when it cannot fill the file
      const room = max - count - batch.rows;
      if (more && room > 0) next = read(lastId, Math.min(size, room));
      const { text, count: lines } = batch.render();
      if (batch.rows) size = Math.max(1, Math.min(most, Math.floor((BATCH_BYTES * batch.rows) / Math.max(1, text.length))));
      if (lines) {
        file ??= await storage.put(tenantId, id, name);
        await file.write(text);
        count += lines;
      }
      if (!more || count >= max) break;
      // a long file: show the job is alive, and stop at once when the client cancelled it
      if (++batches % 20 === 0 && !(await touchExport(deps.db, tenantId, id))) {
        await file?.abort();
        return 'cancelled';
      }
      await pause(deps);
      next ??= read(lastId, Math.min(size, max - count));
    }
    await file?.commit();
  } catch (err) {
    await file?.abort().catch(() => undefined);
    if (signal.aborted) return 'interrupted';
    if (isStorageError(err)) return { failed: err };
    throw err;
  }
  return { count, lastId, more };
}

/** Failures of the file system (disk full, permissions, a missing directory), as opposed to the database's. */
function isStorageError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && code !== 'ECONNRESET' && code !== 'ECONNREFUSED';
}
