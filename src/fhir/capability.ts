// The CapabilityStatement served at [base]/metadata (http.html#capabilities): only what really works.
import type { FhirContext } from './context.js';
import { r4ResourceTypes } from './definitions.js';

/** Search parameter types the search engine evaluates (composite and special are not yet supported). */
const SEARCHABLE = new Set(['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri']);

export function capabilityStatement(ctx: FhirContext, software: { name: string; version: string }, startedAt: string): Record<string, unknown> {
  const resource = [...r4ResourceTypes()].sort().map((type) => {
    const params = [...ctx.deps.registry.paramsFor(type).values()]
      .filter((p) => SEARCHABLE.has(p.type) && p.extract && !p.code.startsWith('_'))
      .map((p) => ({ name: p.code, definition: p.url, type: p.type }));
    return {
      type,
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'].map((code) => ({ code })),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalRead: 'full-support',
      conditionalUpdate: true,
      conditionalDelete: 'single',
      referencePolicy: ['literal', 'local', ...(ctx.tenant.settings.referentialIntegrity === false ? [] : ['enforced'])],
      searchParam: [
        { name: '_id', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id', type: 'token' },
        { name: '_lastUpdated', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated', type: 'date' },
        ...params,
      ],
      operation: [{ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' }],
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    kind: 'instance',
    software,
    implementation: { description: `FHIR R4 server for ${ctx.tenant.name}`, url: ctx.baseUrl },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Tenant-scoped FHIR R4 REST API. Authorization is not enabled yet: the API is open.',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
      },
    ],
  };
}
