// References inside resources (references.html): finding them, classifying them, checking them against the
// tenant, and rewriting placeholders (urn:uuid, conditional references) in bundles.
import { fhirSchema, isResourceType } from '../core/definitions.js';
import { ID_PATTERN } from './ids.js';

export type RefClass =
  | { kind: 'local'; type: string; id: string; version?: string }
  | { kind: 'contained' }
  | { kind: 'external'; url: string }
  | { kind: 'placeholder'; value: string }
  | { kind: 'conditional'; type: string; query: string }
  | { kind: 'other-tenant' }
  | { kind: 'invalid'; reason: string };

export interface RefContext {
  /** Server origin + /fhir, e.g. https://x.org/fhir */
  serverFhirRoot: string;
  /** This tenant's base, e.g. https://x.org/fhir/acme */
  tenantBase: string;
}

const LOCAL = /^([A-Za-z]+)\/([^/?#]+)(?:\/_history\/([^/?#]+))?$/;

/**
 * An absolute http(s) reference on this server, relative to the tenant base ("Patient/1"); null when it names
 * another tenant (or the server's FHIR root); undefined when it is not on this server. URLs are compared after
 * normalisation (scheme/host case, default port, dot segments), so spelling cannot slip past the tenant check.
 */
function onThisServer(ref: string, ctx: RefContext): string | null | undefined {
  let u: URL;
  let root: URL;
  let base: URL;
  try {
    u = new URL(ref);
    root = new URL(ctx.serverFhirRoot);
    base = new URL(ctx.tenantBase);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== root.origin) return undefined;
  const path = u.pathname.replace(/\/{2,}/g, '/');
  if (path.startsWith(base.pathname + '/')) return path.slice(base.pathname.length + 1) + u.search;
  if (path === root.pathname || path.startsWith(root.pathname + '/')) return null;
  return undefined;
}

/** Classifies one Reference.reference value. */
export function classifyReference(ref: string, ctx: RefContext): RefClass {
  if (ref.startsWith('#')) return { kind: 'contained' };
  if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) return { kind: 'placeholder', value: ref };
  let rel = ref;
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref)) {
    const local = onThisServer(ref, ctx);
    if (local === null) return { kind: 'other-tenant' };
    if (local === undefined) return { kind: 'external', url: ref };
    rel = local;
  }
  const q = rel.indexOf('?');
  if (q > 0) {
    const type = rel.slice(0, q);
    if (!isResourceType(type)) return { kind: 'invalid', reason: `unknown resource type '${type}'` };
    return { kind: 'conditional', type, query: rel.slice(q + 1) };
  }
  const m = LOCAL.exec(rel);
  if (!m) return { kind: 'invalid', reason: 'expected Type/id, an absolute URL, #contained or urn:uuid' };
  const [, type, id, version] = m;
  if (!isResourceType(type)) return { kind: 'invalid', reason: `unknown resource type '${type}'` };
  if (!ID_PATTERN.test(id)) return { kind: 'invalid', reason: `invalid id '${id.slice(0, 80)}'` };
  if (version !== undefined && !ID_PATTERN.test(version)) return { kind: 'invalid', reason: 'invalid version' };
  return { kind: 'local', type, id, version };
}

export interface FoundReference {
  /** The object holding `reference` (a Reference datatype). */
  holder: Record<string, unknown>;
  reference: string;
  /** FHIRPath-style location, e.g. Observation.subject or DiagnosticReport.result[1] */
  path: string;
}

/**
 * Every Reference.reference string in a resource and its contained resources. Other nested resources
 * (Bundle.entry.resource, Parameters.parameter.resource) are skipped: their references resolve inside them.
 */
