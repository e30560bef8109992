// The store as the layers above use it: bound to one tenant once, for one unit of work on one connection. Every call
// of a TenantSession runs on that connection, for that tenant: nothing above passes a tenant id again (issue 9).
import type { CancelSignal } from '../platform/cancel.js';
import type { Db, DbCallOptions, Queryable } from '../platform/db.js';
import type { IncludeSpec, Restriction, SearchPlan } from '../search/plan.js';
import { advisoryXactLock } from './locks.js';
import { catalogEntry, existing, readCurrent, readHistory, readVersion, writeVersions, type HistoryQuery, type HistoryRow, type ResourceWrite, type StoredVersion, type WriteAudit } from './resources.js';
import { loadIncludes, permittedIds, searchCount, searchEstimate, searchIds, searchPage, type SearchPage } from './search-sql.js';

/** One tenant's data on one connection (inside a transaction, or autocommit). */
export class TenantSession {
  constructor(
    /** The connection (for store modules only). */
    readonly q: Queryable,
    readonly tenantId: string,
    /** The tenant's FHIR base: references spelled as absolute URLs on it are the tenant's own. */
    readonly baseUrl: string,
    /** Who writes: the audit record of each version committed names them (absent: the server itself). */
    readonly audit?: WriteAudit | null,
  ) {}

  /**
   * The current version (or deletion marker) of one resource: the tenant's own, or for a catalog type it does not
   * hold, the platform catalog's (docs/catalog.md). `lock` (a write's target) holds the tenant's own row until the
   * transaction ends, and reads nothing else.
   */
  readCurrent(type: string, id: string, lock = false): Promise<StoredVersion | undefined> {
    return readCurrent(this.q, this.tenantId, type, id, lock);
  }

  /** The platform catalog's current row at type/id, when this tenant reads the catalog for `type`. */
  catalogEntry(type: string, id: string): Promise<StoredVersion | undefined> {
    return catalogEntry(this.q, this.tenantId, type, id);
  }

  /** Which of the "Type/id" references exist (and are not deleted). */
  existing(refs: { type: string; id: string }[]): Promise<Set<string>> {
    return existing(this.q, this.tenantId, refs);
  }

  readVersion(type: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
    return readVersion(this.q, this.tenantId, type, id, versionId);
  }

  readHistory(h: HistoryQuery): Promise<HistoryRow[]> {
    return readHistory(this.q, this.tenantId, h);
  }

  searchPage(plan: SearchPlan, backwards = false): Promise<SearchPage> {
    return searchPage(this.q, this.tenantId, this.baseUrl, plan, backwards);
  }

  searchCount(plan: SearchPlan): Promise<number> {
    return searchCount(this.q, this.tenantId, this.baseUrl, plan);
  }

  searchEstimate(plan: SearchPlan): Promise<number> {
    return searchEstimate(this.q, this.tenantId, this.baseUrl, plan);
  }

  searchIds(plan: SearchPlan, limit: number): Promise<string[]> {
    return searchIds(this.q, this.tenantId, this.baseUrl, plan, limit);
  }

  /** Which of `ids` (current versions of `type`) lie inside an authorization restriction. */
  permittedIds(type: string, ids: string[], restriction: Restriction): Promise<Set<string>> {
    return permittedIds(this.q, this.tenantId, this.baseUrl, type, ids, restriction);
  }

  loadIncludes(specs: IncludeSpec[], page: StoredVersion[], blocked?: string[]): Promise<StoredVersion[]> {
    return loadIncludes(this.q, this.tenantId, specs, page, blocked);
  }

  /** A transaction-scoped advisory lock on `key` (within this tenant), held until COMMIT or ROLLBACK. */
  lock(key: string): Promise<void> {
    return advisoryXactLock(this.q, `${this.tenantId}\0${key}`);
  }

  /**
   * The one place where writes land, inside the caller's transaction: current rows, history rows and search index
   * rows in one statement, with the change event (outbox) and the audit record of each version, so that a
   * rolled-back write leaves neither.
   */
  async commit(writes: ResourceWrite[]): Promise<void> {
    await writeVersions(this.q, this.tenantId, writes, this.audit === undefined ? {} : { audit: this.audit });
  }
}

/**
 * One tenant's store for one request (or one piece of the server's own work): units of work, each on its own
 * connection bound to the tenant. `signal` (the request's: its client went away, the server cuts it at shutdown)
 * cancels whatever statement runs when it fires, and keeps the transaction from committing.
 */
export class TenantStore {
  private readonly opts: DbCallOptions;

  constructor(
    private readonly db: Db,
    readonly tenantId: string,
    readonly baseUrl: string,
    signal?: CancelSignal,
    /** Who acts through this store (audit records of its writes); absent: the server itself. */
    readonly audit?: WriteAudit | null,
  ) {
    this.opts = signal ? { signal } : {};
  }

  /** Autocommit statements on one connection (reads). */
  read<T>(fn: (s: TenantSession) => Promise<T>): Promise<T> {
    return this.db.withTenant(this.tenantId, (q) => fn(new TenantSession(q, this.tenantId, this.baseUrl, this.audit)), this.opts);
  }

  /** ONE transaction (retried on serialization failures and deadlocks, so `fn` must be repeatable). */
  tx<T>(fn: (s: TenantSession) => Promise<T>): Promise<T> {
    return this.db.tx(this.tenantId, (q) => fn(new TenantSession(q, this.tenantId, this.baseUrl, this.audit)), this.opts);
  }
}
