// Secrets written before encryption at rest (issue 8) are read as plaintext and sealed at their next write; signing
// keys, the cookie key and most client secrets are never written again, so the server seals what is left once at start.
import type { Db } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { sealStoredKeys } from '../store/auth-keys.js';
import { sealStoredClientSecrets } from '../store/auth-payloads.js';
import { sealStoredTotpSecrets } from '../store/auth-users.js';
import { signInTenantIds } from '../store/tenants.js';

/** Seals every secret still stored in clear; returns how many. Safe to run from several processes at once. */
export async function sealStoredSecrets(db: Db, log: Logger): Promise<number> {
  let sealed = (await sealStoredKeys(db)) + (await sealStoredClientSecrets(db));
  for (const tenantId of await signInTenantIds(db)) sealed += await sealStoredTotpSecrets(db, tenantId);
  if (sealed) log.info({ sealed }, 'encrypted secrets that were stored in clear');
  return sealed;
}
