// The CapabilityStatement served at [base]/metadata (http.html#capabilities): only what really works.
import { AUDIT_SEARCH_PARAMS } from './interactions/audit-event.js';
import type { FhirContext } from './context.js';
import { r4ResourceTypes } from '../core/definitions.js';
import { TOPICS, topicUrl } from './subscription-topics.js';
import { supportedProfiles } from './validation/profile/index.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport';

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
  const shipped = supportedProfiles();
  const resource = [...r4ResourceTypes()].sort().map((type) => {
    if (type === 'AuditEvent') return auditEventCapability(ctx);
    const params = [...ctx.registry.paramsFor(type).values()]
      .filter((p) => SEARCHABLE.has(p.type) && p.extract && !p.code.startsWith('_'))
      .map((p) => ({ name: p.code, definition: p.url, type: p.type }));
    const refParams = params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.name}`);
    return {
      type,
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      // the shipped profiles (profiles/), enforced when claimed in meta.profile or required by the tenant
      ...(shipped[type] ? { supportedProfile: shipped[type] } : {}),
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
        // Bulk Data 2.0: Patient and Group exports are declared on their resources (v1.0.1 correction)
        ...(type === 'Patient' ? [{ name: 'export', definition: `${BULK}/OperationDefinition/patient-export` }] : []),
        ...(type === 'Group' ? [{ name: 'export', definition: `${BULK}/OperationDefinition/group-export` }] : []),
        ...(type === 'Subscription' ? SUBSCRIPTION_OPERATIONS : []),
        ...(TERMINOLOGY_OPERATIONS[type] ?? []),
      ],
      ...(type === 'Subscription' ? subscriptionExtras(ctx) : {}),
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    kind: 'instance',
    instantiates: [`${BACKPORT}/CapabilityStatement/backport-subscription-server-r4`, `${BULK}/CapabilityStatement/bulk-data`],
    software,
    implementation: { description: `FHIR R4 server for ${ctx.tenant.name}`, url: ctx.baseUrl },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        // R4 websocket channel: where clients connect (then bind-with-token, Backport IG channels.html); on the main
        // host for host-based tenants too, as $get-ws-binding-token says (src/subscriptions/websocket.ts serves it)
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUri: `${ctx.deps.config.publicBaseUrl.replace(/^http/, 'ws')}/fhir/${ctx.tenant.id}/$subscription-ws` }],
        documentation:
          'Tenant-scoped FHIR R4 REST API, protected by SMART-on-FHIR (App Launch 2.x and Backend Services). Medication, CodeSystem, ValueSet, ConceptMap, StructureDefinition and SearchParameter include the platform catalog (tenant platform), readable in every tenant and read-only there. Token search modifiers: not, text, of-type, missing, in and not-in (a ValueSet canonical or ValueSet/[id]), below and above (system|code, following the code system hierarchy; at most 1,000 codes). Quantity search in a UCUM unit compares in canonical units.',
        security,
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        searchParam: COMMON_PARAMS,
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        operation: [
          { name: 'reindex', definition: 'urn:tenfhir:OperationDefinition/reindex' },
          { name: 'export', definition: `${BULK}/OperationDefinition/export` },
        ],
      },
    ],
  };
}

/**
 * AuditEvent: the server's own audit trail (issue 12), read and searched by the parameters of an audit review
 * (fhir/interactions/audit-event.ts), never written through the API.
 */
function auditEventCapability(ctx: FhirContext): Record<string, unknown> {
  const official = ctx.registry.paramsFor('AuditEvent');
  return {
    type: 'AuditEvent',
    profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
    documentation: 'Recorded by the server for every interaction, sign-in and token; read-only (create, update, patch and delete answer 405).',
    interaction: ['read', 'vread', 'history-instance', 'history-type', 'search-type'].map((code) => ({ code })),
    versioning: 'no-version',
    readHistory: false,
    updateCreate: false,
    conditionalCreate: false,
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
    searchParam: [
      { name: '_id', type: 'token' },
      ...AUDIT_SEARCH_PARAMS.filter((n) => n !== '_id').map((name) => {
        const p = official.get(name);
        return p ? { name, definition: p.url, type: p.type } : { name, type: 'token', documentation: 'the client id that acted (tenfhir)' };
      }),
    ],
    operation: [{ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' }],
  };
}

/** Bulk Data Access 2.0 (the canonicals of its OperationDefinitions and CapabilityStatement). */
const BULK = 'http://hl7.org/fhir/uv/bulkdata';

/** The terminology service's operations (src/fhir/operations/: lookup, validate-code, subsumes, expand, translate). */
const TERMINOLOGY_OPERATIONS: Record<string, { name: string; definition: string }[]> = {
  CodeSystem: ['lookup', 'validate-code', 'subsumes'].map((name) => ({ name, definition: `http://hl7.org/fhir/OperationDefinition/CodeSystem-${name}` })),
  ValueSet: ['expand', 'validate-code'].map((name) => ({ name, definition: `http://hl7.org/fhir/OperationDefinition/ValueSet-${name}` })),
  ConceptMap: [{ name: 'translate', definition: 'http://hl7.org/fhir/OperationDefinition/ConceptMap-translate' }],
};

/** Backport IG: $status (SHALL), $events, $get-ws-binding-token, $resend. */
const SUBSCRIPTION_OPERATIONS = [
  { name: 'status', definition: `${BACKPORT}/OperationDefinition/backport-subscription-status` },
  { name: 'events', definition: `${BACKPORT}/OperationDefinition/backport-subscription-events` },
  { name: 'get-ws-binding-token', definition: `${BACKPORT}/OperationDefinition/backport-subscription-get-ws-binding-token` },
  { name: 'resend', definition: `${BACKPORT}/OperationDefinition/backport-subscription-resend` },
];

/** The Subscription resource's Backport profile and the built-in topics' canonicals (topic discovery, components.html). */
function subscriptionExtras(ctx: FhirContext): Record<string, unknown> {
  const origin = ctx.deps.config.publicBaseUrl;
  return {
    supportedProfile: [`${BACKPORT}/StructureDefinition/backport-subscription`],
    extension: TOPICS.map((t) => ({ url: `${BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`, valueCanonical: topicUrl(origin, t) })),
  };
}
