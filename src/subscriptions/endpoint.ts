// Where a rest-hook endpoint may lead: public addresses; loopback only with SUBSCRIPTIONS_ALLOW_LOOPBACK (development
// and tests); private addresses only when SUBSCRIPTIONS_ALLOW_HOSTS names the host or a CIDR holding the address.
// Checked when the subscription is written and again at every delivery (DNS answers change).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config/index.js';
import { FhirError } from '../core/errors.js';
import { isSpecialUseAddress } from '../platform/outbound.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function family(addr: string): 'ipv4' | 'ipv6' {
  return isIP(addr) === 6 ? 'ipv6' : 'ipv4';
}

const cache = new WeakMap<Config, (address: string, hostname: string) => boolean>();

/** The allow-list as outboundFetch's `allowAddress`: which special-use addresses an endpoint may still reach. */
export function endpointAllows(config: Config): (address: string, hostname: string) => boolean {
  let fn = cache.get(config);
  if (fn) return fn;
  const hosts = new Set<string>();
  const nets = new BlockList();
  for (const entry of config.subscriptionsAllowHosts) {
    const m = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (m && isIP(m[1])) nets.addSubnet(m[1], Number(m[2]), family(m[1]));
    else if (isIP(entry)) nets.addAddress(entry, family(entry));
    else hosts.add(entry.toLowerCase());
  }
  fn = (address, hostname) => {
    const a = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    const f = family(a);
    if (config.subscriptionsAllowLoopback && LOOPBACK.check(a, f)) return true;
    return hosts.has(hostname.toLowerCase()) || nets.check(a, f);
  };
  cache.set(config, fn);
  return fn;
}

/**
 * Refuses (400) an endpoint whose host is, or resolves to, an address deliveries may not reach. A host that does not
 * resolve yet is accepted (its receiver may come later): every delivery resolves and checks it again.
 */
export async function checkEndpoint(url: string, config: Config): Promise<void> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return;
  }
  const allows = endpointAllows(config);
  if (addresses.some((a) => isSpecialUseAddress(a) && !allows(a, host))) {
    throw new FhirError('invalid', `channel.endpoint host ${host} is or resolves to a private or special-use address (allow it with SUBSCRIPTIONS_ALLOW_HOSTS)`, {
      code: 'SUBSCRIPTION_ENDPOINT_PRIVATE',
      expression: ['Subscription.channel.endpoint'],
    });
  }
}
