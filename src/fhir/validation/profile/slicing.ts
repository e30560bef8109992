// Slicing (profiling.html#slicing): each value of a sliced element goes to the first slice whose discriminators all
// match it (value, pattern, type, profile, exists); then each slice's cardinality is checked, and the slicing's rules:
// closed (a value matching no slice is an error), openAtEnd (unmatched values come last) and ordered (values follow the
// order of the slices).
import type { ElementDefinitionSlicingDiscriminator } from '@medplum/fhirtypes';
import { codesOf, membership } from './bindings.js';
import type { ElementNode } from './compile.js';
import { isObject, splitPath, suffixType, valuesAt, type Item, type Path } from './instance.js';
import type { InvariantScope } from './invariants.js';
import { referenceType } from './references.js';
import { coreTree } from './resolver.js';
import { deepEqual, matchesPattern } from './values.js';
import type { Walker } from './walk.js';

/** The element a discriminator path names inside a slice ("$this", "coding", "code.coding.system", "value.ofType(Quantity)"). */
function elementAt(slice: ElementNode, path: string): ElementNode | undefined {
  let node: ElementNode | undefined = slice;
  for (const seg of splitPath(path)) {
    if (!node) return undefined;
    if (seg === '$this' || seg === 'resolve()') continue;
    const t = /^ofType\((\w+)\)$/.exec(seg);
    if (t) {
      node = node.slices.find((s) => s.types.length === 1 && s.types[0].code === t[1]) ?? node;
      continue;
    }
    const ext = /^extension\((['"])(.*)\1\)$/.exec(seg);
    if (ext) {
      const extension: ElementNode | undefined = childrenOf(node).find((c) => c.name === 'extension');
      node = extension?.slices.find((s) => fixedUrl(s) === ext[2]);
      continue;
    }
    node = childrenOf(node).find((c) => c.name === seg || c.choicePrefix === seg);
  }
  return node;
}

function childrenOf(node: ElementNode): ElementNode[] {
  if (node.children.length) return node.children;
  return node.types.length === 1 ? coreTree(node.types[0].code)?.root.children ?? [] : [];
}

/** The url an extension slice is for: its url element's fixed value, else its type profile (the extension definition). */
function fixedUrl(slice: ElementNode): string | undefined {
  const url = slice.children.find((c) => c.name === 'url');
  const fixed = url?.fixed?.value;
  if (typeof fixed === 'string') return fixed;
  return slice.types.find((t) => t.code === 'Extension')?.profiles[0];
}

/** Does a value match one discriminator of a slice? A promise only for binding and profile discriminators. */
function matches(w: Walker, slice: ElementNode, d: ElementDefinitionSlicingDiscriminator, it: Item, scope: InvariantScope): boolean | Promise<boolean> {
  const path = d.path ?? '$this';
  const target = elementAt(slice, path);
  switch (d.type) {
    case 'value':
    case 'pattern': {
      const actual = valuesAt(it.value, path);
      if (!actual) return false;
      // extension slices are told apart by url, given by the extension definition when the slice does not fix it
      if (path === 'url' && slice.types.some((t) => t.code === 'Extension')) {
        const url = fixedUrl(slice);
        return url === undefined || actual.includes(url);
      }
      if (!target) return true;
      const expected = target.fixed ?? target.pattern;
      if (expected) return actual.some((a) => (target.fixed ? deepEqual(a, expected.value) : matchesPattern(a, expected.value)));
      if (target.binding) return bindingMatches(w, target, actual, path === '$this' ? it.type : target.types[0]?.code ?? '');
      return true;
    }
    case 'exists': {
      const actual = valuesAt(it.value, path) ?? [];
      if (!target) return true;
      if (target.max === 0) return actual.length === 0;
      if (target.min >= 1) return actual.length > 0;
      return true;
    }
    case 'type': {
      const allowed = new Set((target ?? slice).types.map((t) => t.code));
      const actual = typeAt(it, path, scope);
      return actual !== undefined && allowed.has(actual);
    }
    case 'profile':
      return conformsToSliceProfile(w, target ?? slice, path, it, scope);
    default:
      return false;
  }
}

async function conformsToSliceProfile(w: Walker, target: ElementNode, path: string, it: Item, scope: InvariantScope): Promise<boolean> {
  if (path.endsWith('resolve()')) return false; // the referenced resource is not read
  const urls = target.types.flatMap((t) => t.profiles);
  const values = valuesAt(it.value, path) ?? [];
  for (const url of urls) {
    let all = values.length > 0;
    for (const v of values) {
      const ok = await w.conforms(url, { value: v, type: path === '$this' ? it.type : (target.types[0]?.code ?? it.type), path: it.path }, scope);
      if (!ok) all = false;
    }
    if (all) return true;
  }
  return false;
}

async function bindingMatches(w: Walker, target: ElementNode, values: unknown[], type: string): Promise<boolean> {
  const codes = values.flatMap((v) => codesOf(v, type) ?? []);
  if (!codes.length) return false;
  const m = await membership(w.ctx, w.s, target.binding!.valueSet, codes);
  // when the terminology cannot tell, the value is taken to belong (no false errors from an unknown value set)
  return m.verdict !== 'out';
}

/** The type of the value a type discriminator looks at. */
function typeAt(it: Item, path: string, scope: InvariantScope): string | undefined {
  const segs = splitPath(path);
  if (segs.length === 1 && segs[0] === '$this') return it.type;
  if (segs[segs.length - 1] === 'resolve()') {
    const ref = valuesAt(it.value, segs.slice(0, -1).join('.') || '$this')?.[0];
    return referenceType(ref, scope.rootResource);
  }
  const parent = valuesAt(it.value, segs.slice(0, -1).join('.') || '$this')?.[0];
  const last = segs[segs.length - 1];
  if (!isObject(parent)) return undefined;
  if (isObject(parent[last]) && typeof (parent[last] as { resourceType?: unknown }).resourceType === 'string') return String((parent[last] as { resourceType: string }).resourceType);
  for (const k of Object.keys(parent)) if (k.startsWith(last) && k.length > last.length) return suffixType(k.slice(last.length));
  return undefined;
}

/** Do some discriminators of this slicing need the terminology service or another profile? */
function needsAsync(node: ElementNode): boolean {
  let v = asyncSlicing.get(node);
  if (v === undefined) {
    v = node.slices.some((sl) =>
      node.slicing!.discriminators.some((d) => {
        if (d.type === 'profile') return true;
        if (d.type !== 'value' && d.type !== 'pattern') return false;
        if (d.path === 'url' && sl.types.some((t) => t.code === 'Extension')) return false;
        const target = elementAt(sl, d.path ?? '$this');
        return !!target && !target.fixed && !target.pattern && !!target.binding;
      }),
    );
    asyncSlicing.set(node, v);
  }
  return v;
}

const asyncSlicing = new WeakMap<ElementNode, boolean>();

/** The index of the slice each value belongs to (-1: none), all discriminators answered synchronously. */
function assignNow(w: Walker, node: ElementNode, items: Item[], scope: InvariantScope): number[] {
  const ds = node.slicing!.discriminators;
  return items.map((it) => node.slices.findIndex((sl) => ds.length > 0 && ds.every((d) => matches(w, sl, d, it, scope) === true)));
}

async function assignLater(w: Walker, node: ElementNode, items: Item[], scope: InvariantScope): Promise<number[]> {
  const ds = node.slicing!.discriminators;
  const out: number[] = [];
  for (const it of items) {
    let found = -1;
    for (let i = 0; i < node.slices.length && found < 0 && ds.length; i++) {
      let all = true;
      for (const d of ds) {
        if (!(await matches(w, node.slices[i], d, it, scope))) {
          all = false;
          break;
        }
      }
      if (all) found = i;
    }
    out.push(found);
  }
  return out;
}

/** Assigns the values of a sliced element to its slices, then checks the slices and the slicing rules. */
export function slice(w: Walker, node: ElementNode, items: Item[], where: Path, scope: InvariantScope): void {
  if (needsAsync(node)) w.defer(async () => checkSlices(w, node, items, await assignLater(w, node, items, scope), where, scope));
  else checkSlices(w, node, items, assignNow(w, node, items, scope), where, scope);
}

function checkSlices(w: Walker, node: ElementNode, items: Item[], assigned: number[], where: Path, scope: InvariantScope): void {
  const slicing = node.slicing!;
  node.slices.forEach((sl, i) => {
    const count = assigned.filter((a) => a === i).length;
    w.checkCardinality(sl, count, where);
    if (count === 0 && w.opts.mustSupport && sl.mustSupport) {
      w.report({ severity: 'information', type: 'informational', code: 'PROFILE_MUST_SUPPORT', expression: where, message: `Must-support slice '${sl.sliceName}' of ${node.id} is absent` });
    }
  });
  let lastMatched = -1;
  let sawUnmatched = false;
  items.forEach((it, k) => {
    const a = assigned[k];
    if (a < 0) {
      if (slicing.rules === 'closed') {
        w.report({ severity: 'error', type: 'structure', code: 'PROFILE_SLICE', expression: it.path, message: `Value matches none of the slices of ${node.id} (${node.slices.map((x) => x.sliceName).join(', ')}), and the slicing is closed` });
      }
      sawUnmatched = true;
      return;
    }
    if (slicing.rules === 'openAtEnd' && sawUnmatched) {
      w.report({ severity: 'error', type: 'structure', code: 'PROFILE_SLICE', expression: it.path, message: `Value of slice '${node.slices[a].sliceName}' follows a value matching no slice, but the slicing of ${node.id} is openAtEnd` });
    }
    if (slicing.ordered && a < lastMatched) {
      w.report({ severity: 'error', type: 'structure', code: 'PROFILE_SLICE', expression: it.path, message: `Value of slice '${node.slices[a].sliceName}' is out of order: the slices of ${node.id} are ordered (${node.slices.map((x) => x.sliceName).join(', ')})` });
    }
    lastMatched = Math.max(lastMatched, a);
  });
  items.forEach((it, k) => {
    if (assigned[k] >= 0) w.checkValue(node.slices[assigned[k]], it, scope, false);
  });
}
