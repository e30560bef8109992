// Administration of users and OAuth clients (the CLI and the tests call these; dynamic registration goes through
// oidc-provider): validation first, then one row.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { AuditAgent } from '../core/audit.js';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { findClient, upsertClient } from '../store/auth-payloads.js';
import { findUserByName, insertUser, updateUser, type UserRecord } from '../store/auth-users.js';
import { currentVersion } from '../store/resources.js';
import { findTenant } from '../store/tenants.js';
import { withinQuota } from '../fhir/quotas.js';
import { tenantPasswordProblem } from '../tenancy/security-policy.js';
import { PLATFORM } from '../core/tenant.js';
import { OPERATOR, recordAuthEvents } from './audit.js';
import { accountId } from './claims.js';
import { hashPassword } from './passwords.js';
import { clientScopes, splitClientScope, TENANT_PROPERTY } from './provider.js';
import { isRole, ROLES } from './role-matrix.js';
import { DEFAULT_REGISTRATION_SCOPE } from './smart-config.js';
import { newTotpSecret, otpauthUri } from './totp.js';

export interface NewUser {
  /** A tenant slug, or 'platform' for platform administrators. */
  tenant: string;
  username: string;
  password: string;
  role: string;
  /** Practitioner/<id>, PractitionerRole/<id>, Patient/<id>, RelatedPerson/<id> or Person/<id> in the tenant. */
  fhirUser?: string;
  displayName?: string;
}

const FHIR_USER = /^(Practitioner|PractitionerRole|Patient|RelatedPerson|Person)\/[A-Za-z0-9\-.]{1,64}$/;

async function assertTenant(deps: Deps, tenant: string): Promise<void> {
  if (tenant === PLATFORM) return;
  if (!(await findTenant(deps.db, tenant))) throw new FhirError('not-found', `Unknown tenant '${tenant}'`, { code: 'TENANT_UNKNOWN' });
}

/** What an account change says in the audit trail: the account (as tokens name it), its name, its FHIR record. */
async function auditUser(deps: Deps, by: AuditAgent, user: UserRecord, subtype: string, action: 'C' | 'U'): Promise<void> {
  await recordAuthEvents(deps, user.tenantId, {
    category: 'admin',
    subtype,
    action,
    outcome: 0,
    agent: by,
    ...(user.fhirUser ? { entities: [{ ref: user.fhirUser }] } : {}),
    detail: { account: accountId(user.tenantId, user.id), username: user.username, role: user.role },
  });
}

/** `by`, here and below: who acts, for the audit trail (the operator's CLI unless said). */
export async function createUser(deps: Deps, u: NewUser, by: AuditAgent = OPERATOR): Promise<UserRecord> {
  await assertTenant(deps, u.tenant);
  if (!isRole(u.role) || u.role === 'system') throw new FhirError('invalid', `role must be one of ${ROLES.filter((r) => r !== 'system').join(', ')}`, { code: 'USER_ROLE_INVALID' });
  if ((u.tenant === PLATFORM) !== (u.role === 'platform-admin')) {
    throw new FhirError('invalid', "platform administrators live in the 'platform' scope, and only they do", { code: 'USER_ROLE_INVALID' });
  }
  if (!/^[A-Za-z0-9._@+-]{3,100}$/.test(u.username)) throw new FhirError('invalid', 'a username is 3-100 characters of letters, digits and . _ @ + -', { code: 'USER_NAME_INVALID' });
  const problem = await tenantPasswordProblem(deps, u.tenant, u.password, u.username);
  if (problem) throw new FhirError('invalid', problem, { code: 'PASSWORD_POLICY' });
  if (u.fhirUser !== undefined && !FHIR_USER.test(u.fhirUser)) throw new FhirError('invalid', 'fhirUser must be Practitioner/<id>, PractitionerRole/<id>, Patient/<id>, RelatedPerson/<id> or Person/<id>', { code: 'USER_FHIR_USER_INVALID' });
  if (u.role === 'patient' && !u.fhirUser?.startsWith('Patient/')) throw new FhirError('invalid', 'a patient user needs fhirUser Patient/<id> (their own record)', { code: 'USER_FHIR_USER_INVALID' });
  if (u.fhirUser !== undefined && u.tenant !== PLATFORM) {
    const [type, id] = u.fhirUser.split('/');
    const row = await currentVersion(deps.db, u.tenant, type, id);
    if (!row || row.deleted) throw new FhirError('invalid', `fhirUser ${u.fhirUser} does not exist in tenant '${u.tenant}' (create the resource first)`, { code: 'USER_FHIR_USER_INVALID' });
  }
  const record = {
    tenantId: u.tenant,
    id: randomUUID(),
    username: u.username,
    passwordHash: await hashPassword(u.password),
    role: u.role,
    fhirUser: u.fhirUser ?? null,
    displayName: u.displayName ?? null,
    totpSecret: null,
  };
  // staff accounts count against the plan's staffUsers quota, checked and inserted in one transaction (src/fhir/quotas.ts)
  if (!(await withinQuota(deps, u.tenant, u.role === 'patient' ? undefined : 'staffUsers', (db) => insertUser(db, record)))) throw new FhirError('conflict', `User '${u.username}' already exists in '${u.tenant}'`, { code: 'USER_EXISTS' });
  const created = (await findUserByName(deps.db, u.tenant, u.username))!;
  await auditUser(deps, by, created, 'user-create', 'C');
  return created;
}

