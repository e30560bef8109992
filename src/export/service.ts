// Bulk Data export over HTTP (Bulk 2.0 export.html): kick-off (202 + Content-Location), status polling (202 with
// X-Progress and Retry-After, then the manifest), DELETE (cancel, 202, then 404) and the output files. An export is
// visible only to the client that started it, in its tenant: anything else is 404, as if it did not exist.
import { randomUUID } from 'node:crypto';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import type { FhirContext } from '../fhir/context.js';
import type { ExportLevel, ExportService } from '../fhir/export-service.js';
import { authorize } from '../fhir/guard.js';
import { assertId } from '../fhir/ids.js';
import { readResource } from '../fhir/interactions/read.js';
import type { FhirRequest, FhirResult } from '../fhir/request.js';
import { endExport, insertExportJob } from '../store/export.js';
import { findJob, type JobRecord } from '../store/jobs.js';
import { outcome, type ExportParams } from './job.js';
import { parseExportRequest } from './params.js';
import type { ExportStorage } from './storage.js';
import { queueExport } from './worker.js';

const NDJSON = 'application/fhir+ndjson';
const ERROR_FILE = 'errors.ndjson';

function notFound(): FhirError {
  return new FhirError('not-found', 'No such export (it may have been cancelled, expired, or started by another client)', { code: 'EXPORT_NOT_FOUND' });
}

/** The Group's member patients (Group.member.entity references to Patient; inactive members left out). */
function groupMembers(group: Record<string, unknown>, baseUrl: string): string[] {
  const out = new Set<string>();
  for (const m of (group.member as { entity?: { reference?: string }; inactive?: boolean }[] | undefined) ?? []) {
    if (m.inactive) continue;
    const ref = (m.entity?.reference ?? '').replace(`${baseUrl}/`, '');
    const match = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref);
    if (match) out.add(match[1]);
  }
  return [...out];
}

export class Exports implements ExportService {
  /** `storage` may be swapped (tests: a failing disk); the worker reads it from here at every run. */
  constructor(private readonly deps: Deps, public storage: ExportStorage) {}

  async kickOff(ctx: FhirContext, req: FhirRequest, level: ExportLevel): Promise<FhirResult> {
    if (!req.headers.preferAsync) {
      throw new FhirError('invalid', '$export is asynchronous: send the header Prefer: respond-async', { code: 'EXPORT_PREFER_ASYNC_REQUIRED' });
    }
    if (req.method === 'POST') throw new FhirError('not-allowed', '$export is started with GET on this server', { code: 'METHOD_NOT_ALLOWED', headers: { Allow: 'GET' } });
    const caller = ctx.caller;
    if (!caller) throw new FhirError('unauthenticated', '$export needs an access token', { code: 'EXPORT_TOKEN_REQUIRED' });
    // system/ scopes for system and Group exports (SMART Backend Services); patient/ and user/ tokens export their own region at Patient level
    if (level.level !== 'patient' && !caller.scope.split(/\s+/).some((s) => s.startsWith('system/'))) {
      throw new FhirError('forbidden', `Insufficient scope: a ${level.level}-level export needs system/ scopes (SMART Backend Services)`, { code: 'SCOPE_INSUFFICIENT' });
    }
    if (level.level === 'group') assertId(level.groupId, 'URL');
    const parsed = parseExportRequest(ctx, req, level, req.headers.preferStrict === false);
    const named = req.params.some(([k]) => k === '_type');
    authorize(ctx, {
      interaction: 'operation',
      operation: '$export',
      ...(level.level === 'system' ? {} : { resourceType: level.level === 'group' ? 'Group' : 'Patient' }),
      ...(level.level === 'group' ? { id: level.groupId } : {}),
      ...(named ? { types: parsed.types } : {}),
    });
    // without _type: every type the caller may search (the others are left out, SMART §7)
    const types = parsed.types.filter((t) => ctx.guard.forType(t, 's').allow);
    let members: string[] | undefined;
    if (level.level === 'group') {
      const g = await readResource(ctx, 'Group', level.groupId);
      const group = (typeof g.body === 'string' ? JSON.parse(g.body) : g.body) as Record<string, unknown>;
      members = groupMembers(group, ctx.baseUrl);
    }
    const id = randomUUID();
    const query = new URLSearchParams(req.params).toString();
    const params: Omit<ExportParams, 'transactionTime'> = {
      level: level.level,
      ...(level.level === 'group' ? { groupId: level.groupId, members } : {}),
      types,
      ...(parsed.since ? { since: parsed.since } : {}),
      ...(parsed.typeFilter ? { typeFilter: parsed.typeFilter } : {}),
      ...(parsed.elements ? { elements: parsed.elements } : {}),
      outputFormat: parsed.outputFormat,
      request: `${ctx.baseUrl}/${req.path.map((x) => encodeURIComponent(x).replace(/%24/g, '$')).join('/')}${query ? `?${query}` : ''}`,
      caller,
      output: [],
      errors: parsed.warnings.map((w) => outcome('warning', 'not-supported', w)),
    };
    await insertExportJob(this.deps.db, ctx.tenant.id, id, params as unknown as Record<string, unknown>);
    await queueExport(this.deps, this, ctx.tenant.id, id).catch((err) =>
      ctx.log.warn({ err, tenantId: ctx.tenant.id, jobId: id }, 'export job not queued (the job queue is unavailable); the sweeper will queue it'),
    );
    return { status: 202, headers: { 'Content-Location': `${ctx.baseUrl}/$export-status/${id}` } };
  }

