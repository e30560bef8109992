// _summary and _elements (search.html#summary, #elements): subsets carry the SUBSETTED tag.
import { readFileSync } from 'node:fs';
import { FhirError } from '../core/errors.js';

type Flags = Record<string, { summary: string[]; mandatory: string[] }>;
let flags: Flags | undefined;

function elementFlags(): Flags {
  flags ??= JSON.parse(readFileSync(new URL('../../profiles/r4-element-flags.json', import.meta.url), 'utf8')) as Flags;
  return flags;
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };
const ALWAYS = ['resourceType', 'id', 'meta'];

function tagged(out: Record<string, unknown>): Record<string, unknown> {
  const meta = { ...((out.meta as Record<string, unknown>) ?? {}) };
  const tags = Array.isArray(meta.tag) ? [...(meta.tag as unknown[])] : [];
  if (!tags.some((t) => (t as { code?: unknown })?.code === SUBSETTED.code && (t as { system?: unknown })?.system === SUBSETTED.system)) tags.push(SUBSETTED);
  meta.tag = tags;
  out.meta = meta;
  return out;
}

function pick(resource: Record<string, unknown>, keep: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) {
    const base = k.startsWith('_') ? k.slice(1) : k;
    if (keep.has(base)) out[k] = v;
  }
  return out;
}

function isValidSummary(v: string): boolean {
  return ['true', 'false', 'text', 'data', 'count'].includes(v);
}

/** Applies _summary (true|text|data|false) and/or _elements to one resource. */
export function subsetResource(resource: Record<string, unknown>, summary: string | undefined, elements: string[] | undefined): Record<string, unknown> {
  const type = String(resource.resourceType);
  const f = elementFlags()[type] ?? { summary: [], mandatory: [] };
  if (summary && summary !== 'false' && summary !== 'count') {
    if (!isValidSummary(summary)) throw new FhirError('invalid', `_summary must be true, false, text, data or count`, { code: 'SUMMARY_INVALID' });
    if (summary === 'true') return tagged(pick(resource, new Set([...ALWAYS, ...f.summary, ...f.mandatory])));
    if (summary === 'text') return tagged(pick(resource, new Set([...ALWAYS, 'text', ...f.mandatory])));
    if (summary === 'data') {
      const { text: _text, ...rest } = resource;
      return tagged(rest);
    }
  }
  if (elements?.length) {
    const keep = new Set([...ALWAYS, ...f.mandatory, ...elements.map((e) => e.replace(new RegExp(`^${type}\\.`), '').split('.')[0])]);
    return tagged(pick(resource, keep));
  }
  return resource;
}

/**
 * A role's element limit (SMART "minimal Patient data"): only `limit` plus id, meta and resourceType survive; unlike
 * _elements, mandatory elements are not added back, and it is applied last, after _summary/_elements, on every path
 * that returns a resource (issue 8: `_summary=data` once returned everything).
 */
export function limitResource(resource: Record<string, unknown>, limit: string[]): Record<string, unknown> {
  return tagged(pick(resource, new Set([...ALWAYS, ...limit])));
}

/** _summary/_elements, then the element limit: the one shaping every returned resource goes through. */
export function shapeResource(resource: Record<string, unknown>, summary: string | undefined, elements: string[] | undefined, limit: string[] | undefined): Record<string, unknown> {
  const shaped = subsetResource(resource, summary, elements);
  return limit ? limitResource(shaped, limit) : shaped;
}
