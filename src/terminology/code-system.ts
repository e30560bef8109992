// A CodeSystem resource indexed once: code -> concept, with the hierarchy drawn from nested concepts and from
// `parent` / `child` properties (codesystem.html#hierarchy), so subsumption and is-a filters are lookups.
import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';
import type { CodeSystemProvider, Concept, ContentMode, PropertyDef, PropertyValue } from './model.js';

const PARENT_URI = 'http://hl7.org/fhir/concept-properties#parent';
const CHILD_URI = 'http://hl7.org/fhir/concept-properties#child';
const INACTIVE_STATUS = new Set(['retired', 'inactive', 'deprecated']);

export class IndexedCodeSystem implements CodeSystemProvider {
  readonly url: string;
  readonly version?: string;
  readonly name?: string;
  readonly content: ContentMode;
  readonly properties = new Map<string, PropertyDef>();
  readonly enumerable: boolean;
  private readonly byCode = new Map<string, Concept>();
  /** Lower-cased codes, for code systems that say they are not case sensitive. */
  private readonly folded?: Map<string, Concept>;
  private readonly below = new Map<string, string[]>();

  constructor(cs: CodeSystem) {
    this.url = cs.url ?? '';
    if (cs.version !== undefined) this.version = cs.version;
    if (cs.name !== undefined) this.name = cs.name;
    this.content = (cs.content ?? 'complete') as ContentMode;
    this.enumerable = this.content !== 'not-present' && this.content !== 'supplement';
    for (const p of cs.property ?? []) if (p.code) this.properties.set(p.code, { code: p.code, uri: p.uri, description: p.description, type: p.type });
    const parentCodes = this.propertyCodes(PARENT_URI, 'parent');
    const childCodes = this.propertyCodes(CHILD_URI, 'child');
    const add = (list: CodeSystemConcept[], parent?: Concept) => {
      for (const c of list) {
        if (!c.code) continue;
        const concept = this.byCode.get(c.code) ?? toConcept(c);
        this.byCode.set(c.code, concept);
        if (parent) link(parent, concept);
        if (c.concept?.length) add(c.concept, concept);
      }
    };
    add(cs.concept ?? []);
    // hierarchy spelled as properties, once every concept is known
    for (const concept of this.byCode.values()) {
      for (const p of concept.property ?? []) {
        const other = this.byCode.get(p.valueCode ?? p.valueCoding?.code ?? p.valueString ?? '');
        if (!other || other === concept) continue;
        if (parentCodes.has(p.code)) link(other, concept);
        else if (childCodes.has(p.code)) link(concept, other);
      }
    }
    if (cs.caseSensitive === false) {
      this.folded = new Map();
      for (const [code, c] of this.byCode) if (!this.folded.has(code.toLowerCase())) this.folded.set(code.toLowerCase(), c);
    }
  }

  /** Property codes that carry the hierarchy: declared with the standard URI, or named so. */
  private propertyCodes(uri: string, name: string): Set<string> {
    const out = new Set<string>([name]);
    for (const p of this.properties.values()) if (p.uri === uri) out.add(p.code);
    return out;
  }

  get size(): number {
    return this.byCode.size;
  }

  lookup(code: string): Concept | undefined {
    return this.byCode.get(code) ?? this.folded?.get(code.toLowerCase());
  }

  concepts(): Iterable<Concept> {
    return this.byCode.values();
  }

  isA(code: string, ancestor: string): boolean {
    const start = this.lookup(code);
    const target = this.lookup(ancestor);
    if (!start || !target) return false;
    const seen = new Set<string>();
    const queue = [start.code];
    while (queue.length) {
      const c = queue.pop()!;
      if (c === target.code) return true;
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(...(this.byCode.get(c)?.parents ?? []));
    }
    return false;
  }

  descendantsOrSelf(code: string): string[] {
    const root = this.lookup(code);
    if (!root) return [];
    let out = this.below.get(root.code);
    if (out) return out;
    const seen = new Set<string>([root.code]);
    const queue = [root.code];
    while (queue.length) {
      for (const child of this.byCode.get(queue.shift()!)?.children ?? []) {
        if (!seen.has(child)) {
          seen.add(child);
          queue.push(child);
        }
      }
    }
    out = [...seen];
    if (this.below.size < 1000) this.below.set(root.code, out);
    return out;
  }
}

function link(parent: Concept, child: Concept): void {
  if (!child.parents.includes(parent.code)) child.parents.push(parent.code);
  if (!parent.children.includes(child.code)) parent.children.push(child.code);
}

function toConcept(c: CodeSystemConcept): Concept {
  const property = (c.property ?? []).filter((p) => p.code) as PropertyValue[];
  const concept: Concept = { code: c.code!, parents: [], children: [], inactive: false, abstract: false };
  if (c.display !== undefined) concept.display = c.display;
  if (c.definition !== undefined) concept.definition = c.definition;
  if (c.designation?.length) concept.designation = c.designation.filter((d) => d.value !== undefined) as Concept['designation'];
  if (property.length) concept.property = property;
  for (const p of property) {
    if ((p.code === 'status' && INACTIVE_STATUS.has(p.valueCode ?? p.valueString ?? '')) || (p.code === 'inactive' && p.valueBoolean === true) || p.code === 'deprecationDate') concept.inactive = true;
    if (p.code === 'notSelectable' && p.valueBoolean === true) concept.abstract = true;
  }
  return concept;
}
