// CLI commands of the authorization server: users, OAuth clients, initial access tokens, access tokens (for
// operators, scripts and benchmarks) and signing-key rotation. Argument parsing over src/auth's functions.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DEV_LAUNCH_URI, resetPassword, createUser, registerClient, setTotp, setUserDisabled, type ClientKind } from '../auth/admin.js';
import { rotateSigningKey } from '../auth/keys.js';
import { issuerOf } from '../auth/provider.js';
import { createAuthServer } from '../auth/server.js';
import { issueRegistrationToken } from '../auth/registration.js';
import { mintAccessToken } from '../auth/tokens.js';
import type { Deps } from '../core/deps.js';
import { allKeys, retireKey } from '../store/auth-keys.js';
import { deleteClient, listClients } from '../store/auth-payloads.js';
import { listUsers } from '../store/auth-users.js';
import { TenantCache } from '../tenancy/tenant-cache.js';

export const AUTH_USAGE = `  user create <tenant|platform> <username> --role <role> [--fhir-user Practitioner/<id>] [--name "<display name>"]
                                            [--password <pw> | --password-stdin]   (no password: one is generated and printed)
  user reset-password <tenant> <username> [--password <pw> | --password-stdin]
  user totp <tenant> <username> --enable|--disable   enrol (prints the secret) or remove a TOTP second factor
  user disable|enable <tenant> <username>
  user list <tenant>
  client add <tenant> --type backend|operator|public|confidential --name "<name>" [--scope "<scopes>"] [--id <client_id>]
             [--redirect-uri <uri> ...] [--jwks-uri <url> | --jwks-file <file>] [--launch-uri <url>]
  client list <tenant>
  client remove <client_id>
  client initial-token <tenant> [--scope "<ceiling>"] [--ttl <seconds>]   for RFC 7591 registration
  token <tenant> --client <client_id> --scope "<scopes>" [--user <username>] [--patient <id>] [--ttl <seconds>] [--on-host]
                  (--on-host: for the tenant's own host base, <scheme>://<host>/fhir, TENANT_HOSTS_ENABLED)
  keys list | keys rotate [--retire-after-hours 24] | keys retire <kid>
  roles: platform-admin (tenant 'platform'), tenant-admin, practitioner, receptionist, lab-technician, patient`;

function readPassword(values: { password?: string; 'password-stdin'?: boolean }): { password: string; generated: boolean } {
  if (values.password) return { password: values.password, generated: false };
  if (values['password-stdin']) return { password: readFileSync(0, 'utf8').replace(/\r?\n$/, ''), generated: false };
  return { password: randomBytes(15).toString('base64url'), generated: true };
}

