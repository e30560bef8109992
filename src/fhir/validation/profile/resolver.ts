// Where profiles come from, by canonical URL ("url" or "url|version"): the core R4 definitions, the profiles shipped in
// profiles/ (both per process), then the tenant's own StructureDefinition resources (looked up through the tenant
// session, so another tenant's are never seen). Shipped and core definitions win over a tenant's definition with the
// same URL. Snapshots are generated from differentials (following baseDefinition chains) and compiled once: per
// process for core and shipped ones, per tenant resource version for the tenant's.
import { readdirSync, readFileSync } from 'node:fs';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { r4ResourceTypes } from '../../../core/definitions.js';
import { planSearch } from '../../../search/plan.js';
import type { TenantSession } from '../../../store/session.js';
import type { FhirContext } from '../../context.js';
import { compileProfile, type CompiledProfile } from './compile.js';
import { CORE_PREFIX, coreDefinition, coreType, isKnownType } from './definitions.js';
import { generateSnapshot, ProfileDefinitionError } from './snapshot.js';

const PROFILES_DIR = new URL('../../../../profiles/', import.meta.url);

interface Prepared {
  sd: StructureDefinition;
  snapshot: ElementDefinition[];
  /** The prepared base the snapshot was generated from. */
  base?: Prepared;
  compiled?: CompiledProfile;
}

let shipped: Map<string, StructureDefinition> | undefined;
const processCache = new Map<string, Prepared>();
/** Tenant definitions by "tenant|id|versionId" (bounded: oldest dropped first). */
const tenantCache = new Map<string, Prepared>();
const TENANT_CACHE_MAX = 500;

/** The StructureDefinitions in profiles/ (every *.json holding one; r4-element-flags.json is not one). */
export function shippedDefinitions(): Map<string, StructureDefinition> {
  if (!shipped) {
    shipped = new Map();
    for (const f of readdirSync(PROFILES_DIR).filter((n) => n.endsWith('.json')).sort()) {
      const json = JSON.parse(readFileSync(new URL(f, PROFILES_DIR), 'utf8')) as StructureDefinition;
      if (json.resourceType === 'StructureDefinition' && json.url) shipped.set(json.url, json);
    }
  }
  return shipped;
}

function splitCanonical(canonical: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  return bar < 0 ? { url: canonical } : { url: canonical.slice(0, bar), version: canonical.slice(bar + 1) };
}

type TenantDefinition = StructureDefinition & { meta?: { versionId?: string } };

/** A request's tenant look-ups (a transaction's entries claim the same profiles). */
const requestLookUps = new WeakMap<FhirContext, Map<string, Promise<TenantDefinition | undefined>>>();

/**
 * URLs a tenant was found not to define, for ABSENT_TTL_MS: resources claiming a profile nobody uploaded (US Core
 * profiles this server does not ship, say) would otherwise cost a search on every write. A StructureDefinition
 * stored through this process clears its tenant's entries at once; through another process it is seen within the TTL.
 */
const absent = new Map<string, number>();
const ABSENT_TTL_MS = 5000;

/** Forgets the URLs a tenant was found not to define (it is storing a StructureDefinition). */
export function forgetAbsentDefinitions(tenantId: string): void {
  for (const key of absent.keys()) if (key.startsWith(`${tenantId}\0`)) absent.delete(key);
}

/** Resolves canonical URLs to compiled profiles for one request. */
export class ProfileResolver {
  constructor(
    private readonly ctx: FhirContext,
    private readonly s: TenantSession,
  ) {}

  /** The compiled profile, or undefined when no source knows the URL. Throws ProfileDefinitionError when it is broken. */
  async get(canonical: string): Promise<CompiledProfile | undefined> {
    const p = await this.prepared(canonical, new Set());
    if (!p) return undefined;
    p.compiled ??= compileProfile(p.sd, p.snapshot);
    return p.compiled;
  }

  /**
   * The resource type a profile constrains ("http://hl7.org/fhir/StructureDefinition/Patient" -> Patient). US Core
   * profiles this server does not ship are named after their type (us-core-practitionerrole -> PractitionerRole), which
   * saves a look-up per reference; other URLs are resolved.
   */
  async typeOf(canonical: string): Promise<string | undefined> {
    const { url } = splitCanonical(canonical);
    if (url.startsWith(CORE_PREFIX) && isKnownType(url.slice(CORE_PREFIX.length))) return url.slice(CORE_PREFIX.length);
    const own = shippedDefinitions().get(url);
    if (own) return own.type;
    const m = /^http:\/\/hl7\.org\/fhir\/us\/core\/StructureDefinition\/us-core-([a-z]+)$/.exec(url);
    const named = m ? lowerTypeNames().get(m[1]) : undefined;
    if (named) return named;
    try {
      return (await this.prepared(canonical, new Set()))?.sd.type;
    } catch {
      return undefined;
    }
  }

