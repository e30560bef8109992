// The shape of what the authorization server issues and the resource server trusts: account ids, the SMART
// context stored with a grant, and the claims of an access token (one definition for oidc-provider's tokens and the
// token CLI's).
import type { Role } from './role-matrix.js';
import { isTenantSlug } from '../core/tenant.js';

/** Client metadata property naming the tenant a client is registered to. */
export const TENANT_PROPERTY = 'tenant';

/** The SMART context of one grant (stored beside it at consent) or one backend token request. */
/** The SMART launch context of a grant, stored beside it (adapter model name; revoked with the grant). */
export const SMART_GRANT = 'SmartGrant';

export interface SmartContext {
  tenant: string;
  /** The tenant's FHIR base (the token's aud). */
  aud: string;
  role: Role;
  /** Effective resource scopes, rendered (requested ∩ client ∩ role ceiling ∩ what the user consented to). */
  scope: string;
  /** Granted launch, identity and refresh scopes (openid, fhirUser, launch/patient, offline_access, ...). */
  other: string[];
  patient?: string;
  encounter?: string;
  /** Relative FHIR reference of the user (Practitioner/1, Patient/2). */
  fhirUser?: string;
  needPatientBanner: boolean;
  smartStyleUrl?: string;
  /** grant id, so the adapter revokes the context with its grant */
  grantId?: string;
}

/** Claims this server adds to every access token (beside iss, aud, sub, client_id, scope, iat, exp, jti). */
export interface ContextClaims {
  tenant: string;
  role: Role;
  patient?: string;
  encounter?: string;
  fhirUser?: string;
  /** App launches: the token response's banner and style hints, kept so introspection can report them (SMART). */
  need_patient_banner?: boolean;
  smart_style_url?: string;
}

export interface AccessClaims extends ContextClaims {
  iss: string;
  aud: string;
  sub: string;
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
}

export function accessTokenClaims(smart: SmartContext): ContextClaims {
  return {
    tenant: smart.tenant,
    role: smart.role,
    ...(smart.patient ? { patient: smart.patient } : {}),
    ...(smart.encounter ? { encounter: smart.encounter } : {}),
    ...(smart.fhirUser ? { fhirUser: smart.fhirUser } : {}),
    ...(smart.role !== 'system' ? { need_patient_banner: smart.needPatientBanner } : {}),
    ...(smart.role !== 'system' && smart.smartStyleUrl ? { smart_style_url: smart.smartStyleUrl } : {}),
  };
}

/** oidc-provider account ids name the user's tenant: "tenant|userId" ("platform|..." for platform administrators). */
export function accountId(tenantId: string, userId: string): string {
  return `${tenantId}|${userId}`;
}

export function parseAccountId(sub: string): { tenantId: string; userId: string } | undefined {
  const i = sub.indexOf('|');
  if (i <= 0) return undefined;
  const tenantId = sub.slice(0, i);
  const userId = sub.slice(i + 1);
  return isTenantSlug(tenantId) && userId ? { tenantId, userId } : undefined;
}
