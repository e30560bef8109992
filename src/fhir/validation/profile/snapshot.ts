// Snapshot generation (profiling.html#snapshot): a constraint profile's differential applied to its base's snapshot.
// Elements the differential reaches inside a data type (DiagnosticReport.category.coding) are expanded from the data
// type's definition; a slice starts as a copy of the sliced element; `valueQuantity` in a differential names the
// Quantity type slice of `value[x]`. A differential that loosens its base or names an element that does not exist
// is refused with the element it names.
import type { ElementDefinition, ElementDefinitionSlicing, StructureDefinition } from '@medplum/fhirtypes';
import { coreType, isKnownType, isPrimitiveType, typeCode } from './definitions.js';
import { assignIds, buildTree, cloneSubtree, flatten, idSegments, lastSegment, ProfileDefinitionError, type TreeNode } from './element-tree.js';

export { ProfileDefinitionError };

/** max as a number ('*' -> Infinity); undefined when absent. */
export function maxOf(max: string | undefined): number | undefined {
  if (max === undefined) return undefined;
  return max === '*' ? Infinity : Number(max);
}

const IMPLICIT_EXTENSION_SLICING: ElementDefinitionSlicing = { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' };

class Generator {
  constructor(
    private readonly root: TreeNode,
    private readonly url: string,
  ) {}

  fail(message: string, element: string): never {
    throw new ProfileDefinitionError(message, element);
  }

  /** The children of a node, expanded from its data type (or content reference) the first time they are needed. */
  children(node: TreeNode, forId: string): TreeNode[] {
    if (node.children.length) return node.children;
    const ed = node.ed;
    if (ed.contentReference) {
      const target = this.find(ed.contentReference.replace(/^.*#/, ''));
      if (!target) this.fail(`content reference ${ed.contentReference} of ${ed.id} names no element`, forId);
      node.children = target.children.map((c) => cloneSubtree(c, { id: target.ed.id!, path: target.ed.path }, { id: ed.id!, path: ed.path }));
      return node.children;
    }
    const types = (ed.type ?? []).map(typeCode);
    if (types.length !== 1) this.fail(`${ed.id} has ${types.length ? `several types (${types.join(', ')})` : 'no type'}: name one type (e.g. a type slice such as value[x]:valueQuantity) before constraining its children`, forId);
    if (isPrimitiveType(types[0])) this.fail(`${ed.id} is a primitive (${types[0]}) and has no child elements to constrain`, forId);
    const sd = coreType(types[0]);
    if (!sd?.snapshot) this.fail(`unknown type ${types[0]} at ${ed.id}`, forId);
    const typeRoot = buildTree(sd.snapshot.element.map((e) => structuredClone(e)));
    node.children = typeRoot.children.map((c) => cloneSubtree(c, { id: typeRoot.ed.id!, path: typeRoot.ed.path }, { id: ed.id!, path: ed.path }));
    return node.children;
  }

  find(id: string): TreeNode | undefined {
    const segs = idSegments(id);
    if (segs[0].name !== this.root.ed.path) return undefined;
    let node: TreeNode | undefined = this.root;
    for (const seg of segs.slice(1)) {
      node = node.children.find((c) => lastSegment(c.ed.path!) === seg.name);
      if (node && seg.slice) node = node.slices.find((s) => s.ed.sliceName === seg.slice);
      if (!node) return undefined;
    }
    return node;
  }

  /** The node a differential element id names, creating slices (and expanding data types) on the way. */
  locate(id: string): TreeNode {
    const segs = idSegments(id);
    if (segs[0].name !== this.root.ed.path) this.fail(`element ${id} is not inside ${this.root.ed.path}`, id);
    if (segs[0].slice) this.fail(`the root element ${id} cannot be sliced`, id);
    let node = this.root;
    for (const seg of segs.slice(1)) {
      const kids = this.children(node, id);
      let child = kids.find((c) => lastSegment(c.ed.path!) === seg.name);
      if (!child) {
        // "valueQuantity" names the Quantity type slice of value[x]
        const choice = kids.find((c) => c.ed.path!.endsWith('[x]') && seg.name.startsWith(lastSegment(c.ed.path!).slice(0, -3)));
        const type = choice && choiceType(choice, seg.name.slice(lastSegment(choice.ed.path!).length - 3));
        if (!choice || !type) this.fail(`element ${seg.name} does not exist at ${node.ed.id} (${id})`, id);
        child = this.slice(choice, seg.name, id, type);
      }
      node = seg.slice ? this.slice(child, seg.slice, id) : child;
    }
    return node;
  }

  /** The slice `name` of `node`, created from the sliced element when new. A type slice keeps only its type. */
  slice(node: TreeNode, name: string, forId: string, type?: string): TreeNode {
    const found = node.slices.find((s) => s.ed.sliceName === name);
    if (found) return found;
    const ed = node.ed;
    if (!ed.slicing) {
      const last = lastSegment(ed.path!);
      if (last === 'extension' || last === 'modifierExtension') ed.slicing = structuredClone(IMPLICIT_EXTENSION_SLICING);
      else if (last.endsWith('[x]')) ed.slicing = { discriminator: [{ type: 'type', path: '$this' }], rules: 'open' };
      else this.fail(`${forId} names slice '${name}' but ${ed.id} defines no slicing`, forId);
    }
    const sliceId = `${ed.id}:${name}`;
    const copy: ElementDefinition = { ...structuredClone(ed), id: sliceId, sliceName: name, min: 0 };
    delete copy.slicing;
    if (type) copy.type = (ed.type ?? []).filter((t) => typeCode(t) === type);
    const slice: TreeNode = { ed: copy, children: node.children.map((c) => cloneSubtree(c, { id: ed.id! }, { id: sliceId })), slices: [] };
    node.slices.push(slice);
    return slice;
  }

  merge(node: TreeNode, d: ElementDefinition): void {
    const ed = node.ed;
    const where = d.id!;
    const baseMin = ed.min ?? 0;
    const baseMax = maxOf(ed.max) ?? Infinity;
    if (d.min !== undefined) {
      if (!Number.isInteger(d.min) || d.min < 0) this.fail(`${where}: min must be a non-negative integer`, where);
      if (d.min < baseMin) this.fail(`${where}: min ${d.min} is below the base's ${baseMin}`, where);
      ed.min = d.min;
    }
    if (d.max !== undefined) {
      const max = maxOf(d.max)!;
      if (!(max === Infinity || (Number.isInteger(max) && max >= 0))) this.fail(`${where}: max must be '*' or a non-negative integer`, where);
      if (max > baseMax) this.fail(`${where}: max ${d.max} exceeds the base's ${ed.max}`, where);
      ed.max = d.max;
    }
    if ((ed.min ?? 0) > (maxOf(ed.max) ?? Infinity)) this.fail(`${where}: min ${ed.min} exceeds max ${ed.max}`, where);
    if (d.type) {
      const allowed = new Set((ed.type ?? []).map(typeCode));
      for (const t of d.type) {
        const code = typeCode(t);
        if (!code || (!allowed.has(code) && !widens(allowed, code))) this.fail(`${where}: type ${code || '(none)'} is not allowed by the base (${[...allowed].join(', ')})`, where);
      }
      ed.type = d.type;
    }
    if (d.binding) {
      if (!d.binding.strength) this.fail(`${where}: binding needs a strength`, where);
      ed.binding = { strength: d.binding.strength, valueSet: d.binding.valueSet ?? ed.binding?.valueSet };
    }
    if (d.constraint) {
      const keys = new Set((ed.constraint ?? []).map((c) => c.key));
      ed.constraint = [...(ed.constraint ?? []), ...d.constraint.filter((c) => !keys.has(c.key)).map((c) => ({ ...c, source: c.source ?? this.url }))];
    }
    if (d.slicing) ed.slicing = { ...ed.slicing, ...d.slicing, discriminator: d.slicing.discriminator ?? ed.slicing?.discriminator };
    for (const [k, v] of Object.entries(d)) {
      if (k.startsWith('fixed') || k.startsWith('pattern')) (ed as unknown as Record<string, unknown>)[k] = v;
    }
    if (d.mustSupport !== undefined) ed.mustSupport = d.mustSupport;
    if (d.maxLength !== undefined) ed.maxLength = d.maxLength;
  }
}

/** A type a profile may name where its base allows `base`: a resource type for Resource, any type for Element. */
function widens(allowed: Set<string>, code: string): boolean {
  return (allowed.has('Resource') && isKnownType(code)) || allowed.has('Element') || allowed.has('BackboneElement');
}

/** The type a choice suffix names ("Quantity", "DateTime" -> dateTime), if the choice element allows it. */
function choiceType(choice: TreeNode, suffix: string): string | undefined {
  if (!suffix) return undefined;
  const types = (choice.ed.type ?? []).map(typeCode);
  return types.find((t) => t === suffix || t === suffix[0].toLowerCase() + suffix.slice(1));
}

/**
 * The snapshot of `sd` generated from its differential over `base` (the base definition's snapshot).
 * Throws ProfileDefinitionError naming the differential element at fault.
 */
export function generateSnapshot(sd: StructureDefinition, base: ElementDefinition[]): ElementDefinition[] {
  const root = buildTree(base.map((e) => structuredClone(e)));
  const gen = new Generator(root, sd.url ?? '');
  const diff = assignIds(sd.differential?.element ?? []);
  diff.forEach((d, i) => {
    if (!d.path && !d.id) gen.fail(`differential element ${i} has neither path nor id`, `StructureDefinition.differential.element[${i}]`);
    if (d.path && d.id && !idMatchesPath(d.id, d.path)) gen.fail(`differential element ${d.id} does not match its path ${d.path}`, d.id);
    gen.merge(gen.locate(d.id!), d);
  });
  return flatten(root);
}

/** "Observation.value[x]:valueQuantity.code" matches path "Observation.value[x].code" (and "Observation.valueQuantity.code"). */
function idMatchesPath(id: string, path: string): boolean {
  const idPath = idSegments(id).map((s) => s.name).join('.');
  if (idPath === path) return true;
  const a = idPath.split('.');
  const b = path.split('.');
  return a.length === b.length && a.every((s, i) => s === b[i] || (s.endsWith('[x]') && b[i].startsWith(s.slice(0, -3))) || (b[i].endsWith('[x]') && s.startsWith(b[i].slice(0, -3))));
}
