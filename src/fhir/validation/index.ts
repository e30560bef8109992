// Validation on every write (and $validate): the R4 JSON Schema, then the rules the schema cannot express
// that users hit first (resourceType/id against the URL, reference form and, inside the tenant, existence), then
// profiles (StructureDefinitions claimed, required by the tenant, or asked for).
import type { OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import type { TenantSession } from '../../store/session.js';
import type { FhirContext } from '../context.js';
import { FhirError, issue } from '../../core/errors.js';
import { readableKeys } from '../guard.js';
import { classifyReference, findReferences, type RefContext } from '../references.js';
import { structureDefinitionIssues, validateProfiles, type ProfileCheckOptions } from './profile/index.js';
import { validateSchema } from './schema.js';

export function refContext(ctx: FhirContext): RefContext {
  return { tenantBase: ctx.baseUrl, serverFhirRoot: `${ctx.deps.config.publicBaseUrl}/fhir` };
}

/** Checks a body against the URL it was sent to. Throws 400 with a precise message. */
export function checkBodyAgainstUrl(body: unknown, type: string, id: string | undefined, requireId: boolean): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new FhirError('invalid', 'The request body must be a FHIR resource (a JSON object)', { code: 'BODY_NOT_RESOURCE' });
  }
  const resource = body as Record<string, unknown>;
  if (resource.resourceType !== type) {
    throw new FhirError('invalid', `resourceType ${JSON.stringify(resource.resourceType)} does not match the URL type '${type}'`, {
      code: 'RESOURCE_TYPE_MISMATCH',
      expression: ['resourceType'],
    });
  }
  if (id !== undefined) {
    if (resource.id === undefined) {
      if (requireId) throw new FhirError('invalid', `The resource must carry id '${id}' to be updated at this URL`, { code: 'RESOURCE_ID_MISSING', expression: [`${type}.id`] });
    } else if (resource.id !== id) {
      throw new FhirError('invalid', `Body id ${JSON.stringify(resource.id)} does not match the URL id '${id}'`, {
        code: 'RESOURCE_ID_MISMATCH',
        expression: [`${type}.id`],
      });
    }
  }
  return resource;
}

/** Structural validation; returns issues (empty when valid). */
export function structuralIssues(resource: Record<string, unknown>): OperationOutcomeIssue[] {
  return validateSchema(resource);
}

/**
 * Reference rules. `pending` lists "Type/id" keys being written in the same transaction (they count as existing);
 * `deleting` lists keys the same transaction deletes. Returns issues.
 */
export async function referenceIssues(
  ctx: FhirContext,
  s: TenantSession,
  resources: { resource: Record<string, unknown>; pathPrefix?: string }[],
  pending: Set<string> = new Set(),
): Promise<OperationOutcomeIssue[]> {
  const issues: OperationOutcomeIssue[] = [];
  const rc = refContext(ctx);
  const toCheck = new Map<string, string[]>();
  for (const { resource, pathPrefix } of resources) {
    for (const ref of findReferences(resource)) {
      const path = pathPrefix ? pathPrefix + ref.path.slice(String(resource.resourceType).length) : ref.path;
      const c = classifyReference(ref.reference, rc);
      const where = `${path}.reference`;
      switch (c.kind) {
        case 'invalid':
          issues.push(issue('error', 'value', `Invalid reference ${JSON.stringify(ref.reference.slice(0, 200))} at ${where}: ${c.reason}`, { code: 'REFERENCE_INVALID', expression: [where] }));
          break;
        case 'other-tenant':
          issues.push(issue('error', 'business-rule', `Reference at ${where} points outside this tenant; references must stay within the tenant`, { code: 'REFERENCE_OTHER_TENANT', expression: [where] }));
          break;
        case 'placeholder':
          issues.push(issue('error', 'not-found', `Unresolved placeholder reference ${ref.reference} at ${where}: it names no entry of this transaction`, { code: 'REFERENCE_UNRESOLVED', expression: [where] }));
          break;
        case 'conditional':
          issues.push(issue('error', 'not-supported', `Conditional reference at ${where} is only allowed inside a transaction Bundle`, { code: 'REFERENCE_CONDITIONAL_NOT_ALLOWED', expression: [where] }));
          break;
        case 'local': {
          const key = `${c.type}/${c.id}`;
          if (pending.has(key)) break;
          const paths = toCheck.get(key) ?? [];
          paths.push(where);
          toCheck.set(key, paths);
          break;
        }
        default:
          break;
      }
    }
  }
  if (toCheck.size && ctx.tenant.settings.referentialIntegrity !== false) {
    const refs = [...toCheck.keys()].map((k) => {
      const [type, id] = k.split('/');
      return { type, id };
    });
    // a reference to a resource the caller may not read is answered as if it did not exist (issue 8, finding 4)
    const found = await readableKeys(ctx, s, await s.existing(refs));
    for (const [key, paths] of toCheck) {
      if (found.has(key)) continue;
      for (const where of paths) {
        issues.push(issue('error', 'not-found', `Reference at ${where} points to ${key}, which does not exist in this tenant`, { code: 'REFERENCE_NOT_FOUND', expression: [where] }));
      }
    }
  }
  return issues;
}

/** Throws one FhirError carrying every issue when any is an error. */
export function throwIfErrors(issues: OperationOutcomeIssue[], message = 'The resource is not valid'): void {
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new FhirError('invalid', `${message}: ${issues[0].diagnostics}`, { issues, code: 'VALIDATION_FAILED' });
  }
}

/**
 * Profile rules (profile/index.ts): the resource against the profiles it claims that the server knows, those the
 * tenant requires for its type, and `explicit` ones ($validate?profile=); a StructureDefinition being stored must
 * itself be usable as a profile. Writes get errors and warnings; $validate also information (must-support, not checked).
 */
export async function profileIssues(
  ctx: FhirContext,
  s: TenantSession,
  resource: Record<string, unknown>,
  opts: ProfileCheckOptions = { mode: 'write' },
): Promise<OperationOutcomeIssue[]> {
  const issues = await validateProfiles(ctx, s, resource, opts);
  if (resource.resourceType === 'StructureDefinition') issues.push(...(await structureDefinitionIssues(ctx, s, resource as unknown as StructureDefinition)));
  return issues;
}
