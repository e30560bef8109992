// outboundFetch against real sockets on loopback: refused hosts never see a connection, redirects come back unfollowed,
// time and size caps hold, and the socket goes to the address that was checked (DNS rebinding).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardedFetch, outboundFetch, type OutboundError, type ResolvedAddress } from '../../../src/platform/outbound.js';

interface Seen {
  connections: number;
  requests: { url: string; host?: string; method?: string; headers: IncomingMessage['headers']; body: string }[];
}

async function listen(host: string, port = 0): Promise<{ server: Server; port: number; seen: Seen }> {
  const seen: Seen = { connections: 0, requests: [] };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.requests.push({ url: req.url ?? '', host: req.headers.host, method: req.method, headers: req.headers, body });
      route(req, res);
    });
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function route(req: IncomingMessage, res: import('node:http').ServerResponse): void {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/json') return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end(JSON.stringify({ keys: [{ kid: 'a' }] }));
  if (path === '/redirect') return void res.writeHead(302, { location: '/target' }).end('moved');
  if (path === '/target') return void res.writeHead(200).end('you should not be here');
  if (path === '/hang') return; // accepts, never answers
  if (path === '/big-announced') return void res.writeHead(200, { 'content-length': '4096' }).end('x'.repeat(4096));
  if (path === '/big-chunked') {
    res.writeHead(200); // no Content-Length: chunked
    for (let i = 0; i < 8; i++) res.write('x'.repeat(512));
    return void res.end();
  }
  if (path === '/echo') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, headers: req.headers }));
  if (path === '/empty') return void res.writeHead(204).end();
  res.writeHead(404).end();
}

let local: Awaited<ReturnType<typeof listen>>;
const base = () => `http://127.0.0.1:${local.port}`;

beforeAll(async () => {
  local = await listen('127.0.0.1');
});
afterAll(async () => {
  local.server.closeAllConnections();
  await new Promise((r) => local.server.close(r));
});

describe('outboundFetch with allowPrivate off: this machine is out of reach', () => {
  it('refuses loopback by IP, by name, as mapped IPv6 (hex) and as ::1, and the server sees no connection', async () => {
    const before = { ...local.seen, requests: local.seen.requests.length };
    for (const u of [`http://127.0.0.1:${local.port}/json`, `http://localhost:${local.port}/json`, `http://[::ffff:7f00:1]:${local.port}/json`, `http://[::1]:${local.port}/json`]) {
      await expect(outboundFetch(u)).rejects.toMatchObject({ name: 'OutboundError', code: 'ADDRESS_REFUSED' });
    }
    expect(local.seen.connections).toBe(before.connections);
    expect(local.seen.requests.length).toBe(before.requests);
  });

  it('refuses a name when any of its answers is special-use, even if the first is public', async () => {
    const lookup = async (): Promise<ResolvedAddress[]> => [{ address: '8.8.8.8', family: 4 }, { address: '127.0.0.1', family: 4 }];
    await expect(outboundFetch(`http://jwks.example:${local.port}/json`, { lookup })).rejects.toMatchObject({ code: 'ADDRESS_REFUSED' });
  });

  it('the guardedFetch adapter refuses the same way, and its message names the host but not the query', async () => {
    const err = await guardedFetch(false)(`http://127.0.0.1:${local.port}/json?client_secret=hush`).then(() => undefined, (e: unknown) => e as OutboundError);
    expect(err?.code).toBe('ADDRESS_REFUSED');
    expect(err?.message).toContain(`127.0.0.1:${local.port}`);
    expect(err?.message).not.toContain('hush');
  });
});

