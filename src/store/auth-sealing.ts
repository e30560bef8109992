// The key that seals the authorization server's secrets at rest (issue 8), as the auth store reaches it: bound to
// the Db value every store function already receives, so the encryption stays inside src/store/auth-*.ts.
import type { Db } from '../platform/db.js';

/**
 * Encrypts and decrypts one secret column value. `context` names the value's place (table, column, row key) and is
 * authenticated with it, so a ciphertext copied into another row does not open there.
 */
export interface Sealer {
  seal(plain: string, context: string): string;
  /** The plaintext of a sealed value; a value not in the sealed format is returned as it is (rows written before). */
  open(stored: string, context: string): string;
  isSealed(stored: string): boolean;
}

// Keyed by the Db value rather than passed to each call: callers outside src/auth (the CLI, the benchmarks) keep
// calling the store with the Db alone, and a Db without a key can never write a secret in clear (sealerOf throws).
const sealers = new WeakMap<Db, Sealer>();

/** Binds the secrets key to `db` (compose.ts, once per Db). */
export function bindSealer(db: Db, sealer: Sealer): void {
  sealers.set(db, sealer);
}

export function sealerOf(db: Db): Sealer {
  const s = sealers.get(db);
  if (!s) throw new Error('no secrets key is bound to this database handle (build it with buildDeps)');
  return s;
}