  /** The caller's own export (same tenant by the row-level security of the lookup, same client by the check). */
  private async own(ctx: FhirContext, id: string): Promise<JobRecord & { params: ExportParams }> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound();
    const job = (await findJob(this.deps.db, ctx.tenant.id, id)) as (JobRecord & { params: ExportParams }) | undefined;
    if (!job || job.kind !== 'export' || !ctx.caller || job.params.caller?.clientId !== ctx.caller.clientId) throw notFound();
    if (job.status === 'cancelled') throw notFound();
    return job;
  }

  async status(ctx: FhirContext, _req: FhirRequest, id: string): Promise<FhirResult> {
    const job = await this.own(ctx, id);
    const p = job.params;
    if (job.status === 'running') {
      const files = p.output.length + (p.deleted?.length ?? 0);
      return { status: 202, headers: { 'X-Progress': `in progress: ${job.done} resources in ${files} file${files === 1 ? '' : 's'}`, 'Retry-After': '2' } };
    }
    if (job.status === 'failed') {
      throw new FhirError('internal', `The export failed: ${(job.error ?? 'internal error').slice(0, 200)}`, { code: 'EXPORT_FAILED' });
    }
    const base = `${ctx.baseUrl}/$export-file/${id}`;
    const expires = new Date(job.updatedAt.getTime() + this.deps.config.exportRetentionHours * 3600_000);
    const manifest = {
      transactionTime: p.transactionTime,
      request: p.request,
      requiresAccessToken: true,
      output: p.output.map((o) => ({ type: o.type, url: `${base}/${o.name}`, count: o.count })),
      // always an array: empty without _since (nothing to compare against) or when nothing was deleted
      deleted: (p.deleted ?? []).map((o) => ({ type: o.type, url: `${base}/${o.name}`, count: o.count })),
      error: p.errors.length ? [{ type: 'OperationOutcome', url: `${base}/${ERROR_FILE}`, count: p.errors.length }] : [],
    };
    return { status: 200, body: manifest, contentType: 'application/json', headers: { Expires: expires.toUTCString() } };
  }

  async cancel(ctx: FhirContext, id: string): Promise<FhirResult> {
    await this.own(ctx, id);
    if (!(await endExport(this.deps.db, ctx.tenant.id, id, 'cancelled by the client'))) throw notFound();
    await this.storage.delete(ctx.tenant.id, id).catch((err) => ctx.log.warn({ err, jobId: id }, 'could not remove the files of a cancelled export'));
    return { status: 202, body: outcome('information', 'informational', 'The export was cancelled and its files removed') };
  }

  async file(ctx: FhirContext, id: string, name: string): Promise<FhirResult> {
    const job = await this.own(ctx, id);
    if (job.status !== 'completed') throw notFound();
    if (name === ERROR_FILE && job.params.errors.length) {
      // kept in the job row, not in storage: an export whose storage failed can still say why
      return { status: 200, body: job.params.errors.map((e) => JSON.stringify(e)).join('\n') + '\n', contentType: NDJSON };
    }
    if (!job.params.output.some((o) => o.name === name) && !job.params.deleted?.some((o) => o.name === name)) throw notFound();
    const f = await this.storage.get(ctx.tenant.id, id, name);
    if (!f) throw notFound();
    return { status: 200, stream: f.stream, contentType: NDJSON, headers: { 'Content-Length': String(f.size) } };
  }
}
