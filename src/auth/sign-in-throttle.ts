// The per-address sign-in throttle (issue 8): at most AUTH_IP_FAILURES failed sign-ins per client address per
// AUTH_LOCKOUT_MINUTES, checked before any account is looked at. In this process's memory: with several processes
// an address gets that many per process (docs/auth-design.md, "Lockout").
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The address a sign-in is counted under (Express's req.ip: X-Forwarded-For only from TRUSTED_PROXIES, or TRUST_PROXY).
 * IPv4-mapped IPv6 is plain IPv4; other IPv6 addresses count per /64, the block one subscriber usually holds, so
 * rotating through one's own addresses does not reset the count.
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(ip)) return ip;
  const bare = ip.split('%')[0];
  if (!isIPv6(bare)) return ip.slice(0, 100);
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros. */
function ipv6Groups(ip: string): string[] {
  // a trailing dotted quad (::1.2.3.4, 64:ff9b::1.2.3.4) is the last two groups
  const quad = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  const text = quad ? `${ip.slice(0, quad.index)}${((+quad[1] << 8) | +quad[2]).toString(16)}:${((+quad[3] << 8) | +quad[4]).toString(16)}` : ip;
  const [head, tail] = text.split('::');
  const split = (g: string | undefined) => (g ? g.split(':') : []);
  const h = split(head);
  const t = split(tail);
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/** A claimed slot: `release()` when the attempt turned out not to be a failure (right answer, or refused unchecked). */
export type Slot = { ok: true; release(): void } | { ok: false; until: Date };

/**
 * Failed sign-ins per address in fixed windows (the first attempt opens one). A slot is taken BEFORE the attempt is
 * checked and given back unless it fails, so a burst of parallel guesses cannot exceed the limit either.
 */
export class AddressThrottle {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    /** Most addresses remembered; past it the oldest windows are forgotten (memory stays bounded). */
    private readonly maxAddresses = 100_000,
  ) {}

  claim(address: string): Slot {
    const t = this.now();
    let w = this.windows.get(address);
    if (!w || w.resetAt <= t) {
      w = { failures: 0, resetAt: t + this.windowMs };
      this.windows.delete(address); // re-inserted last: the map stays in window order for pruning
      this.windows.set(address, w);
      this.prune();
    }
    if (w.failures >= this.limit) return { ok: false, until: new Date(w.resetAt) };
    w.failures++;
    const window = w;
    let released = false;
    return {
      ok: true,
      release: () => {
        // a slot of a window that has since been replaced is not given back to the new one
        if (!released && this.windows.get(address) === window) window.failures--;
        released = true;
      },
    };
  }

  /** Forgets the oldest windows (those nearest their end) while more than maxAddresses are remembered. */
  private prune(): void {
    for (const address of this.windows.keys()) {
      if (this.windows.size <= this.maxAddresses) break;
      this.windows.delete(address);
    }
  }
}
