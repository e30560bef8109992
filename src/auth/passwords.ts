// Password hashing (argon2id, OWASP's recommended parameters) and the password policy.
import { hash, verify } from '@node-rs/argon2';

/** argon2id, 19 MiB memory, 2 passes, 1 lane (OWASP Password Storage Cheat Sheet minimum). */
const OPTIONS = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

const MIN_PASSWORD_LENGTH = 12;

/** Why a password is refused, or undefined when it meets the policy. */
export function passwordProblem(password: string, username?: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `a password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  if ([...password].length > 256) return 'a password may have at most 256 characters';
  if (username && password.toLowerCase().includes(username.toLowerCase())) return 'a password may not contain the username';
  if (/^(.)\1+$/.test(password)) return 'a password may not be one repeated character';
  return undefined;
}

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
