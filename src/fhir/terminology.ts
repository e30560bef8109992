// The terminology service as the FHIR layer uses it: code systems, value sets and concept maps found by canonical
// URL among the tenant's own resources first (other tenants never see them), then among the shipped ones
// (src/terminology/shipped.ts). Tenant resources are indexed once per stored version and expansions are cached by
// the exact versions they were computed from, so an edit is seen at once and nothing is shared across tenants.
import type { CodeSystem, ConceptMap, ValueSet } from '@medplum/fhirtypes';
import { FhirError } from '../core/errors.js';
import { planSearch } from '../search/plan.js';
import type { StoredVersion } from '../store/resources.js';
import type { TenantSession } from '../store/session.js';
import { BoundedCache } from '../terminology/bounded-cache.js';
import { IndexedCodeSystem } from '../terminology/code-system.js';
import { checkMembership, expandValueSet, splitCanonical, type TerminologySource } from '../terminology/expand.js';
import type { CodeSystemProvider, Expansion } from '../terminology/model.js';
import { OperationInput, type InputKind } from '../terminology/operation-input.js';
import { assertValueSetShape } from '../terminology/resource-shape.js';
import { shippedCodeSystem, shippedConceptMap, shippedValueSet } from '../terminology/shipped.js';
import { bodyOf } from './body.js';
import type { FhirContext } from './context.js';
import { assertInRegion, authorize, readableKeys, readsWholeType } from './guard.js';
import { assertId } from './ids.js';
import type { FhirRequest, FhirResult } from './request.js';

export interface CodeCheck { result: boolean; message?: string; display?: string }

export type TerminologyType = 'CodeSystem' | 'ValueSet' | 'ConceptMap';

/** A resolved terminology resource and the identity of the exact version it came from (cache keys). */
export interface Found<T> {
  value: T;
  /** "S:<type>:<url>" (shipped) or "T:<tenant>:<type>/<id>/<versionId>" (the tenant's) */
  key: string;
  /** The tenant's stored resource (absent: shipped). */
  stored?: { id: string; versionId: number };
}

// Process-wide caches keyed by immutable identities (a stored version never changes), bounded by what they hold.
// Weights are concepts (code systems) and codes (expansions): a few hundred bytes each.
const indexedCodeSystems = new BoundedCache<IndexedCodeSystem>(400_000, (cs) => cs.size);
const parsedResources = new BoundedCache<ValueSet | ConceptMap>(500);
const expansions = new BoundedCache<Expansion>(400_000, (e) => e.entries.length);

const MAX_GRAPH = 200;

/** One unit of work's view of the tenant's terminology, memoised per session. */
export class TenantTerminology {
  private anyOwn?: Promise<boolean>;
  private readonly found = new Map<string, Promise<Found<unknown> | undefined>>();

  /** `asCaller`: the tenant's resources are seen only as far as the caller may read them (operations). */
  constructor(
    readonly ctx: FhirContext,
    readonly s: TenantSession,
    private readonly asCaller: boolean,
  ) {}

  /** Does the tenant hold any terminology resource at all? (one cheap query spares every lookup below) */
  private hasOwn(): Promise<boolean> {
    this.anyOwn ??= this.s.searchIds(planSearch(this.ctx.registry, ['CodeSystem', 'ValueSet', 'ConceptMap'], { strict: true, params: [] }), 1).then((ids) => ids.length > 0);
    return this.anyOwn;
  }

  /** The tenant's newest current resource of `type` with this url (and version). */
  private async ownRow(type: TerminologyType, url: string, version?: string): Promise<StoredVersion | undefined> {
    if (!(await this.hasOwn())) return undefined;
    const params: [string, string][] = [['url', url], ['_sort', '-_lastUpdated'], ['_count', '1']];
    if (version !== undefined) params.push(['version', version]);
    const page = await this.s.searchPage(planSearch(this.ctx.registry, type, { strict: true, params }));
    const row = page.rows[0];
    if (!row?.json) return undefined;
    if (this.asCaller && !readsWholeType(this.ctx, type) && !(await readableKeys(this.ctx, this.s, [`${type}/${row.id}`])).size) return undefined;
    return row;
  }

  private memo<T>(key: string, fn: () => Promise<Found<T> | undefined>): Promise<Found<T> | undefined> {
    let p = this.found.get(key);
    if (!p) this.found.set(key, (p = fn()));
    return p as Promise<Found<T> | undefined>;
  }

  codeSystem(url: string, version?: string): Promise<Found<CodeSystemProvider> | undefined> {
    return this.memo(`CodeSystem|${url}|${version ?? ''}`, async () => {
      const row = await this.ownRow('CodeSystem', url, version);
      if (row) return codeSystemOf(this.s.tenantId, row);
      const shipped = shippedCodeSystem(url, version);
      return shipped ? { value: shipped, key: `S:CodeSystem:${url}` } : undefined;
    });
  }

  valueSet(url: string, version?: string): Promise<Found<ValueSet> | undefined> {
    return this.memo(`ValueSet|${url}|${version ?? ''}`, async () => {
      const row = await this.ownRow('ValueSet', url, version);
      if (row) return parsedOf<ValueSet>(this.s.tenantId, row);
      const shipped = shippedValueSet(url, version);
      return shipped ? { value: shipped, key: `S:ValueSet:${url}` } : undefined;
    });
  }

