// A StructureDefinition a tenant stores must be usable as a profile before it is stored: it names its type and a base
// the server knows (core, shipped, or the tenant's own), its snapshot can be generated, and its invariants parse.
// Definitions that are not constraints (logical models, specializations) are stored without these checks: they are
// never enforced.
import type { OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import type { TenantSession } from '../../../store/session.js';
import type { FhirContext } from '../../context.js';
import { compileProfile } from './compile.js';
import { isKnownType } from './definitions.js';
import { parseOnce } from './invariants.js';
import { profileIssue } from './issues.js';
import { forgetAbsentDefinitions, ProfileResolver } from './resolver.js';
import { ProfileDefinitionError } from './snapshot.js';

function problem(url: string, expression: string, message: string): OperationOutcomeIssue {
  return profileIssue(url, { severity: 'error', type: 'invalid', code: 'PROFILE_DEFINITION_INVALID', expression, message });
}

/** Issues of a StructureDefinition about to be stored (empty when usable, or when it is not a constraint). */
export async function structureDefinitionIssues(ctx: FhirContext, s: TenantSession, sd: StructureDefinition): Promise<OperationOutcomeIssue[]> {
  forgetAbsentDefinitions(ctx.tenant.id);
  if (sd.derivation !== 'constraint' || sd.kind === 'logical') return [];
  const url = sd.url ?? '(no url)';
  const issues: OperationOutcomeIssue[] = [];
  if (!sd.url) issues.push(problem(url, 'StructureDefinition.url', 'A profile needs a canonical url'));
  if (!sd.type || !isKnownType(sd.type)) issues.push(problem(url, 'StructureDefinition.type', `Unknown type ${JSON.stringify(sd.type)}`));
  if (!sd.baseDefinition) issues.push(problem(url, 'StructureDefinition.baseDefinition', 'A profile needs a baseDefinition'));
  const diff = sd.differential?.element ?? [];
  diff.forEach((e, i) => {
    (e.constraint ?? []).forEach((c, j) => {
      if (c.expression && !parseOnce(c.expression)) {
        issues.push(problem(url, `StructureDefinition.differential.element[${i}].constraint[${j}].expression`, `Invariant ${c.key ?? j} of ${e.id ?? e.path} does not parse as FHIRPath`));
      }
    });
  });
  if (issues.length) return issues;
  try {
    const p = await new ProfileResolver(ctx, s).prepare(sd, new Set());
    compileProfile(sd, p.snapshot);
  } catch (err) {
    if (!(err instanceof ProfileDefinitionError)) throw err;
    const element = err.element;
    const index = diff.findIndex((e) => e.id === element || (!e.id && e.path === element));
    const expression = index >= 0 ? `StructureDefinition.differential.element[${index}]` : element.startsWith('StructureDefinition') ? element : 'StructureDefinition.differential';
    issues.push(problem(url, expression, `The profile cannot be used: ${err.message}`));
  }
  return issues;
}
