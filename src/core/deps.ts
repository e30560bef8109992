// Everything the composition root (src/compose.ts) builds once and passes down: no module-level singletons. The
// services are interfaces here, implemented by the layers above (auth's key ring, tenancy's search parameters, the
// job runner), so every layer can take Deps without importing the layers that implement it.
import type { KeyObject } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import type { SearchParamRegistry } from './search-registry.js';

/** The authorization server's signing keys as the rest of the server uses them (src/auth/keys.ts KeyRing). */
export interface SigningKeys {
  /** Changes whenever the set of live keys changes. */
  readonly fingerprint: string;
  /** Re-reads the keys (rotation by another process); true when they changed. */
  refresh(): Promise<boolean>;
  /** Private JWKs for the authorization server: the active signer first. */
  signing(): Record<string, unknown>[];
  jwks(): { keys: Record<string, unknown>[] };
  activeKid(): string | undefined;
  activePrivateJwk(): Record<string, unknown> | undefined;
  /** The verification key for `kid` (undefined when unknown or retired). */
  publicKey(kid: string | undefined): Promise<KeyObject | undefined>;
}

/** Per-tenant search parameters: the official ones plus the tenant's own SearchParameter resources (src/tenancy). */
export interface TenantSearchParameters {
  /** The official R4 parameters (shared by every tenant). */
  readonly base: SearchParamRegistry;
  /** The tenant's registry. Call outside any transaction: it may query the database. */
  forTenant(tenantId: string): Promise<SearchParamRegistry>;
  /** A SearchParameter of the tenant changed. */
  invalidate(tenantId: string): void;
}

/** Background work of this process (src/jobs/runner.ts). */
export interface BackgroundJobs {
  /** Starts `work` under `key` unless it already runs here; failures are logged, never thrown. */
  start(key: string, work: (signal: AbortSignal) => Promise<void>): void;
  has(key: string): boolean;
  /** Waits for a job started in this process. */
  wait(key: string): Promise<void>;
  /** Signals every job to stop and waits (briefly) for them. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface Deps {
  config: Config;
  db: Db;
  log: Logger;
  /** The official R4 search parameters. */
  registry: SearchParamRegistry;
  /** Per-tenant registries (official + the tenant's SearchParameter resources). */
  searchParams: TenantSearchParameters;
  /** The one clock: every timestamp the server writes or compares in JavaScript comes from here. */
  clock: () => Date;
  newId: () => string;
  /** The authorization server's signing keys and cookie secrets (loaded from the database at start). */
  auth: { keys: SigningKeys; cookieKeys: string[] };
  /** Background jobs of this process. */
  jobs: BackgroundJobs;
}