async function existingUser(deps: Deps, tenant: string, username: string): Promise<UserRecord> {
  const user = await findUserByName(deps.db, tenant, username);
  if (!user) throw new FhirError('not-found', `No user '${username}' in '${tenant}'`, { code: 'USER_UNKNOWN' });
  return user;
}

/** Sets a new password (and unlocks the account). */
export async function resetPassword(deps: Deps, tenant: string, username: string, password: string, by: AuditAgent = OPERATOR): Promise<void> {
  const user = await existingUser(deps, tenant, username);
  const problem = await tenantPasswordProblem(deps, tenant, password, user.username);
  if (problem) throw new FhirError('invalid', problem, { code: 'PASSWORD_POLICY' });
  await updateUser(deps.db, tenant, user.id, { passwordHash: await hashPassword(password) });
  await auditUser(deps, by, user, 'user-password-reset', 'U');
}

/** Enrols (a new secret) or removes the user's TOTP second factor. */
export async function setTotp(deps: Deps, tenant: string, username: string, enable: boolean, issuer: string, by: AuditAgent = OPERATOR): Promise<{ secret?: string; uri?: string }> {
  const user = await existingUser(deps, tenant, username);
  if (!enable) {
    await updateUser(deps.db, tenant, user.id, { totpSecret: null });
    await auditUser(deps, by, user, 'user-totp-remove', 'U');
    return {};
  }
  const secret = newTotpSecret();
  await updateUser(deps.db, tenant, user.id, { totpSecret: secret });
  await auditUser(deps, by, user, 'user-totp-enrol', 'U');
  return { secret, uri: otpauthUri(secret, user.username, issuer) };
}

export async function setUserDisabled(deps: Deps, tenant: string, username: string, disabled: boolean, by: AuditAgent = OPERATOR): Promise<void> {
  const user = await existingUser(deps, tenant, username);
  await updateUser(deps.db, tenant, user.id, { disabled });
  await auditUser(deps, by, user, disabled ? 'user-disable' : 'user-enable', 'U');
}

/**
 * backend: SMART Backend Services (client_credentials + private_key_jwt with its JWKS; never a client secret, SMART
 * client-confidential-symmetric.html); operator: a backend client
 * whose key nobody holds, for tokens from the `token` CLI only; public / confidential: apps (authorization code).
 */
export type ClientKind = 'backend' | 'operator' | 'public' | 'confidential';

export interface NewClient {
  tenant: string;
  kind: ClientKind;
  name: string;
  clientId?: string;
  /** Scopes the client is allowed (pre-authorized for backend clients). */
  scope?: string;
  redirectUris?: string[];
  /** Backend/asymmetric: a JWKS URL (preferred) or a JWKS. */
  jwksUri?: string;
  jwks?: { keys: Record<string, unknown>[] };
  /** The app's launch URL (EHR launch). */
  launchUri?: string;
}

export interface RegisteredClient {
  clientId: string;
  clientSecret?: string;
  metadata: Record<string, unknown>;
}

/**
 * Where an app under development keeps its http launch URL on a loopback host: oidc-provider's client schema takes
 * `initiate_login_uri` as https only (and checks it on every load), and ignores metadata it does not know.
 */
export const DEV_LAUNCH_URI = 'dev_initiate_login_uri';
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The app's EHR launch URL as client metadata: https, or plain http on a loopback host for development (as a local
 * redirect URI is), never http across a network, where `iss` and `launch` would travel in clear.
 */
