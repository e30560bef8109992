// The kick-off request of a Bulk Data export (Bulk 2.0 export.html#bulk-data-kick-off-request): its parameters checked
// and resolved once, so the job that runs later needs nothing but these values. Anything the server cannot honour is a
// 400 with an OperationOutcome naming it (or, with `Prefer: handling=lenient`, ignored with a warning in `error`).
import { isResourceType, r4ResourceTypes } from '../core/definitions.js';
import { FhirError } from '../core/errors.js';
import { isInPatientCompartment } from '../fhir/compartment.js';
import type { FhirContext } from '../fhir/context.js';
import type { ExportLevel } from '../fhir/export-service.js';
import { authorizeSearch } from '../fhir/guard.js';
import type { FhirRequest } from '../fhir/request.js';
import { planSearch } from '../search/plan.js';

/** Bulk 2.0: the server SHALL accept these three spellings of NDJSON. */
export const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];

const KNOWN = new Set(['_outputFormat', '_since', '_type', '_elements', '_typeFilter', '_format']);
/** Parameters of the Bulk spec this server does not support (a clear 400, or a warning when lenient). */
const UNSUPPORTED = new Set(['patient', 'includeAssociatedData', '_until', 'organizeOutputBy', 'allowPartialManifests']);
/** Search result parameters a _typeFilter query may not carry (export.html: _include and _sort SHALL NOT be used). */
const NOT_IN_FILTER = new Set(['_include', '_revinclude', '_sort', '_count', '_offset', '_cursor', '_total', '_summary', '_elements', '_contained', '_format', '_pretty', '_type']);
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const ELEMENT = /^(?:([A-Z][A-Za-z]+)\.)?([a-z][A-Za-z0-9]*)$/;

export interface ExportRequest {
  types: string[];
  since?: string;
  /** Per type, the alternative queries of _typeFilter (a resource must match one of them). */
  typeFilter?: Record<string, [string, string][][]>;
  elements?: string[];
  outputFormat: string;
  /** Warnings for ignored parameters (lenient handling), written to the manifest's `error` file. */
  warnings: string[];
}

/** A comma list parameter; repeats are joined (Bulk 2.0: "as if comma delimited"). */
function list(req: FhirRequest, name: string, split: RegExp = /,/): string[] {
  return req.params.filter(([k]) => k === name).flatMap(([, v]) => v.split(split)).map((x) => x.trim()).filter(Boolean);
}

/** The types an export of this level may contain, before authorization: Patient/Group: the Patient compartment. */
function levelTypes(level: ExportLevel): string[] {
  const all = [...r4ResourceTypes()].sort();
  return level.level === 'system' ? all : all.filter((t) => t === 'Patient' || isInPatientCompartment(t));
}

