// Validation of one resource against one compiled profile: a walk of the instance along the profile's element tree
// (and, below what the profile describes, along the core definitions of the data types and nested resources), checking
// on each element its cardinality, types, fixed and pattern values, slices, bindings, reference targets, type profiles
// and invariants. Every problem becomes an issue naming the profile, the FHIRPath of the element and a stable code.
// The walk itself is synchronous; what needs the terminology service or another profile (bindings, reference
// targets, type profiles, slices told apart by binding or profile) is queued and run after it.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { isResourceType } from '../../../core/definitions.js';
import type { TenantSession } from '../../../store/session.js';
import type { FhirContext } from '../../context.js';
import { codesOf, membership } from './bindings.js';
import type { CompiledProfile, ElementNode, TypeRef } from './compile.js';
import { isPrimitiveType } from './definitions.js';
import { isObject, itemsOf, Loc, type Item, type Json, type Path } from './instance.js';
import { evaluateInvariant, type InvariantScope } from './invariants.js';
import { profileIssue, type ProfileIssueCode } from './issues.js';
import { referenceTargetType } from './references.js';
import { coreTree, type ProfileResolver } from './resolver.js';
import { slice } from './slicing.js';
import { deepEqual, matchesPattern, show } from './values.js';

export interface WalkOptions {
  /** Report absent must-support elements ($validate). */
  mustSupport: boolean;
  /** Report what could not be checked (unknown value sets) as information. */
  informational: boolean;
}

/** What one walk found besides its issues. */
export interface WalkStats {
  /** Keys of invariants the engine could not evaluate, by the profile walked. */
  skipped: Map<string, Set<string>>;
}

export interface Problem {
  severity: OperationOutcomeIssue['severity'];
  type: OperationOutcomeIssue['code'];
  code: ProfileIssueCode;
  expression: Path;
  message: string;
}

const MAX_DEPTH = 40;

export class Walker {
  readonly issues: OperationOutcomeIssue[] = [];
  private readonly tasks: (() => Promise<void>)[] = [];

  constructor(
    readonly ctx: FhirContext,
    readonly s: TenantSession,
    readonly resolver: ProfileResolver,
    readonly profile: CompiledProfile,
    readonly opts: WalkOptions,
    readonly stats: WalkStats,
    private readonly depth = 0,
  ) {}

  report(p: Problem): void {
    this.issues.push(profileIssue(this.profile.url, { ...p, expression: String(p.expression) }));
  }

  /** Runs `task` after the synchronous walk. */
  defer(task: () => Promise<void>): void {
    this.tasks.push(task);
  }

  /** Validates a resource (or, for a data type profile, a value) against the profile, from its root. */
  async validateRoot(value: unknown, path: Path, type: string, scope: InvariantScope): Promise<void> {
    this.checkValue(this.profile.root, { value, type, path }, scope, true);
    while (this.tasks.length) await this.tasks.shift()!();
  }

  /** A child walker for another profile (a type profile, a profile discriminator), sharing the statistics. */
  nested(profile: CompiledProfile): Walker | undefined {
    if (this.depth >= MAX_DEPTH) return undefined;
    return new Walker(this.ctx, this.s, this.resolver, profile, { ...this.opts, mustSupport: false }, this.stats, this.depth + 1);
  }

  /** Does a value conform to the profile at `url` (no errors)? undefined when the profile is unknown. */
  async conforms(url: string, item: Item, scope: InvariantScope): Promise<boolean | undefined> {
    const profile = await this.resolver.get(url).catch(() => undefined);
    const w = profile && this.nested(profile);
    if (!w) return undefined;
    await w.validateRoot(item.value, item.path, item.type, scope);
    return !w.issues.some((i) => i.severity === 'error');
  }

  /** The children of `node` in the instance (the profile's, else the core type's). */
  private childrenFor(node: ElementNode, type: string): ElementNode[] {
    if (node.children.length) return node.children;
    if (node.contentReference) return this.profile.byId.get(node.contentReference)?.children ?? coreContent(node.contentReference);
    return coreTree(type)?.root.children ?? [];
  }

  /** The elements present in `obj` (by its keys), then those whose absence matters. */
  private checkChildren(children: ElementNode[], obj: Json, path: Path, scope: InvariantScope): void {
    const idx = indexChildren(children);
    const seen: ElementNode[] = [];
    for (const key in obj) {
      const name = key.charCodeAt(0) === 95 /* _ */ ? key.slice(1) : key;
      if (name !== key && obj[name] !== undefined) continue;
      const child = idx.byName.get(name) ?? idx.choices.find((c) => name.length > c.choicePrefix!.length && name.startsWith(c.choicePrefix!));
      if (!child || child.skip || seen.includes(child)) continue;
      seen.push(child);
      const { items, count } = itemsOf(child, obj, path, idx.names);
      this.checkElement(child, items, count, path, scope);
    }
    for (const child of idx.whenAbsent) {
      if (seen.includes(child) || (!child.checkWhenAbsent && !this.opts.mustSupport)) continue;
      this.checkElement(child, [], 0, path, scope);
    }
  }