function launchUriMetadata(uri: string): Record<string, string> {
  const u = URL.parse(uri);
  if (u?.protocol === 'https:') return { initiate_login_uri: uri };
  if (u?.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname)) return { [DEV_LAUNCH_URI]: uri };
  throw new FhirError('invalid', 'a launch URI must be https (or http on localhost, 127.0.0.1 or [::1] while developing)', { code: 'CLIENT_INVALID' });
}

/** Registers a client to one tenant; the metadata is validated by oidc-provider exactly as it will be used. */
export async function registerClient(deps: Deps, provider: Provider, c: NewClient, by: AuditAgent = OPERATOR): Promise<RegisteredClient> {
  await assertTenant(deps, c.tenant);
  // 'platform' names the platform administrators' users, and the platform catalog tenant once that exists (docs/catalog.md)
  if (c.tenant === PLATFORM && !(await findTenant(deps.db, PLATFORM))) throw new FhirError('invalid', 'clients belong to a tenant', { code: 'CLIENT_INVALID' });
  const clientId = c.clientId ?? `${c.kind === 'backend' || c.kind === 'operator' ? 'svc' : 'app'}-${randomBytes(9).toString('base64url')}`;
  if (!/^[A-Za-z0-9._~-]{3,100}$/.test(clientId)) throw new FhirError('invalid', 'client_id: 3-100 characters of letters, digits and . _ ~ -', { code: 'CLIENT_INVALID' });
  if (await findClient(deps.db, clientId)) throw new FhirError('conflict', `Client '${clientId}' already exists`, { code: 'CLIENT_EXISTS' });
  const metadata: Record<string, unknown> = { client_id: clientId, client_name: c.name, [TENANT_PROPERTY]: c.tenant };
  let secret: string | undefined;
  if (c.kind === 'operator') {
    // a throwaway public key: the token endpoint cannot be used, only the operator's CLI mints tokens
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    return registerClient(deps, provider, { ...c, kind: 'backend', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'unused', alg: 'ES384' }] }, jwksUri: undefined }, by);
  }
  if (c.kind === 'backend') {
    if (!c.jwksUri && !c.jwks) throw new FhirError('invalid', 'a backend client needs --jwks-uri or --jwks (its public keys)', { code: 'CLIENT_INVALID' });
    Object.assign(metadata, {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt',
      ...splitClientScope(c.scope ?? 'system/*.rs'),
      ...(c.jwksUri ? { jwks_uri: c.jwksUri } : { jwks: c.jwks }),
    });
  } else {
    if (!c.redirectUris?.length) throw new FhirError('invalid', 'an app needs at least one --redirect-uri', { code: 'CLIENT_INVALID' });
    Object.assign(metadata, {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: c.redirectUris,
      ...splitClientScope(c.scope ?? DEFAULT_REGISTRATION_SCOPE),
      ...(c.launchUri ? launchUriMetadata(c.launchUri) : {}),
    });
    if (c.kind === 'public') metadata.token_endpoint_auth_method = 'none';
    else if (c.jwksUri || c.jwks) Object.assign(metadata, { token_endpoint_auth_method: 'private_key_jwt', ...(c.jwksUri ? { jwks_uri: c.jwksUri } : { jwks: c.jwks }) });
    else {
      // client_secret_basic: base64url characters only, so client-js's plain btoa(id:secret) is correct too
      secret = randomBytes(32).toString('base64url');
      Object.assign(metadata, { token_endpoint_auth_method: 'client_secret_basic', client_secret: secret });
    }
  }
  try {
    await provider.Client.validate(metadata as never);
  } catch (err) {
    throw new FhirError('invalid', `Invalid client metadata: ${(err as { error_description?: string }).error_description ?? (err as Error).message}`, { code: 'CLIENT_INVALID' });
  }
  await withinQuota(deps, c.tenant, 'clients', (db) => upsertClient(db, { clientId, tenantId: c.tenant, metadata }));
  await recordAuthEvents(deps, c.tenant, {
    category: 'admin',
    subtype: 'client-register',
    action: 'C',
    outcome: 0,
    agent: by,
    detail: { client_id: clientId, client_name: c.name, kind: c.kind, scope: clientScopes(metadata) },
  });
  return { clientId, ...(secret ? { clientSecret: secret } : {}), metadata };
}

