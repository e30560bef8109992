// The LOINC laboratory subset of terminology/loinc-lab.json as the code system http://loinc.org (content:
// fragment: a code outside the subset may still be a LOINC code). Each concept carries the six LOINC axes and its
// class as properties, under the property codes LOINC's own FHIR CodeSystem uses.
import { readFileSync } from 'node:fs';
import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';
import { IndexedCodeSystem } from './code-system.js';

export const LOINC_SYSTEM = 'http://loinc.org';

export interface LoincRow {
  code: string;
  display: string;
  component: string;
  property: string;
  time: string;
  system: string;
  scale: string;
  method?: string;
  class: string;
}

interface LoincFile {
  version?: string;
  copyright: string;
  codes: LoincRow[];
}

/** Row field -> LOINC property code, with its description. */
export const LOINC_PROPERTIES: [keyof LoincRow, string, string][] = [
  ['component', 'COMPONENT', 'First major axis: component or analyte'],
  ['property', 'PROPERTY', 'Second major axis: property observed (e.g. mass concentration)'],
  ['time', 'TIME_ASPCT', 'Third major axis: timing of the measurement (e.g. point in time)'],
  ['system', 'SYSTEM', 'Fourth major axis: type of specimen or system'],
  ['scale', 'SCALE_TYP', 'Fifth major axis: scale of measurement (e.g. quantitative)'],
  ['method', 'METHOD_TYP', 'Sixth major axis: method of measurement'],
  ['class', 'CLASS', 'An arbitrary classification of terms for grouping related observations'],
];

export function loincRows(): LoincFile {
  return JSON.parse(readFileSync(new URL('../../terminology/loinc-lab.json', import.meta.url), 'utf8')) as LoincFile;
}

export function loincCodeSystem(): IndexedCodeSystem {
  const file = loincRows();
  const concept: CodeSystemConcept[] = file.codes.map((row) => ({
    code: row.code,
    display: row.display,
    property: LOINC_PROPERTIES.filter(([field]) => row[field]).map(([field, code]) => ({ code, valueString: row[field] as string })),
  }));
  const cs: CodeSystem = {
    resourceType: 'CodeSystem',
    url: LOINC_SYSTEM,
    name: 'LOINC',
    title: 'LOINC (laboratory subset)',
    status: 'active',
    content: 'fragment',
    caseSensitive: false,
    copyright: file.copyright,
    property: LOINC_PROPERTIES.map(([, code, description]) => ({ code, description, type: 'string' })),
    concept,
  };
  if (file.version) cs.version = file.version;
  return new IndexedCodeSystem(cs);
}
