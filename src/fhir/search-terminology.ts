// Token search modifiers backed by the terminology service (search.html#token): `:in` and `:not-in` (the codes of a
// value set, given by canonical URL or as ValueSet/[id]), `:below` and `:above` (system|code and the codes it subsumes,
// or that subsume it, in the code system's hierarchy). The plan stays pure (src/search/plan.ts): a first planning pass
// collects the values these modifiers carry, they are resolved here against the tenant's own CodeSystems and
// ValueSets first, then the shipped ones (src/fhir/terminology.ts), and the search is planned again with the codes.
// Searches without these modifiers are planned once and run no extra query.
import type { ValueSet } from '@medplum/fhirtypes';
import { FhirError } from '../core/errors.js';
import { codeSetKey, MAX_CODE_SET, planSearch, type CodeSetRequest, type PlanOptions, type SearchPlan, type TokenCode } from '../search/plan.js';
import type { TenantSession } from '../store/session.js';
import { splitCanonical } from '../terminology/expand.js';
import type { CodeSystemProvider } from '../terminology/model.js';
import type { FhirContext } from './context.js';
import { terminologyFor, type TenantTerminology } from './terminology.js';

/** Could any parameter carry a terminology modifier? (a token one, or uri :below/:above, which plan as before) */
const MAY_NEED_TERMINOLOGY = /:(in|not-in|below|above)$/;

/**
 * planSearch for parameters a client wrote: token :in / :not-in / :below / :above resolved first. `s`: the request's
 * session (none: a short read-only one is opened, only when such a modifier is present).
 */
export async function planUserSearch(ctx: FhirContext, s: TenantSession | undefined, types: string | string[], opts: PlanOptions): Promise<SearchPlan> {
  if (!opts.params.some(([name]) => MAY_NEED_TERMINOLOGY.test(name))) return planSearch(ctx.registry, types, opts);
  const requests: CodeSetRequest[] = [];
  const first = planSearch(ctx.registry, types, { ...opts, codeSets: new Map(), codeSetRequests: requests });
  if (!requests.length) return first;
  const codeSets = s ? await resolveCodeSets(ctx, s, requests) : await ctx.store.read((conn) => resolveCodeSets(ctx, conn, requests));
  return planSearch(ctx.registry, types, { ...opts, codeSets });
}

/** The codes each request stands for, by codeSetKey. */
export async function resolveCodeSets(ctx: FhirContext, s: TenantSession, requests: CodeSetRequest[]): Promise<Map<string, TokenCode[]>> {
  const t = terminologyFor(ctx, s);
  const out = new Map<string, TokenCode[]>();
  for (const r of requests) {
    const key = codeSetKey(r);
    if (out.has(key)) continue;
    out.set(key, r.kind === 'in' ? await valueSetCodes(ctx, s, t, r) : await hierarchyCodes(t, r));
  }
  return out;
}

function tooLarge(r: CodeSetRequest): FhirError {
  return new FhirError('invalid', `'${r.param}' stands for more than ${MAX_CODE_SET} codes; search with a smaller value set or a lower code`, {
    code: 'SEARCH_EXPANSION_TOO_LARGE',
    issueType: 'too-costly',
    expression: [r.param],
  });
}

/** :in / :not-in: every code of the value set's expansion (inactive ones too: a stored code is what it is). */
async function valueSetCodes(ctx: FhirContext, s: TenantSession, t: TenantTerminology, r: CodeSetRequest): Promise<TokenCode[]> {
  const found = await findValueSet(ctx, s, t, r.value);
  if (!found) {
    throw new FhirError('invalid', `'${r.param}': the value set ${r.value} is not known to this server`, { code: 'SEARCH_VALUESET_UNKNOWN', issueType: 'not-found', expression: [r.param] });
  }
  let entries;
  try {
    entries = (await t.expansion(found.value, found.key)).entries;
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    if (err.code === 'EXPAND_TOO_COSTLY') throw tooLarge(r);
    throw new FhirError('invalid', `'${r.param}': the value set ${r.value} cannot be expanded: ${err.message}`, {
      code: 'SEARCH_VALUESET_UNEXPANDABLE',
      issueType: 'processing',
      expression: [r.param],
      cause: err,
    });
  }
  if (entries.length > MAX_CODE_SET) throw tooLarge(r);
  return entries.map((e) => ({ system: e.system, code: e.code }));
}

const LOCAL_VALUE_SET = /^ValueSet\/([A-Za-z0-9\-.]{1,64})$/;

/** A value set by canonical (the tenant's first, then shipped) or by id (the tenant's, as ValueSet/[id] or a URL on its base). */
async function findValueSet(ctx: FhirContext, s: TenantSession, t: TenantTerminology, value: string): Promise<{ value: ValueSet; key: string } | undefined> {
  const local = LOCAL_VALUE_SET.exec(value.startsWith(`${ctx.baseUrl}/`) ? value.slice(ctx.baseUrl.length + 1) : value);
  if (local) {
    const row = await s.readCurrent('ValueSet', local[1]);
    if (!row || row.deleted || !row.json) return undefined;
    return { value: JSON.parse(row.json) as ValueSet, key: `T:${s.tenantId}:ValueSet/${row.id}/${row.versionId}` };
  }
  const { url, version } = splitCanonical(value);
  return t.valueSet(url, version);
}

/**
 * :below: the code and every code below it; :above: the code and every code above it. A code system this server
 * does not know, or one without a hierarchy (UCUM, the LOINC subset), gives the code itself.
 */
async function hierarchyCodes(t: TenantTerminology, r: CodeSetRequest): Promise<TokenCode[]> {
  const system = r.system!;
  const code = r.code!;
  const provider = (await t.codeSystem(system))?.value;
  const codes = new Set([code, ...(provider ? (r.kind === 'below' ? provider.descendantsOrSelf(code) : ancestorsOrSelf(provider, code, r)) : [])]);
  if (codes.size > MAX_CODE_SET) throw tooLarge(r);
  return [...codes].map((c) => ({ system, code: c }));
}

function ancestorsOrSelf(provider: CodeSystemProvider, code: string, r: CodeSetRequest): string[] {
  const start = provider.lookup(code);
  if (!start) return [];
  const seen = new Set<string>([start.code]);
  const queue = [start.code];
  while (queue.length) {
    for (const parent of provider.lookup(queue.shift()!)?.parents ?? []) {
      if (seen.has(parent)) continue;
      seen.add(parent);
      if (seen.size > MAX_CODE_SET) throw tooLarge(r);
      queue.push(parent);
    }
  }
  return [...seen];
}
