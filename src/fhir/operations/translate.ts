// ConceptMap/$translate (conceptmap-operation-translate.html), type and instance level, GET or POST: the codes a
// code maps to, through the ConceptMap named (url, conceptMap, instance) or through every ConceptMap (the tenant's,
// then the shipped ones) that maps from the code's system, narrowed by source / target value sets and targetsystem.
import type { ConceptMap } from '@medplum/fhirtypes';
import { FhirError } from '../../core/errors.js';
import type { CodingValue } from '../../terminology/model.js';
import { shippedConceptMaps } from '../../terminology/shipped.js';
import { isMapped, mapsFrom, translate, type TranslateMatch } from '../../terminology/translate.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { operationInput, parametersResult, terminologyFor, type ParameterOut, type TenantTerminology } from '../terminology.js';
import type { OperationInput } from '../../terminology/operation-input.js';

const KINDS = {
  url: 'string',
  conceptMap: 'resource',
  conceptMapVersion: 'string',
  code: 'string',
  system: 'string',
  version: 'string',
  source: 'string',
  coding: 'coding',
  codeableConcept: 'codeableConcept',
  target: 'string',
  targetsystem: 'string',
  reverse: 'boolean',
} as const;

function codingsOf(input: OperationInput): CodingValue[] {
  const forms = ['code', 'coding', 'codeableConcept'].filter((n) => input.has(n));
  if (forms.length > 1) throw new FhirError('invalid', `$translate takes one of code, coding or codeableConcept, not ${forms.join(' and ')}`, { code: 'TERMINOLOGY_INPUT_CONFLICT', expression: [input.where(forms[1])] });
  let codings: CodingValue[] = [];
  if (forms[0] === 'code') codings = [{ code: input.string('code'), system: input.string('system'), version: input.string('version') }];
  else if (forms[0] === 'coding') codings = [input.coding('coding')!];
  else if (forms[0] === 'codeableConcept') codings = input.codings('codeableConcept')!;
  if (!codings.length || codings.some((c) => !c.code)) throw new FhirError('invalid', '$translate needs a code (with system), coding or codeableConcept', { code: 'TERMINOLOGY_CODE_MISSING', expression: [forms[0] ? input.where(forms[0]) : 'code'] });
  return codings;
}

/** The canonical a ConceptMap names as its source (reverse: target) value set. */
const scopeOf = (m: ConceptMap, target: boolean) => (target ? (m.targetUri ?? m.targetCanonical) : (m.sourceUri ?? m.sourceCanonical));

async function candidateMaps(t: TenantTerminology, input: OperationInput, system: string, reverse: boolean, targetSystem?: string): Promise<ConceptMap[]> {
  const own = (await t.ownConceptMaps(system, reverse)).map((f) => f.value);
  const ownUrls = new Set(own.map((m) => m.url));
  const shipped = [...shippedConceptMaps()].filter((m) => !ownUrls.has(m.url) && mapsFrom(m, system, reverse, targetSystem));
  const source = input.string('source');
  const target = input.string('target');
  return [...own, ...shipped].filter((m) => (source === undefined || scopeOf(m, reverse) === source) && (target === undefined || scopeOf(m, !reverse) === target));
}

/** GET|POST ConceptMap/$translate, ConceptMap/[id]/$translate */
export async function translateOperation(ctx: FhirContext, req: FhirRequest, id?: string): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'ConceptMap', ...(id !== undefined ? { id } : {}) });
  const input = operationInput(req, '$translate', KINDS);
  const codings = codingsOf(input);
  const reverse = input.boolean('reverse') ?? false;
  const targetSystem = input.string('targetsystem');
  const body = input.resource<ConceptMap>('conceptMap', 'ConceptMap');
  if (body && (body.group !== undefined && !Array.isArray(body.group))) throw new FhirError('invalid', 'ConceptMap.group must be an array', { code: 'PARAMETERS_INVALID', expression: [`${input.where('conceptMap')}.group`] });
  return ctx.store.read(async (s) => {
    const t = terminologyFor(ctx, s, true);
    let named: ConceptMap | undefined;
    if (id !== undefined) named = (await t.instance('ConceptMap', id)).value;
    else if (body) named = body;
    else if (input.has('url')) {
      const url = input.string('url')!;
      const version = input.string('conceptMapVersion');
      const found = await t.conceptMap(url, version);
      if (!found) throw new FhirError('not-found', `Concept map ${url}${version ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_CONCEPTMAP_UNKNOWN', expression: [input.where('url')] });
      named = found.value;
    }
    const matches: TranslateMatch[] = [];
    for (const c of codings) {
      if (!named && !c.system) throw new FhirError('invalid', '$translate needs the system of the code when no concept map is named', { code: 'TERMINOLOGY_SYSTEM_MISSING', expression: ['system'] });
      const maps = named ? [named] : await candidateMaps(t, input, c.system!, reverse, targetSystem);
      for (const m of maps) matches.push(...translate(m, { code: c.code!, reverse, ...(c.system ? { system: c.system } : {}), ...(targetSystem ? { targetSystem } : {}) }));
    }
    // a map that names only the target code: its display from the target code system, when known
    for (const m of matches) {
      if (!m.concept?.system || !m.concept.code || m.concept.display !== undefined) continue;
      const display = (await t.codeSystem(m.concept.system))?.value.lookup(m.concept.code)?.display;
      if (display !== undefined) m.concept = { ...m.concept, display };
    }
    const result = isMapped(matches);
    const out: ParameterOut[] = [{ name: 'result', valueBoolean: result }];
    if (!result) out.push({ name: 'message', valueString: matches.length ? 'The code maps to nothing (unmatched or disjoint)' : 'No mapping found for the code' });
    for (const m of matches) {
      const part: ParameterOut[] = [{ name: 'equivalence', valueCode: m.equivalence }];
      if (m.concept) part.push({ name: 'concept', valueCoding: m.concept });
      if (m.source) part.push({ name: 'source', valueUri: m.source });
      out.push({ name: 'match', part });
    }
    return parametersResult(out);
  });
}
