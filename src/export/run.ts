// One Bulk Data export job, run in a worker (Bulk 2.0 export.html): for each type, keyset batches in id order as of
// the snapshot (transactionTime), shaped for the caller (its current access, rebuilt from the job row; _elements;
// element limits), written to NDJSON files of at most EXPORT_FILE_MAX_RESOURCES. After each file the cursor is stored
// in the job row, so a resumed run continues exactly after the last file it recorded: nothing twice, nothing missed.
import type { Deps } from '../core/deps.js';
import type { Guard } from '../core/guard.js';
import { patientCompartment } from '../fhir/compartment.js';
import type { FhirContext } from '../fhir/context.js';
import { authorizeSearch, versionInRegion } from '../fhir/guard.js';
import { shapeResource } from '../fhir/subset.js';
import { planSearch, type Restriction, type SearchPlan } from '../search/plan.js';
import { advanceExport, exportBatch, touchExport } from '../store/export.js';
import { failJob, findJob } from '../store/jobs.js';
import { TenantStore } from '../store/session.js';
import { findTenant } from '../store/tenants.js';
import { ownerAccess } from '../subscriptions/owner.js';
import { outcome, type ExportParams } from './job.js';
import type { ExportFileWriter, ExportStorage } from './storage.js';

/** How a run ended: finished (or nothing left to do), or interrupted (shutdown: the queue runs it again). */
export type RunEnd = 'done' | 'interrupted';

function batchSize(deps: Deps): number {
  return deps.db.kind === 'pglite' ? 50 : 500;
}

function pause(deps: Deps): Promise<void> {
  return new Promise((r) => setTimeout(r, deps.db.kind === 'pglite' ? 5 : 0));
}

/** The caller's context, as a request of it would have now (its client and user re-checked). */
async function callerContext(deps: Deps, tenantId: string, id: string, p: ExportParams): Promise<FhirContext | string> {
  const tenant = await findTenant(deps.db, tenantId);
  if (!tenant || tenant.status !== 'active') return 'the tenant is no longer active';
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

interface TypeScan {
  plans: SearchPlan[];
  /** In-memory checks of a version changed after the snapshot (judged on its own content; fail closed). */
  holds: (json: string) => boolean;
  elements?: string[];
  limit?: string[];
}

/** The SQL plans and in-memory checks of one type: the caller's region, _typeFilter, the Group's members. */
function scanOf(ctx: FhirContext, p: ExportParams, type: string): TypeScan {
  const base = planSearch(ctx.registry, type, { strict: true, params: [], now: ctx.deps.clock() });
  const limits = authorizeSearch(ctx, base, { interaction: 'search-type', resourceType: type }, 's');
  const plans: SearchPlan[] = [base];
  const decision = ctx.guard.forType(type, 's');
  const checks: ((json: string) => boolean)[] = [(json) => versionInRegion(ctx, type, json, decision)];
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
    // the same alternatives as a decision of their own, judged on the historic version
    const asDecision = {
      allow: true,
      searchFilters: (filters ?? [[]]).flatMap((params) => (members ?? [undefined]).map((m) => ({ params, ...(m ? { compartment: { patientId: m } } : {}) }))),
    };
    checks.push((json) => versionInRegion(ctx, type, json, asDecision));
  }
  const elements = p.elements ? p.elements.filter((e) => !e.includes('.') || e.startsWith(`${type}.`)) : undefined;
  const scoped = p.elements?.some((e) => e.includes('.')) && !elements?.length;
  return {
    plans,
    holds: (json) => checks.every((c) => c(json)),
    ...(elements?.length && !scoped ? { elements } : {}),
    ...(limits.get(type) ? { limit: limits.get(type) } : {}),
  };
}

