// Host-based tenants (issue 11): with TENANT_HOSTS_ENABLED, a request whose host name is a tenant's own `host`
// (lakeside.example.org) is served at /fhir as that tenant's base, `<PUBLIC_BASE_URL's scheme>://<host>/fhir`, beside
// /fhir/{tenant} on the main host. Which host names are tenants' is one snapshot of every (host, tenant) pair, read
// when it is older than the tenant cache's TTL and dropped with that cache (tenant-cache.ts): a request asks a Map,
// and a Host header no tenant has (anyone can send one) never reaches the database.
import type { TenantId } from '../core/tenant.js';
import type { Db } from '../platform/db.js';
import { tenantHosts } from '../store/tenants.js';

/** The FHIR base of a tenant host: PUBLIC_BASE_URL's scheme, the host name and /fhir (no port: the proxy's default one). */
export function hostBaseUrl(publicBaseUrl: string, host: string): string {
  return `${new URL(publicBaseUrl).protocol}//${host}/fhir`;
}

/** The host name of `url` when it is a tenant-host FHIR base exactly as hostBaseUrl writes it, else undefined. */
export function hostOfBaseUrl(publicBaseUrl: string, url: string): string | undefined {
  const host = URL.parse(url)?.hostname;
  return host && url === hostBaseUrl(publicBaseUrl, host) ? host : undefined;
}

/**
 * A request's host name as tenant hosts are stored (lowercase, no port, no trailing dot), or undefined for the main
 * host (PUBLIC_BASE_URL's: always path-based) and for none. `hostname` is Express's req.hostname: the Host header, or
 * X-Forwarded-Host from a trusted proxy (TRUSTED_PROXIES).
 */
export function requestHost(hostname: string | undefined, mainHost: string): string | undefined {
  if (!hostname) return undefined;
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === mainHost ? undefined : host;
}

/** The host names of tenants, as one snapshot refreshed every `ttlMs` (a lookup never waits while it is fresh). */
export class TenantHosts {
  private snapshot: { byHost: Map<string, TenantId>; expires: number } | undefined;
  private loading: Promise<Map<string, TenantId>> | undefined;
  /** Bumped by invalidate(): a load that started before a change does not become the snapshot. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: () => Date,
    private readonly ttlMs: number,
  ) {}

  /** The tenant whose host name `host` is (as requestHost gives it), or undefined. */
  async tenantOf(host: string): Promise<TenantId | undefined> {
    const s = this.snapshot;
    if (s && s.expires > this.clock().getTime()) return s.byHost.get(host);
    return (await this.load()).get(host);
  }

  /** A tenant's host changed: the next lookup reads every host again. */
  invalidate(): void {
    this.generation++;
    this.snapshot = undefined;
    this.loading = undefined;
  }

  /** One read at a time: requests that find the snapshot stale together share it. */
  private load(): Promise<Map<string, TenantId>> {
    if (this.loading) return this.loading;
    const generation = this.generation;
    const expires = this.clock().getTime() + this.ttlMs;
    const loading = tenantHosts(this.db)
      .then((byHost) => {
        if (generation === this.generation) this.snapshot = { byHost, expires };
        return byHost;
      })
      .finally(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    this.loading = loading;
    return loading;
  }
}
