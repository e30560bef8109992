// References inside resources (references.html): finding them, classifying them, checking them against the
// tenant, and rewriting placeholders (urn:uuid, conditional references) in bundles.
import { isResourceType } from './definitions.js';
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

/** Classifies one Reference.reference value. */
export function classifyReference(ref: string, ctx: RefContext): RefClass {
  if (ref.startsWith('#')) return { kind: 'contained' };
  if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) return { kind: 'placeholder', value: ref };
  let rel = ref;
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref)) {
    if (ref.startsWith(ctx.tenantBase + '/')) rel = ref.slice(ctx.tenantBase.length + 1);
    else if (ref.startsWith(ctx.serverFhirRoot + '/')) return { kind: 'other-tenant' };
    else return { kind: 'external', url: ref };
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

/** Every Reference.reference string in a resource, contained resources excluded. */
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
      if (key === 'contained' && depth === 0) continue;
      const v = obj[key];
      if (v !== null && typeof v === 'object') walk(v, `${path}.${key}`, depth + 1);
    }
  };
  walk(resource, String(resource.resourceType), 0);
  return out;
}

/**
 * Rewrites placeholder references (and uri-typed values equal to a placeholder) everywhere in `node`,
 * using `map` (placeholder -> "Type/id"). Canonicals are not rewritten (bundle.html#references).
 */
export function rewritePlaceholders(node: unknown, map: Map<string, string>): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const v = node[i];
      if (typeof v === 'string' && map.has(v)) node[i] = map.get(v);
      else rewritePlaceholders(v, map);
    }
    return;
  }
  const obj = node as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (typeof v === 'string') {
      if (map.has(v) && key !== 'fullUrl') obj[key] = map.get(v);
      else if (key === 'div' && v.includes('urn:')) obj[key] = rewriteNarrative(v, map);
    } else rewritePlaceholders(v, map);
  }
}

function rewriteNarrative(div: string, map: Map<string, string>): string {
  return div.replace(/(href|src)="(urn:(?:uuid|oid):[^"]+)"/g, (all, attr: string, urn: string) =>
    map.has(urn) ? `${attr}="${map.get(urn)}"` : all,
  );
}
