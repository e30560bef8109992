// ValueSet expansion and membership (valueset.html#expansion): compose.include / exclude with concept lists,
// filters and imported value sets, evaluated against code systems a TerminologySource supplies (already resolved:
// this file is pure and synchronous). Membership is answered from the rules, without expanding, so a code can be
// checked against value sets too large to list, or drawing on code systems held only in part.
import type { ValueSet, ValueSetComposeInclude } from '@medplum/fhirtypes';
import { FhirError } from '../core/errors.js';
import { compileFilter, filterSeed, type ConceptTest } from './filters.js';
import { isComplete, type CodeSystemProvider, type Concept, type Designation, type Expansion, type ExpansionEntry } from './model.js';

/** Code systems and value sets by canonical, resolved beforehand (tenant first, then shipped). */
export interface TerminologySource {
  codeSystem(url: string, version?: string): CodeSystemProvider | undefined;
  valueSet(url: string, version?: string): ValueSet | undefined;
}

/** Most entries one expansion may hold while being computed. */
export const MAX_EXPANSION = 100_000;
const MAX_DEPTH = 10;

export function splitCanonical(canonical: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  return bar < 0 ? { url: canonical } : { url: canonical.slice(0, bar), version: canonical.slice(bar + 1) || undefined };
}

const keyOf = (system: string, code: string) => `${system}\u0000${code}`;

interface Walk {
  src: TerminologySource;
  /** canonicals of the value sets being expanded (cycle guard) */
  stack: string[];
}

function unknownValueSet(canonical: string, path: string): FhirError {
  return new FhirError('unprocessable', `Value set ${canonical} is not known to this server`, { code: 'TERMINOLOGY_VALUESET_UNKNOWN', issueType: 'not-found', expression: [path] });
}

