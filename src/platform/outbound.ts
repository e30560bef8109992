// Outbound HTTP for URLs that someone else chose (a client's JWKS URL): refuses special-use addresses, connects to
// exactly the address it checked, follows no redirects and caps time and size, so it cannot be turned against this
// server's own network (SSRF). Special-use blocks: RFC 6890 / IANA IPv4 and IPv6 Special-Purpose Address Registries.
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

export type OutboundErrorCode = 'URL_REFUSED' | 'ADDRESS_REFUSED' | 'TIMEOUT' | 'TOO_LARGE' | 'NETWORK';

/** Why an outbound request failed or was refused; the message names the host, never the URL (its query may carry secrets). */
export class OutboundError extends Error {
  readonly code: OutboundErrorCode;
  constructor(code: OutboundErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutboundError';
    this.code = code;
  }
}

/** One answer of a name lookup. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface OutboundOptions {
  method?: string;
  headers?: Record<string, string> | Headers;
  body?: string | Buffer;
  /** Whole request: lookup, connect, headers and body. */
  timeoutMs?: number;
  /** Response body limit; an announced Content-Length above it fails before reading. */
  maxBytes?: number;
  /** Development and tests only: lets loopback and private addresses through (still pinned, still no redirects). */
  allowPrivate?: boolean;
  /** Lets these special-use addresses through (an allow-list: loopback for development, a LAN integration engine). */
  allowAddress?: (address: string, hostname: string) => boolean;
  signal?: AbortSignal;
  /** Replaces the system resolver (tests use it to play a rebinding DNS server). Called once per request. */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_BYTES = 1024 * 1024;

// ---- special-use addresses ----------------------------------------------------------------------------------------

const V4_BLOCKS: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4], ['255.255.255.255', 32],
];

// Blocks with no embedded IPv4 address to decode. Everything outside 2000::/3 is refused anyway (see isSpecialV6);
// the ones outside are listed too so the table reads as the registry does.
const V6_BLOCKS: [string, number][] = [
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): the embedding varies with the operator's prefix length
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments: Teredo 2001::/32 (its IPv4 is obfuscated), benchmarking, ORCHID
  ['2001:db8::', 32], ['3fff::', 20], // documentation
  ['2620:4f:8000::', 48], // AS112 sink
  ['5f00::', 16], // SRv6 SIDs
  ['fc00::', 7], // unique local
  ['fe80::', 10], ['fec0::', 10], // link-local, deprecated site-local
  ['ff00::', 8], // multicast
];

/** Strict dotted quad (no octal, hex or short forms: those are ambiguous between parsers) → 4 bytes. */
function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/** IPv6 text (brackets, zone id, `::`, trailing dotted quad) → its 16 bytes. */
function parseIPv6(text: string): Uint8Array | undefined {
  let s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (s.includes('%')) s = s.slice(0, s.indexOf('%'));
  s = s.toLowerCase();
  if (!s.includes(':')) return undefined;
  const lastColon = s.lastIndexOf(':');
  let v4: number[] | undefined;
  if (s.includes('.', lastColon)) {
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const split = (part: string) => (part === '' ? [] : part.split(':'));
  const head = split(halves[0]);
  const tail = halves.length === 2 ? split(halves[1]) : [];
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return undefined;
  const groups = halves.length === 1 ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, g] of groups.entries()) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    bytes[2 * i] = parseInt(g, 16) >> 8;
    bytes[2 * i + 1] = parseInt(g, 16) & 0xff;
  }
  if (v4) bytes.set(v4, 12);
  return bytes;
}

function inPrefix(bytes: ArrayLike<number>, base: ArrayLike<number>, bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const mask = bits - i >= 8 ? 0xff : (0xff << (8 - (bits - i))) & 0xff;
    if ((bytes[i / 8] & mask) !== (base[i / 8] & mask)) return false;
  }
  return true;
}

const V4_TABLE = V4_BLOCKS.map(([base, bits]) => [parseIPv4(base)!, bits] as const);
const V6_TABLE = V6_BLOCKS.map(([base, bits]) => [parseIPv6(base)!, bits] as const);
const NAT64 = parseIPv6('64:ff9b::')!;

function isSpecialV4(bytes: ArrayLike<number>): boolean {
  return V4_TABLE.some(([base, bits]) => inPrefix(bytes, base, bits));
}

