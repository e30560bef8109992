// Scopes in plain words for the consent page (SMART scopes-and-launch-context.html): what an app could do.
import type { OtherScopeName, ResourceScope, Scope } from './scopes.js';

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

/** "MedicationRequest" -> "medication requests". */
function typeWords(type: string): string {
  if (type === '*') return 'all kinds of records';
  const words = type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  if (/(s|x|ch|sh)$/.test(words)) return `${words}es`;
  if (/[^aeiou]y$/.test(words)) return `${words.slice(0, -1)}ies`;
  return `${words}s`;
}

function list(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

function resourceWords(s: ResourceScope, patientLabel: string | undefined): string {
  const verbs = [...s.letters].map((l) => VERBS[l]);
  const what = typeWords(s.resourceType);
  const whose = s.context === 'patient' ? `of ${patientLabel ?? 'the selected patient'}` : s.context === 'user' ? 'that you may access' : '';
  const filter = s.params.length ? ` (only where ${s.params.map(([k, v]) => `${k} is ${v.split('|').pop()}`).join(' and ')})` : '';
  const text = `${list(verbs)} ${what} ${whose}`.replace(/\s+/g, ' ').trim() + filter;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function describeScope(s: Scope, patientLabel?: string): string {
  return s.kind === 'other' ? OTHER[s.name] : resourceWords(s, patientLabel);
}