export function unknownCodeSystem(url: string, version: string | undefined, path: string): FhirError {
  return new FhirError('unprocessable', `Code system ${url}${version ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_SYSTEM_UNKNOWN', issueType: 'not-found', expression: [path] });
}

function tooCostly(what: string): FhirError {
  return new FhirError('unprocessable', `The expansion of ${what} has more than ${MAX_EXPANSION} codes; this server does not list it (validate codes with $validate-code instead)`, {
    code: 'EXPAND_TOO_COSTLY',
    issueType: 'too-costly',
  });
}

/** Expands `vs` completely (inactive codes included, flagged). */
export function expandValueSet(vs: ValueSet, src: TerminologySource, stack: string[] = []): Expansion {
  const label = vs.url ?? 'the value set';
  if (stack.length > MAX_DEPTH) throw new FhirError('unprocessable', `Value set imports nest deeper than ${MAX_DEPTH} levels`, { code: 'TERMINOLOGY_VALUESET_CYCLE', issueType: 'processing' });
  const w: Walk = { src, stack: vs.url ? [...stack, vs.url] : stack };
  const out: Expansion = { entries: [], usedSystems: [], partial: false };
  if (!vs.compose) {
    // a ValueSet that carries only its expansion (stored pre-expanded)
    for (const e of flatten(vs.expansion?.contains ?? [])) out.entries.push(e);
    return out;
  }
  const seen = new Set<string>();
  const used = new Set<string>();
  const includes = vs.compose.include ?? [];
  const excludes = (vs.compose.exclude ?? []).map((inc, i) => compileMembership(inc, w, `ValueSet.compose.exclude[${i}]`, out));
  const activeOnly = vs.compose.inactive === false;
  includes.forEach((inc, i) => {
    for (const e of includeEntries(inc, w, `ValueSet.compose.include[${i}]`, out, used)) {
      const k = keyOf(e.system, e.code);
      if (seen.has(k) || (activeOnly && e.inactive)) continue;
      if (excludes.some((ex) => ex(e.system, e.code) === true)) continue;
      seen.add(k);
      out.entries.push(e);
      if (out.entries.length > MAX_EXPANSION) throw tooCostly(label);
    }
  });
  out.usedSystems = [...used];
  return out;
}

function flatten(list: NonNullable<ValueSet['expansion']>['contains']): ExpansionEntry[] {
  const out: ExpansionEntry[] = [];
  for (const c of list ?? []) {
    if (c.system && c.code) {
      const e: ExpansionEntry = { system: c.system, code: c.code };
      if (c.version) e.version = c.version;
      if (c.display) e.display = c.display;
      if (c.inactive) e.inactive = true;
      if (c.abstract) e.abstract = true;
      out.push(e);
    }
    if (c.contains?.length) out.push(...flatten(c.contains));
  }
  return out;
}

function entryOf(cs: CodeSystemProvider | undefined, system: string, concept: Concept | undefined, code: string, display?: string, designation?: Designation[]): ExpansionEntry {
  const e: ExpansionEntry = { system, code };
  if (cs?.version) e.version = cs.version;
  const d = display ?? concept?.display;
  if (d !== undefined) e.display = d;
  if (concept?.inactive) e.inactive = true;
  if (concept?.abstract) e.abstract = true;
  const designations = [...(designation ?? []), ...(concept?.designation ?? [])];
  if (designations.length) e.designation = designations;
  return e;
}

/** The entries one include contributes, in order. */
function* includeEntries(inc: ValueSetComposeInclude, w: Walk, path: string, out: Expansion, used: Set<string>): Generator<ExpansionEntry> {
  const imports = (inc.valueSet ?? []).map((canonical, i) => importedMembers(canonical, w, `${path}.valueSet[${i}]`, out));
  const inImports = (e: ExpansionEntry) => imports.every((m) => m.has(keyOf(e.system, e.code)));
  if (!inc.system) {
    if (!imports.length) throw new FhirError('invalid', 'An include needs a system or a valueSet', { code: 'TERMINOLOGY_INCLUDE_INVALID', expression: [path] });
    const [first, ...rest] = imports;
    for (const e of first.values()) if (rest.every((m) => m.has(keyOf(e.system, e.code)))) yield e;
    return;
  }
  const system = inc.system;
  const cs = w.src.codeSystem(system, inc.version);
  if (cs) used.add(cs.version ? `${system}|${cs.version}` : system);
  if (inc.concept?.length) {
    for (const c of inc.concept) {
      if (!c.code) continue;
      const concept = cs?.lookup(c.code);
      if (cs && !concept && isComplete(cs)) continue; // not a code of the system: left out
      const e = entryOf(cs, system, concept, concept?.code ?? c.code, c.display, c.designation as Designation[] | undefined);
      if (inImports(e)) yield e;
    }
    return;
  }
  if (!cs) throw unknownCodeSystem(system, inc.version, `${path}.system`);
  if (!cs.enumerable) {
    const why = cs.content === 'grammar' ? `${system} is a grammar: its codes cannot be listed` : `this server does not hold the content of ${system}`;
    throw new FhirError('unprocessable', `Cannot expand an include of all of ${why} (validate codes with $validate-code instead)`, { code: 'EXPAND_NOT_ENUMERABLE', issueType: cs.content === 'grammar' ? 'too-costly' : 'not-supported', expression: [`${path}.system`] });
  }
  if (!isComplete(cs)) out.partial = true;
  const filters = (inc.filter ?? []).map((f, i) => compileFilter(cs, f, `${path}.filter[${i}]`));
  const seed = (inc.filter ?? []).map((f) => filterSeed(cs, f)).find((s) => s !== undefined);
  const candidates: Iterable<Concept> = seed ? seed.map((code) => cs.lookup(code)).filter((c): c is Concept => !!c) : cs.concepts();
  for (const concept of candidates) {
    if (!filters.every((f) => f(concept) === true)) continue;
    const e = entryOf(cs, system, concept, concept.code);
    if (inImports(e)) yield e;
  }
}

/** The members of an imported value set, by system+code. */
function importedMembers(canonical: string, w: Walk, path: string, out: Expansion): Map<string, ExpansionEntry> {
  const { url, version } = splitCanonical(canonical);
  if (w.stack.includes(url)) throw new FhirError('unprocessable', `Value set ${url} imports itself`, { code: 'TERMINOLOGY_VALUESET_CYCLE', issueType: 'processing', expression: [path] });
  const vs = w.src.valueSet(url, version);
  if (!vs) throw unknownValueSet(canonical, path);
  const inner = expandValueSet(vs, w.src, w.stack);
  if (inner.partial) out.partial = true;
  return new Map(inner.entries.map((e) => [keyOf(e.system, e.code), e]));
}

/** A membership test of one include (or exclude): true, false, or undefined (cannot tell). */
type Membership = (system: string | undefined, code: string) => boolean | undefined;

function compileMembership(inc: ValueSetComposeInclude, w: Walk, path: string, expanded?: Expansion): Membership {
  const imports = (inc.valueSet ?? []).map((canonical, i): Membership => {
    if (expanded) {
      // while expanding: the imported value set is expanded once, not checked code by code
      const members = importedMembers(canonical, w, `${path}.valueSet[${i}]`, expanded);
      return (system, code) => (system === undefined ? [...members.values()].some((e) => e.code === code) : members.has(keyOf(system, code)));
    }
    const { url, version } = splitCanonical(canonical);
    if (w.stack.includes(url)) throw new FhirError('unprocessable', `Value set ${url} imports itself`, { code: 'TERMINOLOGY_VALUESET_CYCLE', issueType: 'processing', expression: [`${path}.valueSet[${i}]`] });
    const vs = w.src.valueSet(url, version);
    if (!vs) throw unknownValueSet(canonical, `${path}.valueSet[${i}]`);
    return (system: string | undefined, code: string) => checkMembership(vs, w.src, system, code, w.stack).result;
  });
  const inImports = (system: string | undefined, code: string) => and(imports.map((m) => m(system, code)));
  if (!inc.system) return inImports;
  const system = inc.system;
  const cs = w.src.codeSystem(system, inc.version);
  if (inc.concept?.length) {
    const codes = new Set(inc.concept.map((c) => c.code));
    return (s, code) => {
      if (s !== undefined && s !== system) return false;
      const listed = codes.has(code) || (cs?.lookup(code) !== undefined && codes.has(cs.lookup(code)!.code));
      return listed ? inImports(system, code) : false;
    };
  }
  if (!cs) return (s) => (s !== undefined && s !== system ? false : undefined);
  const filters: ConceptTest[] = (inc.filter ?? []).map((f, i) => compileFilter(cs, f, `${path}.filter[${i}]`));
  return (s, code) => {
    if (s !== undefined && s !== system) return false;
    const concept = cs.lookup(code);
    if (!concept) return isComplete(cs) ? false : undefined;
    const r = and(filters.map((f) => f(concept)));
    return r === false ? false : and([r, inImports(system, code)]);
  };
}

/** Three-valued AND: false wins, then undefined. */
function and(values: (boolean | undefined)[]): boolean | undefined {
  if (values.includes(false)) return false;
  return values.includes(undefined) ? undefined : true;
}

export interface MembershipResult {
  /** undefined: the server cannot tell (a code system it does not hold, or holds in part). */
  result: boolean | undefined;
  /** The system the code was found in (when the caller gave none). */
  system?: string;
}

/** Is system|code in `vs`? Evaluated on the compose rules (or the stored expansion). */
export function checkMembership(vs: ValueSet, src: TerminologySource, system: string | undefined, code: string, stack: string[] = []): MembershipResult {
  if (stack.length > MAX_DEPTH) throw new FhirError('unprocessable', `Value set imports nest deeper than ${MAX_DEPTH} levels`, { code: 'TERMINOLOGY_VALUESET_CYCLE', issueType: 'processing' });
  const w: Walk = { src, stack: vs.url ? [...stack, vs.url] : stack };
  if (!vs.compose) {
    const hit = flatten(vs.expansion?.contains ?? []).find((e) => e.code === code && (system === undefined || e.system === system));
    return hit ? { result: true, system: hit.system } : { result: false };
  }
  const includes = vs.compose.include ?? [];
  let result: boolean | undefined = false;
  let foundIn: string | undefined;
  for (let i = 0; i < includes.length; i++) {
    const r = compileMembership(includes[i], w, `ValueSet.compose.include[${i}]`)(system, code);
    if (r === true) {
      result = true;
      foundIn = includes[i].system ?? system;
      break;
    }
    if (r === undefined) result = undefined;
  }
  if (result === false) return { result };
  const excludes = vs.compose.exclude ?? [];
  for (let i = 0; i < excludes.length; i++) {
    const r = compileMembership(excludes[i], w, `ValueSet.compose.exclude[${i}]`)(system ?? foundIn, code);
    if (r === true) return { result: false };
    if (r === undefined && result === true) result = undefined;
  }
  if (result === true && vs.compose.inactive === false && foundIn) {
    if (src.codeSystem(foundIn)?.lookup(code)?.inactive) return { result: false };
  }
  return result === true && foundIn ? { result, system: foundIn } : { result };
}
