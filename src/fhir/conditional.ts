// The criteria of a conditional request in one canonical spelling (http.html#ccreate, #cond-update, #cond-delete,
// bundle.html conditional references): decoded, sorted and re-encoded, so `identifier=s|v`, `identifier=s%7Cv`, the
// same criteria in another order, from If-None-Exist, a conditional URL or a bundle entry, are the same condition.
import { FORMAT_PARAMS } from '../search/plan.js';

function byNameThenValue([ak, av]: [string, string], [bk, bv]: [string, string]): number {
  return ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0;
}

/** The canonical query of a condition given as parameters (output-format parameters dropped). */
export function canonicalCondition(params: [string, string][]): string {
  return new URLSearchParams(params.filter(([k]) => !FORMAT_PARAMS.has(k)).sort(byNameThenValue)).toString();
}

/** The same for a query string. */
function canonicalQuery(query: string): string {
  return canonicalCondition([...new URLSearchParams(query)] as [string, string][]);
}

/**
 * If-None-Exist carries "[search]"; clients also send "Type?[search]" or "?[search]": the prefix is dropped (but not
 * a '?' inside a value).
 */
export function ifNoneExistQuery(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return canonicalQuery(header.replace(/^[^?=&]*\?/, ''));
}

/** One key per condition on a type: "Patient?identifier=..." (bundles match entries and references by it). */
export function conditionKey(type: string, query: string): string {
  return `${type}?${canonicalQuery(query)}`;
}