  conceptMap(url: string, version?: string): Promise<Found<ConceptMap> | undefined> {
    return this.memo(`ConceptMap|${url}|${version ?? ''}`, async () => {
      const row = await this.ownRow('ConceptMap', url, version);
      if (row) return parsedOf<ConceptMap>(this.s.tenantId, row);
      const shipped = shippedConceptMap(url, version);
      return shipped ? { value: shipped, key: `S:ConceptMap:${url}` } : undefined;
    });
  }

  /** The tenant's concept maps that translate from (reverse: into) `system`. */
  async ownConceptMaps(system: string, reverse: boolean): Promise<Found<ConceptMap>[]> {
    if (!(await this.hasOwn())) return [];
    const plan = planSearch(this.ctx.registry, 'ConceptMap', { strict: true, params: [[reverse ? 'target-system' : 'source-system', system], ['_count', '50']] });
    const rows = (await this.s.searchPage(plan)).rows.filter((r) => r.json);
    const visible = this.asCaller && !readsWholeType(this.ctx, 'ConceptMap') ? await readableKeys(this.ctx, this.s, rows.map((r) => `ConceptMap/${r.id}`)) : undefined;
    return rows.filter((r) => !visible || visible.has(`ConceptMap/${r.id}`)).map((r) => parsedOf<ConceptMap>(this.s.tenantId, r));
  }

  /** A resource of the tenant named by id (instance-level operations): read access, region, 404/410 as a read. */
  async instance<T extends TerminologyType>(type: T, id: string): Promise<Found<T extends 'CodeSystem' ? CodeSystemProvider : T extends 'ValueSet' ? ValueSet : ConceptMap>> {
    assertId(id, 'URL');
    const d = authorize(this.ctx, { interaction: 'read', resourceType: type, id });
    const row = await this.s.readCurrent(type, id);
    if (row && !row.deleted && (d.compartment || d.searchFilters)) await assertInRegion(this.ctx, this.s, type, id, d);
    if (!row) throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
    if (row.deleted || !row.json) throw new FhirError('gone', `${type}/${id} was deleted`, { code: 'RESOURCE_DELETED' });
    return (type === 'CodeSystem' ? codeSystemOf(this.s.tenantId, row) : parsedOf(this.s.tenantId, row)) as never;
  }

  /**
   * Resolves every code system and value set `vs` draws on (nested imports too), so the pure engine can run on them,
   * and a fingerprint naming the exact versions used.
   */
  async prepare(vs: ValueSet): Promise<{ source: TerminologySource; fingerprint: string }> {
    const codeSystems = new Map<string, CodeSystemProvider>();
    const valueSets = new Map<string, ValueSet>();
    const keys: string[] = [];
    const seen = new Set<string>();
    const visit = async (v: ValueSet, depth: number): Promise<void> => {
      if (depth > 10) return;
      const parts = [...(v.compose?.include ?? []), ...(v.compose?.exclude ?? [])];
      for (const inc of parts) {
        if (inc.system && !seen.has(`CS ${inc.system}|${inc.version ?? ''}`)) {
          seen.add(`CS ${inc.system}|${inc.version ?? ''}`);
          const cs = await this.codeSystem(inc.system, inc.version);
          keys.push(cs?.key ?? `none:CodeSystem:${inc.system}|${inc.version ?? ''}`);
          if (cs) codeSystems.set(`${inc.system}|${inc.version ?? ''}`, cs.value);
        }
        for (const canonical of inc.valueSet ?? []) {
          if (seen.has(`VS ${canonical}`) || seen.size > MAX_GRAPH) continue;
          seen.add(`VS ${canonical}`);
          const { url, version } = splitCanonical(canonical);
          const inner = await this.valueSet(url, version);
          keys.push(inner?.key ?? `none:ValueSet:${canonical}`);
          if (!inner) continue;
          valueSets.set(`${url}|${version ?? ''}`, inner.value);
          await visit(inner.value, depth + 1);
        }
      }
    };
    await visit(vs, 0);
    const source: TerminologySource = {
      codeSystem: (url, version) => codeSystems.get(`${url}|${version ?? ''}`) ?? (version === undefined ? undefined : codeSystems.get(`${url}|`)),
      valueSet: (url, version) => valueSets.get(`${url}|${version ?? ''}`),
    };
    return { source, fingerprint: keys.join(' ') };
  }

  /** The full expansion of a resolved value set (cached by the versions it draws on; a body ValueSet is not cached). */
  async expansion(vs: ValueSet, key: string | undefined): Promise<Expansion> {
    const { source, fingerprint } = await this.prepare(vs);
    if (key === undefined) return expandValueSet(vs, source);
    const cacheKey = `${key} ${fingerprint}`;
    const hit = expansions.get(cacheKey);
    if (hit) return hit;
    const computed = expandValueSet(vs, source);
    expansions.set(cacheKey, computed);
    return computed;
  }
}

