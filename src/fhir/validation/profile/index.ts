// Profile validation (profiling.html, validation.html#profile): which profiles apply to a resource, and the issues
// each raises. A resource is checked against
//   - every profile it claims in meta.profile that the server knows (shipped in profiles/, a core definition, or a
//     StructureDefinition stored in the tenant). An unknown claimed profile does not fail a write (as HAPI FHIR does
//     by default: a server cannot refuse data for naming a profile it has never seen); $validate reports it as a
//     warning (PROFILE_UNKNOWN);
//   - every profile the tenant requires for the resource type (TenantSettings.requiredProfiles), and those $validate
//     is asked for (`profile`): these must be known, else the write fails (PROFILE_UNKNOWN, error).
// $validate also reports absent must-support elements and what could not be checked, as information.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { TenantSession } from '../../../store/session.js';
import type { FhirContext } from '../../context.js';
import type { CompiledProfile } from './compile.js';
import { dedupeIssues, profileIssue } from './issues.js';
import { ProfileResolver, shippedDefinitions } from './resolver.js';
import { ProfileDefinitionError } from './snapshot.js';
import { Walker, type WalkStats } from './walk.js';

export { structureDefinitionIssues } from './definition-check.js';
export { shippedDefinitions } from './resolver.js';

/** The profiles shipped in profiles/, by the type they constrain (CapabilityStatement.rest.resource.supportedProfile). */
export function supportedProfiles(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const sd of shippedDefinitions().values()) (out[sd.type] ??= []).push(sd.url);
  return out;
}

export interface ProfileCheckOptions {
  /** write: errors and warnings only; validate: also must-support and "not checked" information. */
  mode: 'write' | 'validate';
  /** Profiles asked for explicitly ($validate?profile=). */
  explicit?: string[];
}

type Source = 'explicit' | 'required' | 'claimed';

/** The profiles that apply, each once, with why (the strictest reason wins). */
function applicable(resource: Record<string, unknown>, required: string[], explicit: string[]): { url: string; source: Source; index?: number }[] {
  const out = new Map<string, { url: string; source: Source; index?: number }>();
  for (const url of explicit) if (!out.has(url)) out.set(url, { url, source: 'explicit' });
  for (const url of required) if (!out.has(url)) out.set(url, { url, source: 'required' });
  const claimed = (resource.meta as { profile?: unknown } | undefined)?.profile;
  if (Array.isArray(claimed)) {
    claimed.forEach((url, index) => {
      if (typeof url === 'string' && !out.has(url)) out.set(url, { url, source: 'claimed', index });
    });
  }
  return [...out.values()];
}

/** Issues of `resource` against every profile that applies to it (empty when none applies). */
export async function validateProfiles(ctx: FhirContext, s: TenantSession, resource: Record<string, unknown>, opts: ProfileCheckOptions): Promise<OperationOutcomeIssue[]> {
  const type = String(resource.resourceType);
  const required = ctx.tenant.settings.requiredProfiles?.[type] ?? [];
  const targets = applicable(resource, required, opts.explicit ?? []);
  if (!targets.length) return [];
  const validate = opts.mode === 'validate';
  const resolver = new ProfileResolver(ctx, s);
  const stats: WalkStats = { skipped: new Map() };
  const issues: OperationOutcomeIssue[] = [];
  for (const t of targets) {
    const where = t.source === 'claimed' ? `${type}.meta.profile[${t.index}]` : type;
    let profile: CompiledProfile | undefined;
    let broken: string | undefined;
    try {
      profile = await resolver.get(t.url);
    } catch (err) {
      if (!(err instanceof ProfileDefinitionError)) throw err;
      broken = err.message;
    }
    if (!profile) {
      const why = broken ? `is not usable (${broken})` : 'is not known to this server';
      const reason = t.source === 'required' ? ' (the tenant requires it for this type)' : '';
      if (t.source !== 'claimed') issues.push(profileIssue(t.url, { severity: 'error', type: 'not-found', code: 'PROFILE_UNKNOWN', expression: where, message: `Profile ${t.url} ${why}${reason}` }));
      else if (validate) issues.push(profileIssue(t.url, { severity: 'warning', type: 'not-found', code: 'PROFILE_UNKNOWN', expression: where, message: `Claimed profile ${t.url} ${why}, so it was not checked` }));
      continue;
    }
    if (profile.type !== type) {
      issues.push(profileIssue(t.url, { severity: 'error', type: 'structure', code: 'PROFILE_TYPE', expression: where, message: `Profile ${t.url} constrains ${profile.type}, not ${type}` }));
      continue;
    }
    const w = new Walker(ctx, s, resolver, profile, { mustSupport: validate, informational: validate }, stats);
    await w.validateRoot(resource, type, type, { resource, rootResource: resource });
    issues.push(...w.issues);
  }
  if (validate) {
    for (const [url, skipped] of stats.skipped) {
      const keys = [...skipped].sort();
      issues.push(
        profileIssue(url, {
          severity: 'information',
          type: 'informational',
          code: 'PROFILE_NOT_CHECKED',
          expression: type,
          message: `${keys.length} invariant(s) could not be evaluated by the FHIRPath engine and were skipped: ${keys.join(', ')}`,
        }),
      );
    }
  }
  const out = dedupeIssues(issues);
  return validate ? out : out.filter((i) => i.severity !== 'information');
}
