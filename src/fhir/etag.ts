// ETag <-> versionId (http.html#versioning): ETag: W/"3"; If-Match accepts W/"3", "3" or 3.
import { FhirError } from '../core/errors.js';

export function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** Parses an If-Match / If-None-Match value into a version number, or throws 400. */
export function parseETag(value: string): number {
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  if (!m) throw new FhirError('invalid', `Malformed ETag ${JSON.stringify(value)}; expected W/"<versionId>"`, { code: 'ETAG_INVALID' });
  return Number(m[1]);
}
