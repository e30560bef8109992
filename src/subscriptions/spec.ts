// A Subscription resource read into what the server acts on (its "spec"): R4 query-based (criteria = a search on
// one type) or Backport topic-based (criteria = a built-in topic's canonical, filters in the backport-filter-criteria
// extension), the channel, the payload content, heartbeat, timeout and maxCount. Everything the server cannot honour
// is refused at create/update with a 400 naming the element (SUBSCRIPTIONS.md §2: unsupported topics, filters,
// channels, payloads and FHIR versions SHALL be rejected).
import { FhirError } from '../core/errors.js';
import { isResourceType } from '../core/definitions.js';
import type { SearchParamRegistry } from '../core/search-registry.js';
import { planSearch } from '../search/plan.js';
import { findTopic, TOPICS, topicUrl, type Topic } from '../fhir/subscription-topics.js';

export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const BACKPORT_PROFILE = `${BACKPORT}/backport-subscription`;
const EXT = {
  filter: `${BACKPORT}/backport-filter-criteria`,
  content: `${BACKPORT}/backport-payload-content`,
  heartbeat: `${BACKPORT}/backport-heartbeat-period`,
  timeout: `${BACKPORT}/backport-timeout`,
  maxCount: `${BACKPORT}/backport-max-count`,
  channelType: `${BACKPORT}/backport-channel-type`,
};

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type ChannelType = 'rest-hook' | 'websocket';

export interface SubscriptionSpec {
  kind: 'topic' | 'criteria';
  /** The topic's name (topic-based). */
  topic?: string;
  /** The type whose changes it is about. */
  resourceType: string;
  /** Search parameters a changed resource must match: the criteria's, or the topic filters. */
  params: [string, string][];
  channel: ChannelType;
  endpoint?: string;
  /** MIME type of rest-hook bodies (application/fhir+json). */
  contentType: string;
  content: PayloadContent;
  /** `channel.header` lines, as [name, value]. */
  headers: [string, string][];
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
  maxCount?: number;
  /** ISO instant after which the subscription is turned off. */
  end?: string;
}

export interface SpecOptions {
  publicBaseUrl: string;
  registry: SearchParamRegistry;
  maxSearchParams: number;
  now: Date;
  /** http:// endpoints on loopback are accepted (SUBSCRIPTIONS_ALLOW_LOOPBACK). */
  allowLoopbackHttp: boolean;
}

type Json = Record<string, unknown>;

function bad(message: string, code: string, expression: string): FhirError {
  return new FhirError('invalid', message, { code, expression: [expression] });
}

function extensions(el: unknown, url: string): Json[] {
  const list = (el as { extension?: unknown } | undefined)?.extension;
  return Array.isArray(list) ? (list as Json[]).filter((e) => e?.url === url) : [];
}

function oneInt(el: unknown, url: string, what: string, where: string, min: number, max: number): number | undefined {
  const ext = extensions(el, url);
  if (ext.length === 0) return undefined;
  if (ext.length > 1) throw bad(`${what} appears more than once`, 'SUBSCRIPTION_EXTENSION_REPEATED', where);
  const v = ext[0].valueUnsignedInt ?? ext[0].valuePositiveInt ?? ext[0].valueInteger;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`${what} must be a whole number of ${min}..${max}`, 'SUBSCRIPTION_CHANNEL_INVALID', where);
  }
  return v;
}

/** Search parameters of a query string, checked as a search on `type` would check them (unknown -> 400). */
function checkedParams(type: string, params: [string, string][], o: SpecOptions, where: string): [string, string][] {
  for (const [name] of params) {
    const base = name.split(':')[0];
    if (base.startsWith('_') && base !== '_id' && base !== '_lastUpdated' && base !== '_tag' && base !== '_profile' && base !== '_security' && base !== '_has') {
      throw bad(`Subscription criteria cannot use ${base} (only search criteria, no result parameters)`, 'SUBSCRIPTION_CRITERIA_INVALID', where);
    }
  }
  try {
    planSearch(o.registry, type, { strict: true, params, maxParams: o.maxSearchParams, now: o.now });
  } catch (err) {
    if (err instanceof FhirError) throw bad(`Subscription criteria: ${err.message}`, 'SUBSCRIPTION_CRITERIA_INVALID', where);
    throw err;
  }
  return params;
}

function queryParams(query: string): [string, string][] {
  return [...new URLSearchParams(query)] as [string, string][];
}

