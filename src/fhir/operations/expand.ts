// ValueSet/$expand (valueset-operation-expand.html), type and instance level, GET or POST: the codes of a value set
// (nested includes/excludes, concept lists, filters, imported value sets), narrowed by a text `filter`, paged by
// `offset`/`count` with `total`, with designations on request and inactive codes left out with `activeOnly`.
// The full expansion is computed once per set of versions it draws on and cached; each request filters and pages it.
import { randomUUID } from 'node:crypto';
import type { ValueSet } from '@medplum/fhirtypes';
import { FhirError } from '../../core/errors.js';
import { MAX_EXPANSION } from '../../terminology/expand.js';
import type { ExpansionEntry } from '../../terminology/model.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { operationInput, requestedValueSet, terminologyFor } from '../terminology.js';

const KINDS = {
  url: 'string',
  valueSet: 'resource',
  valueSetVersion: 'string',
  context: 'string',
  filter: 'string',
  date: 'string',
  offset: 'integer',
  count: 'integer',
  includeDesignations: 'boolean',
  includeDefinition: 'boolean',
  activeOnly: 'boolean',
  excludeNested: 'boolean',
  displayLanguage: 'string',
} as const;

/** Most codes one answer lists; a larger expansion must be paged (count) or narrowed (filter). */
export const MAX_PAGE = 10_000;
const MAX_FILTER = 200;

/** Lower-cased "code display" of each entry, computed once per cached expansion, for text filters. */
const haystacks = new WeakMap<ExpansionEntry[], string[]>();

function textFilter(entries: ExpansionEntry[], filter: string): ExpansionEntry[] {
  let hay = haystacks.get(entries);
  if (!hay) haystacks.set(entries, (hay = entries.map((e) => `${e.code} ${e.display ?? ''}`.toLowerCase())));
  const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const out: ExpansionEntry[] = [];
  for (let i = 0; i < entries.length; i++) if (terms.every((t) => hay![i].includes(t))) out.push(entries[i]);
  return out;
}

/** GET|POST ValueSet/$expand, ValueSet/[id]/$expand */
export async function expandOperation(ctx: FhirContext, req: FhirRequest, id?: string): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'ValueSet', ...(id !== undefined ? { id } : {}) });
  const input = operationInput(req, '$expand', KINDS);
  const filter = input.string('filter');
  if (filter !== undefined && filter.length > MAX_FILTER) throw new FhirError('invalid', `$expand filter must be at most ${MAX_FILTER} characters`, { code: 'PARAMETER_OUT_OF_RANGE', expression: [input.where('filter')] });
  const offset = input.integer('offset', 0, MAX_EXPANSION) ?? 0;
  const count = input.integer('count', 0, MAX_PAGE);
  const includeDesignations = input.boolean('includeDesignations') ?? false;
  const activeOnly = input.boolean('activeOnly') ?? false;
  return ctx.store.read(async (s) => {
    const t = terminologyFor(ctx, s, true);
    const vs = await requestedValueSet(t, input, '$expand', id);
    const expansion = await t.expansion(vs.value, vs.key);
    let entries = expansion.entries;
    if (filter !== undefined) entries = textFilter(entries, filter);
    if (activeOnly) entries = entries.filter((e) => !e.inactive);
    if (count === undefined && entries.length - offset > MAX_PAGE) {
      throw new FhirError('unprocessable', `The expansion has ${entries.length} codes, more than the ${MAX_PAGE} this server lists at once: page it with count (and offset) or narrow it with filter`, {
        code: 'EXPAND_TOO_COSTLY',
        issueType: 'too-costly',
        expression: ['count'],
      });
    }
    const page = entries.slice(offset, count === undefined ? undefined : offset + count);
    const parameter: Record<string, unknown>[] = [];
    if (filter !== undefined) parameter.push({ name: 'filter', valueString: filter });
    parameter.push({ name: 'offset', valueInteger: offset });
    if (count !== undefined) parameter.push({ name: 'count', valueInteger: count });
    if (activeOnly) parameter.push({ name: 'activeOnly', valueBoolean: true });
    if (includeDesignations) parameter.push({ name: 'includeDesignations', valueBoolean: true });
    for (const used of expansion.usedSystems) parameter.push({ name: 'used-codesystem', valueUri: used });
    const body: ValueSet = { resourceType: 'ValueSet', status: vs.value.status ?? 'active' };
    if (vs.key?.startsWith('T:') && vs.value.id) body.id = vs.value.id;
    for (const k of ['url', 'version', 'name', 'title'] as const) if (vs.value[k] !== undefined) body[k] = vs.value[k];
    body.expansion = {
      identifier: `urn:uuid:${randomUUID()}`,
      timestamp: ctx.deps.clock().toISOString(),
      total: entries.length,
      offset,
      parameter: parameter as never,
      contains: page.map((e) => containsOf(e, includeDesignations)),
    };
    if (expansion.partial) {
      body.expansion.extension = [{ url: 'http://hl7.org/fhir/StructureDefinition/valueset-unclosed', valueBoolean: true }];
    }
    return { status: 200, body: body as unknown as Record<string, unknown> };
  });
}

function containsOf(e: ExpansionEntry, designations: boolean): Record<string, unknown> {
  const c: Record<string, unknown> = { system: e.system };
  if (e.version) c.version = e.version;
  if (e.abstract) c.abstract = true;
  if (e.inactive) c.inactive = true;
  c.code = e.code;
  if (e.display !== undefined) c.display = e.display;
  if (designations && e.designation?.length) c.designation = e.designation;
  return c;
}
