// SearchParameter registry: the official R4 definitions, with each parameter's FHIRPath expression cut down
// to the branches for one resource type and compiled once (search.html "Search Parameters").
import { parseFhirPath, toTypedValue, type FhirPathAtom } from '@medplum/core';
import type { OperationOutcomeIssue, SearchParameter } from '@medplum/fhirtypes';
import { issue } from './errors.js';
import { r4ResourceTypes, r4SearchParameters } from './definitions.js';
import { compileBranch, type Extractor } from './fast-path.js';

export type ParamType = 'token' | 'string' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

export interface SearchParamDef {
  code: string;
  type: ParamType;
  /** The canonical URL of the SearchParameter definition. */
  url: string;
  /** The branch(es) of the expression that apply to this resource type. */
  expression: string;
  /** Evaluates the expression on a resource; plain paths run without the FHIRPath engine. */
  extract: Extractor | undefined;
  target: string[];
  /** composite parameters: the component types and their extractors, relative to each base node */
  components?: { type: ParamType; url: string; extract: Extractor }[];
}

/** Splits a FHIRPath union at top level: "A.x | (A.y as T) | B.z" -> ["A.x", "(A.y as T)", "B.z"]. */
function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === "'") quote = !quote;
    else if (quote) continue;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter(Boolean);
}

function branchType(branch: string): string | undefined {
  const m = /^\(*\s*([A-Z][A-Za-z]+)/.exec(branch);
  return m?.[1];
}

function compileExtractor(branches: string[], type: string): Extractor | undefined {
  const fast = branches.map((b) => compileBranch(b, type));
  if (fast.every((f) => f !== undefined)) {
    const fns = fast as Extractor[];
    return fns.length === 1 ? fns[0] : (r) => fns.flatMap((f) => f(r));
  }
  let atom: FhirPathAtom;
  try {
    atom = parseFhirPath(branches.join(' | '));
  } catch {
    return undefined;
  }
  return (r) => atom.eval({ variables: {} }, [toTypedValue(r)]).map((v) => v.value);
}

export class SearchParamRegistry {
  protected readonly byType = new Map<string, Map<string, SearchParamDef>>();

  protected readonly byUrl = new Map<string, SearchParameter>();

  constructor(params: SearchParameter[] = r4SearchParameters(), types: Iterable<string> = r4ResourceTypes()) {
    for (const type of types) this.byType.set(type, new Map());
    for (const sp of params) if (sp.url) this.byUrl.set(sp.url, sp);
    for (const sp of params) this.add(sp);
  }

  /**
   * A registry with a tenant's own SearchParameter resources added on top of this one (the base is shared,
   * only the types the custom parameters touch are copied).
   */
  withCustom(custom: SearchParameter[]): SearchParamRegistry {
    const derived = Object.create(SearchParamRegistry.prototype) as SearchParamRegistry;
    const self = derived as unknown as { byType: Map<string, Map<string, SearchParamDef>>; byUrl: Map<string, SearchParameter> };
    self.byType = new Map(this.byType);
    self.byUrl = new Map(this.byUrl);
    for (const sp of custom) {
      if (sp.url) self.byUrl.set(sp.url, sp);
      for (const b of (sp.base ?? []) as string[]) {
        const types = b === 'Resource' || b === 'DomainResource' ? [...self.byType.keys()] : [b];
        for (const t of types) if (self.byType.has(t)) self.byType.set(t, new Map(self.byType.get(t)));
      }
    }
    for (const sp of custom) derived.add(sp);
    return derived;
  }

  private compileComponents(sp: SearchParameter): SearchParamDef['components'] {
    const out: NonNullable<SearchParamDef['components']> = [];
    for (const c of sp.component ?? []) {
      const target = c.definition ? this.byUrl.get(c.definition) : undefined;
      if (!target?.type || !c.expression) return undefined;
      let atom: FhirPathAtom;
      try {
        atom = parseFhirPath(c.expression);
      } catch {
        return undefined;
      }
      out.push({ type: target.type as ParamType, url: c.definition!, extract: (node) => atom.eval({ variables: {} }, [toTypedValue(node)]).map((v) => v.value) });
    }
    return out;
  }

  protected add(sp: SearchParameter): void {
    if (!sp.code || !sp.type || !sp.base) return;
    const bases = (sp.base as string[]).flatMap((b) => (b === 'Resource' || b === 'DomainResource' ? [...this.byType.keys()] : [b]));
    for (const type of bases) {
      const params = this.byType.get(type);
      if (!params) continue;
      const branches = sp.expression
        ? splitUnion(sp.expression)
            .filter((b) => {
              const t = branchType(b);
              return t === type || t === 'Resource' || t === 'DomainResource';
            })
            // "Resource.meta.tag" is evaluated on the concrete type.
            .map((b) => b.replace(/^(\(*)(Resource|DomainResource)\./, `$1${type}.`))
        : [];
      const expression = branches.join(' | ');
      let extract: Extractor | undefined;
      let components: SearchParamDef['components'];
      if (branches.length && sp.type !== 'special') extract = compileExtractor(branches, type);
      if (sp.type === 'composite') {
        components = this.compileComponents(sp);
        // a composite whose base is the resource itself ("Observation") extracts the resource
        if (branches.length === 1 && branches[0] === type) extract = (r) => [r];
        if (!components) extract = undefined;
      }
      params.set(sp.code, {
        code: sp.code,
        type: sp.type as ParamType,
        url: sp.url ?? '',
        expression,
        extract,
        target: (sp.target ?? []) as string[],
        components,
      });
    }
  }

  /** The parameters defined for a resource type (including the Resource-level ones). */
  paramsFor(type: string): Map<string, SearchParamDef> {
    return this.byType.get(type) ?? new Map();
  }

  get(type: string, code: string): SearchParamDef | undefined {
    return this.byType.get(type)?.get(code);
  }
}

const CUSTOM_TYPES = new Set(['number', 'date', 'string', 'token', 'reference', 'quantity', 'uri']);

/** What makes a SearchParameter resource unusable as a tenant's custom parameter. */
export function customIssues(base: SearchParamRegistry, sp: SearchParameter): OperationOutcomeIssue[] {
  const out: OperationOutcomeIssue[] = [];
  const err = (msg: string, path: string) => out.push(issue('error', 'business-rule', msg, { code: 'SEARCH_PARAM_DEFINITION_INVALID', expression: [`SearchParameter.${path}`] }));
  if (!sp.code || !/^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/.test(sp.code)) err('code must be 1-64 letters, digits, - or _, starting with a letter', 'code');
  if (!sp.type || !CUSTOM_TYPES.has(sp.type)) err(`type must be one of ${[...CUSTOM_TYPES].join(', ')} for a custom parameter`, 'type');
  if (!sp.expression) err('a custom parameter needs a FHIRPath expression', 'expression');
  else {
    try {
      parseFhirPath(sp.expression);
    } catch (e) {
      err(`expression does not parse: ${(e as Error).message.slice(0, 200)}`, 'expression');
    }
  }
  for (const b of (sp.base ?? []) as string[]) {
    if (!base.paramsFor(b).size) err(`unknown base resource type '${b}'`, 'base');
    else if (sp.code && base.get(b, sp.code) && base.get(b, sp.code)!.url !== sp.url) {
      err(`'${sp.code}' is already a standard search parameter of ${b}`, 'code');
    }
  }
  if (!sp.base?.length) err('base names the resource types the parameter applies to', 'base');
  return out;
}
