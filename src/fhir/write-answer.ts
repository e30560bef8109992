// The answer to a create, update, patch or delete (http.html#return): ETag, Last-Modified and Location, and the body
// the client's Prefer asks for. The same answer serves an HTTP response and a batch/transaction entry.
import { okOutcome } from '../core/errors.js';
import type { FhirContext } from './context.js';
import { etag } from './etag.js';
import type { FhirResult, PreferReturn } from './request.js';
import type { WriteOutcome } from './write.js';

export function writeAnswer(ctx: FhirContext, w: WriteOutcome, prefer: PreferReturn | undefined): FhirResult {
  const headers: Record<string, string> = { ...w.headers };
  const result: FhirResult = { status: w.status, headers };
  if (w.versionId > 0) {
    headers.ETag = etag(w.versionId);
    headers['Last-Modified'] = new Date(w.lastUpdated).toUTCString();
    result.version = { resourceType: w.resourceType, id: w.id, versionId: w.versionId, lastUpdated: w.lastUpdated };
  }
  if (w.json === null) return result; // a delete, or a write that changed nothing
  if (w.status === 201 || w.status === 200) headers.Location = `${ctx.baseUrl}/${w.resourceType}/${w.id}/_history/${w.versionId}`;
  if (prefer === 'minimal') return result;
  if (prefer === 'OperationOutcome') {
    result.outcome = okOutcome(`${w.status === 201 ? 'Created' : 'Updated'} ${w.resourceType}/${w.id} version ${w.versionId}`) as unknown as Record<string, unknown>;
    return result;
  }
  result.body = w.json;
  return result;
}
