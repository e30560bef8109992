// Conditional update (http.html#cond-update): PUT [type]?[search].
import { FhirError } from '../../core/errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { canonicalCondition } from '../conditional.js';
import type { FhirContext } from '../context.js';
import { readsWholeType } from '../guard.js';
import { assertId } from '../ids.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { checkBodyAgainstUrl } from '../validation/index.js';
import { writeAnswer } from '../write-answer.js';
import { matchCondition, writeOne, type PreparedWrite, type WriteOptions } from '../write.js';
import { prepareCreate } from './create.js';
import { prepareUpdate } from './update.js';

/**
 * The id a conditional update writes: the single match, else the body's id (update as create), else undefined (create
 * with a new id). 1 match with another body id -> 400; several -> 412; no match but the body id names a live resource
 * that does not match -> 409, as R5 settles it: the condition said "not this one", so it is not silently overwritten.
 */
export async function conditionalUpdateTarget(ctx: FhirContext, s: TenantSession, type: string, query: string, bodyId: string | undefined): Promise<{ id: string | undefined; matched: boolean }> {
  const ids = await matchCondition(ctx, s, type, query);
  if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
  if (ids.length === 1) {
    if (bodyId !== undefined && bodyId !== ids[0]) {
      throw new FhirError('invalid', `Body id '${bodyId}' differs from the matched ${type}/${ids[0]}`, { code: 'RESOURCE_ID_MISMATCH', expression: [`${type}.id`] });
    }
    return { id: ids[0], matched: true };
  }
  if (bodyId === undefined) return { id: undefined, matched: false };
  assertId(bodyId);
  // R4: no match -> a create. The body's id is honoured (R5's update-as-create, 409 when taken) only for callers who
  // read the whole type: for others, "taken" would reveal a resource they may not see (issue 8, finding 4).
  if (!readsWholeType(ctx, type)) return { id: undefined, matched: false };
  const current = await s.readCurrent(type, bodyId);
  if (current && !current.deleted) {
    throw new FhirError('conflict', `No ${type} matches the condition, but ${type}/${bodyId} exists; a conditional update does not overwrite a resource outside its condition`, {
      code: 'CONDITION_ID_CONFLICT',
      expression: [`${type}.id`],
    });
  }
  return { id: bodyId, matched: false };
}

async function prepareConditionalUpdate(ctx: FhirContext, s: TenantSession, type: string, query: string, body: unknown, opts: WriteOptions = {}): Promise<PreparedWrite> {
  const resource = checkBodyAgainstUrl(body, type, undefined, false);
  const bodyId = typeof resource.id === 'string' ? resource.id : undefined;
  const { id, matched } = await conditionalUpdateTarget(ctx, s, type, query, bodyId);
  if (matched) return prepareUpdate(ctx, s, type, id!, { ...resource, id }, opts);
  // a create (with the body's id, or a new one) because nothing matched: re-checked before COMMIT like If-None-Exist
  if (id !== undefined) return prepareUpdate(ctx, s, type, id, { ...resource, id }, { ...opts, condition: query });
  return prepareCreate(ctx, s, type, resource, { ...opts, condition: query });
}

/** PUT [type]?[search] */
export async function conditionalUpdate(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResult> {
  const { value } = bodyOf(req);
  const query = canonicalCondition(req.params);
  if (!query) throw new FhirError('invalid', `PUT on ${type} needs an id (${type}/[id]) or search criteria`, { code: 'CONDITION_EMPTY' });
  const w = await writeOne(ctx, (s) => prepareConditionalUpdate(ctx, s, type, query, value, { ifMatch: req.headers.ifMatch }));
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
