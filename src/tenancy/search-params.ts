// Per-tenant search parameters: the official R4 definitions plus the tenant's own SearchParameter resources
// (search.html#custom). Cached per tenant for a few seconds; writes of SearchParameter invalidate the cache.
import type { TenantSearchParameters } from '../core/deps.js';
import { customIssues, type SearchParamRegistry } from '../core/search-registry.js';
import type { Db } from '../platform/db.js';
import { loadSearchParameters } from '../store/search-params.js';

export class TenantSearchParams implements TenantSearchParameters {
  private readonly cache = new Map<string, { registry: SearchParamRegistry; expires: number }>();

  constructor(
    readonly base: SearchParamRegistry,
    private readonly db: Db,
    private readonly clock: () => Date,
    private readonly ttlMs = 10_000,
  ) {}

  /** The registry for a tenant. Call outside any transaction (it may query the database). */
  async forTenant(tenantId: string): Promise<SearchParamRegistry> {
    const hit = this.cache.get(tenantId);
    const now = this.clock().getTime();
    if (hit && hit.expires > now) return hit.registry;
    const custom = (await loadSearchParameters(this.db, tenantId)).filter((sp) => sp.status !== 'retired' && customIssues(this.base, sp).length === 0);
    const registry = custom.length ? this.base.withCustom(custom) : this.base;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenantId, { registry, expires: now + this.ttlMs });
    return registry;
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }
}

