// The built-in subscription topics (Backport IG, "Subscription topics in R4": servers may keep topics built in and
// advertise their canonicals in the CapabilityStatement). A topic says which type it watches, which changes trigger
// it (judged on the previous and the new version) and which filters a subscriber may add. Filters are search
// parameters of that type, so the search engine decides them exactly as a search would.

/** The status of a version (undefined: no such version, i.e. a create, or a delete). */
type Status = string | undefined;

export interface Topic {
  /** Canonical URL, below the server's public base: `${publicBaseUrl}/topics/${name}`. */
  name: string;
  title: string;
  description: string;
  resourceType: string;
  /** Filter names a subscriber may use (`patient=Patient/1`, `DiagnosticReport.category=LAB`), each a search parameter of resourceType. */
  filters: string[];
  /** Does the change from `previous` to `current` (null: deleted) trigger the topic? */
  triggers(previous: Status, current: Status | null): boolean;
}

const LAB_FINAL = new Set(['final', 'amended', 'corrected', 'appended']);

/**
 * Decision (docs/subscriptions.md): "lab-result final" fires when a DiagnosticReport is created in, or changes INTO,
 * one of final | amended | corrected | appended; an amendment after final is a change of status and fires again (the
 * next event number), an edit that keeps the status does not, a delete never does.
 */
export const TOPICS: Topic[] = [
  {
    name: 'lab-result-final',
    title: 'Lab result final',
    description: 'A DiagnosticReport is created or updated into status final, amended, corrected or appended.',
    resourceType: 'DiagnosticReport',
    filters: ['patient', 'subject', 'category', 'code', 'performer'],
    triggers: (prev, cur) => cur != null && LAB_FINAL.has(cur) && prev !== cur,
  },
  {
    name: 'encounter-start',
    title: 'Encounter start',
    description: 'An Encounter is created or updated into status in-progress.',
    resourceType: 'Encounter',
    filters: ['patient', 'subject', 'class', 'service-provider', 'location', 'type'],
    triggers: (prev, cur) => cur === 'in-progress' && prev !== cur,
  },
  {
    name: 'encounter-end',
    title: 'Encounter end',
    description: 'An Encounter is created or updated into status finished.',
    resourceType: 'Encounter',
    filters: ['patient', 'subject', 'class', 'service-provider', 'location', 'type'],
    triggers: (prev, cur) => cur === 'finished' && prev !== cur,
  },
  {
    name: 'service-request-status',
    title: 'Service request status change',
    description: 'A ServiceRequest is created, or its status changes (the order lifecycle a lab follows).',
    resourceType: 'ServiceRequest',
    filters: ['patient', 'subject', 'code', 'performer', 'requester', 'status', 'category'],
    triggers: (prev, cur) => cur != null && prev !== cur,
  },
];

export function topicUrl(publicBaseUrl: string, t: Topic): string {
  return `${publicBaseUrl}/topics/${t.name}`;
}

export function findTopic(publicBaseUrl: string, url: string): Topic | undefined {
  return TOPICS.find((t) => topicUrl(publicBaseUrl, t) === url);
}
