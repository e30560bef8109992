// Signing keys and server secrets of the authorization server (platform tables, migrations/0004_auth.sql). Private
// keys and secrets are stored sealed (src/store/auth-sealing.ts); the application role only reads these tables, so
// every write goes through the admin (owner) connection (migrations/0005_secrets.sql).
import type { Db, Queryable } from '../platform/db.js';
import { sealerOf, type Sealer } from './auth-sealing.js';

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

/** A sealed private JWK is stored as `{"enc": "v1:..."}` (the column stays jsonb); anything else is a plain JWK. */
const keyContext = (kid: string) => `signing_key.private_jwk:${kid}`;
const sealJwk = (s: Sealer, kid: string, jwk: Record<string, unknown>) => ({ enc: s.seal(JSON.stringify(jwk), keyContext(kid)) });
const isSealedJwk = (jwk: Record<string, unknown>): jwk is { enc: string } => typeof jwk.enc === 'string' && Object.keys(jwk).length === 1;

const toKey = (s: Sealer, r: KeyRow): StoredKey => ({
  kid: r.kid,
  alg: r.alg,
  privateJwk: isSealedJwk(r.private_jwk) ? (JSON.parse(s.open(r.private_jwk.enc, keyContext(r.kid))) as Record<string, unknown>) : r.private_jwk,
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
  return r.rows.map((row) => toKey(sealerOf(db), row));
}

export async function allKeys(db: Db): Promise<StoredKey[]> {
  const rows = (await db.platform((q) => q.query<KeyRow>('SELECT * FROM signing_key ORDER BY created_at DESC, kid'))).rows;
  return rows.map((row) => toKey(sealerOf(db), row));
}

const KEY_LOCK = 727_004;

/**
 * Inserts `key` as the signing key. With `supersede`, the current signers stop signing now and stop verifying at
 * `retireAt`; without it, the key is inserted only if no live signer exists (first start, several processes racing).
 * Returns whether the key was inserted.
 */
export async function insertKey(db: Db, key: Omit<StoredKey, 'createdAt' | 'supersededAt' | 'retireAt'>, opts: { supersede?: boolean; retireAt?: Date } = {}): Promise<boolean> {
  const privateJwk = sealJwk(sealerOf(db), key.kid, key.privateJwk);
  return db.admin().tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    if (opts.supersede) {
      await q.query('UPDATE signing_key SET superseded_at = now(), retire_at = $1 WHERE superseded_at IS NULL', [opts.retireAt ?? new Date()]);
    } else {
      const live = await q.query('SELECT 1 FROM signing_key WHERE superseded_at IS NULL AND (retire_at IS NULL OR retire_at > now())');
      if (live.rowCount) return false;
    }
    await q.query('INSERT INTO signing_key (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)', [key.kid, key.alg, privateJwk, key.publicJwk]);
    return true;
  });
}

/** Stops a key verifying at once (compromise). */
export async function retireKey(db: Db, kid: string): Promise<boolean> {
  // least() skips a NULL and a superseded_at is never later than now(): an unsuperseded key's becomes now(), a
  // superseded one's stays. Not coalesce(): Citus refuses now() inside COALESCE or CASE in a write (issue 16).
  const r = await db.admin().query('UPDATE signing_key SET superseded_at = least(superseded_at, now()), retire_at = now() WHERE kid = $1', [kid]);
  return (r.rowCount ?? 0) > 0;
}

const secretContext = (name: string) => `auth_secret.value:${name}`;

/** A named server secret, created with `make()` the first time (first writer wins across processes). */
export async function ensureSecret(db: Db, name: string, make: () => string): Promise<string> {
  const s = sealerOf(db);
  await db.admin().query('INSERT INTO auth_secret (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, s.seal(make(), secretContext(name))]);
  const r = await db.platform((q) => q.query<{ value: string }>('SELECT value FROM auth_secret WHERE name = $1', [name]));
  return s.open(r.rows[0].value, secretContext(name));
}

/**
 * Seals the private keys and server secrets still stored in clear (written before encryption at rest): they are
 * never rewritten otherwise. Each row is replaced only if it is still the clear value read, so processes starting
 * together cannot overwrite each other. Returns how many rows were sealed.
 */
export async function sealStoredKeys(db: Db): Promise<number> {
  const s = sealerOf(db);
  const admin = db.admin();
  let sealed = 0;
  const keys = await admin.query<{ kid: string; private_jwk: Record<string, unknown> }>('SELECT kid, private_jwk FROM signing_key');
  for (const k of keys.rows.filter((row) => !isSealedJwk(row.private_jwk))) {
    const r = await admin.query('UPDATE signing_key SET private_jwk = $2 WHERE kid = $1 AND private_jwk = $3', [k.kid, sealJwk(s, k.kid, k.private_jwk), k.private_jwk]);
    sealed += r.rowCount ?? 0;
  }
  const secrets = await admin.query<{ name: string; value: string }>('SELECT name, value FROM auth_secret');
  for (const x of secrets.rows.filter((row) => !s.isSealed(row.value))) {
    const r = await admin.query('UPDATE auth_secret SET value = $2 WHERE name = $1 AND value = $3', [x.name, s.seal(x.value, secretContext(x.name)), x.value]);
    sealed += r.rowCount ?? 0;
  }
  return sealed;
}
