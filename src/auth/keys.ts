// The authorization server's signing keys: generated on first start and kept in the database (so every process and
// every restart signs and verifies with the same keys), rotated by CLI, published as the JWKS.
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Db } from '../platform/db.js';
import type { SigningKeys } from '../core/deps.js';
import type { Logger } from '../platform/log.js';
import { insertKey, liveKeys, type StoredKey } from '../store/auth-keys.js';

/** Access tokens and id_tokens are RS256 (SMART: "sign ID tokens with RSA SHA-256"). */
const SIGNING_ALG = 'RS256';

export function generateSigningKey(): Omit<StoredKey, 'createdAt' | 'supersededAt' | 'retireAt'> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(12).toString('base64url');
  const base = { kid, alg: SIGNING_ALG, use: 'sig' };
  return {
    kid,
    alg: SIGNING_ALG,
    privateJwk: { ...privateKey.export({ format: 'jwk' }), ...base },
    publicJwk: { ...publicKey.export({ format: 'jwk' }), ...base },
  };
}

/** Creates the first signing key if the database has none (several processes may race: one wins). */
export async function ensureSigningKey(db: Db, log: Logger): Promise<void> {
  const live = await liveKeys(db);
  if (live.some((k) => !k.supersededAt)) return;
  if (await insertKey(db, generateSigningKey())) log.info('generated the first signing key');
}

/** Rotation: a new key signs from now on; the old ones keep verifying until `retireAt` (tokens already issued). */
export async function rotateSigningKey(db: Db, retireAt: Date): Promise<string> {
  const key = generateSigningKey();
  await insertKey(db, key, { supersede: true, retireAt });
  return key.kid;
}

/**
 * The live keys of one process. `signing()` is what oidc-provider signs with (the active key first); `publicKey(kid)`
 * serves token verification. `refresh()` re-reads the table (rotation by another process or the CLI).
 */
export class KeyRing implements SigningKeys {
  private keys: StoredKey[] = [];
  private publicKeys = new Map<string, KeyObject>();
  private lastLoad = 0;
  /** Changes whenever the set of live keys changes (the provider is rebuilt then). */
  fingerprint = '';

  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async refresh(): Promise<boolean> {
    const keys = await liveKeys(this.db);
    this.lastLoad = this.clock().getTime();
    const fp = keys.map((k) => `${k.kid}:${k.supersededAt ? 's' : 'a'}:${k.retireAt?.getTime() ?? ''}`).join(',');
    if (fp === this.fingerprint) return false;
    this.keys = keys;
    this.publicKeys = new Map(keys.map((k) => [k.kid, createPublicKey({ key: k.publicJwk as never, format: 'jwk' })]));
    this.fingerprint = fp;
    return true;
  }

  /** Private JWKs for oidc-provider: the active signer first (it signs), the superseded ones after (JWKS only). */
  signing(): Record<string, unknown>[] {
    return this.keys.map((k) => k.privateJwk);
  }

  /** Public JWKS document. */
  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  activeKid(): string | undefined {
    return this.keys.find((k) => !k.supersededAt)?.kid;
  }

  activePrivateJwk(): Record<string, unknown> | undefined {
    return this.keys.find((k) => !k.supersededAt)?.privateJwk;
  }

  /**
   * The verification key for `kid`. An unknown kid re-reads the table (a key rotated in by another process), at
   * most once a second so forged kids cannot hammer the database.
   */
  async publicKey(kid: string | undefined): Promise<KeyObject | undefined> {
    if (!kid) return undefined;
    const hit = this.publicKeys.get(kid);
    if (hit) {
      const k = this.keys.find((x) => x.kid === kid);
      if (!k?.retireAt || k.retireAt.getTime() > this.clock().getTime()) return hit;
      return undefined;
    }
    if (this.clock().getTime() - this.lastLoad < 1000) return undefined;
    await this.refresh();
    return this.publicKeys.get(kid);
  }
}
