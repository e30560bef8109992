// The SSRF guard on client JWKS URLs: special-use addresses are refused, public ones pass.
import { describe, expect, it } from '@jest/globals';
import { assertPublicUrl, isSpecialUseAddress } from '../../src/auth/outbound.js';

describe('isSpecialUseAddress', () => {
  it.each(['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1'])('%s is special-use', (a) => {
    expect(isSpecialUseAddress(a)).toBe(true);
  });
  it.each(['8.8.8.8', '172.32.0.1', '192.169.0.1', '1.1.1.1', '2606:4700:4700::1111'])('%s is public', (a) => {
    expect(isSpecialUseAddress(a)).toBe(false);
  });
});

describe('assertPublicUrl', () => {
  it('refuses loopback, private and link-local hosts and non-http schemes', async () => {
    for (const u of ['http://127.0.0.1:9/jwks', 'http://localhost/jwks', 'https://[::1]/jwks', 'http://169.254.169.254/latest/meta-data', 'file:///etc/passwd']) {
      await expect(assertPublicUrl(u)).rejects.toThrow(/refused/);
    }
  });
  it('lets a public IP literal through', async () => {
    await expect(assertPublicUrl('https://8.8.8.8/jwks.json')).resolves.toBeUndefined();
  });
});
