// Tenant resolution: /fhir/{tenant} and token claims name a tenant by slug; this cache answers which tenant that
// is (and whether it is active) without a database round trip on every request.
import type { Tenant } from '../core/tenant.js';
import type { Db } from '../platform/db.js';
import { findTenant } from '../store/tenants.js';

/** A small in-process cache: tenant lookups happen on every request. */
export class TenantCache {
  private readonly entries = new Map<string, { tenant: Tenant | undefined; expires: number }>();
  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
    private readonly ttlMs = 5000,
  ) {}

  async get(slug: string): Promise<Tenant | undefined> {
    const hit = this.entries.get(slug);
    const now = this.clock().getTime();
    if (hit && hit.expires > now) return hit.tenant;
    const tenant = await findTenant(this.db, slug);
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(slug, { tenant, expires: now + (tenant ? this.ttlMs : 1000) });
    return tenant;
  }

  invalidate(slug?: string): void {
    if (slug) this.entries.delete(slug);
    else this.entries.clear();
  }
}