/** A backport filter: `name=value`, `name:modifier=value`, `Type.name=value` or `Type?name=value`. */
function filterParam(topic: Topic, raw: string, where: string): [string, string] {
  let text = raw.trim();
  const q = /^([A-Z][A-Za-z]+)\?(.*)$/.exec(text);
  const dot = /^([A-Z][A-Za-z]+)\.(.*)$/.exec(text);
  const prefix = q ?? dot;
  if (prefix) {
    if (prefix[1] !== topic.resourceType) throw bad(`Filter '${raw}' is about ${prefix[1]}, but topic ${topic.name} is about ${topic.resourceType}`, 'SUBSCRIPTION_FILTER_UNSUPPORTED', where);
    text = prefix[2];
  }
  const pairs = queryParams(text);
  if (pairs.length !== 1 || !pairs[0][0] || pairs[0][1] === '') throw bad(`Filter '${raw}' is not 'name=value'`, 'SUBSCRIPTION_FILTER_INVALID', where);
  const name = pairs[0][0].split(':')[0];
  if (!topic.filters.includes(name)) {
    throw bad(`Topic ${topic.name} cannot be filtered by '${name}' (it can by: ${topic.filters.join(', ')})`, 'SUBSCRIPTION_FILTER_UNSUPPORTED', where);
  }
  return pairs[0];
}

function contentType(payload: unknown, where: string): string {
  if (typeof payload !== 'string') throw bad('channel.payload must name a MIME type', 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', where);
  const [mime, ...params] = payload.split(';').map((x) => x.trim());
  if (mime !== 'application/fhir+json' && mime !== 'application/json') {
    throw bad(`Payload type '${payload}' is not supported (application/fhir+json is)`, 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', where);
  }
  for (const p of params) {
    const [k, v] = p.split('=').map((x) => x.trim());
    if (k === 'fhirVersion' && v !== '4.0' && v !== '4.0.1') {
      throw bad(`Notifications in FHIR version ${v} are not supported (4.0 is)`, 'SUBSCRIPTION_FHIR_VERSION_UNSUPPORTED', where);
    }
  }
  // Backport channels.html: the Content-Type of a notification SHALL be channel.payload as written
  return payload.trim();
}

const FORBIDDEN_HEADERS = /^(host|content-length|content-type|transfer-encoding|connection|upgrade|te|trailer|keep-alive|proxy-.*|x-tenfhir-.*)$/i;

function headerLines(channel: Json): [string, string][] {
  const list = channel.header;
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw bad('channel.header must be a list of "Name: value" strings', 'SUBSCRIPTION_HEADER_INVALID', 'Subscription.channel.header');
  return list.map((h, i) => {
    // visible ASCII, space and tab only: anything else cannot travel in an HTTP header
    const m = typeof h === 'string' ? /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e]*)$/.exec(h) : null;
    if (!m) throw bad(`channel.header[${i}] is not "Name: value"`, 'SUBSCRIPTION_HEADER_INVALID', `Subscription.channel.header[${i}]`);
    if (FORBIDDEN_HEADERS.test(m[1])) throw bad(`channel.header[${i}] may not set ${m[1]}`, 'SUBSCRIPTION_HEADER_INVALID', `Subscription.channel.header[${i}]`);
    return [m[1], m[2]] as [string, string];
  });
}

/** The endpoint's form (https, or http on loopback when allowed). Where it resolves to is checked by checkEndpoint. */
function endpointUrl(raw: unknown, o: SpecOptions): string {
  const where = 'Subscription.channel.endpoint';
  if (typeof raw !== 'string' || !raw) throw bad('A rest-hook subscription needs channel.endpoint (an https URL)', 'SUBSCRIPTION_ENDPOINT_MISSING', where);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad(`channel.endpoint '${raw.slice(0, 200)}' is not a URL`, 'SUBSCRIPTION_ENDPOINT_INVALID', where);
  }
  if (u.username || u.password) throw bad('channel.endpoint may not carry credentials (use channel.header)', 'SUBSCRIPTION_ENDPOINT_INVALID', where);
  if (u.protocol === 'https:') return u.href;
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\./.test(u.hostname);
  if (u.protocol === 'http:' && loopback && o.allowLoopbackHttp) return u.href;
  throw bad(`channel.endpoint must be an https URL (got ${u.protocol.replace(':', '')})`, 'SUBSCRIPTION_ENDPOINT_INSECURE', where);
}

