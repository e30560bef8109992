// PostgreSQL errors as FHIR errors (STYLE.md §3): the store is the one place that knows SQLSTATEs. Anything it does
// not recognise becomes a generic 500 (core/errors.ts toFhirError), with no SQL or driver detail.
import { FhirError, toFhirError } from '../core/errors.js';

export function asFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const code = (err as { code?: string })?.code;
  switch (code) {
    case '22P05':
    case '22021':
      return new FhirError('invalid', 'The request contains text PostgreSQL cannot store (a NUL character or invalid UTF-8)', { cause: err, code: 'TEXT_UNSUPPORTED' });
    case '23505':
      // two requests wrote the same new resource (update-as-create of one id) or the same unique row at once
      return new FhirError('conflict', 'A concurrent request wrote the same resource at the same time; retry it.', { cause: err, code: 'CONCURRENT_WRITE' });
    case '57014':
      // statement_timeout (DB_STATEMENT_TIMEOUT_MS), or a cancel sent because the client went away or the server stops
      if (/statement timeout/i.test((err as Error).message)) {
        return new FhirError('unavailable', 'The request took longer than the database time limit and was stopped; make it more selective (fewer or narrower criteria, a smaller _count)', {
          cause: err,
          code: 'STATEMENT_TIMEOUT',
          issueType: 'too-costly',
        });
      }
      return new FhirError('unavailable', 'The request was cancelled before it finished', { cause: err, code: 'REQUEST_CANCELLED' });
    case 'DB_UNAVAILABLE':
      return new FhirError('unavailable', 'The database is not reachable at the moment; retry shortly', { cause: err, code: 'DB_UNAVAILABLE', headers: { 'Retry-After': '5' } });
    case 'DB_TENANT_BUSY':
      return new FhirError('too-many-requests', "This tenant's requests are using all of its database connections; retry shortly", { cause: err, code: 'TENANT_BUSY', headers: { 'Retry-After': '2' } });
    case '40001':
    case '40P01':
    case 'TX_RETRY':
      return new FhirError('conflict', 'A concurrent change conflicted with this request; retry it.', { cause: err, code: 'TX_CONFLICT' });
    default:
      if ((err as Error)?.name === 'AbortError') return new FhirError('unavailable', 'The request was cancelled before it finished', { cause: err, code: 'REQUEST_CANCELLED' });
      return toFhirError(err);
  }
}