export function findReferences(resource: Record<string, unknown>): FoundReference[] {
  const out: FoundReference[] = [];
  const walk = (node: unknown, path: string, depth: number) => {
    if (depth > 64 || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) walk(node[i], `${path}[${i}]`, depth + 1);
      return;
    }
    const obj = node as Record<string, unknown>;
    if (typeof obj.reference === 'string') out.push({ holder: obj, reference: obj.reference, path });
    for (const key of Object.keys(obj)) {
      const v = obj[key];
      if (v === null || typeof v !== 'object') continue;
      if (key === 'contained' && obj === resource && Array.isArray(v)) {
        v.forEach((c, i) => walk(c, `${path}.contained[${i}]`, depth + 2));
        continue;
      }
      if (!Array.isArray(v) && typeof (v as { resourceType?: unknown }).resourceType === 'string') continue;
      if (Array.isArray(v) && v.some((x) => typeof (x as { resourceType?: unknown } | null)?.resourceType === 'string')) continue;
      walk(v, `${path}.${key}`, depth + 1);
    }
  };
  walk(resource, String(resource.resourceType), 0);
  return out;
}

/** Primitive types whose values are rewritten when they hold a placeholder (bundle.html#references). */
const URI_TYPES = new Set(['uri', 'url', 'oid', 'uuid']);
/** Choice-typed primitives are inlined in the JSON Schema without a $ref; their name carries the type. */
const URI_CHOICE = /(Uri|Url|Oid|Uuid)$/;

type SchemaProp = { $ref?: string; items?: { $ref?: string } };
type SchemaDefs = Record<string, { properties?: Record<string, SchemaProp> }>;

/** The datatype (JSON Schema definition name) of `key` in `def`, or undefined when unknown. */
function elementType(defs: SchemaDefs, def: string, key: string): string | undefined {
  const prop = defs[def]?.properties?.[key];
  if (!prop) return undefined;
  const ref = prop.$ref ?? prop.items?.$ref;
  if (ref) return ref.slice(ref.lastIndexOf('/') + 1);
  return URI_CHOICE.test(key) ? 'uri' : key.endsWith('Canonical') ? 'canonical' : 'primitive';
}

function rewriteReference(ref: string, map: Map<string, string>): string | undefined {
  const direct = map.get(ref);
  if (direct !== undefined) return direct;
  // A version-specific reference to a placeholder's absolute fullUrl stays version-specific.
  const h = ref.indexOf('/_history/');
  if (h > 0 && map.has(ref.slice(0, h))) return map.get(ref.slice(0, h)) + ref.slice(h);
  return undefined;
}

/**
 * Rewrites placeholders (urn:uuid / urn:oid / absolute fullUrls, `map`: placeholder -> "Type/id") in a resource:
 * in Reference.reference, in uri/url/oid/uuid elements and in narrative href/src, walking the R4 JSON Schema so
 * canonical and string elements (e.g. Identifier.value) keep their value (bundle.html#references).
 */
export function rewritePlaceholders(resource: Record<string, unknown>, map: Map<string, string>, defs: SchemaDefs = fhirSchema().definitions as SchemaDefs): void {
  if (typeof resource.resourceType === 'string') rewriteIn(resource, resource.resourceType, map, defs, 0);
}

function rewriteIn(obj: Record<string, unknown>, def: string, map: Map<string, string>, defs: SchemaDefs, depth: number): void {
  if (depth > 64) return;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const type = elementType(defs, def, key);
    if (type === undefined) continue; // unknown element: validation rejects it anyway
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = rewriteValue(v[i], def, key, type, map, defs, depth);
    } else obj[key] = rewriteValue(v, def, key, type, map, defs, depth);
  }
}

function rewriteValue(v: unknown, def: string, key: string, type: string, map: Map<string, string>, defs: SchemaDefs, depth: number): unknown {
  if (typeof v === 'string') {
    if (def === 'Reference' && key === 'reference') return rewriteReference(v, map) ?? v;
    if (URI_TYPES.has(type)) return map.get(v) ?? v;
    if (type === 'xhtml' && v.includes('urn:')) return rewriteNarrative(v, map);
    return v;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  const nested = type === 'ResourceList' ? o.resourceType : type;
  if (typeof nested === 'string' && defs[nested]) rewriteIn(o, nested, map, defs, depth + 1);
  return v;
}

function rewriteNarrative(div: string, map: Map<string, string>): string {
  return div.replace(/(href|src)="(urn:(?:uuid|oid):[^"]+)"/g, (all, attr: string, urn: string) =>
    map.has(urn) ? `${attr}="${map.get(urn)}"` : all,
  );
}