/** Reads and checks a Subscription. Throws a 400 FhirError naming the first problem and its element. */
export function readSpec(resource: Json, o: SpecOptions): SubscriptionSpec {
  const criteria = resource.criteria;
  if (typeof criteria !== 'string' || !criteria.trim()) throw bad('Subscription.criteria is required', 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria');
  const channel = (resource.channel ?? {}) as Json;
  const profiles = ((resource.meta as Json | undefined)?.profile as string[] | undefined) ?? [];
  const isTopic = profiles.includes(BACKPORT_PROFILE) || /^https?:\/\//.test(criteria);

  let spec: Pick<SubscriptionSpec, 'kind' | 'topic' | 'resourceType' | 'params'>;
  if (isTopic) {
    const topic = findTopic(o.publicBaseUrl, criteria);
    if (!topic) {
      throw bad(`Unknown subscription topic '${criteria.slice(0, 200)}' (this server has: ${TOPICS.map((t) => topicUrl(o.publicBaseUrl, t)).join(', ')})`, 'SUBSCRIPTION_TOPIC_UNKNOWN', 'Subscription.criteria');
    }
    const filters = extensions(resource._criteria, EXT.filter).map((e, i) => {
      const where = `Subscription.criteria.extension[${i}]`;
      if (typeof e.valueString !== 'string') throw bad('A filter criteria extension needs valueString', 'SUBSCRIPTION_FILTER_INVALID', where);
      return filterParam(topic, e.valueString, where);
    });
    spec = { kind: 'topic', topic: topic.name, resourceType: topic.resourceType, params: checkedParams(topic.resourceType, filters, o, 'Subscription.criteria.extension') };
  } else {
    const m = /^([A-Za-z]+)(?:\?(.*))?$/.exec(criteria.trim());
    if (!m || !isResourceType(m[1])) throw bad(`Subscription.criteria '${criteria.slice(0, 200)}' is not a search on one resource type ([type]?[parameters])`, 'SUBSCRIPTION_CRITERIA_INVALID', 'Subscription.criteria');
    spec = { kind: 'criteria', resourceType: m[1], params: checkedParams(m[1], queryParams(m[2] ?? ''), o, 'Subscription.criteria') };
  }

  if (extensions(channel._type, EXT.channelType).length) {
    throw bad('Custom channel types are not supported (rest-hook and websocket are)', 'SUBSCRIPTION_CHANNEL_UNSUPPORTED', 'Subscription.channel.type');
  }
  const type = channel.type;
  if (type !== 'rest-hook' && type !== 'websocket') {
    throw bad(`Channel type '${String(type)}' is not supported (rest-hook and websocket are)`, 'SUBSCRIPTION_CHANNEL_UNSUPPORTED', 'Subscription.channel.type');
  }
  const contentExt = extensions(channel._payload, EXT.content);
  let content: PayloadContent;
  let ctype = 'application/fhir+json';
  if (channel.payload === undefined) {
    if (isTopic) throw bad('A topic-based subscription needs channel.payload (application/fhir+json)', 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload');
    if (contentExt.length) throw bad('backport-payload-content needs channel.payload', 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload');
    content = 'empty'; // R4: no payload = a notification without content
  } else {
    ctype = contentType(channel.payload, 'Subscription.channel.payload');
    const code = contentExt[0]?.valueCode;
    if (contentExt.length > 1) throw bad('backport-payload-content appears more than once', 'SUBSCRIPTION_EXTENSION_REPEATED', 'Subscription.channel.payload');
    if (code === undefined) {
      if (isTopic) throw bad('A topic-based subscription needs the backport-payload-content extension (empty, id-only or full-resource)', 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload');
      content = 'full-resource';
    } else if (code === 'empty' || code === 'id-only' || code === 'full-resource') content = code;
    else throw bad(`Payload content '${String(code)}' is not supported (empty, id-only, full-resource are)`, 'SUBSCRIPTION_PAYLOAD_UNSUPPORTED', 'Subscription.channel.payload.extension');
  }
  const out: SubscriptionSpec = { ...spec, channel: type, contentType: ctype, content, headers: headerLines(channel) };
  if (type === 'rest-hook') out.endpoint = endpointUrl(channel.endpoint, o);
  else if (channel.endpoint !== undefined) throw bad('A websocket subscription has no channel.endpoint (clients bind with $get-ws-binding-token)', 'SUBSCRIPTION_ENDPOINT_INVALID', 'Subscription.channel.endpoint');
  const hb = oneInt(channel, EXT.heartbeat, 'heartbeatPeriod', 'Subscription.channel.extension', 1, 86_400);
  if (hb !== undefined) out.heartbeatSeconds = hb;
  const timeout = oneInt(channel, EXT.timeout, 'timeout', 'Subscription.channel.extension', 1, 300);
  if (timeout !== undefined) out.timeoutSeconds = timeout;
  const maxCount = oneInt(channel, EXT.maxCount, 'maxCount', 'Subscription.channel.extension', 1, 1000);
  if (maxCount !== undefined) out.maxCount = maxCount;
  if (typeof resource.end === 'string') out.end = resource.end;
  return out;
}
