// Tenant resolution: /fhir/{tenant} and token claims name a tenant by slug; this cache answers which tenant that
// is (its status, plan, settings) without a database round trip on every request.
//
// How a change reaches the caches (issue 11, a suspension "takes effect at once"): the process that changes a tenant
// (the admin API, the console, the CLI beside a server on the embedded database) calls tenantChanged(), which empties
// every cache of that process reading the same database, so its next request reads the new row. Other processes
// (more API processes on one PostgreSQL, a CLI beside them) hold an entry at most TENANT_CACHE_TTL_MS: a change is
// seen everywhere within 5 seconds. A TTL was chosen over LISTEN/NOTIFY because it needs no connection of its own
// per cache, cannot miss a notification while a listener reconnects, and the bound it gives is short and certain.
// The host names of host-based tenants (tenant-hosts.ts) follow the same TTL and are dropped with the cache.
import type { Tenant } from '../core/tenant.js';
import type { Db } from '../platform/db.js';
import { findTenant } from '../store/tenants.js';
import { TenantHosts } from './tenant-hosts.js';

/** How long another process may serve a tenant's previous state (status, plan, settings). */
export const TENANT_CACHE_TTL_MS = 5000;

/**
 * The caches of this process per database: tenantChanged() reaches each of them. Keyed weakly by the Db object, so
 * a cache lives as long as its database handle does and servers built on other handles (tests) are independent.
 */
const cachesOf = new WeakMap<Db, Set<WeakRef<TenantCache>>>();

/** A small in-process cache: tenant lookups happen on every request. */
export class TenantCache {
  private readonly entries = new Map<string, { tenant: Tenant | undefined; expires: number }>();
  /** Bumped by invalidate(): a lookup that started before a change does not cache what it read. */
  private generation = 0;
  /** Which tenant a host name is (host-based tenants): refreshed with the same TTL, emptied by invalidate(). */
  readonly hosts: TenantHosts;
  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
    private readonly ttlMs = TENANT_CACHE_TTL_MS,
  ) {
    this.hosts = new TenantHosts(db, clock, ttlMs);
    let caches = cachesOf.get(db);
    if (!caches) cachesOf.set(db, (caches = new Set()));
    for (const ref of caches) if (!ref.deref()) caches.delete(ref);
    caches.add(new WeakRef(this));
  }

  async get(slug: string): Promise<Tenant | undefined> {
    const hit = this.entries.get(slug);
    const now = this.clock().getTime();
    if (hit && hit.expires > now) return hit.tenant;
    const generation = this.generation;
    const tenant = await findTenant(this.db, slug);
    if (generation !== this.generation) return tenant;
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(slug, { tenant, expires: now + (tenant ? this.ttlMs : 1000) });
    return tenant;
  }

  invalidate(slug?: string): void {
    this.generation++;
    this.hosts.invalidate();
    if (slug) this.entries.delete(slug);
    else this.entries.clear();
  }
}

/** A tenant's row changed (status, plan, settings, host): every cache of this process on `db` forgets it. */
export function tenantChanged(db: Db, slug: string): void {
  for (const ref of cachesOf.get(db) ?? []) ref.deref()?.invalidate(slug);
}