function isSpecialV6(b: Uint8Array): boolean {
  const zeroUpTo = (end: number) => b.subarray(0, end).every((x) => x === 0);
  // IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96 reach the IPv4 address they carry
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return isSpecialV4(b.subarray(12));
  if (zeroUpTo(8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return isSpecialV4(b.subarray(12));
  // ::/96 holds ::, ::1 and the deprecated IPv4-compatible form (::7f00:1): none of them is a public destination
  if (zeroUpTo(12)) return true;
  // NAT64 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056) are routes to the IPv4 address they embed
  if (inPrefix(b, NAT64, 96)) return isSpecialV4(b.subarray(12));
  if (b[0] === 0x20 && b[1] === 0x02) return isSpecialV4(b.subarray(2, 6));
  if (V6_TABLE.some(([base, bits]) => inPrefix(b, base, bits))) return true;
  // only 2000::/3 is allocated as global unicast; the rest is reserved, local or multicast
  return (b[0] & 0xe0) !== 0x20;
}

/**
 * True when `addr` (IPv4 or IPv6 text, brackets and zone id allowed) is loopback, private, link-local, multicast,
 * documentation, reserved or otherwise not a public unicast destination. IPv6 forms that embed an IPv4 address
 * (mapped, translated, NAT64, 6to4) are judged by that address. Text that is not an address counts as special-use.
 */
export function isSpecialUseAddress(addr: string): boolean {
  const v4 = parseIPv4(addr);
  if (v4) return isSpecialV4(v4);
  const v6 = parseIPv6(addr);
  return v6 ? isSpecialV6(v6) : true;
}

// ---- the request ----------------------------------------------------------------------------------------------------

interface Target {
  url: URL;
  /** hostname without IPv6 brackets */
  hostname: string;
}

function parseTarget(input: string | URL): Target {
  const url = URL.parse(String(input));
  if (!url) throw new OutboundError('URL_REFUSED', 'refused an outbound request: not a valid URL');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OutboundError('URL_REFUSED', `refused an outbound ${url.protocol} request: only http and https are allowed`);
  }
  // credentials in the URL would be sent to whoever answers; fetch() refuses them too
  if (url.username || url.password) throw new OutboundError('URL_REFUSED', `refused an outbound request to ${url.host}: the URL carries credentials`);
  return { url, hostname: url.hostname.replace(/^\[|\]$/g, '') };
}

async function resolveHost(t: Target, lookup: OutboundOptions['lookup']): Promise<ResolvedAddress[]> {
  if (parseIPv4(t.hostname)) return [{ address: t.hostname, family: 4 }];
  if (parseIPv6(t.hostname)) return [{ address: t.hostname, family: 6 }];
  try {
    return await (lookup ?? ((h: string) => dnsLookup(h, { all: true })))(t.hostname);
  } catch (err) {
    throw new OutboundError('NETWORK', `could not resolve ${t.url.host}`, { cause: err });
  }
}

/** Rejects with the signal's reason as soon as it aborts (a DNS lookup cannot be cancelled, only outwaited). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

// The socket layer asks this instead of DNS, so the connection goes to the address that was checked and no second
// answer (DNS rebinding) is ever consulted. Node 20 asks with `all: true` (autoSelectFamily), older paths without.
function pinnedLookup(pinned: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
}

function requestHeaders(t: Target, opts: OutboundOptions, body: Buffer | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (opts.headers instanceof Headers) opts.headers.forEach((v, k) => (out[k] = v));
  else for (const [k, v] of Object.entries(opts.headers ?? {})) out[k.toLowerCase()] = v;
  // framing and addressing are ours to set, not the caller's
  for (const k of ['host', 'content-length', 'transfer-encoding', 'connection']) delete out[k];
  out.host = t.url.host;
  // no Accept-Encoding would mean "any coding"; the body is handed on exactly as received
  out['accept-encoding'] ??= 'identity';
  if (body) out['content-length'] = String(body.length);
  return out;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

function toResponse(t: Target, method: string, res: http.IncomingMessage, body: Buffer): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    try {
      headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
    } catch {
      // a header the WHATWG Headers class refuses is dropped rather than failing the whole response
    }
  }
  const status = res.statusCode ?? 502;
  const withBody = !NULL_BODY_STATUS.has(status) && method !== 'HEAD';
  const response = new Response(withBody ? new Uint8Array(body) : null, { status, statusText: res.statusMessage ?? '', headers });
  Object.defineProperty(response, 'url', { value: t.url.href });
  return response;
}

/** One attempt against one checked address. Network failures reject with Node's own error (see connectFailed). */
function requestOnce(t: Target, pinned: ResolvedAddress, opts: OutboundOptions, signal: AbortSignal): Promise<Response> {
  const method = (opts.method ?? 'GET').toUpperCase();
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const tooLarge = () => new OutboundError('TOO_LARGE', `the response from ${t.url.host} is larger than ${maxBytes} bytes`);
  return new Promise<Response>((resolve, reject) => {
    const client = t.url.protocol === 'https:' ? https : http;
    const req = client.request({
      protocol: t.url.protocol,
      hostname: t.hostname,
      port: t.url.port || (t.url.protocol === 'https:' ? 443 : 80),
      path: `${t.url.pathname}${t.url.search}`,
      method,
      headers: requestHeaders(t, opts, body),
      lookup: pinnedLookup(pinned),
      // a fresh socket every time: a pooled keep-alive socket for this host may lead to an address never checked here
      agent: false,
    });
    const fail = (err: unknown) => {
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      reject(err);
    };
    const onAbort = () => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.on('response', (res) => {
      const announced = Number(res.headers['content-length']);
      if (method !== 'HEAD' && announced > maxBytes) return fail(tooLarge());
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail(tooLarge());
        else chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the response was complete'));
      });
      res.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve(toResponse(t, method, res, Buffer.concat(chunks)));
      });
    });
    req.end(body);
  });
}

