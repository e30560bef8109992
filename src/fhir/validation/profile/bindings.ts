// Bindings (terminologies.html#strength) a profile puts on code, Coding, CodeableConcept and Quantity elements: a
// required binding is an error when no code of the value is in the value set, an extensible one a warning. The
// terminology service answers membership; when it cannot tell (unknown value set or code system) nothing fails.
import type { TenantSession } from '../../../store/session.js';
import type { FhirContext } from '../../context.js';
import { valueSetCheck, type CodeCheck } from '../../terminology.js';
import { asArray, isObject } from './instance.js';

export interface CodeRef {
  system?: string;
  code: string;
  display?: string;
}

/** The codes a value carries, by its type; undefined for types a binding does not apply to. */
export function codesOf(value: unknown, type: string): CodeRef[] | undefined {
  switch (type) {
    case 'code':
    case 'string':
    case 'uri':
      return typeof value === 'string' ? [{ code: value }] : [];
    case 'Coding':
      return codingRefs([value]);
    case 'CodeableConcept':
      return isObject(value) ? codingRefs(asArray(value.coding)) : [];
    case 'Quantity':
    case 'Age':
    case 'Duration':
    case 'Distance':
    case 'Count':
    case 'SimpleQuantity':
      return isObject(value) && typeof value.code === 'string' ? [{ code: value.code, ...(typeof value.system === 'string' ? { system: value.system } : {}) }] : [];
    default:
      return undefined;
  }
}

function codingRefs(codings: unknown[]): CodeRef[] {
  const out: CodeRef[] = [];
  for (const c of codings) {
    if (!isObject(c) || typeof c.code !== 'string') continue;
    out.push({ code: c.code, ...(typeof c.system === 'string' ? { system: c.system } : {}), ...(typeof c.display === 'string' ? { display: c.display } : {}) });
  }
  return out;
}

/** Membership answers for one request (a transaction repeats the same codes across its entries). */
const answers = new WeakMap<FhirContext, Map<string, Promise<CodeCheck | undefined>>>();

export function checkCode(ctx: FhirContext, s: TenantSession, valueSet: string, ref: CodeRef): Promise<CodeCheck | undefined> {
  let cache = answers.get(ctx);
  if (!cache) answers.set(ctx, (cache = new Map()));
  const key = `${valueSet}\0${ref.system ?? ''}\0${ref.code}`;
  let answer = cache.get(key);
  if (!answer) {
    answer = valueSetCheck(ctx, s, valueSet, ref.system, ref.code, ref.display).catch(() => undefined);
    cache.set(key, answer);
  }
  return answer;
}

/** 'in' when some code is in the value set, 'out' when all answered and none is, 'unknown' otherwise. */
export async function membership(ctx: FhirContext, s: TenantSession, valueSet: string, codes: CodeRef[]): Promise<{ verdict: 'in' | 'out' | 'unknown'; message?: string }> {
  let unknown = false;
  let message: string | undefined;
  for (const ref of codes) {
    const r = await checkCode(ctx, s, valueSet, ref);
    if (r === undefined) unknown = true;
    else if (r.result) return { verdict: 'in' };
    else message ??= r.message;
  }
  return unknown || codes.length === 0 ? { verdict: 'unknown', ...(message ? { message } : {}) } : { verdict: 'out', ...(message ? { message } : {}) };
}
