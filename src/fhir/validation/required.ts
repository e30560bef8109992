// Mandatory primitive and choice elements (min >= 1) at any depth, which the R4 JSON Schema cannot require
// because a primitive may travel as its `_name` extension twin. Flags come from profiles/r4-element-flags.json.
import { readFileSync } from 'node:fs';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../../core/errors.js';

type Required = { path: string[]; names: string[] }[];
let flags: Record<string, { required?: Required }> | undefined;

function requiredFor(type: string): Required {
  flags ??= JSON.parse(readFileSync(new URL('../../../profiles/r4-element-flags.json', import.meta.url), 'utf8')) as Record<string, { required?: Required }>;
  return flags[type]?.required ?? [];
}

function has(node: Record<string, unknown>, name: string): boolean {
  return (node[name] !== undefined && node[name] !== null) || node[`_${name}`] !== undefined;
}

/** Issues for each missing mandatory primitive/choice element, with its FHIRPath. */
export function requiredIssues(resource: Record<string, unknown>, root: string): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const req of requiredFor(String(resource.resourceType))) {
    let nodes: [Record<string, unknown>, string][] = [[resource, root]];
    for (const seg of req.path) {
      const next: [Record<string, unknown>, string][] = [];
      for (const [n, path] of nodes) {
        const child = n[seg];
        if (Array.isArray(child)) child.forEach((c, i) => typeof c === 'object' && c && next.push([c as Record<string, unknown>, `${path}.${seg}[${i}]`]));
        else if (typeof child === 'object' && child) next.push([child as Record<string, unknown>, `${path}.${seg}`]);
      }
      nodes = next;
    }
    for (const [n, path] of nodes) {
      if (req.names.some((name) => has(n, name))) continue;
      const label = req.names.length > 1 ? `${req.names[0].replace(/[A-Z].*$/, '')}[x]` : req.names[0];
      issues.push(issue('error', 'required', `Missing required element '${label}' at ${path}.${label}`, { expression: [`${path}.${label}`], code: 'SCHEMA_VIOLATION' }));
    }
  }
  return issues;
}
