// Notification bundles (Backport IG, R4 "backport-subscription-notification-r4"): a `history` Bundle whose first
// entry is the SubscriptionStatus Parameters, then one entry per focus resource as the payload content allows
// (empty: none; id-only: fullUrl + request; full-resource: the resource too). Also the body of $status and $events.
import { randomUUID } from 'node:crypto';
import type { NotificationType, SubscriptionStatus } from '../store/subscriptions.js';
import type { PayloadContent } from './spec.js';

export type StatusType = NotificationType | 'query-status' | 'query-event';

export interface NotificationEvent {
  eventNumber: number;
  timestamp: Date;
  resourceType: string;
  id: string;
  versionId: number;
  /** The version's JSON (full-resource only; null when it may not or cannot be included). */
  json?: string | null;
  /** The write that made the version: decides entry.request. */
  deleted?: boolean;
}

export interface StatusInput {
  baseUrl: string;
  subscriptionId: string;
  status: SubscriptionStatus;
  type: StatusType;
  eventsSinceStart: number;
  /** Topic canonical (topic-based subscriptions). */
  topic?: string;
  content: PayloadContent;
  events: NotificationEvent[];
  error?: string | null;
}

type Json = Record<string, unknown>;

/** The SubscriptionStatus Parameters (backport-subscription-status-r4). */
export function statusParameters(n: StatusInput): Json {
  const parameter: Json[] = [{ name: 'subscription', valueReference: { reference: `${n.baseUrl}/Subscription/${n.subscriptionId}` } }];
  // SHOULD NOT for empty payloads, SHOULD for full-resource
  if (n.topic && n.content !== 'empty') parameter.push({ name: 'topic', valueCanonical: n.topic });
  parameter.push({ name: 'status', valueCode: n.status });
  parameter.push({ name: 'type', valueCode: n.type });
  parameter.push({ name: 'events-since-subscription-start', valueString: String(n.eventsSinceStart) });
  for (const e of n.events) {
    const part: Json[] = [
      { name: 'event-number', valueString: String(e.eventNumber) },
      { name: 'timestamp', valueInstant: e.timestamp.toISOString() },
    ];
    if (n.content !== 'empty') part.push({ name: 'focus', valueReference: { reference: `${n.baseUrl}/${e.resourceType}/${e.id}` } });
    parameter.push({ name: 'notification-event', part });
  }
  if (n.error) parameter.push({ name: 'error', valueCodeableConcept: { text: n.error } });
  return { resourceType: 'Parameters', id: randomUUID(), parameter };
}

/** The whole notification Bundle, serialised (resources are spliced in as stored, not re-serialised). */
export function notificationBundle(n: StatusInput, now: Date): string {
  const statusEntry = {
    fullUrl: `urn:uuid:${randomUUID()}`,
    resource: statusParameters(n),
    request: { method: 'GET', url: `${n.baseUrl}/Subscription/${n.subscriptionId}/$status` },
    response: { status: '200' },
  };
  const parts = [JSON.stringify(statusEntry)];
  if (n.content !== 'empty') {
    for (const e of n.events) {
      const fullUrl = `${n.baseUrl}/${e.resourceType}/${e.id}`;
      const request = e.deleted ? { method: 'DELETE', url: `${e.resourceType}/${e.id}` } : { method: e.versionId === 1 ? 'POST' : 'PUT', url: e.versionId === 1 ? e.resourceType : `${e.resourceType}/${e.id}` };
      const response = { status: e.deleted ? '204' : e.versionId === 1 ? '201' : '200', etag: `W/"${e.versionId}"` };
      const head = JSON.stringify({ fullUrl, request, response });
      const withResource = n.content === 'full-resource' && e.json ? `${head.slice(0, -1)},"resource":${e.json}}` : head;
      parts.push(withResource);
    }
  }
  return `{"resourceType":"Bundle","id":"${randomUUID()}","type":"history","timestamp":"${now.toISOString()}","entry":[${parts.join(',')}]}`;
}
