// Requests the authorization server makes on a client's behalf (its JWKS URL): refused when the host is or resolves
// to a loopback, private, link-local or otherwise special-use address, so a registered client cannot make the server
// probe its own network (SSRF). oidc-provider's own guard does not set up on Node 20 (it says so in a warning).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

const V4_BLOCKS: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];

function v4(addr: string): number {
  return addr.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0;
}

export function isSpecialUseAddress(addr: string): boolean {
  if (isIP(addr) === 4) {
    const n = v4(addr);
    return V4_BLOCKS.some(([base, bits]) => ((n ^ v4(base)) >>> (32 - bits)) === 0);
  }
  const a = addr.toLowerCase();
  if (a === '::' || a === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return isSpecialUseAddress(mapped[1]);
  // unique local fc00::/7, link-local fe80::/10, multicast ff00::/8, documentation 2001:db8::/32
  return /^f[cd]/.test(a) || /^fe[89ab]/.test(a) || a.startsWith('ff') || a.startsWith('2001:db8:');
}

/** Throws when `url` is not http(s) or its host is (or resolves to) a special-use address. */
export async function assertPublicUrl(url: string): Promise<void> {
  const u = new URL(url);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`refused to fetch ${u.protocol} URL`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((r) => r.address);
  if (addresses.some(isSpecialUseAddress)) throw new Error(`refused to fetch ${u.host}: it resolves to a private or special-use address`);
}
