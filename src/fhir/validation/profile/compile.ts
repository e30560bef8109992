// A snapshot compiled for validation: the element tree with, on each element, what to check and how. Checks a core
// definition already makes (the JSON Schema enforces base cardinalities, types and required code bindings) are only
// repeated where the profile changed the element; fixed/pattern values, slices and invariants are always checked.
import type { ElementDefinition, ElementDefinitionBinding, ElementDefinitionSlicingDiscriminator, StructureDefinition } from '@medplum/fhirtypes';
import { coreElement, isPrimitiveType, typeCode } from './definitions.js';
import { buildTree, lastSegment, type TreeNode } from './element-tree.js';
import { compileInvariant, type Invariant } from './invariants.js';
import { maxOf } from './snapshot.js';

export interface TypeRef {
  code: string;
  profiles: string[];
  targetProfiles: string[];
}

export interface ElementNode {
  id: string;
  /** JSON property name ("category", "value[x]"). */
  name: string;
  /** "value" for "value[x]"; undefined when not a choice. */
  choicePrefix?: string;
  min: number;
  max: number;
  types: TypeRef[];
  children: ElementNode[];
  /** The element another element's definition is reused from (Questionnaire.item.item -> Questionnaire.item). */
  contentReference?: string;
  slicing?: { discriminators: ElementDefinitionSlicingDiscriminator[]; rules: 'closed' | 'open' | 'openAtEnd'; ordered: boolean };
  slices: ElementNode[];
  sliceName?: string;
  fixed?: { key: string; value: unknown };
  pattern?: { key: string; value: unknown };
  binding?: { strength: 'required' | 'extensible'; valueSet: string };
  invariants: Invariant[];
  mustSupport: boolean;
  checkCardinality: boolean;
  checkTypes: boolean;
  /** Something to report when the element is absent (a minimum, a slice with a minimum). */
  checkWhenAbsent: boolean;
  /** A primitive element with nothing to check (the base validation covers ele-1): the walk passes it by. */
  skip: boolean;
}

export interface CompiledProfile {
  url: string;
  /** The resource or data type it constrains. */
  type: string;
  root: ElementNode;
  /** Every element by id (content references, discriminator look-ups). */
  byId: Map<string, ElementNode>;
  /** Other profiles it names (type profiles), so they can be loaded before validation. */
  references: string[];
}

function valueKey(ed: ElementDefinition, prefix: 'fixed' | 'pattern'): { key: string; value: unknown } | undefined {
  for (const [k, v] of Object.entries(ed)) if (k.startsWith(prefix) && k.length > prefix.length && v !== undefined) return { key: k, value: v };
  return undefined;
}

function typeSignature(types: TypeRef[]): string {
  return types.map((t) => `${t.code}|${t.profiles.join(',')}|${t.targetProfiles.join(',')}`).join(';');
}

function typesOf(ed: ElementDefinition | undefined): TypeRef[] {
  return (ed?.type ?? []).map((t) => ({ code: typeCode(t), profiles: (t.profile ?? []) as string[], targetProfiles: (t.targetProfile ?? []) as string[] }));
}

function bindingOf(b: ElementDefinitionBinding | undefined): ElementNode['binding'] {
  if (!b?.valueSet || (b.strength !== 'required' && b.strength !== 'extensible')) return undefined;
  return { strength: b.strength, valueSet: b.valueSet };
}

function compileNode(t: TreeNode, inSlice: boolean, url: string, refs: Set<string>, byId: Map<string, ElementNode>): ElementNode {
  const ed = t.ed;
  const name = lastSegment(ed.path ?? '');
  const core = ed.base?.path ? coreElement(ed.base.path) : undefined;
  const types = typesOf(ed);
  const isSlice = inSlice || !!ed.sliceName;
  const min = ed.min ?? 0;
  const max = maxOf(ed.max) ?? Infinity;
  const baseMin = ed.base?.min ?? core?.min ?? 0;
  const baseMax = maxOf(ed.base?.max ?? core?.max) ?? Infinity;
  const binding = bindingOf(ed.binding);
  const coreBinding = bindingOf(core?.binding);
  for (const ty of types) for (const p of ty.profiles) refs.add(p);
  const node: ElementNode = {
    id: ed.id ?? ed.path ?? '',
    name,
    ...(name.endsWith('[x]') ? { choicePrefix: name.slice(0, -3) } : {}),
    min,
    max,
    types,
    children: [],
    ...(ed.contentReference ? { contentReference: ed.contentReference.replace(/^.*#/, '') } : {}),
    slices: [],
    ...(ed.sliceName ? { sliceName: ed.sliceName } : {}),
    ...(ed.slicing ? { slicing: { discriminators: ed.slicing.discriminator ?? [], rules: ed.slicing.rules ?? 'open', ordered: ed.slicing.ordered === true } } : {}),
    ...(valueKey(ed, 'fixed') ? { fixed: valueKey(ed, 'fixed') } : {}),
    ...(valueKey(ed, 'pattern') ? { pattern: valueKey(ed, 'pattern') } : {}),
    // a binding the core definition already has is the base schema's business (and would flood every write)
    ...(binding && (isSlice || !coreBinding || coreBinding.valueSet !== binding.valueSet || coreBinding.strength !== binding.strength) ? { binding } : {}),
    invariants: dedupe(ed.constraint ?? []).map((c) => compileInvariant(c, url)).filter((i): i is Invariant => !!i),
    mustSupport: ed.mustSupport === true,
    checkCardinality: isSlice || min !== baseMin || max !== baseMax,
    checkTypes: isSlice || !core || typeSignature(types) !== typeSignature(typesOf(core)),
    checkWhenAbsent: false,
    skip: false,
  };
  byId.set(node.id, node);
  node.children = t.children.map((c) => compileNode(c, isSlice, url, refs, byId));
  node.slices = t.slices.map((c) => compileNode(c, true, url, refs, byId));
  node.checkWhenAbsent = (node.checkCardinality && min > 0) || node.slices.some((sl) => sl.min > 0);
  node.skip =
    types.length > 0 &&
    types.every((ty) => isPrimitiveType(ty.code)) &&
    !node.fixed &&
    !node.pattern &&
    !node.binding &&
    !node.slices.length &&
    !node.children.length &&
    !node.checkCardinality &&
    !node.checkTypes &&
    !node.mustSupport &&
    node.invariants.every((i) => i.native === 'base');
  if (node.slices.length && !node.slicing && (name === 'extension' || name === 'modifierExtension')) {
    node.slicing = { discriminators: [{ type: 'value', path: 'url' }], rules: 'open', ordered: false };
  }
  return node;
}

function dedupe<T extends { key?: string }>(constraints: T[]): T[] {
  const seen = new Set<string>();
  return constraints.filter((c) => !c.key || (!seen.has(c.key) && !!seen.add(c.key)));
}

/** Compiles a definition with a complete snapshot. */
export function compileProfile(sd: StructureDefinition, snapshot: ElementDefinition[]): CompiledProfile {
  const refs = new Set<string>();
  const byId = new Map<string, ElementNode>();
  const root = compileNode(buildTree(snapshot), false, sd.url ?? '', refs, byId);
  return { url: sd.url ?? '', type: sd.type ?? root.name, root, byId, references: [...refs] };
}