const PASSWORD_OPTIONS = { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;

/** Runs an auth command; undefined when `cmd` is not one. `baseSource` says whose public base URL deps.config holds. */
export async function authCommand(deps: Deps, cmd: string, sub: string | undefined, rest: string[], baseSource: string): Promise<number | undefined> {
  if (cmd === 'user') return userCommand(deps, sub, rest);
  if (cmd === 'client') return clientCommand(deps, sub, rest);
  if (cmd === 'keys') return keysCommand(deps, sub, rest);
  if (cmd === 'token') {
    const { values, positionals } = parseArgs({
      args: [sub, ...rest].filter((x): x is string => x !== undefined),
      options: { client: { type: 'string' }, scope: { type: 'string' }, user: { type: 'string' }, patient: { type: 'string' }, ttl: { type: 'string' }, 'on-host': { type: 'boolean' } },
      allowPositionals: true,
    });
    const ttl = Number(values.ttl ?? 3600);
    if (!positionals[0] || !values.client || !values.scope || !Number.isInteger(ttl) || ttl < 1) {
      console.error('usage: token <tenant> --client <client_id> --scope "<scopes>" [--user <username>] [--patient <id>] [--ttl <seconds>] [--on-host]');
      return 2;
    }
    const t = await mintAccessToken(deps, deps.auth.keys, { tenant: positionals[0], clientId: values.client, scope: values.scope, ttlSeconds: ttl, ...(values.user ? { username: values.user } : {}), ...(values.patient ? { patient: values.patient } : {}), ...(values['on-host'] ? { onHost: true } : {}) });
    // stderr: stdout is the token alone, for $(...)
    console.error(`scope: ${t.scope}\nfor: ${t.claims.aud} (${baseSource})`);
    console.error(`expires in ${t.expiresIn} s; send it as: Authorization: Bearer <token>`);
    console.log(t.accessToken);
    return 0;
  }
  return undefined;
}

async function userCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number> {
  if (sub === 'create') {
    const { values, positionals } = parseArgs({ args: rest, options: { role: { type: 'string' }, 'fhir-user': { type: 'string' }, name: { type: 'string' }, ...PASSWORD_OPTIONS }, allowPositionals: true });
    const [tenant, username] = positionals;
    if (!tenant || !username || !values.role) {
      console.error('usage: user create <tenant|platform> <username> --role <role> [--fhir-user <ref>] [--name "<name>"] [--password <pw> | --password-stdin]');
      return 2;
    }
    const { password, generated } = readPassword(values);
    const u = await createUser(deps, { tenant, username, password, role: values.role, ...(values['fhir-user'] ? { fhirUser: values['fhir-user'] } : {}), ...(values.name ? { displayName: values.name } : {}) });
    console.log(`created user ${u.username} (${u.role}) in ${tenant}${u.fhirUser ? `, fhirUser ${u.fhirUser}` : ''}`);
    if (generated) console.log(`password: ${password}`);
    return 0;
  }
  if (sub === 'reset-password') {
    const { values, positionals } = parseArgs({ args: rest, options: PASSWORD_OPTIONS, allowPositionals: true });
    const [tenant, username] = positionals;
    if (!tenant || !username) {
      console.error('usage: user reset-password <tenant> <username> [--password <pw> | --password-stdin]');
      return 2;
    }
    const { password, generated } = readPassword(values);
    await resetPassword(deps, tenant, username, password);
    console.log(`password of ${username} in ${tenant} reset (account unlocked)`);
    if (generated) console.log(`password: ${password}`);
    return 0;
  }
  if (sub === 'totp') {
    const { values, positionals } = parseArgs({ args: rest, options: { enable: { type: 'boolean' }, disable: { type: 'boolean' } }, allowPositionals: true });
    const [tenant, username] = positionals;
    if (!tenant || !username || values.enable === values.disable) {
      console.error('usage: user totp <tenant> <username> --enable|--disable');
      return 2;
    }
    const r = await setTotp(deps, tenant, username, !!values.enable, issuerOf(deps.config.publicBaseUrl));
    console.log(values.enable ? `TOTP enrolled for ${username}\nsecret: ${r.secret}\nuri: ${r.uri}` : `TOTP removed for ${username}`);
    return 0;
  }
  if (sub === 'disable' || sub === 'enable') {
    const [tenant, username] = rest;
    if (!tenant || !username) {
      console.error(`usage: user ${sub} <tenant> <username>`);
      return 2;
    }
    await setUserDisabled(deps, tenant, username, sub === 'disable');
    console.log(`user ${username} in ${tenant} ${sub}d`);
    return 0;
  }
  if (sub === 'list' && rest[0]) {
    for (const u of await listUsers(deps.db, rest[0])) {
      const lock = u.lockedUntil && u.lockedUntil > new Date() ? ' locked' : '';
      console.log(`${u.username}\t${u.role}\t${u.fhirUser ?? '-'}\t${u.totpSecret ? 'totp' : 'no-totp'}${u.disabled ? '\tdisabled' : ''}${lock}`);
    }
    return 0;
  }
  console.error(AUTH_USAGE);
  return 2;
}

async function clientCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number> {
  if (sub === 'add') {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        type: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string' },
        id: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'jwks-uri': { type: 'string' },
        'jwks-file': { type: 'string' },
        'launch-uri': { type: 'string' },
      },
      allowPositionals: true,
    });
    const kind = values.type as ClientKind | undefined;
    if (!positionals[0] || !values.name || !kind || !['backend', 'operator', 'public', 'confidential'].includes(kind)) {
      console.error('usage: client add <tenant> --type backend|operator|public|confidential --name "<name>" [--scope ...] [--redirect-uri ...] [--jwks-uri ...|--jwks-file ...]');
      return 2;
    }
    const jwks = values['jwks-file'] ? (JSON.parse(readFileSync(values['jwks-file'], 'utf8')) as { keys: Record<string, unknown>[] }) : undefined;
    const auth = createAuthServer(deps, new TenantCache(deps.db));
    try {
      const c = await registerClient(deps, auth.provider(), {
        tenant: positionals[0],
        kind,
        name: values.name,
        ...(values.scope ? { scope: values.scope } : {}),
        ...(values.id ? { clientId: values.id } : {}),
        ...(values['redirect-uri'] ? { redirectUris: values['redirect-uri'] } : {}),
        ...(values['jwks-uri'] ? { jwksUri: values['jwks-uri'] } : {}),
        ...(jwks ? { jwks } : {}),
        ...(values['launch-uri'] ? { launchUri: values['launch-uri'] } : {}),
      });
      console.log(`client_id: ${c.clientId}`);
      if (c.clientSecret) console.log(`client_secret: ${c.clientSecret}`);
      console.log(`scope: ${[c.metadata.scope, c.metadata.smart_scope].filter(Boolean).join(' ')}`);
      const launchUri = c.metadata.initiate_login_uri ?? c.metadata[DEV_LAUNCH_URI];
      if (launchUri) console.log(`launch URL: ${String(launchUri)}`);
      return 0;
    } finally {
      auth.close();
    }
  }
  if (sub === 'list' && rest[0]) {
    for (const c of await listClients(deps.db, rest[0])) {
      const m = c.metadata;
      console.log(`${c.clientId}\t${m.token_endpoint_auth_method}\t${m.client_name ?? ''}\t${[m.scope, m.smart_scope].filter(Boolean).join(' ')}`);
    }
    return 0;
  }
  if (sub === 'remove' && rest[0]) {
    if (!(await deleteClient(deps.db, rest[0]))) {
      console.error(`error: no client '${rest[0]}'`);
      return 1;
    }
    console.log(`client ${rest[0]} removed`);
    return 0;
  }
  if (sub === 'initial-token') {
    const { values, positionals } = parseArgs({ args: rest, options: { scope: { type: 'string' }, ttl: { type: 'string' } }, allowPositionals: true });
    const ttl = Number(values.ttl ?? 86400);
    if (!positionals[0] || !Number.isInteger(ttl) || ttl < 60) {
      console.error('usage: client initial-token <tenant> [--scope "<ceiling>"] [--ttl <seconds>]');
      return 2;
    }
    const { DEFAULT_REGISTRATION_SCOPE } = await import('../auth/smart-config.js');
    const t = await issueRegistrationToken(deps, positionals[0], values.scope ?? DEFAULT_REGISTRATION_SCOPE, 'cli', ttl);
    // like `token`: the token alone on stdout, what it is for on stderr
    console.error(`single use, registers one client to ${positionals[0]}: POST ${t.registration_endpoint} with Authorization: Bearer <token>`);
    console.error(`scope ceiling: ${t.scope}\nexpires in ${t.expires_in} s`);
    console.log(t.initial_access_token);
    return 0;
  }
  console.error(AUTH_USAGE);
  return 2;
}

