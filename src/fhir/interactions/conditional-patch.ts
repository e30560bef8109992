// Conditional patch (http.html#patch): PATCH [type]?[search] patches the single match.
import { FhirError } from '../../core/errors.js';
import { canonicalCondition } from '../conditional.js';
import type { FhirContext } from '../context.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { writeAnswer } from '../write-answer.js';
import { matchCondition, writeOne } from '../write.js';
import { patchDocument, preparePatch } from './patch.js';

export async function conditionalPatch(ctx: FhirContext, req: FhirRequest, type: string): Promise<FhirResult> {
  const doc = patchDocument(req);
  const query = canonicalCondition(req.params);
  if (!query) throw new FhirError('invalid', `PATCH on ${type} needs an id or search criteria`, { code: 'CONDITION_EMPTY' });
  const w = await writeOne(ctx, async (s) => {
    const ids = await matchCondition(ctx, s, type, query);
    if (ids.length === 0) throw new FhirError('not-found', `No ${type} matches the condition`, { code: 'CONDITION_NO_MATCH' });
    if (ids.length > 1) throw new FhirError('precondition-failed', `The condition matched more than one ${type}`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
    return preparePatch(ctx, s, type, ids[0], doc, { ifMatch: req.headers.ifMatch });
  });
  return writeAnswer(ctx, w, req.headers.preferReturn);
}
