// The secrets key file (issue 8): without SECRETS_KEY, <DATA_DIR>/secrets.key is created on first start, mode 0600,
// and many processes starting at once on one DATA_DIR (parallel test workers, several servers) end up with one key.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSecretsKey } from '../../../src/auth/secrets-key.js';
import { createLogger } from '../../../src/platform/log.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const log = createLogger('silent');

/** A separate node process that loads the key for `dataDir` and prints it (base64). */
function keyFromProcess(dataDir: string): Promise<string> {
  const script = `import { loadSecretsKey } from './src/auth/secrets-key.ts'; import { createLogger } from './src/platform/log.ts';
const key = await loadSecretsKey({ dataDir: process.env.KEY_DIR, secretsKey: undefined }, createLogger('silent'), false);
console.log(key.toString('base64'));`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, KEY_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

describe('the secrets key file', () => {
  it('is created once, mode 0600, by whichever of many processes starting together comes first; all of them read that key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenfhir-key-'));
    const dataDir = join(dir, 'data'); // not there yet: created too
    try {
      const keys = await Promise.all(Array.from({ length: 6 }, () => keyFromProcess(dataDir)));
      expect(new Set(keys).size).toBe(1);
      expect(Buffer.from(keys[0], 'base64')).toHaveLength(32);
      const file = join(dataDir, 'secrets.key');
      expect(readFileSync(file, 'utf8').trim()).toBe(keys[0]);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // and a later start reads the same key
      expect((await loadSecretsKey({ dataDir, secretsKey: undefined }, log, false)).toString('base64')).toBe(keys[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('SECRETS_KEY wins over the file; a file without a key stops the start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenfhir-key-'));
    try {
      const key = Buffer.alloc(32, 7);
      expect(await loadSecretsKey({ dataDir: dir, secretsKey: key }, log, true)).toEqual(key);
      writeFileSync(join(dir, 'secrets.key'), 'not a key\n', { mode: 0o600 });
      await expect(loadSecretsKey({ dataDir: dir, secretsKey: undefined }, log, false)).rejects.toThrow(/does not hold a 32-byte key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
