// Where the key that encrypts secrets at rest comes from: SECRETS_KEY, or else <DATA_DIR>/secrets.key, created on
// first start. It must never be stored in the database it protects (issue 8).
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeSecretsKey, type Config } from '../config/index.js';
import type { Logger } from '../platform/log.js';

const SECRETS_KEY_FILE = 'secrets.key';

/**
 * The secrets key: SECRETS_KEY when set, otherwise the key file under DATA_DIR (read, or created on first start).
 * On PostgreSQL a key file is a trap for several processes on several machines (each would create its own), so the
 * server says so.
 */
export async function loadSecretsKey(config: Pick<Config, 'secretsKey' | 'dataDir'>, log: Logger, onPostgres: boolean): Promise<Buffer> {
  if (config.secretsKey) return config.secretsKey;
  const file = join(config.dataDir, SECRETS_KEY_FILE);
  const key = await readOrCreateKeyFile(file, log);
  if (onPostgres) {
    log.warn({ file }, 'SECRETS_KEY is unset: secrets in PostgreSQL are encrypted with the key in this file; every process sharing the database must use the same key, so set SECRETS_KEY');
  }
  return key;
}

/**
 * Race-free for many processes starting at once on one DATA_DIR (parallel test workers, several servers): exactly
 * one creates the file (`wx` fails for the others with EEXIST), everyone else reads what it wrote.
 */
async function readOrCreateKeyFile(file: string, log: Logger): Promise<Buffer> {
  mkdirSync(dirname(file), { recursive: true });
  let fd: number | undefined;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (fd !== undefined) {
    const key = randomBytes(32);
    try {
      writeSync(fd, `${key.toString('base64')}\n`);
    } finally {
      closeSync(fd);
    }
    log.info({ file }, 'created the secrets key file (keep it, and back it up apart from the database)');
    return key;
  }
  if (statSync(file).mode & 0o077) log.warn({ file }, 'the secrets key file is readable by other users: chmod 600 it');
  return readKeyFile(file);
}

/** Reads the key file; an empty file is one another process has just created and is about to write. */
async function readKeyFile(file: string): Promise<Buffer> {
  for (let attempt = 0; ; attempt++) {
    const text = readFileSync(file, 'utf8');
    const key = decodeSecretsKey(text);
    if (key) return key;
    if (text.trim() !== '' || attempt >= 100) throw new Error(`${file} does not hold a 32-byte key (base64 or 64 hex digits)`);
    await sleep(20);
  }
}
