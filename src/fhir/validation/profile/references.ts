// targetProfile of Reference elements: the type a reference points to ("Patient/1", an absolute URL ending in
// Type/id, "#contained") must be one the profile's target profiles constrain. The target's own conformance to the
// profile is not checked (that would mean reading and validating it).
import { isResourceType } from '../../../core/definitions.js';
import { isObject } from './instance.js';
import type { ProfileResolver } from './resolver.js';

/** The resource type a Reference value points to, when its form tells (else undefined). */
export function referenceType(ref: unknown, rootResource: Record<string, unknown>): string | undefined {
  if (!isObject(ref)) return undefined;
  const r = ref.reference;
  if (typeof r !== 'string') return typeof ref.type === 'string' ? ref.type : undefined;
  if (r.startsWith('#')) {
    const c = Array.isArray(rootResource.contained) ? rootResource.contained.find((x) => isObject(x) && x.id === r.slice(1)) : undefined;
    return isObject(c) && typeof c.resourceType === 'string' ? c.resourceType : undefined;
  }
  if (/^urn:/i.test(r)) return undefined;
  const parts = r.split('?')[0].split('/');
  const h = parts.lastIndexOf('_history');
  const tail = h >= 2 ? parts.slice(h - 2, h) : parts.slice(-2);
  return tail.length === 2 && isResourceType(tail[0]) ? tail[0] : undefined;
}

/** A message when the reference points to a type no target profile allows; undefined when it is fine or unknowable. */
export async function referenceTargetType(resolver: ProfileResolver, value: unknown, targetProfiles: string[], rootResource: Record<string, unknown>): Promise<string | undefined> {
  const type = referenceType(value, rootResource);
  if (!type) return undefined;
  const allowed = new Set<string>();
  for (const url of targetProfiles) {
    const t = await resolver.typeOf(url);
    if (!t) return undefined; // a target profile of unknown type: cannot tell
    allowed.add(t);
  }
  if (allowed.has('Resource') || allowed.has(type)) return undefined;
  return `Reference to ${type} is not allowed here (target profiles: ${targetProfiles.join(', ')})`;
}
