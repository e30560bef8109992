// delete (http.html#delete): DELETE [type]/[id] writes a deletion version; deleting a missing or deleted resource has
// no effect (204 either way).
import { patientsOf } from '../../core/audit.js';
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { catalogTarget } from '../catalog.js';
import type { FhirContext } from '../context.js';
import { authorize, readableKeys } from '../guard.js';
import { assertId } from '../ids.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { writeAnswer } from '../write-answer.js';
import { checkIfMatch, checkTarget, now, writeOne, type Prepared, type WriteOptions } from '../write.js';

export async function prepareDelete(ctx: FhirContext, s: TenantSession, type: string, id: string, opts: WriteOptions = {}): Promise<Prepared> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'delete', resourceType: type, id });
  // an id of the platform catalog is never written through a tenant (docs/catalog.md)
  const current = (await s.readCurrent(type, id, true)) ?? (await catalogTarget(s, type, id, 'delete'));
  try {
    await checkTarget(ctx, s, type, current, d);
  } catch (err) {
    // outside the delete region: a resource the caller cannot even read is deleted "as if absent" (204, nothing
    // happens), as a missing one is; one it can read keeps the 404
    if (err instanceof FhirError && err.kind === 'not-found' && (await readableKeys(ctx, s, [`${type}/${id}`])).size === 0) {
      return { status: 204, resourceType: type, id, versionId: 0, lastUpdated: now(ctx), json: null };
    }
    throw err;
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  if (!current || current.deleted) {
    return { status: 204, resourceType: type, id, versionId: current?.versionId ?? 0, lastUpdated: current?.lastUpdated.toISOString() ?? now(ctx), json: null };
  }
  const versionId = current.versionId + 1;
  const lastUpdated = now(ctx);
  return {
    outcome: { status: 204, resourceType: type, id, versionId, lastUpdated, json: null },
    row: { resourceType: type, id, versionId, lastUpdated, method: 'DELETE', json: null, index: null, replaces: true, patients: patientsOf(type, id, current.json) },
  };
}

/** DELETE [type]/[id] */
export async function remove(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResult> {
  const w = await writeOne(ctx, (s) => prepareDelete(ctx, s, type, id, { ifMatch: req.headers.ifMatch }));
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