describe('outboundFetch with allowPrivate on (development)', () => {
  it('returns a 200 JSON body as a WHATWG Response', async () => {
    const res = await outboundFetch(`${base()}/json`, { allowPrivate: true });
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('max-age=60');
    expect(await res.json()).toEqual({ keys: [{ kid: 'a' }] });
  });

  it('returns a 302 as a 302 with its Location and never requests the target', async () => {
    const targetHits = () => local.seen.requests.filter((r) => r.url === '/target').length;
    const before = targetHits();
    const res = await outboundFetch(`${base()}/redirect`, { allowPrivate: true });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/target');
    expect(await res.text()).toBe('moved');
    const viaAdapter = await guardedFetch(true)(`${base()}/redirect`, { redirect: 'follow' });
    expect(viaAdapter.status).toBe(302);
    await new Promise((r) => setTimeout(r, 50));
    expect(targetHits()).toBe(before);
  });

  it('gives up with TIMEOUT when the server never answers', async () => {
    const started = Date.now();
    await expect(outboundFetch(`${base()}/hang`, { allowPrivate: true, timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('refuses a body larger than maxBytes with TOO_LARGE, announced or not', async () => {
    await expect(outboundFetch(`${base()}/big-announced`, { allowPrivate: true, maxBytes: 1000 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(outboundFetch(`${base()}/big-chunked`, { allowPrivate: true, maxBytes: 1000 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    const fits = await outboundFetch(`${base()}/big-chunked`, { allowPrivate: true, maxBytes: 4096 });
    expect((await fits.arrayBuffer()).byteLength).toBe(4096);
  });

  it('sends method, headers and body, and answers 204 with no body', async () => {
    const res = await outboundFetch(`${base()}/echo`, { allowPrivate: true, method: 'POST', headers: { 'X-Probe': 'yes' }, body: 'a=1' });
    const echoed = (await res.json()) as { method: string; headers: Record<string, string> };
    expect(echoed.method).toBe('POST');
    expect(echoed.headers).toMatchObject({ 'x-probe': 'yes', 'content-length': '3', host: `127.0.0.1:${local.port}` });
    const empty = await outboundFetch(`${base()}/empty`, { allowPrivate: true });
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it("serves oidc-provider's call shape: Headers, empty user-agent, AbortSignal.timeout, a dispatcher, body read as a stream", async () => {
    const headers = new Headers({ accept: 'application/json' });
    headers.set('user-agent', '');
    const res = await guardedFetch(true)(`${base()}/json`, { method: 'GET', headers, signal: AbortSignal.timeout(2500), dispatcher: {} } as RequestInit);
    const chunks: Uint8Array[] = [];
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(JSON.parse(Buffer.concat(chunks).toString())).toEqual({ keys: [{ kid: 'a' }] });
    const echoed = (await (await guardedFetch(true)(`${base()}/echo`, { headers })).json()) as { headers: Record<string, string> };
    expect(echoed.headers.accept).toBe('application/json');
  });

  it("stops when the caller's signal fires", async () => {
    await expect(guardedFetch(true)(`${base()}/hang`, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});

describe('outboundFetch connects to the address it checked (DNS pinning)', () => {
  it('resolves localhost once and reaches this server with Host localhost:<port>', async () => {
    const res = await outboundFetch(`http://localhost:${local.port}/echo`, { allowPrivate: true });
    const echoed = (await res.json()) as { headers: Record<string, string> };
    expect(echoed.headers.host).toBe(`localhost:${local.port}`);
  });

  it('a rebinding resolver gets asked once: its second answer is never used', async () => {
    // a second server on another loopback address and the same port: reaching it would mean a second resolution
    const other = await listen('127.0.0.2', local.port).catch(() => undefined);
    if (!other) return; // 127.0.0.2 is not configured on this machine (macOS): nothing to tell the two apart
    try {
      let calls = 0;
      const lookup = async (): Promise<ResolvedAddress[]> => [{ address: calls++ === 0 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
      const res = await outboundFetch(`http://rebind.example:${local.port}/echo`, { allowPrivate: true, lookup });
      expect(res.status).toBe(200);
      expect(calls).toBe(1);
      expect(other.seen.connections).toBe(0);
      expect(local.seen.requests.at(-1)?.host).toBe(`rebind.example:${local.port}`);
    } finally {
      other.server.closeAllConnections();
      await new Promise((r) => other.server.close(r));
    }
  });

  it('with the guard on, a public first answer and a loopback second one never reach loopback', async () => {
    let calls = 0;
    const lookup = async (): Promise<ResolvedAddress[]> => [{ address: calls++ === 0 ? '8.8.8.8' : '127.0.0.1', family: 4 }];
    const before = local.seen.connections;
    // 8.8.8.8 does not serve this port: the attempt fails or times out, but never lands on 127.0.0.1
    await expect(outboundFetch(`http://rebind.example:${local.port}/json`, { lookup, timeoutMs: 300 })).rejects.toMatchObject({ name: 'OutboundError' });
    expect(calls).toBe(1);
    expect(local.seen.connections).toBe(before);
  });
});
