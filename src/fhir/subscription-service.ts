// What the FHIR layer asks of the subscription machinery (implemented in src/subscriptions/service.ts, which sits
// above auth): a Subscription is checked and its status settled before it is stored, its state is recorded in the
// write's own transaction, and the Subscription operations ($status, $events, $get-ws-binding-token) answer here.
import type { TenantSession } from '../store/session.js';
import type { FhirContext } from './context.js';
import type { FhirRequest, FhirResult } from './request.js';

/** Who is asking, as a verified token says (the owner recorded with a Subscription). */
export interface Caller {
  clientId: string;
  /** The token's subject (a user account id, or the client id). */
  sub: string;
  role: string;
  scope: string;
  patient?: string;
  fhirUser?: string;
}

export interface SubscriptionService {
  /**
   * A Subscription version about to be stored: throws a 400 naming what the server cannot honour; settles `status`
   * (and `error`) on the resource as the server will run it (requested until the handshake succeeds, ...).
   */
  prepare(ctx: FhirContext, s: TenantSession, resource: Record<string, unknown>): Promise<void>;
  /**
   * Inside the write's transaction: records the state of a written Subscription (json null: deleted). Returns the
   * signing secret of a subscription created by this write (shown once), else undefined.
   */
  record(ctx: FhirContext, s: TenantSession, id: string, json: string | null): Promise<string | undefined>;
  /** Subscription/$status, Subscription/[id]/$status, $events, $get-ws-binding-token. */
  operation(ctx: FhirContext, req: FhirRequest, name: string, id: string | undefined): Promise<FhirResult>;
  /** Writes of the tenant committed: wake this process's dispatcher (others hear NOTIFY). */
  committed(tenantId: string): void;
}