  /**
   * A definition with its snapshot. `tenant`: whether the tenant's own definitions may be used (never on the way to a
   * shipped or core definition, whose preparation is shared by every tenant).
   */
  private async prepared(canonical: string, visiting: Set<string>, tenant = true): Promise<Prepared | undefined> {
    const { url, version } = splitCanonical(canonical);
    if (visiting.has(url)) throw new ProfileDefinitionError(`baseDefinition chain loops through ${url}`, 'StructureDefinition.baseDefinition');
    const core = coreDefinition(url);
    if (core && (!version || !core.version || version === core.version || version.startsWith('4.0'))) return this.cached(processCache, `core|${url}`, core, visiting, false);
    const own = shippedDefinitions().get(url);
    if (own && (!version || !own.version || own.version === version)) return this.cached(processCache, `shipped|${url}`, own, visiting, false);
    if (!tenant) return undefined;
    const sd = await this.tenantDefinition(url, version);
    if (!sd) return undefined;
    return this.cached(tenantCache, `${this.ctx.tenant.id}|${sd.id}|${sd.meta?.versionId ?? ''}`, sd, visiting, true);
  }

  /** Prepares (snapshot) a definition whose base chain may itself need preparing. */
  async prepare(sd: StructureDefinition, visiting: Set<string>, tenant = true): Promise<Prepared> {
    if (!sd.differential?.element?.length) {
      if (!sd.snapshot?.element?.length) throw new ProfileDefinitionError('the StructureDefinition has neither a differential nor a snapshot', 'StructureDefinition.differential');
      return { sd, snapshot: sd.snapshot.element };
    }
    if (!sd.baseDefinition) {
      // a core definition (or a copy of one): its snapshot is complete
      if (sd.snapshot?.element?.length) return { sd, snapshot: sd.snapshot.element };
      throw new ProfileDefinitionError('a profile needs a baseDefinition', 'StructureDefinition.baseDefinition');
    }
    const base = await this.baseOf(sd, visiting, tenant);
    if (!base) throw new ProfileDefinitionError(`unknown baseDefinition ${sd.baseDefinition}`, 'StructureDefinition.baseDefinition');
    if (base.sd.type !== sd.type) throw new ProfileDefinitionError(`the base ${sd.baseDefinition} defines ${base.sd.type}, not ${sd.type}`, 'StructureDefinition.type');
    return { sd, snapshot: generateSnapshot(sd, base.snapshot), base };
  }

  private baseOf(sd: StructureDefinition, visiting: Set<string>, tenant: boolean): Promise<Prepared | undefined> {
    return this.prepared(sd.baseDefinition!, new Set(visiting).add(splitCanonical(sd.url ?? '').url), tenant);
  }

  private async cached(cache: Map<string, Prepared>, key: string, sd: StructureDefinition, visiting: Set<string>, tenant: boolean): Promise<Prepared> {
    const hit = cache.get(key);
    // a tenant definition's snapshot holds while its base is the same version (a base of the tenant's may have changed)
    if (hit && (!hit.base || !tenant || (await this.baseOf(sd, visiting, tenant)) === hit.base)) return hit;
    // core definitions come with their snapshots
    const p = sd.url && coreDefinition(sd.url) === sd ? { sd, snapshot: sd.snapshot?.element ?? [] } : await this.prepare(sd, visiting, tenant);
    cache.set(key, p);
    if (cache === tenantCache && cache.size > TENANT_CACHE_MAX) cache.delete(cache.keys().next().value as string);
    return p;
  }

  private tenantDefinition(url: string, version: string | undefined): Promise<TenantDefinition | undefined> {
    const key = `${url}|${version ?? ''}`;
    const absentKey = `${this.ctx.tenant.id}\0${key}`;
    const until = absent.get(absentKey);
    if (until !== undefined && until > Date.now()) return Promise.resolve(undefined);
    let lookUps = requestLookUps.get(this.ctx);
    if (!lookUps) requestLookUps.set(this.ctx, (lookUps = new Map()));
    let found = lookUps.get(key);
    if (!found) {
      found = this.lookUp(url, version).then((sd) => {
        if (sd) return sd;
        if (absent.size > 10_000) absent.clear();
        absent.set(absentKey, Date.now() + ABSENT_TTL_MS);
        return undefined;
      });
      lookUps.set(key, found);
    }
    return found;
  }

  private async lookUp(url: string, version: string | undefined): Promise<TenantDefinition | undefined> {
    const plan = planSearch(this.ctx.registry, 'StructureDefinition', { strict: false, params: [['url', url], ['_count', '10']], now: this.ctx.deps.clock() });
    const page = await this.s.searchPage(plan);
    const candidates = page.rows
      .filter((r) => !r.deleted && r.json)
      .map((r) => JSON.parse(r.json!) as StructureDefinition)
      .filter((sd) => sd.url === url && (!version || sd.version === version) && sd.derivation === 'constraint');
    return candidates.find((sd) => sd.status === 'active') ?? candidates[0];
  }
}

let lowerNames: Map<string, string> | undefined;

function lowerTypeNames(): Map<string, string> {
  lowerNames ??= new Map([...r4ResourceTypes()].map((t) => [t.toLowerCase(), t]));
  return lowerNames;
}

const coreTrees = new Map<string, CompiledProfile | null>();

/** The compiled core definition of a data type or resource (its base invariants), once per process. */
export function coreTree(type: string): CompiledProfile | undefined {
  let tree = coreTrees.get(type);
  if (tree === undefined) {
    const sd = coreType(type);
    tree = sd?.snapshot?.element?.length ? compileProfile(sd, sd.snapshot.element) : null;
    coreTrees.set(type, tree);
  }
  return tree ?? undefined;
}
