// patch (http.html#patch) with JSON Patch: PATCH [type]/[id]; the result is validated and stored as an update.
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { catalogTarget } from '../catalog.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import { assertId } from '../ids.js';
import { applyJsonPatch } from '../json-patch.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { writeAnswer } from '../write-answer.js';
import { checkIfMatch, checkTarget, now, stamp, stored, validateForWrite, writeOne, type PreparedWrite, type WriteOptions } from '../write.js';

export async function preparePatch(ctx: FhirContext, s: TenantSession, type: string, id: string, patch: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  assertId(id, 'URL');
  const d = authorize(ctx, { interaction: 'patch', resourceType: type, id });
  // an id of the platform catalog is never written through a tenant (docs/catalog.md)
  const current = (await s.readCurrent(type, id, true)) ?? (await catalogTarget(s, type, id, 'patch'));
  await checkTarget(ctx, s, type, current, d);
  if (!current || current.deleted || current.json === null) {
    throw new FhirError(current?.deleted ? 'gone' : 'not-found', `${type}/${id} ${current?.deleted ? 'is deleted' : 'is not known'}`, { code: current?.deleted ? 'RESOURCE_DELETED' : 'RESOURCE_NOT_FOUND' });
  }
  checkIfMatch(current, opts.ifMatch, `${type}/${id}`);
  const patched = applyJsonPatch(JSON.parse(current.json) as Record<string, unknown>, patch);
  if (patched.resourceType !== type || patched.id !== id) {
    throw new FhirError('invalid', 'A patch may not change resourceType or id', { code: 'PATCH_CHANGES_IDENTITY', expression: ['resourceType', 'id'] });
  }
  const versionId = current.versionId + 1;
  const stampedRes = stamp(patched, id, versionId, now(ctx));
  await validateForWrite(ctx, s, stampedRes, opts);
  const p = stored(ctx, 'PUT', stampedRes, versionId, true, 200, 'u', current);
  p.row.interaction = 'patch';
  return p;
}

/**
 * The JSON Patch document of a PATCH request. A FHIR media type carries FHIRPath Patch (a Parameters resource), which
 * this server does not apply; a JSON array under application/json is taken as JSON Patch. Under
 * application/json-patch+json, a malformed document is a 400 from the patch engine, not a media-type problem.
 */
export function patchDocument(req: FhirRequest): unknown {
  const { kind, value } = bodyOf(req, ['json-patch', 'fhir-json']);
  if (kind === 'fhir-json' && (value as { resourceType?: string })?.resourceType === 'Parameters') {
    throw new FhirError('unsupported-media', 'FHIRPath Patch is not supported; send application/json-patch+json', { code: 'PATCH_FORMAT_UNSUPPORTED' });
  }
  if (kind === 'fhir-json' && !Array.isArray(value)) throw new FhirError('unsupported-media', 'PATCH expects a JSON Patch document (application/json-patch+json)', { code: 'PATCH_FORMAT_UNSUPPORTED' });
  return value;
}

/** PATCH [type]/[id] */
export async function patch(ctx: FhirContext, req: FhirRequest, type: string, id: string): Promise<FhirResult> {
  const doc = patchDocument(req);
  const w = await writeOne(ctx, (s) => preparePatch(ctx, s, type, id, doc, { ifMatch: req.headers.ifMatch }));
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