function codeSystemOf(tenantId: string, row: StoredVersion): Found<CodeSystemProvider> {
  const key = `T:${tenantId}:CodeSystem/${row.id}/${row.versionId}`;
  let cs = indexedCodeSystems.get(key);
  if (!cs) {
    cs = new IndexedCodeSystem(JSON.parse(row.json!) as CodeSystem);
    indexedCodeSystems.set(key, cs);
  }
  return { value: cs, key, stored: { id: row.id, versionId: row.versionId } };
}

function parsedOf<T extends ValueSet | ConceptMap>(tenantId: string, row: StoredVersion): Found<T> {
  const key = `T:${tenantId}:${row.resourceType}/${row.id}/${row.versionId}`;
  let r = parsedResources.get(key) as T | undefined;
  if (!r) {
    r = JSON.parse(row.json!) as T;
    parsedResources.set(key, r);
  }
  return { value: r, key, stored: { id: row.id, versionId: row.versionId } };
}

const sessions = new WeakMap<TenantSession, Map<boolean, TenantTerminology>>();

/** The terminology view of this session (one per session and mode, so lookups are shared by a request's checks). */
export function terminologyFor(ctx: FhirContext, s: TenantSession, asCaller = false): TenantTerminology {
  let bySession = sessions.get(s);
  if (!bySession) sessions.set(s, (bySession = new Map()));
  let t = bySession.get(asCaller);
  if (!t) bySession.set(asCaller, (t = new TenantTerminology(ctx, s, asCaller)));
  return t;
}

/** Does the display match the concept's display or one of its designations (case and spacing aside)? */
export function displayMatches(given: string, display: string | undefined, designations: { value: string }[] = []): boolean {
  const norm = (x: string) => x.trim().replace(/\s+/g, ' ').toLowerCase();
  return [display, ...designations.map((d) => d.value)].some((d) => d !== undefined && norm(d) === norm(given));
}

/** Is system|code in the ValueSet with canonical `valueSet` ("url" or "url|version")? The tenant's own ValueSets/CodeSystems (read through `s`) first, then the shipped ones. undefined when the value set is unknown or cannot be evaluated (unknown code system, too large). */
export async function valueSetCheck(ctx: FhirContext, s: TenantSession, valueSet: string, system: string | undefined, code: string, display?: string): Promise<CodeCheck | undefined> {
  const t = terminologyFor(ctx, s);
  const { url, version } = splitCanonical(valueSet);
  const vs = await t.valueSet(url, version);
  if (!vs) return undefined;
  try {
    const { source } = await t.prepare(vs.value);
    const r = checkMembership(vs.value, source, system, code);
    if (r.result === undefined) return undefined;
    if (!r.result) return { result: false, message: `${system ? `${system}|` : ''}${code} is not in the value set ${valueSet}` };
    const concept = source.codeSystem(r.system ?? system ?? '')?.lookup(code);
    const out: CodeCheck = { result: true };
    if (concept?.display !== undefined) out.display = concept.display;
    if (display !== undefined && concept && !displayMatches(display, concept.display, concept.designation)) {
      out.message = `The display ${JSON.stringify(display)} is not a display of ${r.system ?? system}|${code}; expected ${JSON.stringify(concept.display)}`;
    }
    return out;
  } catch (err) {
    if (err instanceof FhirError) return undefined; // a value set this server cannot evaluate
    throw err;
  }
}

/** The value set named by the request: instance id, a ValueSet in the body, or url (+ valueSetVersion). */
export async function requestedValueSet(t: TenantTerminology, input: OperationInput, op: string, id?: string): Promise<Found<ValueSet> | { value: ValueSet; key?: undefined }> {
  if (id !== undefined) return t.instance('ValueSet', id);
  const body = input.resource<ValueSet>('valueSet', 'ValueSet');
  if (body) {
    assertValueSetShape(body as unknown as Record<string, unknown>, input.where('valueSet'));
    return { value: body };
  }
  const url = input.string('url');
  if (!url) throw new FhirError('invalid', `${op} needs url, a valueSet, or an instance ([id]/${op})`, { code: 'TERMINOLOGY_VALUESET_MISSING', expression: ['url'] });
  const { url: bare, version: inUrl } = splitCanonical(url);
  const version = input.string('valueSetVersion') ?? inUrl;
  const found = await t.valueSet(bare, version);
  if (!found) throw new FhirError('not-found', `Value set ${url}${version && !inUrl ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_VALUESET_UNKNOWN', expression: [input.where('url')] });
  return found;
}

/** The operation's input: the query string (GET) or the Parameters body (POST). */
export function operationInput(req: FhirRequest, op: string, kinds: Record<string, InputKind>): OperationInput {
  return req.method === 'GET' ? OperationInput.fromQuery(op, req.params, kinds) : OperationInput.fromParameters(op, bodyOf(req).value, kinds);
}

export type ParameterOut = { name: string; part?: ParameterOut[] } & Record<string, unknown>;

/** A Parameters answer (200). */
export function parametersResult(parameter: ParameterOut[]): FhirResult {
  return { status: 200, body: { resourceType: 'Parameters', parameter } };
}
