// Per-tenant search parameters: the official R4 definitions plus the tenant's own SearchParameter resources
// (search.html#custom). Cached per tenant for a few seconds; writes of SearchParameter invalidate the cache.
import type { SearchParameter } from '@medplum/fhirtypes';
import { parseFhirPath } from '@medplum/core';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Db } from '../platform/db.js';
import { issue } from '../fhir/errors.js';
import { SearchParamRegistry } from './registry.js';

const TYPES = new Set(['number', 'date', 'string', 'token', 'reference', 'quantity', 'uri']);

export class TenantSearchParams {
  private readonly cache = new Map<string, { registry: SearchParamRegistry; expires: number }>();

  constructor(
    readonly base: SearchParamRegistry,
    private readonly db: Db,
    private readonly ttlMs = 10_000,
  ) {}

  /** The registry for a tenant. Call outside any transaction (it may query the database). */
  async forTenant(tenantId: string): Promise<SearchParamRegistry> {
    const hit = this.cache.get(tenantId);
    if (hit && hit.expires > Date.now()) return hit.registry;
    const r = await this.db.withTenant(tenantId, (q) =>
      q.query<{ content: SearchParameter }>(
        `SELECT content FROM resource WHERE tenant_id = $1 AND resource_type = 'SearchParameter' AND NOT deleted`,
        [tenantId],
      ),
    );
    const custom = r.rows.map((x) => x.content).filter((sp) => sp.status !== 'retired' && customIssues(this.base, sp).length === 0);
    const registry = custom.length ? this.base.withCustom(custom) : this.base;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenantId, { registry, expires: Date.now() + this.ttlMs });
    return registry;
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }
}

/** What makes a SearchParameter resource unusable as a tenant's custom parameter. */
export function customIssues(base: SearchParamRegistry, sp: SearchParameter): OperationOutcomeIssue[] {
  const out: OperationOutcomeIssue[] = [];
  const err = (msg: string, path: string) => out.push(issue('error', 'business-rule', msg, { code: 'SEARCH_PARAM_DEFINITION_INVALID', expression: [`SearchParameter.${path}`] }));
  if (!sp.code || !/^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/.test(sp.code)) err('code must be 1-64 letters, digits, - or _, starting with a letter', 'code');
  if (!sp.type || !TYPES.has(sp.type)) err(`type must be one of ${[...TYPES].join(', ')} for a custom parameter`, 'type');
  if (!sp.expression) err('a custom parameter needs a FHIRPath expression', 'expression');
  else {
    try {
      parseFhirPath(sp.expression);
    } catch (e) {
      err(`expression does not parse: ${(e as Error).message.slice(0, 200)}`, 'expression');
    }
  }
  for (const b of (sp.base ?? []) as string[]) {
    if (!base.paramsFor(b).size) err(`unknown base resource type '${b}'`, 'base');
    else if (sp.code && base.get(b, sp.code) && base.get(b, sp.code)!.url !== sp.url) {
      err(`'${sp.code}' is already a standard search parameter of ${b}`, 'code');
    }
  }
  if (!sp.base?.length) err('base names the resource types the parameter applies to', 'base');
  return out;
}
