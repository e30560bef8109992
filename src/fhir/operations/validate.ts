// $validate (resource-operation-validate): type and instance level, modes create / update / delete,
// using the same checks as writes, and `profile` (query or Parameters): a profile to check against besides those
// the resource claims and the tenant requires; answers 200 with an OperationOutcome either way. Profile issues also
// report absent must-support elements and what could not be checked, as information.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { bodyOf } from '../body.js';
import type { FhirContext } from '../context.js';
import { param, type FhirRequest, type FhirResult } from '../request.js';
import { FhirError, issue } from '../../core/errors.js';
import { authorize, readableKeys } from '../guard.js';
import { assertId } from '../ids.js';
import { checkBodyAgainstUrl, profileIssues, referenceIssues, structuralIssues } from '../validation/index.js';

type Param = { name?: string; resource?: unknown; valueCode?: string; valueString?: string; valueUri?: string; valueCanonical?: string; valueUrl?: string };

/** Accepts either the resource itself or a Parameters with `resource`, `mode` and `profile`. */
function unwrap(body: unknown): { resource: unknown; mode?: string; profile?: string } {
  const b = body as { resourceType?: string; parameter?: Param[] };
  if (b && b.resourceType === 'Parameters' && Array.isArray(b.parameter)) {
    const resource = b.parameter.find((p) => p.name === 'resource')?.resource;
    const modeParam = b.parameter.find((p) => p.name === 'mode');
    const profileParam = b.parameter.find((p) => p.name === 'profile');
    const profile = profileParam?.valueCanonical ?? profileParam?.valueUri ?? profileParam?.valueUrl ?? profileParam?.valueString;
    return { resource, mode: modeParam?.valueCode ?? modeParam?.valueString, ...(profile !== undefined ? { profile } : {}) };
  }
  return { resource: body };
}

/** POST [type]/$validate, [type]/[id]/$validate */
export async function validateOperation(ctx: FhirContext, req: FhirRequest, type: string, id?: string): Promise<FhirResult> {
  if (id !== undefined) assertId(id, 'URL');
  authorize(ctx, { interaction: 'operation', operation: '$validate', resourceType: type, id });
  const { resource, mode: bodyMode, profile: bodyProfile } = unwrap(bodyOf(req).value);
  const queryMode = param(req, 'mode');
  const mode = bodyMode ?? queryMode;
  const profile = bodyProfile ?? param(req, 'profile');
  if (profile !== undefined && (typeof profile !== 'string' || !profile.trim())) {
    throw new FhirError('invalid', '$validate profile must be a canonical URL', { code: 'VALIDATE_PROFILE_INVALID' });
  }
  if (mode !== undefined && !['create', 'update', 'delete'].includes(mode)) {
    throw new FhirError('invalid', `$validate mode must be create, update or delete, not ${JSON.stringify(mode)}`, { code: 'VALIDATE_MODE_INVALID' });
  }
  const issues: OperationOutcomeIssue[] = [];
  if (mode === 'delete') {
    if (id === undefined) throw new FhirError('invalid', '$validate mode=delete needs an instance URL ([type]/[id]/$validate)', { code: 'VALIDATE_MODE_INVALID' });
    // a resource the caller may not read is reported like a missing one (issue 8, finding 4)
    const visible = await ctx.store.read(async (s) => {
      const current = await s.readCurrent(type, id);
      return !!current && !current.deleted && (await readableKeys(ctx, s, [`${type}/${id}`])).size === 1;
    });
    if (!visible) issues.push(issue('error', 'not-found', `${type}/${id} does not exist, so it cannot be deleted`, { code: 'RESOURCE_NOT_FOUND', expression: [type] }));
  } else {
    if (resource === undefined) throw new FhirError('invalid', '$validate needs a resource in the body', { code: 'VALIDATE_NO_RESOURCE' });
    try {
      checkBodyAgainstUrl(resource, type, mode === 'update' ? id : undefined, mode === 'update');
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      issues.push(...err.toOutcome().issue);
    }
    if (issues.length === 0) {
      const r = resource as Record<string, unknown>;
      issues.push(...structuralIssues(r));
      issues.push(
        ...(await ctx.store.read(async (s) => [
          ...(await referenceIssues(ctx, s, [{ resource: r }])),
          ...(await profileIssues(ctx, s, r, { mode: 'validate', explicit: profile ? [profile] : [] })),
        ])),
      );
      if (mode === 'update' && id === undefined && r.id === undefined) issues.push(issue('error', 'required', 'mode=update needs a resource id', { code: 'RESOURCE_ID_MISSING', expression: [`${type}.id`] }));
    }
  }
  if (issues.length === 0) issues.push(issue('information', 'informational', 'Validation successful: no issues found'));
  return { status: 200, body: { resourceType: 'OperationOutcome', issue: issues } };
}