  /** One element of a parent: cardinality, types, slices, then each value. */
  private checkElement(node: ElementNode, items: Item[], count: number, parentPath: Path, scope: InvariantScope): void {
    const where = new Loc(parentPath, node.name);
    if (node.checkCardinality) this.checkCardinality(node, count, where);
    if (count === 0 && this.opts.mustSupport && node.mustSupport) {
      this.report({ severity: 'information', type: 'informational', code: 'PROFILE_MUST_SUPPORT', expression: where, message: `Must-support element ${node.id} is absent` });
    }
    if (node.checkTypes && node.choicePrefix !== undefined) {
      for (const it of items) {
        if (node.types.some((t) => t.code === it.type)) continue;
        this.report({ severity: 'error', type: 'structure', code: 'PROFILE_TYPE', expression: it.path, message: `Type ${it.type} is not allowed for ${node.id} (allowed: ${node.types.map((t) => t.code).join(', ')})` });
      }
    }
    if (node.slices.length && node.slicing) slice(this, node, items, where, scope);
    for (const it of items) this.checkValue(node, it, scope, false);
  }

  checkCardinality(node: ElementNode, count: number, where: Path): void {
    if (count >= node.min && count <= node.max) return;
    const label = node.sliceName ? `Slice '${node.sliceName}' of ${node.id.slice(0, node.id.lastIndexOf(':'))}` : `Element ${node.id}`;
    if (count < node.min) {
      this.report({ severity: 'error', type: 'required', code: 'PROFILE_CARDINALITY', expression: where, message: `${label} requires at least ${node.min} value(s), found ${count}` });
    } else {
      this.report({ severity: 'error', type: 'structure', code: 'PROFILE_CARDINALITY', expression: where, message: `${label} allows at most ${node.max} value(s), found ${count}` });
    }
  }

  /** One value of an element: fixed, pattern, binding, type (references, type profiles), invariants, then children. */
  checkValue(node: ElementNode, it: Item, scope: InvariantScope, root: boolean): void {
    const v = it.value;
    if (v === undefined || v === null) return;
    if (node.fixed && !deepEqual(v, node.fixed.value)) {
      this.report({ severity: 'error', type: 'value', code: 'PROFILE_FIXED', expression: it.path, message: `Value must be exactly ${show(node.fixed.value)} (${node.fixed.key} of ${node.id}), found ${show(v)}` });
    }
    if (node.pattern && !matchesPattern(v, node.pattern.value)) {
      this.report({ severity: 'error', type: 'value', code: 'PROFILE_PATTERN', expression: it.path, message: `Value must contain ${show(node.pattern.value)} (${node.pattern.key} of ${node.id})` });
    }
    if (node.binding) this.checkBinding(node, it);
    const nested = isObject(v) && !root && isResourceType(it.type);
    const inner = nested ? { resource: v, rootResource: node.name === 'contained' ? scope.rootResource : v } : scope;
    if (node.checkTypes && !root) {
      const typeRef = node.types.find((t) => t.code === it.type) ?? (node.types.length === 1 ? node.types[0] : undefined);
      if (typeRef) this.checkTypeRef(node, typeRef, it, inner);
    }
    this.checkInvariants(node, it, inner);
    if (!isObject(v) || isPrimitiveType(it.type)) return;
    if (nested) {
      // a nested resource (contained, Bundle.entry.resource): its own type's definition
      const tree = coreTree(it.type);
      if (tree) {
        this.checkInvariants(tree.root, it, inner);
        this.checkChildren(tree.root.children, v, it.path, inner);
      }
      return;
    }
    // the data type's own constraints (ref-1 on Reference, per-1 on Period, qty-3 on Quantity...)
    if (!root) {
      const typeRoot = coreTree(it.type)?.root;
      if (typeRoot) this.checkInvariants(typeRoot, it, inner);
    }
    this.checkChildren(this.childrenFor(node, it.type), v, it.path, inner);
  }

