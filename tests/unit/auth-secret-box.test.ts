// The AES-256-GCM envelope for secrets at rest and the SECRETS_KEY formats (issue 8).
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/auth/secret-box.js';
import { decodeSecretsKey, loadConfig } from '../../src/config/index.js';

const box = new SecretBox(randomBytes(32));

describe('SecretBox (AES-256-GCM, version prefix v1:)', () => {
  it('round-trips, and the same plaintext seals differently each time (random IV)', () => {
    const a = box.seal('the secret', 'ctx');
    const b = box.seal('the secret', 'ctx');
    expect(a).toMatch(/^v1:[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('the secret');
    expect(box.open(a, 'ctx')).toBe('the secret');
    expect(box.open(box.seal('', 'ctx'), 'ctx')).toBe('');
    expect(box.open(box.seal('ünïcödé ✓', 'ctx'), 'ctx')).toBe('ünïcödé ✓');
  });

  it('reads a value not in the envelope format as plaintext (rows written before encryption at rest)', () => {
    expect(box.isSealed('JBSWY3DPEHPK3PXP')).toBe(false);
    expect(box.open('JBSWY3DPEHPK3PXP', 'ctx')).toBe('JBSWY3DPEHPK3PXP');
  });

  it('refuses another key, another context, and any tampering, without echoing the value', () => {
    const sealed = box.seal('the secret', 'oauth_client.client_secret:a');
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'oauth_client.client_secret:a')).toThrow(/cannot be decrypted/);
    expect(() => box.open(sealed, 'oauth_client.client_secret:b')).toThrow(/cannot be decrypted/);
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    for (const i of [0, 12, 28, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[i] ^= 1;
      expect(() => box.open(`v1:${bad.toString('base64url')}`, 'oauth_client.client_secret:a')).toThrow(/cannot be decrypted/);
    }
    expect(() => box.open('v1:AAAA', 'x')).toThrow(/cannot be decrypted/);
    try {
      box.open(sealed, 'wrong');
    } catch (err) {
      expect((err as Error).message).not.toContain(sealed);
    }
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('SECRETS_KEY', () => {
  const key = randomBytes(32);
  it('is 64 hex digits or base64/base64url of 32 bytes', () => {
    expect(decodeSecretsKey(key.toString('hex'))).toEqual(key);
    expect(decodeSecretsKey(key.toString('base64'))).toEqual(key);
    expect(decodeSecretsKey(`${key.toString('base64url')}\n`)).toEqual(key);
    for (const bad of ['', 'short', randomBytes(16).toString('hex'), randomBytes(31).toString('base64'), randomBytes(33).toString('base64'), 'z'.repeat(64)]) {
      expect(decodeSecretsKey(bad)).toBeUndefined();
    }
  });

  it('a bad value stops the process at boot without printing it; unset means the key file', () => {
    expect(loadConfig({ SECRETS_KEY: key.toString('base64') }).secretsKey).toEqual(key);
    expect(loadConfig({}).secretsKey).toBeUndefined();
    expect(() => loadConfig({ SECRETS_KEY: 'not-a-key-but-a-secret-anyway' })).toThrow(/SECRETS_KEY must be 32 bytes/);
    try {
      loadConfig({ SECRETS_KEY: 'not-a-key-but-a-secret-anyway' });
    } catch (err) {
      expect((err as Error).message).not.toContain('not-a-key-but-a-secret-anyway');
    }
  });
});