async function keysCommand(deps: Deps, sub: string | undefined, rest: string[]): Promise<number> {
  if (sub === 'list') {
    for (const k of await allKeys(deps.db)) {
      const state = !k.supersededAt ? 'signing' : k.retireAt && k.retireAt <= new Date() ? 'retired' : `verifying until ${k.retireAt?.toISOString()}`;
      console.log(`${k.kid}\t${k.alg}\t${k.createdAt.toISOString()}\t${state}`);
    }
    return 0;
  }
  if (sub === 'rotate') {
    const { values } = parseArgs({ args: rest, options: { 'retire-after-hours': { type: 'string' } } });
    const hours = Number(values['retire-after-hours'] ?? 24);
    if (!Number.isFinite(hours) || hours < 0) {
      console.error('usage: keys rotate [--retire-after-hours 24]');
      return 2;
    }
    const kid = await rotateSigningKey(deps.db, new Date(Date.now() + hours * 3_600_000));
    console.log(`new signing key ${kid}; the previous keys verify for ${hours} more hours; running servers switch within 30 s`);
    return 0;
  }
  if (sub === 'retire' && rest[0]) {
    if (!(await retireKey(deps.db, rest[0]))) {
      console.error(`error: no key '${rest[0]}'`);
      return 1;
    }
    console.log(`key ${rest[0]} retired: tokens it signed are refused from now on (running servers: within 30 s)`);
    return 0;
  }
  console.error(AUTH_USAGE);
  return 2;
}
