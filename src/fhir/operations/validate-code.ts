// $validate-code on CodeSystem (codesystem-operation-validate-code.html) and ValueSet
// (valueset-operation-validate-code.html), type and instance level, GET or POST: is the code (or coding, or any
// coding of a CodeableConcept) in the code system / value set, and is its display right? Answers Parameters with
// result, message and display.
import type { CodeSystem } from '@medplum/fhirtypes';
import { FhirError } from '../../core/errors.js';
import { IndexedCodeSystem } from '../../terminology/code-system.js';
import { checkMembership } from '../../terminology/expand.js';
import { isComplete, type CodeSystemProvider, type CodingValue } from '../../terminology/model.js';
import type { OperationInput } from '../../terminology/operation-input.js';
import { assertCodeSystemShape } from '../../terminology/resource-shape.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { displayMatches, operationInput, parametersResult, requestedValueSet, terminologyFor, type ParameterOut } from '../terminology.js';

const COMMON = { code: 'string', system: 'string', version: 'string', display: 'string', coding: 'coding', codeableConcept: 'codeableConcept', date: 'string', abstract: 'boolean', displayLanguage: 'string' } as const;
const CS_KINDS = { ...COMMON, url: 'string', codeSystem: 'resource' } as const;
const VS_KINDS = { ...COMMON, url: 'string', context: 'string', valueSet: 'resource', valueSetVersion: 'string', systemVersion: 'string' } as const;

interface Verdict {
  result: boolean;
  message?: string;
  display?: string;
}

/** The codings to check: code (+system), coding, or the codings of codeableConcept; exactly one form. */
function codingsOf(input: OperationInput, op: string): { codings: CodingValue[]; where: string } {
  const forms = ['code', 'coding', 'codeableConcept'].filter((n) => input.has(n));
  if (forms.length > 1) throw new FhirError('invalid', `${op} takes one of code, coding or codeableConcept, not ${forms.join(' and ')}`, { code: 'TERMINOLOGY_INPUT_CONFLICT', expression: [input.where(forms[1])] });
  if (forms.length === 0) throw new FhirError('invalid', `${op} needs a code, coding or codeableConcept`, { code: 'TERMINOLOGY_CODE_MISSING', expression: ['code'] });
  const where = input.where(forms[0]);
  let codings: CodingValue[];
  if (forms[0] === 'code') codings = [{ system: input.string('system'), code: input.string('code'), display: input.string('display'), version: input.string('version') }];
  else if (forms[0] === 'coding') codings = [input.coding('coding')!];
  else codings = input.codings('codeableConcept')!;
  if (!codings.length || codings.some((c) => !c.code)) throw new FhirError('invalid', `${op} needs a code in every coding`, { code: 'TERMINOLOGY_CODE_MISSING', expression: [where] });
  if (forms[0] !== 'code' && input.has('display')) codings = codings.map((c) => ({ ...c, display: c.display ?? input.string('display') }));
  return { codings, where };
}

function answer(v: Verdict): FhirResult {
  const out: ParameterOut[] = [{ name: 'result', valueBoolean: v.result }];
  if (v.message) out.push({ name: 'message', valueString: v.message });
  if (v.display !== undefined) out.push({ name: 'display', valueString: v.display });
  return parametersResult(out);
}

/** The first coding that passes wins; otherwise the first failure's message. */
function combine(verdicts: Verdict[]): Verdict {
  return verdicts.find((v) => v.result) ?? verdicts[0];
}

