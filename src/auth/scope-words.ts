// Scopes in plain words for the consent page (SMART scopes-and-launch-context.html): what an app could do, one line
// per scope the app asked for, so a wildcard the role ceiling splits into many types stays one line (issue 9).
import { intersectScope, isResourceScope, renderScope, type OtherScopeName, type ResourceScope, type Scope } from './scopes.js';

/** SMART v2 letters in their order (cruds), each in words. */
const VERBS: Record<string, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

const OTHER: Record<OtherScopeName, string> = {
  openid: 'Know who you are (your user id)',
  fhirUser: 'See which user record you are (your practitioner or patient record)',
  profile: 'See your name and username',
  launch: 'Open with the patient and encounter of your current EHR session',
  'launch/patient': 'Know which patient is selected',
  'launch/encounter': 'Know which encounter is selected',
  offline_access: 'Keep access after you close the app, until you revoke it',
  online_access: 'Keep access while you stay signed in',
};

/** Names whose plural is not the last word's: "episodes of care", not "episode of cares". */
const PLURALS: Record<string, string> = { EpisodeOfCare: 'episodes of care' };

/** "MedicationRequest" -> "medication requests"; a patient's own Patient resource is their details, not "patients". */
function typeWords(type: string, context?: ResourceScope['context']): string {
  if (type === '*') return 'all kinds of records';
  if (type === 'Patient' && context === 'patient') return 'patient details';
  if (Object.hasOwn(PLURALS, type)) return PLURALS[type];
  const words = type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  if (/(s|x|ch|sh)$/.test(words)) return `${words}es`;
  if (/[^aeiou]y$/.test(words)) return `${words.slice(0, -1)}ies`;
  return `${words}s`;
}

function list(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

const capital = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
const verbsOf = (letters: string) => list([...letters].map((l) => VERBS[l]));

function whose(s: ResourceScope, patientLabel: string | undefined): string {
  return s.context === 'patient' ? `of ${patientLabel ?? 'the selected patient'}` : s.context === 'user' ? 'that you may access' : '';
}

function filterWords(s: ResourceScope): string {
  return s.params.length ? ` (only where ${s.params.map(([k, v]) => `${k} is ${v.split('|').pop()}`).join(' and ')})` : '';
}

function resourceWords(s: ResourceScope, patientLabel: string | undefined): string {
  return capital(`${verbsOf(s.letters)} ${typeWords(s.resourceType, s.context)} ${whose(s, patientLabel)}`.replace(/\s+/g, ' ').trim() + filterWords(s));
}

export function describeScope(s: Scope, patientLabel?: string): string {
  return s.kind === 'other' ? OTHER[s.name] : resourceWords(s, patientLabel);
}

/** One checkbox of the consent page. */
export interface ConsentLine {
  /** The checkbox value: the scope itself, or the requested wildcard the line stands for. */
  value: string;
  /** What ticking it grants. */
  scopes: ResourceScope[];
  words: string;
  /** A wildcard's line: the kinds of records it covers, in plain words, shown on demand. */
  details?: string[];
}

/** The same scope whatever its spelling (v1 `.read` or v2 `.rs`). */
const v2 = (s: ResourceScope) => renderScope({ ...s, v1: false });

/**
 * The consent page's lines for the resource scopes on offer. A staff member's ceiling lists types one by one, so a
 * requested `patient/*.rs` arrives as one scope per type (26 rows once); the lines follow the request instead: a
 * requested wildcard is one line, its types are details on demand; every other scope is a line of its own.
 */
export function consentLines(requested: Scope[], offered: ResourceScope[], patientLabel?: string): ConsentLine[] {
  const wildcards = requested.filter(isResourceScope).filter((r) => r.resourceType === '*');
  const groupOf = new Map<ResourceScope, ResourceScope>();
  for (const s of offered) {
    if (s.resourceType === '*') continue;
    const from = wildcards.find((w) => {
      const meet = intersectScope(w, s);
      return meet !== undefined && v2(meet) === v2(s);
    });
    if (from) groupOf.set(s, from);
  }
  const members = (w: ResourceScope) => offered.filter((s) => groupOf.get(s) === w);
  const lines: ConsentLine[] = [];
  const shown = new Set<ResourceScope>();
  for (const s of offered) {
    const w = groupOf.get(s);
    if (!w || members(w).length < 2) lines.push({ value: renderScope(s), scopes: [s], words: describeScope(s, patientLabel) });
    else if (!shown.has(w)) {
      shown.add(w);
      lines.push(wildcardLine(w, members(w), patientLabel));
    }
  }
  return lines;
}

function wildcardLine(w: ResourceScope, members: ResourceScope[], patientLabel: string | undefined): ConsentLine {
  const uniform = members.every((m) => m.letters === members[0].letters && !m.params.length);
  const kinds = new Set(members.map((m) => m.resourceType)).size;
  const letters = Object.keys(VERBS).filter((l) => members.some((m) => m.letters.includes(l))).join('');
  const what = `${kinds} kinds of records ${whose(members[0], patientLabel)}`.trim();
  const words = uniform ? capital(`${verbsOf(letters)} ${what}`) : capital(`${verbsOf(letters)} ${what}, each as listed`);
  const details = members
    .map((m) => (uniform ? typeWords(m.resourceType, m.context) : `${typeWords(m.resourceType, m.context)}: ${verbsOf(m.letters)}${filterWords(m)}`))
    .sort((a, b) => a.localeCompare(b));
  return { value: renderScope(w), scopes: members, words, details };
}
