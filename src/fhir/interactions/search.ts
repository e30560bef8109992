// search-type (http.html#search, search.html): GET [type]?... and POST [type]/_search.
import type { Queryable } from '../../platform/db.js';
import { planSearch, type SearchPlan } from '../../search/plan.js';
import { searchCount, searchPage } from '../../store/search-sql.js';
import { RawJsonBuilder } from '../bundle-json.js';
import type { FhirContext, FhirResult } from '../context.js';
import { issue } from '../errors.js';
import { subsetResource } from '../subset.js';
import { onConnection } from './read.js';

function link(ctx: FhirContext, plan: SearchPlan, offset: number): string {
  const u = new URL(`${ctx.baseUrl}/${plan.resourceType}`);
  for (const [k, v] of plan.applied) u.searchParams.append(k, v);
  if (!u.searchParams.has('_count')) u.searchParams.set('_count', String(plan.count));
  if (offset > 0) u.searchParams.set('_offset', String(offset));
  return u.toString();
}

export async function searchType(ctx: FhirContext, type: string, params: [string, string][], strict: boolean, conn?: Queryable): Promise<FhirResult> {
  const plan = planSearch(ctx.deps.registry, type, { strict, params });
  const countOnly = plan.summary === 'count';
  const { page, total } = await onConnection(ctx, conn, async (q) => {
    const page = countOnly ? { rows: [], more: false } : await searchPage(q, ctx.tenant.id, ctx.baseUrl, plan);
    let total: number | undefined;
    if (countOnly || plan.total === 'accurate' || plan.total === 'estimate') total = await searchCount(q, ctx.tenant.id, ctx.baseUrl, plan);
    else if (!page.more) total = plan.offset + page.rows.length;
    return { page, total };
  });
  const b = new RawJsonBuilder();
  const links = [{ relation: 'self', url: link(ctx, plan, plan.offset) }];
  if (page.more) links.push({ relation: 'next', url: link(ctx, plan, plan.offset + plan.count) });
  if (plan.offset > 0) links.push({ relation: 'previous', url: link(ctx, plan, Math.max(0, plan.offset - plan.count)) });
  const subsetting = (plan.summary && plan.summary !== 'false') || plan.elements?.length;
  const entries: unknown[] = page.rows.map((r) => ({
    fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`,
    resource: subsetting ? subsetResource(JSON.parse(r.json!), plan.summary, plan.elements) : b.raw(r.json!),
    search: { mode: 'match' },
  }));
  if (plan.ignored.length) {
    entries.push({
      resource: {
        resourceType: 'OperationOutcome',
        issue: plan.ignored.map((p) => issue('warning', 'not-supported', `Search parameter '${p}' is not supported for ${type} and was ignored`)),
      },
      search: { mode: 'outcome' },
    });
  }
  const bundle = { resourceType: 'Bundle', type: 'searchset', ...(total !== undefined ? { total } : {}), link: links, ...(entries.length ? { entry: entries } : {}) };
  return { status: 200, body: b.stringify(bundle) };
}