  private checkInvariants(node: ElementNode, it: Item, scope: InvariantScope): void {
    for (const inv of node.invariants) {
      const ok = evaluateInvariant(inv, it.value, it.type, scope);
      if (ok === undefined) {
        let keys = this.stats.skipped.get(this.profile.url);
        if (!keys) this.stats.skipped.set(this.profile.url, (keys = new Set()));
        keys.add(inv.key);
      } else if (!ok) {
        this.report({ severity: inv.severity, type: 'invariant', code: 'PROFILE_INVARIANT', expression: it.path, message: `Constraint ${inv.key} failed: ${inv.human}` });
      }
    }
  }

  private checkTypeRef(node: ElementNode, t: TypeRef, it: Item, scope: InvariantScope): void {
    if (t.code === 'Reference' && t.targetProfiles.length) {
      this.defer(async () => {
        const problem = await referenceTargetType(this.resolver, it.value, t.targetProfiles, scope.rootResource);
        if (problem) this.report({ severity: 'error', type: 'structure', code: 'PROFILE_TYPE', expression: it.path, message: `${problem} (${node.id})` });
      });
    }
    if (t.profiles.length) this.defer(() => this.checkTypeProfiles(t, it, scope));
  }

  /** The value conforms to one of its type's profiles (extension definitions this server does not know are skipped). */
  private async checkTypeProfiles(t: TypeRef, it: Item, scope: InvariantScope): Promise<void> {
    let unknown = 0;
    const failures: OperationOutcomeIssue[][] = [];
    for (const url of t.profiles) {
      const profile = await this.resolver.get(url).catch(() => undefined);
      const w = profile && this.nested(profile);
      if (!w) {
        unknown++;
        continue;
      }
      await w.validateRoot(it.value, it.path, it.type, scope);
      if (!w.issues.some((i) => i.severity === 'error')) {
        this.issues.push(...w.issues);
        return;
      }
      failures.push(w.issues);
    }
    if (unknown === 0 && failures.length) this.issues.push(...failures[0]);
  }

  private checkBinding(node: ElementNode, it: Item): void {
    const b = node.binding!;
    const codes = codesOf(it.value, it.type);
    if (codes === undefined) return;
    // a tenant may turn required bindings into warnings on its writes (requiredBindings: false); $validate keeps them errors
    const enforced = b.strength === 'required' && (this.opts.informational || this.ctx.tenant.settings.requiredBindings !== false);
    const severity = enforced ? 'error' : 'warning';
    if (codes.length === 0) {
      // a CodeableConcept with text only meets an extensible binding; a required one needs a code (a Quantity may have none)
      if (b.strength === 'required' && it.type === 'CodeableConcept') {
        this.report({ severity, type: 'code-invalid', code: 'PROFILE_BINDING', expression: it.path, message: `No code given for the required binding to ${b.valueSet}` });
      }
      return;
    }
    this.defer(async () => {
      const m = await membership(this.ctx, this.s, b.valueSet, codes);
      const shown = codes.map((c) => `${c.system ? `${c.system}|` : ''}${c.code}`).join(', ');
      if (m.verdict === 'out') {
        this.report({ severity, type: 'code-invalid', code: 'PROFILE_BINDING', expression: it.path, message: `${shown} is not in the value set ${b.valueSet} (${b.strength} binding of ${node.id})${m.message ? `: ${m.message}` : ''}` });
      } else if (m.verdict === 'unknown' && this.opts.informational) {
        this.report({ severity: 'information', type: 'informational', code: 'PROFILE_NOT_CHECKED', expression: it.path, message: `Could not check ${shown} against the value set ${b.valueSet} (${b.strength} binding of ${node.id})` });
      }
    });
  }
}

/** The children of a core element named by a content reference ("Questionnaire.item"). */
function coreContent(id: string): ElementNode[] {
  return coreTree(id.split('.')[0])?.byId.get(id)?.children ?? [];
}

interface ChildIndex {
  byName: Map<string, ElementNode>;
  choices: ElementNode[];
  /** Names of the non-choice children (a choice suffix never names one of them). */
  names: ReadonlySet<string>;
  /** Children to look at even when absent: a minimum to meet, or must-support to report. */
  whenAbsent: ElementNode[];
}

const childIndexes = new WeakMap<ElementNode[], ChildIndex>();

function indexChildren(children: ElementNode[]): ChildIndex {
  let idx = childIndexes.get(children);
  if (!idx) {
    const plain = children.filter((c) => c.choicePrefix === undefined);
    idx = {
      byName: new Map(plain.map((c) => [c.name, c])),
      choices: children.filter((c) => c.choicePrefix !== undefined),
      names: new Set(plain.map((c) => c.name)),
      whenAbsent: children.filter((c) => c.checkWhenAbsent || c.mustSupport),
    };
    childIndexes.set(children, idx);
  }
  return idx;
}
