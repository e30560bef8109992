// CodeSystem/$lookup (codesystem-operation-lookup.html): the display, designations and properties of one code of a
// code system (the tenant's own first, then the shipped ones). GET or POST (Parameters).
import { FhirError } from '../../core/errors.js';
import type { Concept, PropertyValue } from '../../terminology/model.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { operationInput, parametersResult, terminologyFor, type ParameterOut } from '../terminology.js';

const KINDS = { code: 'string', system: 'string', version: 'string', coding: 'coding', date: 'string', displayLanguage: 'string', property: 'string' } as const;

/** GET|POST CodeSystem/$lookup */
export async function lookupOperation(ctx: FhirContext, req: FhirRequest): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'CodeSystem' });
  const input = operationInput(req, '$lookup', KINDS);
  const coding = input.coding('coding');
  if (coding && input.has('code')) throw new FhirError('invalid', '$lookup takes either code (with system) or coding, not both', { code: 'TERMINOLOGY_INPUT_CONFLICT', expression: [input.where('coding')] });
  const code = input.string('code') ?? coding?.code;
  const system = input.string('system') ?? coding?.system;
  const version = input.string('version') ?? coding?.version;
  if (!code) throw new FhirError('invalid', '$lookup needs a code (code and system, or coding)', { code: 'TERMINOLOGY_CODE_MISSING', expression: [coding ? input.where('coding') : 'code'] });
  if (!system) throw new FhirError('invalid', '$lookup needs the system of the code', { code: 'TERMINOLOGY_SYSTEM_MISSING', expression: [coding ? input.where('coding') : 'system'] });
  const wanted = new Set(input.strings('property'));
  return ctx.store.read(async (s) => {
    const cs = await terminologyFor(ctx, s, true).codeSystem(system, version);
    if (!cs) throw new FhirError('not-found', `Code system ${system}${version ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_SYSTEM_UNKNOWN', expression: [input.where(input.has('system') ? 'system' : 'coding')] });
    const concept = cs.value.lookup(code);
    if (!concept) {
      const partial = cs.value.content === 'complete' || cs.value.content === 'grammar' ? '' : ` (this server holds only part of ${system})`;
      throw new FhirError('not-found', `${JSON.stringify(code.slice(0, 100))} is not a code of ${system}${partial}`, { code: 'TERMINOLOGY_CODE_UNKNOWN', expression: [input.where(input.has('code') ? 'code' : 'coding')] });
    }
    const out: ParameterOut[] = [{ name: 'name', valueString: cs.value.name ?? system }];
    if (cs.value.version) out.push({ name: 'version', valueString: cs.value.version });
    out.push({ name: 'display', valueString: concept.display ?? concept.code });
    for (const d of concept.designation ?? []) {
      const part: ParameterOut[] = [];
      if (d.language) part.push({ name: 'language', valueCode: d.language });
      if (d.use) part.push({ name: 'use', valueCoding: d.use });
      part.push({ name: 'value', valueString: d.value });
      out.push({ name: 'designation', part });
    }
    const show = (p: string) => wanted.size === 0 || wanted.has(p);
    for (const p of propertiesOf(concept)) {
      if (!show(p.code)) continue;
      const description = cs.value.properties.get(p.code)?.description;
      const [valueKey, value] = Object.entries(p).find(([k]) => k.startsWith('value'))!;
      out.push({ name: 'property', part: [{ name: 'code', valueCode: p.code }, { name: 'value', [valueKey]: value }, ...(description ? [{ name: 'description', valueString: description }] : [])] });
    }
    return parametersResult(out);
  });
}

/** The concept's own properties, then its place in the hierarchy, its status and its definition. */
function propertiesOf(c: Concept): PropertyValue[] {
  const out: PropertyValue[] = [...(c.property ?? []).filter((p) => Object.keys(p).some((k) => k.startsWith('value')))];
  const has = (code: string) => out.some((p) => p.code === code);
  if (!has('parent')) for (const p of c.parents) out.push({ code: 'parent', valueCode: p });
  if (!has('child')) for (const ch of c.children) out.push({ code: 'child', valueCode: ch });
  if (!has('inactive')) out.push({ code: 'inactive', valueBoolean: c.inactive });
  if (c.definition !== undefined && !has('definition')) out.push({ code: 'definition', valueString: c.definition });
  return out;
}
