// The terminology model every part of src/terminology/ shares: concepts of a code system as the service indexes
// them, the providers that answer for one code system (an indexed CodeSystem resource, or a grammar such as UCUM),
// and the entries of an expansion.

export interface CodingValue {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
}

export interface Designation {
  language?: string;
  use?: CodingValue;
  value: string;
}

/** A concept property as CodeSystem.concept.property spells it (one value[x]). */
export interface PropertyValue {
  code: string;
  valueCode?: string;
  valueString?: string;
  valueCoding?: CodingValue;
  valueBoolean?: boolean;
  valueInteger?: number;
  valueDecimal?: number;
  valueDateTime?: string;
}

export interface Concept {
  code: string;
  display?: string;
  definition?: string;
  designation?: Designation[];
  property?: PropertyValue[];
  /** Codes of the direct parents (nesting, `parent` properties, `child` properties of others). */
  parents: string[];
  children: string[];
  inactive: boolean;
  abstract: boolean;
}

export interface PropertyDef {
  code: string;
  uri?: string;
  description?: string;
  type?: string;
}

/** CodeSystem.content, plus `grammar` for systems whose codes are expressions (UCUM). */
export type ContentMode = 'complete' | 'fragment' | 'example' | 'not-present' | 'supplement' | 'grammar';

/** Everything the service asks of one code system. */
export interface CodeSystemProvider {
  readonly url: string;
  readonly version?: string;
  readonly name?: string;
  readonly content: ContentMode;
  readonly properties: ReadonlyMap<string, PropertyDef>;
  /** Concepts can be listed (complete, fragment and example content). */
  readonly enumerable: boolean;
  /** Number of concepts held (0 for grammars). */
  readonly size: number;
  lookup(code: string): Concept | undefined;
  /** Every concept, in definition order (enumerable providers only). */
  concepts(): Iterable<Concept>;
  /** Is `code` the same as `ancestor` or below it? */
  isA(code: string, ancestor: string): boolean;
  /** `code` and every concept below it. */
  descendantsOrSelf(code: string): string[];
  /** Extra filters the provider understands (UCUM `canonical`); undefined: not its filter. */
  filter?(property: string, op: string, value: string): ((c: Concept) => boolean) | undefined;
}

/** Does the provider hold every code of its system (so a missing code is not in it)? */
export function isComplete(p: CodeSystemProvider): boolean {
  return p.content === 'complete' || p.content === 'grammar';
}

export interface ExpansionEntry {
  system: string;
  version?: string;
  code: string;
  display?: string;
  inactive?: boolean;
  abstract?: boolean;
  designation?: Designation[];
}

/** A computed expansion, before text filter and paging. */
export interface Expansion {
  entries: ExpansionEntry[];
  /** The code systems (url|version) it draws on. */
  usedSystems: string[];
  /** Some code system it draws on is a fragment: codes may be missing. */
  partial: boolean;
}
