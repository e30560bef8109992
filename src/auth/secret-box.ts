// Secrets at rest (issue 8): an AES-256-GCM envelope for signing keys, the cookie key, client secrets and TOTP
// secrets, with a key that lives outside the database (SECRETS_KEY or <DATA_DIR>/secrets.key, see secrets-key.ts).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Sealer } from '../store/auth-sealing.js';

/** Envelope version 1: `v1:` + base64url(12-byte random IV | 16-byte GCM tag | ciphertext). */
const V1 = 'v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox implements Sealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the secrets key must be 32 bytes');
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    // the context (table, column, row key) is authenticated: a ciphertext moved to another row fails to open
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return V1 + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  open(stored: string, context: string): string {
    if (!this.isSealed(stored)) return stored; // written before encryption at rest: re-sealed at its next write
    const raw = Buffer.from(stored.slice(V1.length), 'base64url');
    try {
      if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('short');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      // never the value or the key in the message
      throw new Error(`a secret stored in the database (${context.split(':')[0]}) cannot be decrypted: is SECRETS_KEY (or DATA_DIR/secrets.key) the key it was written with?`);
    }
  }

  isSealed(stored: string): boolean {
    return stored.startsWith(V1);
  }
}