/** The file's name: type and a sequence number (deterministic, so a resumed chunk replaces its half-written twin). */
function fileName(p: ExportParams, type: string): string {
  return `${type}-${p.output.filter((o) => o.type === type).length + 1}.ndjson`;
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
  let cursor: [string, string] = job.cursor ?? [p.types[0] ?? '', ''];
  const maxFile = deps.config.exportFileMaxResources;
  for (let t = Math.max(0, p.types.indexOf(cursor[0])); t < p.types.length; t++) {
    const type = p.types[t];
    let afterId = type === cursor[0] ? cursor[1] : '';
    const scan = scanOf(ctx, p, type);
    for (;;) {
      const name = fileName(p, type);
      const chunk = await writeChunk(ctx, storage, p, type, scan, afterId, maxFile, signal, tenantId, id, name);
      if (chunk === 'interrupted' || chunk === 'cancelled') {
        if (chunk === 'cancelled') await storage.delete(tenantId, id).catch(() => undefined);
        return chunk === 'interrupted' ? 'interrupted' : 'done';
      }
      if ('failed' in chunk) {
        p.errors.push(outcome('error', 'exception', `The ${type} export file could not be written (storage failure); the export stopped there`));
        ctx.log.warn({ err: chunk.failed, resourceType: type }, 'export file could not be written');
        p.completedAt = new Date().toISOString();
        if (!(await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, cursor, 0, true))) await storage.delete(tenantId, id).catch(() => undefined);
        return 'done';
      }
      if (chunk.count) p.output.push({ type, name, count: chunk.count });
      const typeDone = !chunk.more;
      const last = typeDone && t === p.types.length - 1;
      cursor = typeDone ? [p.types[t + 1] ?? type, ''] : [type, chunk.lastId];
      if (last) p.completedAt = new Date().toISOString();
      if (!(await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, cursor, chunk.count, last))) {
        await storage.delete(tenantId, id).catch(() => undefined);
        return 'done';
      }
      afterId = chunk.lastId;
      if (typeDone) break;
    }
  }
  if (!p.types.length) {
    p.completedAt = new Date().toISOString();
    await advanceExport(deps.db, tenantId, id, p as unknown as Record<string, unknown>, null, 0, true);
  }
  return 'done';
}

type Chunk = { count: number; lastId: string; more: boolean } | { failed: unknown };

/** Up to `max` resources of `type` after `afterId` into one file, committed whole (or nothing: no resources, a failure). */
async function writeChunk(
  ctx: FhirContext, storage: ExportStorage, p: ExportParams, type: string, scan: TypeScan, afterId: string, max: number, signal: AbortSignal,
  tenantId: string, id: string, name: string,
): Promise<Chunk | 'interrupted' | 'cancelled'> {
  const deps = ctx.deps;
  let file: ExportFileWriter | undefined;
  let count = 0;
  let lastId = afterId;
  let more = true;
  let batches = 0;
  try {
    while (count < max) {
      if (signal.aborted) {
        await file?.abort();
        return 'interrupted';
      }
      const limit = Math.min(batchSize(deps), max - count);
      const batch = await ctx.store.read((s) =>
        exportBatch(s.q, tenantId, ctx.baseUrl, { type, plans: scan.plans, ...(p.since ? { since: p.since } : {}), transactionTime: p.transactionTime, afterId: lastId, limit }),
      );
      for (const row of batch.rows) {
        if (row.historic && !scan.holds(row.json)) continue;
        const resource = shapeResource(JSON.parse(row.json) as Record<string, unknown>, undefined, scan.elements, scan.limit);
        file ??= await storage.put(tenantId, id, name);
        await file.write(`${JSON.stringify(resource)}\n`);
        count++;
      }
      if (batch.lastId !== undefined) lastId = batch.lastId;
      more = batch.more;
      if (!more) break;
      // a long file: show the job is alive, and stop at once when the client cancelled it
      if (++batches % 20 === 0 && !(await touchExport(deps.db, tenantId, id))) {
        await file?.abort();
        return 'cancelled';
      }
      await pause(deps);
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
