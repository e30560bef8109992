// create (http.html#create): POST [type], with If-None-Exist (conditional create, http.html#ccreate).
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { ifNoneExistQuery } from '../conditional.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { checkBodyAgainstUrl } from '../validation/index.js';
import { writeAnswer } from '../write-answer.js';
import { matchCondition, now, stamp, stored, validateForWrite, withCondition, writeOne, type PreparedWrite, type WriteOptions } from '../write.js';

export interface CreateOptions extends WriteOptions {
  /** The If-None-Exist criteria (canonical query). */
  ifNoneExist?: string;
  /** The id to give the new resource (transactions assign ids before writing, for their references). */
  id?: string;
}

/** A create, checked and stamped; with If-None-Exist matching one resource, that resource (200) and nothing stored. */
export async function prepareCreate(ctx: FhirContext, s: TenantSession, type: string, body: unknown, opts: CreateOptions = {}): Promise<PreparedWrite> {
  authorize(ctx, { interaction: 'create', resourceType: type, conditional: opts.ifNoneExist !== undefined });
  const resource = checkBodyAgainstUrl(body, type, undefined, false);
  if (opts.ifNoneExist !== undefined) {
    const ids = await matchCondition(ctx, s, type, opts.ifNoneExist);
    if (ids.length > 1) throw new FhirError('precondition-failed', `If-None-Exist matched ${ids.length}+ ${type} resources`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
    if (ids.length === 1) {
      const current = (await s.readCurrent(type, ids[0]))!;
      return {
        outcome: { status: 200, resourceType: type, id: current.id, versionId: current.versionId, lastUpdated: current.lastUpdated.toISOString(), json: current.json },
        row: null as unknown as PreparedWrite['row'],
      };
    }
  }
  // "If an id is provided, the server SHALL ignore it" — validate the body as it will be stored.
  const stampedRes = stamp(resource, opts.id ?? ctx.deps.newId(), 1, now(ctx));
  await validateForWrite(ctx, s, stampedRes, opts);
  return withCondition(stored(ctx, 'POST', stampedRes, 1, false, 201, 'c'), opts.ifNoneExist ?? opts.condition);
}

/** POST [type] */
export async function create(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResult> {
  const { value } = bodyOf(req);
  const ifNoneExist = ifNoneExistQuery(req.headers.ifNoneExist);
  const w = await writeOne(ctx, (s) => prepareCreate(ctx, s, type, value, { ifNoneExist }));
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