function checkInCodeSystem(cs: CodeSystemProvider, c: CodingValue, abstractOk: boolean): Verdict {
  const code = c.code!;
  if (c.system !== undefined && c.system !== cs.url) return { result: false, message: `The coding's system ${c.system} is not the code system ${cs.url}` };
  const concept = cs.lookup(code);
  if (!concept) {
    const partial = isComplete(cs) ? '' : `; this server holds only part of ${cs.url}, so it may be a code this server does not know`;
    return { result: false, message: `${JSON.stringify(code.slice(0, 100))} is not a code of ${cs.url}${partial}` };
  }
  const display = concept.display;
  if (!abstractOk && concept.abstract) return { result: false, message: `${code} is an abstract concept of ${cs.url} and cannot be used here`, ...(display !== undefined ? { display } : {}) };
  const v: Verdict = { result: true, ...(display !== undefined ? { display } : {}) };
  if (c.display !== undefined && display !== undefined && !displayMatches(c.display, display, concept.designation)) {
    v.message = `The display ${JSON.stringify(c.display)} is not a display of ${cs.url}|${code}; it should be ${JSON.stringify(display)}`;
  }
  return v;
}

/** GET|POST CodeSystem/$validate-code, CodeSystem/[id]/$validate-code */
export async function codeSystemValidateCode(ctx: FhirContext, req: FhirRequest, id?: string): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'CodeSystem', ...(id !== undefined ? { id } : {}) });
  const input = operationInput(req, '$validate-code', CS_KINDS);
  const { codings } = codingsOf(input, '$validate-code');
  const abstractOk = input.boolean('abstract') ?? true;
  const body = input.resource<Record<string, unknown>>('codeSystem', 'CodeSystem');
  return ctx.store.read(async (s) => {
    const t = terminologyFor(ctx, s, true);
    let cs: CodeSystemProvider;
    if (id !== undefined) cs = (await t.instance('CodeSystem', id)).value;
    else if (body) {
      assertCodeSystemShape(body, input.where('codeSystem'));
      cs = new IndexedCodeSystem(body as unknown as CodeSystem);
    }
    else {
      const url = input.string('url') ?? codings[0].system;
      if (!url) throw new FhirError('invalid', 'CodeSystem/$validate-code needs url (or a system on the coding, or a codeSystem)', { code: 'TERMINOLOGY_SYSTEM_MISSING', expression: ['url'] });
      const version = input.string('version') ?? codings[0].version;
      const found = await t.codeSystem(url, version);
      if (!found) throw new FhirError('not-found', `Code system ${url}${version ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_SYSTEM_UNKNOWN', expression: [input.where(input.has('url') ? 'url' : 'system')] });
      cs = found.value;
    }
    return answer(combine(codings.map((c) => checkInCodeSystem(cs, c, abstractOk))));
  });
}

/** GET|POST ValueSet/$validate-code, ValueSet/[id]/$validate-code */
export async function valueSetValidateCode(ctx: FhirContext, req: FhirRequest, id?: string): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'ValueSet', ...(id !== undefined ? { id } : {}) });
  const input = operationInput(req, '$validate-code', VS_KINDS);
  const { codings } = codingsOf(input, '$validate-code');
  const abstractOk = input.boolean('abstract') ?? true;
  return ctx.store.read(async (s) => {
    const t = terminologyFor(ctx, s, true);
    const vs = await requestedValueSet(t, input, '$validate-code', id);
    const { source } = await t.prepare(vs.value);
    const label = vs.value.url ?? 'the value set';
    const verdicts = codings.map((c): Verdict => {
      const r = checkMembership(vs.value, source, c.system, c.code!);
      if (r.result === undefined) return { result: false, message: `Whether ${c.system ? `${c.system}|` : ''}${c.code} is in ${label} cannot be determined: it draws on a code system this server does not hold in full` };
      if (!r.result) return { result: false, message: `${c.system ? `${c.system}|` : ''}${c.code} is not in ${label}` };
      const cs = source.codeSystem(r.system ?? c.system ?? '');
      if (!cs) return { result: true };
      const v = checkInCodeSystem(cs, { ...c, system: r.system ?? c.system }, abstractOk);
      // membership was decided by the value set's rules: a code outside a fragment is still a member
      return v.result || cs.lookup(c.code!) ? v : { result: true };
    });
    return answer(combine(verdicts));
  });
}
