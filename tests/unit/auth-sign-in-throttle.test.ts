// The per-address sign-in throttle and the address it counts under (issue 8).
import { describe, expect, it } from '@jest/globals';
import { AddressThrottle, addressKey } from '../../src/auth/sign-in-throttle.js';

describe('addressKey', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6, and counts other IPv6 per /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2::a')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:0:0:b')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::203.0.113.7')).toBe('64:ff9b:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });
});

describe('AddressThrottle', () => {
  function clock() {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  it('allows `limit` failures per address per window, then refuses until the window ends', () => {
    const c = clock();
    const th = new AddressThrottle(3, 60_000, c.now);
    for (let i = 0; i < 3; i++) expect(th.claim('a').ok).toBe(true);
    const refused = th.claim('a');
    expect(refused).toEqual({ ok: false, until: new Date(1_000_000 + 60_000) });
    expect(th.claim('b').ok).toBe(true); // another address
    c.advance(59_999);
    expect(th.claim('a').ok).toBe(false);
    c.advance(1);
    expect(th.claim('a').ok).toBe(true); // a new window
  });

  it('a released slot (not a failure) is given back, once; a slot of an earlier window is not given to the next', () => {
    const c = clock();
    const th = new AddressThrottle(2, 60_000, c.now);
    const s1 = th.claim('a');
    const s2 = th.claim('a');
    expect(th.claim('a').ok).toBe(false);
    if (!s1.ok || !s2.ok) throw new Error('expected slots');
    s1.release();
    s1.release();
    expect(th.claim('a').ok).toBe(true);
    expect(th.claim('a').ok).toBe(false);
    c.advance(60_000);
    const fresh = th.claim('a');
    s2.release(); // from the old window: no effect on the new one
    expect(fresh.ok).toBe(true);
    expect(th.claim('a').ok).toBe(true);
    expect(th.claim('a').ok).toBe(false);
  });

  it('remembers at most maxAddresses, forgetting the oldest windows first', () => {
    const c = clock();
    const th = new AddressThrottle(1, 60_000, c.now, 3);
    for (const a of ['a', 'b', 'c', 'd']) {
      expect(th.claim(a).ok).toBe(true);
      c.advance(1);
    }
    expect(th.claim('a').ok).toBe(true); // 'a' was forgotten when 'd' came
    expect(th.claim('d').ok).toBe(false);
  });
});
