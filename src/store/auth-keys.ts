// Signing keys and server secrets of the authorization server (platform tables, migrations/0004_auth.sql).
import type { Db, Queryable } from '../platform/db.js';

export interface StoredKey {
  kid: string;
  alg: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  createdAt: Date;
  supersededAt: Date | null;
  retireAt: Date | null;
}

type KeyRow = { kid: string; alg: string; private_jwk: Record<string, unknown>; public_jwk: Record<string, unknown>; created_at: Date; superseded_at: Date | null; retire_at: Date | null };

const toKey = (r: KeyRow): StoredKey => ({
  kid: r.kid,
  alg: r.alg,
  privateJwk: r.private_jwk,
  publicJwk: r.public_jwk,
  createdAt: r.created_at,
  supersededAt: r.superseded_at,
  retireAt: r.retire_at,
});

/** Keys that still verify (not past retire_at), newest first; the first unsuperseded one signs. */
export async function liveKeys(db: Db): Promise<StoredKey[]> {
  const r = await db.platform((q) =>
    q.query<KeyRow>('SELECT * FROM signing_key WHERE retire_at IS NULL OR retire_at > now() ORDER BY (superseded_at IS NULL) DESC, created_at DESC, kid'),
  );
  return r.rows.map(toKey);
}

export async function allKeys(db: Db): Promise<StoredKey[]> {
  return (await db.platform((q) => q.query<KeyRow>('SELECT * FROM signing_key ORDER BY created_at DESC, kid'))).rows.map(toKey);
}

const KEY_LOCK = 727_004;

/**
 * Inserts `key` as the signing key. With `supersede`, the current signers stop signing now and stop verifying at
 * `retireAt`; without it, the key is inserted only if no live signer exists (first start, several processes racing).
 * Returns whether the key was inserted.
 */
export async function insertKey(db: Db, key: Omit<StoredKey, 'createdAt' | 'supersededAt' | 'retireAt'>, opts: { supersede?: boolean; retireAt?: Date } = {}): Promise<boolean> {
  return db.platformTx(async (q: Queryable) => {
    await q.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    if (opts.supersede) {
      await q.query('UPDATE signing_key SET superseded_at = now(), retire_at = $1 WHERE superseded_at IS NULL', [opts.retireAt ?? new Date()]);
    } else {
      const live = await q.query('SELECT 1 FROM signing_key WHERE superseded_at IS NULL AND (retire_at IS NULL OR retire_at > now())');
      if (live.rowCount) return false;
    }
    await q.query('INSERT INTO signing_key (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)', [key.kid, key.alg, key.privateJwk, key.publicJwk]);
    return true;
  });
}

/** Stops a key verifying at once (compromise). */
export async function retireKey(db: Db, kid: string): Promise<boolean> {
  const r = await db.platform((q) => q.query('UPDATE signing_key SET superseded_at = coalesce(superseded_at, now()), retire_at = now() WHERE kid = $1', [kid]));
  return (r.rowCount ?? 0) > 0;
}

/** A named server secret, created with `make()` the first time (first writer wins across processes). */
export async function ensureSecret(db: Db, name: string, make: () => string): Promise<string> {
  return db.platform(async (q) => {
    await q.query('INSERT INTO auth_secret (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, make()]);
    const r = await q.query<{ value: string }>('SELECT value FROM auth_secret WHERE name = $1', [name]);
    return r.rows[0].value;
  });
}
