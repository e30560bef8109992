// [base]/.well-known/smart-configuration (SMART App Launch 2.x, conformance.html) and the CapabilityStatement
// security section (SMART 1.0's oauth-uris extension, which fhirclient still reads as a fallback). Only what works.
import { issuerOf } from './provider.js';

export interface AuthEndpoints {
  issuer: string;
  authorize: string;
  token: string;
  jwks: string;
  register: string;
  introspect: string;
  revoke: string;
}

function authEndpoints(publicBaseUrl: string): AuthEndpoints {
  const issuer = issuerOf(publicBaseUrl);
  return {
    issuer,
    authorize: `${issuer}/authorize`,
    token: `${issuer}/token`,
    jwks: `${issuer}/jwks`,
    register: `${issuer}/register`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
  };
}

/** What an app registered without an explicit scope (CLI or RFC 7591) may ask for. */
export const DEFAULT_REGISTRATION_SCOPE =
  'openid fhirUser profile launch launch/patient offline_access online_access patient/*.cruds user/*.cruds';

/** Every capability string here is implemented and tested (docs/smart-conformance.md). */
const SMART_CAPABILITIES = [
  'launch-ehr',
  'launch-standalone',
  'authorize-post',
  'client-public',
  'client-confidential-symmetric',
  'client-confidential-asymmetric',
  'sso-openid-connect',
  'context-banner',
  'context-style',
  'context-ehr-patient',
  'context-ehr-encounter',
  'context-standalone-patient',
  'permission-offline',
  'permission-online',
  'permission-patient',
  'permission-user',
  'permission-v1',
  'permission-v2',
];

/** The discovery document of one tenant's FHIR base. */
export function smartConfiguration(publicBaseUrl: string, tenant: string): Record<string, unknown> {
  const e = authEndpoints(publicBaseUrl);
  return {
    issuer: e.issuer,
    jwks_uri: e.jwks,
    authorization_endpoint: e.authorize,
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
    token_endpoint: e.token,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384', 'RS256', 'ES256'],
    registration_endpoint: e.register,
    scopes_supported: [
      'openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access',
      'patient/*.cruds', 'user/*.cruds', 'system/*.cruds', 'patient/*.rs', 'user/*.rs', 'system/*.rs',
      'patient/*.read', 'user/*.read', 'patient/*.write', 'user/*.write', 'patient/*.*', 'user/*.*', 'system/*.read',
    ],
    response_types_supported: ['code'],
    introspection_endpoint: e.introspect,
    revocation_endpoint: e.revoke,
    // where a user sees the apps they authorized and revokes them (src/auth/manage.ts)
    management_endpoint: `${e.issuer}/manage/${tenant}`,
    code_challenge_methods_supported: ['S256'],
    capabilities: SMART_CAPABILITIES,
  };
}

/** CapabilityStatement.rest.security: the SMART service coding and the oauth-uris extension. */
export function capabilitySecurity(publicBaseUrl: string): Record<string, unknown> {
  const e = authEndpoints(publicBaseUrl);
  const uri = (url: string, valueUri: string) => ({ url, valueUri });
  return {
    cors: true,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }],
        text: 'OAuth 2.0 with SMART App Launch 2.x scopes and SMART Backend Services',
      },
    ],
    description: `Every interaction except metadata and .well-known/smart-configuration needs a Bearer access token issued by ${e.issuer} for this FHIR base (aud).`,
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [
          uri('authorize', e.authorize),
          uri('token', e.token),
          uri('register', e.register),
          uri('introspect', e.introspect),
          uri('revoke', e.revoke),
        ],
      },
    ],
  };
}

/** The SMART style document (app-launch.html#styling) the token response's smart_style_url points at. */
export const SMART_STYLE = {
  color_background: '#f4f6f8',
  color_error: '#8a1c12',
  color_highlight: '#1f6fc5',
  color_modal_backdrop: '',
  color_success: '#2e7d32',
  color_text: '#1d2733',
  dim_border_radius: '8px',
  dim_font_size: '16px',
  dim_spacing_size: '16px',
  font_family_body: 'system-ui, sans-serif',
  font_family_heading: 'system-ui, sans-serif',
};
