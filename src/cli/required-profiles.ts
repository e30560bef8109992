// `tenant set --require-profile Type=url` (repeatable) and `--clear-required-profiles Type` (repeatable, `*` for every
// type): the tenant's requiredProfiles setting after those options, computed from its current value.
import { isResourceType } from '../core/definitions.js';

export type RequiredProfiles = Record<string, string[]>;

/** The new setting, or an error message naming the bad option. Clearing happens before adding. */
export function applyProfileOptions(current: RequiredProfiles | undefined, require: string[], clear: string[]): RequiredProfiles | string {
  const next: RequiredProfiles = {};
  for (const [type, urls] of Object.entries(current ?? {})) next[type] = [...urls];
  for (const type of clear) {
    if (type === '*') {
      for (const k of Object.keys(next)) delete next[k];
      continue;
    }
    if (!isResourceType(type)) return `--clear-required-profiles: unknown resource type '${type}'`;
    delete next[type];
  }
  for (const option of require) {
    const eq = option.indexOf('=');
    const type = eq < 0 ? '' : option.slice(0, eq);
    const url = eq < 0 ? '' : option.slice(eq + 1);
    if (!isResourceType(type)) return `--require-profile ${option}: expected Type=url with a resource type (e.g. DiagnosticReport=http://...)`;
    if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(url)) return `--require-profile ${option}: '${url}' is not a canonical URL`;
    const list = next[type] ?? [];
    if (!list.includes(url)) list.push(url);
    next[type] = list;
  }
  return next;
}