// Failures that happen before any byte is sent: the next checked address may be tried (localhost → ::1, 127.0.0.1).
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT']);

function connectFailed(err: unknown): boolean {
  return CONNECT_FAILURES.has((err as NodeJS.ErrnoException)?.code ?? '');
}

/**
 * Fetches `url` with node:http(s), guarded against SSRF: http(s) only; the host is resolved once and refused when any
 * answer is a special-use address (unless `allowPrivate`); the socket connects only to those checked addresses; a
 * 3xx comes back as it is (never followed); the whole exchange is capped by `timeoutMs` (5 s) and the body by
 * `maxBytes` (1 MiB). Returns a WHATWG Response over the buffered body. Rejects with an OutboundError.
 */
export async function outboundFetch(url: string | URL, opts: OutboundOptions = {}): Promise<Response> {
  const t = parseTarget(url);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new OutboundError('TIMEOUT', `the request to ${t.url.host} took longer than ${timeoutMs} ms`)), timeoutMs);
  const onCallerAbort = () => deadline.abort(callerAbortError(t, opts.signal?.reason));
  if (opts.signal?.aborted) onCallerAbort();
  opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
  try {
    const addresses = await untilAborted(resolveHost(t, opts.lookup), deadline.signal);
    if (addresses.length === 0) throw new OutboundError('NETWORK', `${t.url.host} has no address`);
    // the address itself stays out of the message: it could reach whoever chose the URL and map internal names
    if (!opts.allowPrivate && addresses.some((a) => isSpecialUseAddress(a.address) && !opts.allowAddress?.(a.address, t.hostname))) {
      throw new OutboundError('ADDRESS_REFUSED', `refused an outbound request to ${t.url.host}: it is or resolves to a private or special-use address`);
    }
    for (const [i, address] of addresses.entries()) {
      try {
        return await requestOnce(t, address, opts, deadline.signal);
      } catch (err) {
        if (err instanceof OutboundError) throw err;
        if (connectFailed(err) && i < addresses.length - 1) continue;
        const detail = (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message;
        throw new OutboundError('NETWORK', `the request to ${t.url.host} failed: ${detail}`, { cause: err });
      }
    }
    throw new OutboundError('NETWORK', `the request to ${t.url.host} failed`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onCallerAbort);
  }
}

function callerAbortError(t: Target, reason: unknown): OutboundError {
  if ((reason as Error)?.name === 'TimeoutError') return new OutboundError('TIMEOUT', `the request to ${t.url.host} timed out`, { cause: reason });
  return new OutboundError('NETWORK', `the request to ${t.url.host} was aborted`, { cause: reason });
}

// ---- fetch() shape --------------------------------------------------------------------------------------------------

async function requestBody(body: BodyInit | null | undefined, headers: Headers): Promise<string | Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('guardedFetch sends string, URLSearchParams or byte bodies only');
}

/**
 * A fetch()-compatible function over outboundFetch, for libraries that take a `fetch` option (oidc-provider calls it
 * with `(url, { method, headers: Headers, signal, dispatcher })`; `dispatcher` is ignored, redirects are never followed).
 */
export function guardedFetch(allowPrivate: boolean): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> {
  return async (input, init = {}) => {
    const request = input instanceof Request ? input : undefined;
    const headers = new Headers(init.headers ?? request?.headers);
    const body = init.body !== undefined ? await requestBody(init.body, headers) : request?.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    return outboundFetch(request ? request.url : input instanceof URL ? input : String(input), {
      method: init.method ?? request?.method,
      headers,
      body,
      signal: init.signal ?? request?.signal ?? undefined,
      allowPrivate,
    });
  };
}
