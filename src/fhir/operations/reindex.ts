// $reindex (this server's operation; cf. HAPI's $reindex): POST [base]/$reindex or [base]/[type]/$reindex
// starts a background job and answers 202 with its status URL; GET [base]/$reindex?job=<id> reports progress.
import type { FhirContext } from '../context.js';
import { param, type FhirRequest, type FhirResult } from '../request.js';
import { FhirError } from '../../core/errors.js';
import { authorize } from '../guard.js';
import { assertResourceType } from '../ids.js';
import { jobStatus, startReindex, type JobStatus } from '../../jobs/reindex.js';

function statusParameters(j: JobStatus): Record<string, unknown> {
  const progress = j.total ? Math.round((j.done / j.total) * 1000) / 10 : 100;
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'job', valueString: j.id },
      { name: 'status', valueCode: j.status },
      ...(j.types ? j.types.map((t) => ({ name: 'type', valueCode: t })) : []),
      { name: 'total', valueInteger: j.total },
      { name: 'processed', valueInteger: j.done },
      { name: 'progress', valueDecimal: progress },
      { name: 'started', valueInstant: j.createdAt },
      { name: 'updated', valueInstant: j.updatedAt },
      ...(j.error ? [{ name: 'error', valueString: j.error }] : []),
    ],
  };
}

/** POST [base]/$reindex, [type]/$reindex */
export async function reindexStart(ctx: FhirContext, req: FhirRequest, type?: string): Promise<FhirResult> {
  const params = req.params;
  let types: string[] | undefined;
  if (type) types = [type];
  else {
    const listed = params.filter(([k]) => k === '_type' || k === 'type').flatMap(([, v]) => v.split(',')).map((t) => t.trim()).filter(Boolean);
    for (const t of listed) assertResourceType(t);
    if (listed.length) types = listed;
  }
  authorize(ctx, { interaction: 'operation', operation: '$reindex', ...(type ? { resourceType: type } : types ? { types } : {}) });
  const job = await startReindex(ctx.deps, ctx.tenant.id, types);
  return {
    status: 202,
    headers: { 'Content-Location': `${ctx.baseUrl}/$reindex?job=${job.id}` },
    body: statusParameters(job),
  };
}

/** GET [base]/$reindex?job=[id] */
export async function reindexStatus(ctx: FhirContext, req: FhirRequest): Promise<FhirResult> {
  const id = param(req, 'job');
  authorize(ctx, { interaction: 'operation', operation: '$reindex' });
  if (!id) throw new FhirError('invalid', 'GET $reindex needs ?job=<id> (POST $reindex starts a job)', { code: 'JOB_ID_MISSING' });
  const j = await jobStatus(ctx.deps, ctx.tenant.id, id);
  if (!j || j.kind !== 'reindex') throw new FhirError('not-found', `No reindex job '${id.slice(0, 64)}'`, { code: 'JOB_NOT_FOUND' });
  return { status: 200, body: statusParameters(j) };
}
