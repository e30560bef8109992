// Conditional delete (http.html#cond-delete, single match): DELETE [type]?[search]. No match: 204, nothing happens.
import { FhirError } from '../../core/errors.js';
import { canonicalCondition } from '../conditional.js';
import type { FhirContext } from '../context.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { writeAnswer } from '../write-answer.js';
import { matchCondition, writeOne } from '../write.js';
import { prepareDelete } from './delete.js';

export async function conditionalDelete(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResult> {
  const query = canonicalCondition(req.params);
  if (!query) throw new FhirError('invalid', `DELETE on ${type} needs an id or search criteria`, { code: 'CONDITION_EMPTY' });
  const w = await writeOne(ctx, async (s) => {
    const ids = await matchCondition(ctx, s, type, query);
    if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}; conditional delete removes one at a time`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
    if (ids.length === 0) return { status: 204, resourceType: type, id: '', versionId: 0, lastUpdated: '', json: null };
    return prepareDelete(ctx, s, type, ids[0], { ifMatch: req.headers.ifMatch });
  });
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