/** Checks every parameter; `lenient` (Prefer: handling=lenient) turns unsupported ones into warnings. */
export function parseExportRequest(ctx: FhirContext, req: FhirRequest, level: ExportLevel, lenient: boolean): ExportRequest {
  const warnings: string[] = [];
  const reject = (err: FhirError) => {
    if (!lenient) throw err;
    warnings.push(`${err.message} (ignored: Prefer handling=lenient)`);
  };
  for (const [k] of req.params) {
    if (UNSUPPORTED.has(k)) reject(new FhirError('invalid', `$export parameter '${k}' is not supported by this server`, { code: 'EXPORT_PARAM_UNSUPPORTED' }));
    else if (!KNOWN.has(k)) reject(new FhirError('invalid', `Unknown $export parameter '${k.slice(0, 64)}' (supported: _outputFormat, _since, _type, _typeFilter, _elements)`, { code: 'EXPORT_PARAM_UNSUPPORTED' }));
  }
  const formats = req.params.filter(([k]) => k === '_outputFormat').map(([, v]) => v.trim());
  for (const f of formats) {
    if (!OUTPUT_FORMATS.includes(f)) throw new FhirError('invalid', `_outputFormat ${JSON.stringify(f.slice(0, 80))} is not supported (supported: ${OUTPUT_FORMATS.join(', ')})`, { code: 'EXPORT_FORMAT_UNSUPPORTED', issueType: 'not-supported' });
  }
  const sinceValues = req.params.filter(([k]) => k === '_since').map(([, v]) => v.trim());
  if (sinceValues.length > 1) throw new FhirError('invalid', '_since may be given once', { code: 'EXPORT_SINCE_INVALID' });
  const since = sinceValues[0];
  if (since !== undefined && (!INSTANT.test(since) || Number.isNaN(Date.parse(since)))) {
    throw new FhirError('invalid', `_since must be a FHIR instant (e.g. 2024-01-01T00:00:00Z), got ${JSON.stringify(since.slice(0, 80))}`, { code: 'EXPORT_SINCE_INVALID' });
  }
  const allowedTypes = levelTypes(level);
  let types = allowedTypes;
  const wanted = list(req, '_type');
  if (wanted.length) {
    const ok: string[] = [];
    for (const t of new Set(wanted)) {
      if (!isResourceType(t)) reject(new FhirError('invalid', `_type names an unknown resource type ${JSON.stringify(t.slice(0, 64))}`, { code: 'EXPORT_TYPE_UNKNOWN' }));
      else if (!allowedTypes.includes(t)) reject(new FhirError('invalid', `_type ${t} is not in the Patient compartment, so a ${level.level}-level export cannot contain it`, { code: 'EXPORT_TYPE_UNKNOWN' }));
      else ok.push(t);
    }
    types = ok;
  }
  const elements = list(req, '_elements');
  for (const e of elements) {
    const m = ELEMENT.exec(e);
    if (!m || (m[1] && !isResourceType(m[1]))) throw new FhirError('invalid', `_elements entries are 'element' or 'Type.element' (root elements only), got ${JSON.stringify(e.slice(0, 80))}`, { code: 'EXPORT_ELEMENTS_INVALID' });
  }
  const typeFilter = parseTypeFilter(ctx, req, types, !!wanted.length);
  return {
    types,
    ...(since !== undefined ? { since: new Date(Date.parse(since)).toISOString() } : {}),
    ...(typeFilter ? { typeFilter } : {}),
    ...(elements.length ? { elements } : {}),
    outputFormat: 'application/fhir+ndjson',
    warnings,
  };
}

/**
 * _typeFilter: comma-separated `Type?query` (each URL-encoded by the client, so a comma inside a query's OR list is
 * told apart by what follows it). Each query is planned as a strict search now: an unknown parameter is a 400 here,
 * not a failed job later; the caller must be allowed to search with it (element limits included).
 */
function parseTypeFilter(ctx: FhirContext, req: FhirRequest, types: string[], typesNamed: boolean): Record<string, [string, string][][]> | undefined {
  const entries = list(req, '_typeFilter', /,(?=[A-Z][A-Za-z]+\?)/);
  if (!entries.length) return undefined;
  const out: Record<string, [string, string][][]> = {};
  for (const entry of entries) {
    const q = entry.indexOf('?');
    const type = q < 0 ? entry : entry.slice(0, q);
    if (q < 0 || !isResourceType(type)) throw new FhirError('invalid', `_typeFilter entries are 'Type?query', got ${JSON.stringify(entry.slice(0, 120))}`, { code: 'EXPORT_TYPE_FILTER_INVALID' });
    if (!types.includes(type)) {
      if (typesNamed) throw new FhirError('invalid', `_typeFilter names ${type}, which is not among the exported types (_type)`, { code: 'EXPORT_TYPE_FILTER_INVALID' });
      continue;
    }
    const params = [...new URLSearchParams(entry.slice(q + 1))] as [string, string][];
    if (!params.length) throw new FhirError('invalid', `_typeFilter ${type}? has no search parameters`, { code: 'EXPORT_TYPE_FILTER_INVALID' });
    const bad = params.find(([k]) => NOT_IN_FILTER.has(k.split(':')[0]));
    if (bad) throw new FhirError('invalid', `_typeFilter may not use ${bad[0]} (only search parameters)`, { code: 'EXPORT_TYPE_FILTER_INVALID' });
    let plan;
    try {
      plan = planSearch(ctx.registry, type, { strict: true, params, now: ctx.deps.clock(), maxParams: ctx.deps.config.maxSearchParams });
    } catch (err) {
      const why = err instanceof FhirError ? err.message : 'it cannot be parsed';
      throw new FhirError('invalid', `_typeFilter ${type}?${entry.slice(q + 1, q + 121)} is not a valid search: ${why}`, { code: 'EXPORT_TYPE_FILTER_INVALID' });
    }
    authorizeSearch(ctx, plan, { interaction: 'search-type', resourceType: type }, 's');
    (out[type] ??= []).push(params);
  }
  return out;
}
