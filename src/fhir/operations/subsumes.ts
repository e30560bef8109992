// CodeSystem/$subsumes (codesystem-operation-subsumes.html), type and instance level, GET or POST: how code A and
// code B relate in the code system's hierarchy: equivalent, subsumes (A is above B), subsumed-by or not-subsumed.
import { FhirError } from '../../core/errors.js';
import type { CodeSystemProvider, CodingValue } from '../../terminology/model.js';
import type { OperationInput } from '../../terminology/operation-input.js';
import type { FhirContext } from '../context.js';
import { authorize } from '../guard.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { operationInput, parametersResult, terminologyFor } from '../terminology.js';

const KINDS = { codeA: 'string', codeB: 'string', system: 'string', version: 'string', codingA: 'coding', codingB: 'coding' } as const;

/** Code A or B: the code parameter or the coding one (not both), and where it was given. */
function side(input: OperationInput, which: 'A' | 'B'): { coding: CodingValue; where: string } {
  const codeName = `code${which}`;
  const codingName = `coding${which}`;
  if (input.has(codeName) && input.has(codingName)) {
    throw new FhirError('invalid', `$subsumes takes ${codeName} or ${codingName}, not both`, { code: 'TERMINOLOGY_INPUT_CONFLICT', expression: [input.where(codingName)] });
  }
  const coding = input.has(codingName) ? input.coding(codingName)! : { code: input.string(codeName) };
  if (!coding.code) throw new FhirError('invalid', `$subsumes needs ${codeName} (or ${codingName})`, { code: 'TERMINOLOGY_CODE_MISSING', expression: [input.where(input.has(codingName) ? codingName : codeName)] });
  return { coding, where: input.where(input.has(codingName) ? codingName : codeName) };
}

/** GET|POST CodeSystem/$subsumes, CodeSystem/[id]/$subsumes */
export async function subsumesOperation(ctx: FhirContext, req: FhirRequest, id?: string): Promise<FhirResult> {
  authorize(ctx, { interaction: 'read', resourceType: 'CodeSystem', ...(id !== undefined ? { id } : {}) });
  const input = operationInput(req, '$subsumes', KINDS);
  const a = side(input, 'A');
  const b = side(input, 'B');
  return ctx.store.read(async (s) => {
    const t = terminologyFor(ctx, s, true);
    let cs: CodeSystemProvider;
    if (id !== undefined) cs = (await t.instance('CodeSystem', id)).value;
    else {
      const system = input.string('system') ?? a.coding.system ?? b.coding.system;
      if (!system) throw new FhirError('invalid', '$subsumes needs the system (system, or the system of the codings)', { code: 'TERMINOLOGY_SYSTEM_MISSING', expression: ['system'] });
      const version = input.string('version') ?? a.coding.version ?? b.coding.version;
      const found = await t.codeSystem(system, version);
      if (!found) throw new FhirError('not-found', `Code system ${system}${version ? `|${version}` : ''} is not known to this server`, { code: 'TERMINOLOGY_SYSTEM_UNKNOWN', expression: [input.has('system') ? input.where('system') : a.where] });
      cs = found.value;
    }
    for (const x of [a, b]) {
      if (x.coding.system !== undefined && x.coding.system !== cs.url) {
        throw new FhirError('invalid', `The coding's system ${x.coding.system} is not the code system ${cs.url}`, { code: 'TERMINOLOGY_SYSTEM_MISMATCH', expression: [x.where] });
      }
      if (!cs.lookup(x.coding.code!)) {
        throw new FhirError('unprocessable', `${JSON.stringify(x.coding.code!.slice(0, 100))} is not a code of ${cs.url}`, { code: 'TERMINOLOGY_CODE_UNKNOWN', issueType: 'not-found', expression: [x.where] });
      }
    }
    const codeA = cs.lookup(a.coding.code!)!.code;
    const codeB = cs.lookup(b.coding.code!)!.code;
    let outcome = 'not-subsumed';
    if (codeA === codeB) outcome = 'equivalent';
    else if (cs.isA(codeB, codeA)) outcome = 'subsumes';
    else if (cs.isA(codeA, codeB)) outcome = 'subsumed-by';
    return parametersResult([{ name: 'outcome', valueCode: outcome }]);
  });
}
