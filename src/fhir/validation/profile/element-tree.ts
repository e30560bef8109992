// A StructureDefinition's elements as a tree: each element's children (by path) and its slices (by sliceName), keyed
// by element id ("DiagnosticReport.category:LaboratorySlice.coding"). Snapshots are flattened back from it in the
// order the spec gives: an element, its children, then each slice followed by the slice's own children.
import type { ElementDefinition } from '@medplum/fhirtypes';

/** A definition that cannot be used as a profile; `element` names the element (id) or StructureDefinition field at fault. */
export class ProfileDefinitionError extends Error {
  constructor(
    message: string,
    readonly element: string,
  ) {
    super(message);
    this.name = 'ProfileDefinitionError';
  }
}

export interface TreeNode {
  ed: ElementDefinition;
  children: TreeNode[];
  slices: TreeNode[];
}

/** The last segment of a path or id: "Observation.value[x]" -> "value[x]". */
export function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

/** Splits an element id into segments of name and optional slice name ("category:lab" -> { name, slice }). */
export function idSegments(id: string): { name: string; slice?: string }[] {
  return id.split('.').map((seg) => {
    const i = seg.indexOf(':');
    return i < 0 ? { name: seg } : { name: seg.slice(0, i), slice: seg.slice(i + 1) };
  });
}

/**
 * Gives every element an id when it has none (older definitions, hand-written differentials): an element inherits
 * the slice context of the latest element with its parent path, so children listed after a slice belong to it.
 */
export function assignIds(elements: ElementDefinition[]): ElementDefinition[] {
  const latest = new Map<string, string>();
  const idFor = (path: string): string => {
    const known = latest.get(path);
    if (known) return known;
    const dot = path.lastIndexOf('.');
    return dot < 0 ? path : `${idFor(path.slice(0, dot))}.${path.slice(dot + 1)}`;
  };
  return elements.map((e) => {
    let id = e.id;
    if (!id && e.path) {
      const dot = e.path.lastIndexOf('.');
      const parent = dot < 0 ? '' : `${idFor(e.path.slice(0, dot))}.`;
      id = `${parent}${lastSegment(e.path)}${e.sliceName ? `:${e.sliceName}` : ''}`;
    }
    if (id && e.path) latest.set(e.path, id);
    return id === e.id ? e : { ...e, id };
  });
}

/** Builds the tree of a snapshot (elements with ids, root first). Throws on an element whose parent is missing. */
export function buildTree(elements: ElementDefinition[]): TreeNode {
  const byId = new Map<string, TreeNode>();
  let root: TreeNode | undefined;
  for (const ed of assignIds(elements)) {
    const id = ed.id ?? '';
    const node: TreeNode = { ed, children: [], slices: [] };
    const dot = lastDot(id);
    if (dot < 0) {
      if (root) throw new ProfileDefinitionError(`more than one root element (${root.ed.id}, ${id})`, id);
      root = node;
    } else {
      const parentId = id.slice(0, dot);
      const seg = id.slice(dot + 1);
      const colon = seg.indexOf(':');
      if (colon >= 0) {
        const sliced = byId.get(`${parentId}.${seg.slice(0, colon)}`);
        if (!sliced) throw new ProfileDefinitionError(`slice ${id} has no sliced element before it`, id);
        sliced.slices.push(node);
      } else {
        const parent = byId.get(parentId);
        if (!parent) throw new ProfileDefinitionError(`element ${id} has no parent element before it`, id);
        parent.children.push(node);
      }
    }
    byId.set(id, node);
  }
  if (!root) throw new ProfileDefinitionError('no elements', 'StructureDefinition.snapshot');
  return root;
}

/** The index of the dot ending the parent part of an id (dots inside slice names do not count). */
function lastDot(id: string): number {
  // slice names are tokens without dots in practice; a reslice "a:b/c" has none either
  return id.lastIndexOf('.');
}

export function flatten(root: TreeNode): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  const visit = (n: TreeNode) => {
    out.push(n.ed);
    n.children.forEach(visit);
    n.slices.forEach(visit);
  };
  visit(root);
  return out;
}

/** A deep copy of a subtree whose ids (and, when given, paths) start with new prefixes. */
export function cloneSubtree(node: TreeNode, from: { id: string; path?: string }, to: { id: string; path?: string }): TreeNode {
  const swap = (value: string | undefined, a: string | undefined, b: string | undefined): string | undefined =>
    value !== undefined && a !== undefined && b !== undefined && (value === a || value.startsWith(`${a}.`) || value.startsWith(`${a}:`)) ? b + value.slice(a.length) : value;
  const ed = structuredClone(node.ed);
  ed.id = swap(ed.id, from.id, to.id);
  ed.path = swap(ed.path, from.path, to.path) ?? ed.path;
  return { ed, children: node.children.map((c) => cloneSubtree(c, from, to)), slices: node.slices.map((c) => cloneSubtree(c, from, to)) };
}
