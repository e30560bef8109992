// update (http.html#update): PUT [type]/[id], including update-as-create with a client-chosen id.
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { catalogTarget } from '../catalog.js';
import type { FhirContext } from '../context.js';
import { authorize, readsWholeType } from '../guard.js';
import { assertId } from '../ids.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { checkBodyAgainstUrl } from '../validation/index.js';
import { writeAnswer } from '../write-answer.js';
import { checkIfMatch, checkTarget, now, stamp, stored, validateForWrite, withCondition, writeOne, type PreparedWrite, type WriteOptions } from '../write.js';

export async function prepareUpdate(ctx: FhirContext, s: TenantSession, type: string, id: string, body: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'update', resourceType: type, id });
  const resource = checkBodyAgainstUrl(body, type, id, true);
  const current = await s.readCurrent(type, id, true);
  // an id of the platform catalog is never written through a tenant (docs/catalog.md)
  if (!current) await catalogTarget(s, type, id, 'update');
  await checkTarget(ctx, s, type, current, d);
  // A writer confined to a region who cannot read the whole type would learn from 201 (free) vs 404 (taken, outside
  // its region) whether an id exists: for it, an id that is free is "not known" too, as a taken one is.
  if ((!current || current.deleted) && (d.compartment || d.searchFilters) && !readsWholeType(ctx, type)) {
    throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  const versionId = (current?.versionId ?? 0) + 1;
  const stampedRes = stamp(resource, id, versionId, now(ctx));
  await validateForWrite(ctx, s, stampedRes, opts);
  const created = !current || current.deleted;
  // update-as-create is allowed by the update scope (SMART 2.x)
  const p = stored(ctx, 'PUT', stampedRes, versionId, current !== undefined, created ? 201 : 200, 'u', current);
  return created ? withCondition(p, opts.condition) : p;
}

/** PUT [type]/[id] */
export async function update(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResult> {
  const { value } = bodyOf(req);
  const w = await writeOne(ctx, (s) => prepareUpdate(ctx, s, type, id, value, { ifMatch: req.headers.ifMatch }));
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
