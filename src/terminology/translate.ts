// ConceptMap $translate (conceptmap-operation-translate.html) over one R4 ConceptMap: the matches for one
// system|code, forwards (source -> target) or in reverse, with group.unmapped (provided / fixed) applied.
import type { ConceptMap } from '@medplum/fhirtypes';
import type { CodingValue } from './model.js';

export interface TranslateMatch {
  equivalence: string;
  concept?: CodingValue;
  /** The canonical of the ConceptMap that gave the match. */
  source?: string;
}

export interface TranslateQuery {
  system?: string;
  code: string;
  /** Only matches into this system. */
  targetSystem?: string;
  reverse?: boolean;
}

/** Read backwards, a map that says "A is wider than B" says "B is narrower than A". */
const INVERSE: Record<string, string> = { wider: 'narrower', narrower: 'wider', subsumes: 'specializes', specializes: 'subsumes' };
const NO_MATCH = new Set(['unmatched', 'disjoint']);

export function translate(map: ConceptMap, q: TranslateQuery): TranslateMatch[] {
  const out: TranslateMatch[] = [];
  const source = map.url;
  const withSource = (m: TranslateMatch): TranslateMatch => (source ? { ...m, source } : m);
  for (const g of map.group ?? []) {
    const from = q.reverse ? g.target : g.source;
    const to = q.reverse ? g.source : g.target;
    if (q.system !== undefined && from !== undefined && from !== q.system) continue;
    if (q.targetSystem !== undefined && to !== undefined && to !== q.targetSystem) continue;
    let found = false;
    for (const el of g.element ?? []) {
      for (const t of el.target ?? []) {
        const hit = q.reverse ? t.code === q.code : el.code === q.code;
        if (!hit) continue;
        found = true;
        const equivalence = q.reverse ? (INVERSE[t.equivalence ?? ''] ?? t.equivalence ?? 'equivalent') : (t.equivalence ?? 'equivalent');
        const code = q.reverse ? el.code : t.code;
        const display = q.reverse ? el.display : t.display;
        const version = q.reverse ? g.sourceVersion : g.targetVersion;
        const concept: CodingValue | undefined = code ? { ...(to ? { system: to } : {}), ...(version ? { version } : {}), code, ...(display ? { display } : {}) } : undefined;
        out.push(withSource(concept ? { equivalence, concept } : { equivalence }));
      }
      // an element listed with no target at all says the code maps to nothing
      if (!q.reverse && el.code === q.code && !el.target?.length) found = true;
    }
    if (found || q.reverse || !g.unmapped) continue;
    if (g.unmapped.mode === 'provided') out.push(withSource({ equivalence: 'equal', concept: { ...(to ? { system: to } : {}), code: q.code } }));
    else if (g.unmapped.mode === 'fixed' && g.unmapped.code) {
      out.push(withSource({ equivalence: 'equivalent', concept: { ...(to ? { system: to } : {}), code: g.unmapped.code, ...(g.unmapped.display ? { display: g.unmapped.display } : {}) } }));
    }
  }
  return out;
}

/** Does any match say the code maps (rather than "unmatched" or "disjoint")? */
export function isMapped(matches: TranslateMatch[]): boolean {
  return matches.some((m) => m.concept && !NO_MATCH.has(m.equivalence));
}

/** Maps whose groups translate from `system` (into `targetSystem`), in the given direction. */
export function mapsFrom(map: ConceptMap, system: string, reverse: boolean, targetSystem?: string): boolean {
  return (map.group ?? []).some((g) => (reverse ? g.target : g.source) === system && (targetSystem === undefined || (reverse ? g.source : g.target) === targetSystem));
}
