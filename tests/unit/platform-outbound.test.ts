// The SSRF guard's address table: every special-use form is refused (IPv6 forms that embed an IPv4 address are judged
// by that address), public unicast passes.
import { describe, expect, it } from '@jest/globals';
import { isSpecialUseAddress, outboundFetch, type OutboundError } from '../../src/platform/outbound.js';

describe('isSpecialUseAddress: IPv4', () => {
  it.each([
    ['0.0.0.0', 'this network'], ['0.1.2.3', 'this network'], ['10.1.2.3', 'private'], ['100.64.0.1', 'shared (CGN)'],
    ['100.127.255.255', 'shared (CGN)'], ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['169.254.169.254', 'link-local (cloud metadata)'],
    ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.0.0.8', 'IETF protocol assignments'], ['192.0.2.1', 'TEST-NET-1'],
    ['192.88.99.1', '6to4 relay anycast'], ['192.168.1.1', 'private'], ['198.18.0.1', 'benchmarking'], ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'TEST-NET-2'], ['203.0.113.9', 'TEST-NET-3'], ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'], ['255.255.255.255', 'broadcast'],
  ])('%s is special-use (%s)', (a) => {
    expect(isSpecialUseAddress(a)).toBe(true);
  });
  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '192.169.0.1', '100.128.0.1', '198.20.0.1', '223.255.255.255'])('%s is public', (a) => {
    expect(isSpecialUseAddress(a)).toBe(false);
  });
});

describe('isSpecialUseAddress: IPv6', () => {
  it.each([
    ['::', 'unspecified'], ['::1', 'loopback'], ['0:0:0:0:0:0:0:1', 'loopback, uncompressed'], ['[::1]', 'loopback, bracketed'],
    ['::ffff:127.0.0.1', 'mapped loopback, dotted'], ['::ffff:7f00:1', 'mapped loopback, hex'], ['::FFFF:7F00:0001', 'mapped loopback, upper case'],
    ['::ffff:a00:1', 'mapped 10.0.0.1'], ['::ffff:a9fe:a9fe', 'mapped 169.254.169.254'], ['0:0:0:0:0:ffff:c0a8:101', 'mapped 192.168.1.1, uncompressed'],
    ['::ffff:0:7f00:1', 'IPv4-translated loopback'], ['::7f00:1', 'IPv4-compatible loopback'], ['::127.0.0.1', 'IPv4-compatible, dotted'],
    ['::808:808', 'IPv4-compatible (deprecated, never public)'],
    ['64:ff9b::7f00:1', 'NAT64 to 127.0.0.1'], ['64:ff9b::10.0.0.1', 'NAT64 to 10.0.0.1, dotted'], ['64:ff9b::a9fe:a9fe', 'NAT64 to metadata'],
    ['64:ff9b:1::808:808', 'local-use NAT64'], ['2002:7f00:1::', '6to4 of 127.0.0.1'], ['2002:c0a8:101::1', '6to4 of 192.168.1.1'],
    ['2002:a00:1:1::5', '6to4 of 10.0.0.1'], ['2001::1', 'Teredo'], ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001:2::1', 'benchmarking'], ['2001:db8::1', 'documentation'], ['3fff::1', 'documentation (RFC 9637)'], ['100::1', 'discard-only'],
    ['fc00::1', 'unique local'], ['fd12:3456::1', 'unique local'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local with zone id'],
    ['[fe80::abcd%25en0]', 'bracketed with zone id'], ['febf::1', 'link-local upper end'], ['fec0::1', 'site-local'], ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'], ['5f00::1', 'SRv6'], ['4000::1', 'unallocated (outside 2000::/3)'],
  ])('%s is special-use (%s)', (a) => {
    expect(isSpecialUseAddress(a)).toBe(true);
  });
  it.each([
    '2606:4700:4700::1111', '2001:4860:4860::8888', '[2001:4860:4860::8888]', '::ffff:808:808', '::ffff:8.8.8.8',
    '64:ff9b::808:808', '2002:808:808::1', '2a00:1450:4001:82b::200e',
  ])('%s is public', (a) => {
    expect(isSpecialUseAddress(a)).toBe(false);
  });
});

describe('isSpecialUseAddress: text that is not a plain address is refused, not guessed at', () => {
  it.each(['localhost', '', '1.2.3', '1.2.3.4.5', '010.0.0.1', '0x7f.0.0.1', '256.1.1.1', '2130706433', '1::2::3', '1:2:3:4:5:6:7:8:9', ':::', '::ffff:1.2.3.999', 'g::1'])('%j', (a) => {
    expect(isSpecialUseAddress(a)).toBe(true);
  });
});

describe('outboundFetch: URLs refused before any lookup', () => {
  it.each(['file:///etc/passwd', 'ftp://example.com/x', 'gopher://example.com/', 'data:text/plain,hi', 'not a url', 'https://user:pw@example.com/'])('%s', async (u) => {
    await expect(outboundFetch(u)).rejects.toMatchObject({ name: 'OutboundError', code: 'URL_REFUSED' });
  });
  it('refuses IP literals the URL parser normalises (decimal, hex, mapped) and names the host, not the query', async () => {
    for (const u of ['http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/', 'http://169.254.169.254/latest/meta-data?token=s3cret']) {
      const err = await outboundFetch(u).then(() => undefined, (e: unknown) => e as OutboundError);
      expect(err).toMatchObject({ code: 'ADDRESS_REFUSED' });
      expect(err?.message).not.toContain('s3cret');
      expect(err?.message).not.toContain('meta-data');
    }
  });
});
