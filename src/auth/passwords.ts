// Password hashing (argon2id, OWASP's recommended parameters). The password policy (the server's rules and each
// tenant's) is src/tenancy/security-policy.ts tenantPasswordProblem.
import { hash, verify } from '@node-rs/argon2';

/** argon2id, 19 MiB memory, 2 passes, 1 lane (OWASP Password Storage Cheat Sheet minimum). */
const OPTIONS = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/**
 * A hash to verify against when the username is unknown, so an unknown user costs the same time as a wrong
 * password (no user enumeration by timing).
 */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword('not-a-real-password-0000');
  return dummy;
}
