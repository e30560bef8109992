// CORS for browser apps (SMART app-launch.html#cors): the FHIR API answers the registered origins of the tenant's
// clients (an origin is registered by a client's redirect URIs); discovery endpoints answer any origin.
import type { Db } from '../platform/db.js';
import { findClient, listClients } from '../store/auth-payloads.js';

function originsOf(metadata: Record<string, unknown>): string[] {
  const uris = Array.isArray(metadata.redirect_uris) ? (metadata.redirect_uris as unknown[]) : [];
  const out = new Set<string>();
  for (const u of uris) {
    const o = typeof u === 'string' ? URL.parse(u)?.origin : undefined;
    if (o && o !== 'null') out.add(o);
  }
  return [...out];
}

export class OriginRegistry {
  private readonly tenants = new Map<string, { origins: Set<string>; expires: number }>();
  private readonly clients = new Map<string, { origins: Set<string>; expires: number }>();

  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
    private readonly ttlMs = 10_000,
  ) {}

  /** Origins registered by any client of the tenant (preflight requests carry no token). */
  async forTenant(tenantId: string): Promise<Set<string>> {
    const hit = this.tenants.get(tenantId);
    if (hit && hit.expires > this.clock().getTime()) return hit.origins;
    const origins = new Set((await listClients(this.db, tenantId)).flatMap((c) => originsOf(c.metadata)));
    if (this.tenants.size > 10_000) this.tenants.clear();
    this.tenants.set(tenantId, { origins, expires: this.clock().getTime() + this.ttlMs });
    return origins;
  }

  /** Origins registered by one client (an actual request: the token names its client). */
  async forClient(clientId: string): Promise<Set<string>> {
    const hit = this.clients.get(clientId);
    if (hit && hit.expires > this.clock().getTime()) return hit.origins;
    const c = await findClient(this.db, clientId);
    const origins = new Set(c ? originsOf(c.metadata) : []);
    if (this.clients.size > 10_000) this.clients.clear();
    this.clients.set(clientId, { origins, expires: this.clock().getTime() + this.ttlMs });
    return origins;
  }

  invalidate(): void {
    this.tenants.clear();
    this.clients.clear();
  }
}
