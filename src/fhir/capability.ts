// The CapabilityStatement served at [base]/metadata (http.html#capabilities): only what really works.
import type { FhirContext } from './context.js';
import { r4ResourceTypes } from '../core/definitions.js';

/** Search parameter types the search engine evaluates ('special' ones such as Location near are not supported). */
const SEARCHABLE = new Set(['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri', 'composite']);

const COMMON_PARAMS = [
  { name: '_id', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id', type: 'token' },
  { name: '_lastUpdated', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated', type: 'date' },
  { name: '_tag', definition: 'http://hl7.org/fhir/SearchParameter/Resource-tag', type: 'token' },
  { name: '_profile', definition: 'http://hl7.org/fhir/SearchParameter/Resource-profile', type: 'uri' },
  { name: '_security', definition: 'http://hl7.org/fhir/SearchParameter/Resource-security', type: 'token' },
  { name: '_source', definition: 'http://hl7.org/fhir/SearchParameter/Resource-source', type: 'uri' },
  { name: '_text', definition: 'http://hl7.org/fhir/SearchParameter/DomainResource-text', type: 'string' },
  { name: '_content', definition: 'http://hl7.org/fhir/SearchParameter/Resource-content', type: 'string' },
];

/** `security` is CapabilityStatement.rest.security, supplied by the authorization layer (src/auth/smart-config.ts). */
export function capabilityStatement(ctx: FhirContext, software: { name: string; version: string }, startedAt: string, security: Record<string, unknown>): Record<string, unknown> {
  const resource = [...r4ResourceTypes()].sort().map((type) => {
    const params = [...ctx.registry.paramsFor(type).values()]
      .filter((p) => SEARCHABLE.has(p.type) && p.extract && !p.code.startsWith('_'))
      .map((p) => ({ name: p.code, definition: p.url, type: p.type }));
    const refParams = params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.name}`);
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
      searchInclude: ['*', ...refParams],
      searchRevInclude: ['*'],
      searchParam: [...COMMON_PARAMS, ...params],
      operation: [
        { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' },
        ...(type === 'Patient' ? [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }] : []),
      ],
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
        documentation: 'Tenant-scoped FHIR R4 REST API, protected by SMART-on-FHIR (App Launch 2.x and Backend Services).',
        security,
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        searchParam: COMMON_PARAMS,
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        operation: [{ name: 'reindex', definition: 'urn:tenfhir:OperationDefinition/reindex' }],
      },
    ],
  };
}
