// The websocket channel (Backport IG channels.html "websocket", SUBSCRIPTIONS.md §4, §5): $get-ws-binding-token issues
// a short-lived binding token for one tenant's websocket subscriptions; a client connects to
// /fhir/{tenant}/$subscription-ws, sends `bind-with-token <token>`, gets one handshake per subscription, then the
// notifications. With Redis (REDIS_URL) tokens live there and deliveries are PUBLISHed, so any process may hold a socket.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { isServing } from '../core/tenant.js';
import type { FhirContext } from '../fhir/context.js';
import { findState, firstPending, rescheduleEvents, type SubscriptionState } from '../store/subscriptions.js';
import { findTenant } from '../store/tenants.js';
import { serviceLevel } from '../tenancy/lifecycle.js';
import { tenantContext } from './context.js';
import type { WebSocketSender } from './deliver.js';
import { notificationBundle } from './notification.js';
import { enqueueEvent } from './queue.js';
import type { BindingTokens } from './service.js';
import type { SubscriptionSpec } from './spec.js';
import { topicUrl, TOPICS } from '../fhir/subscription-topics.js';

/** A binding token binds for this long after it is issued. */
const TOKEN_TTL_MS = 5 * 60_000;
/** Client messages are commands of one line: anything bigger closes the socket (1009). */
const MAX_MESSAGE_BYTES = 4096;
/** A socket that has bound nothing by then is closed. */
const BIND_WITHIN_MS = 30_000;
/** Ping period; a socket that did not answer the previous ping is dropped. */
const PING_EVERY_MS = 30_000;
/** Subscriptions one token may bind. */
const MAX_IDS = 50;
/** A client that leaves this much output unread is dropped (what it missed, it can fetch with $events). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Sockets get this long to finish their close handshake at close(). */
const CLOSE_WAIT_MS = 1000;
/** One Redis warning per this long. */
const WARN_EVERY_MS = 30_000;

interface Binding {
  tenantId: string;
  ids: string[];
  /** ms since the epoch (deps.clock()). */
  expiresAt: number;
}

interface Client {
  ws: WebSocket;
  tenantId: string;
  /** `${tenant}/${subscription}` keys this socket is bound to. */
  keys: Set<string>;
  /** False while a bind sends its handshakes: notifications wait behind them. */
  ready: boolean;
  queued: string[];
  alive: boolean;
  /** Commands of one socket run one after another. */
  chain: Promise<void>;
  bindTimer: NodeJS.Timeout;
}

const PATH = /^\/fhir\/([^/]+)\/(?:\$|%24)subscription-ws\/?$/;

/** `$get-ws-binding-token`, the `$subscription-ws` endpoint, and the sender deliveries use. */
export class WebSocketChannel implements WebSocketSender, BindingTokens {
  private readonly tokens = new Map<string, Binding>();
  private readonly clients = new Set<Client>();
  private readonly bound = new Map<string, Set<Client>>();
  private readonly prefix: string;
  private wss: WebSocketServer | undefined;
  private server: Server | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private closed = false;
  private warnedAt = 0;

  constructor(private readonly deps: Deps) {
    this.prefix = `${deps.config.queuePrefix}:ws:`;
  }

  /** The ws(s) URL of a tenant's endpoint (also the CapabilityStatement's websocket extension, with the tenant). */
  url(tenantId: string): string {
    return `${this.deps.config.publicBaseUrl.replace(/^http/, 'ws')}/fhir/${tenantId}/$subscription-ws`;
  }

  /** $get-ws-binding-token, after the service has authorized `read` on each id. */
  async bindingToken(ctx: FhirContext, ids: string[]): Promise<Record<string, unknown>> {
    const unique = [...new Set(ids.map((x) => x.trim()).filter(Boolean))];
    if (!unique.length) throw new FhirError('invalid', '$get-ws-binding-token needs a subscription id', { code: 'PARAMETER_MISSING' });
    if (unique.length > MAX_IDS) throw new FhirError('invalid', `One binding token binds at most ${MAX_IDS} subscriptions`, { code: 'PARAMETER_INVALID', expression: ['id'] });
    await ctx.store.read(async (s) => {
      for (const id of unique) {
        const state = await findState<SubscriptionSpec>(s.q, s.tenantId, id);
        if (!state) throw new FhirError('not-found', `Subscription/${id.slice(0, 64)} is not known`, { code: 'RESOURCE_NOT_FOUND' });
        if (state.spec.channel !== 'websocket') {
          throw new FhirError('invalid', `Subscription/${id} has channel ${state.spec.channel}: binding tokens are for websocket subscriptions`, { code: 'SUBSCRIPTION_NOT_WEBSOCKET', expression: ['id'] });
        }
      }
    });
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.deps.clock().getTime() + TOKEN_TTL_MS;
    await this.keepToken(digest(token), { tenantId: ctx.tenant.id, ids: unique, expiresAt });
    return {
      resourceType: 'Parameters',
      parameter: [
        { name: 'token', valueString: token },
        { name: 'expiration', valueDateTime: new Date(expiresAt).toISOString() },
        ...unique.map((id) => ({ name: 'subscription', valueString: id })),
        { name: 'websocket-url', valueUrl: this.url(ctx.tenant.id) },
      ],
    };
  }

  /** Serves /fhir/{tenant}/$subscription-ws on `server`; other upgrade requests are answered 404. */
  attach(server: Server): void {
    if (this.server) throw new Error('the websocket channel is attached already');
    this.server = server;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, clientTracking: false });
    server.on('upgrade', this.onUpgrade);
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS).unref();
  }

  /** Delivers `body` to the sockets bound to the subscription: this process's, or (Redis) every process's. */
  async send(tenantId: string, subscriptionId: string, body: string): Promise<number> {
    const key = `${tenantId}/${subscriptionId}`;
    if (!this.deps.config.redisUrl) return this.local(key, body);
    if (this.closed) return 0;
    try {
      // the receivers are the processes holding a socket for it (each SUBSCRIBEs while it does)
      return await this.commands().publish(this.prefix + key, body);
    } catch (err) {
      this.warn(err);
      return 0;
    }
  }

  /** Closes every socket (1001, going away) and the Redis connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.server?.off('upgrade', this.onUpgrade);
    const open = [...this.clients].map((c) => new Promise<void>((resolve) => {
      c.ws.once('close', () => resolve());
      c.ws.close(1001, 'server shutting down');
    }));
    await Promise.race([Promise.all(open), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    for (const c of this.clients) c.ws.terminate();
    this.wss?.close();
    this.pub?.disconnect();
    this.sub?.disconnect();
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    void this.upgrade(req, socket, head).catch((err) => {
      this.deps.log.warn({ err }, 'websocket upgrade failed');
      refuseUpgrade(socket, 503, 'Service Unavailable');
    });
  };

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const slug = PATH.exec(new URL(req.url ?? '/', 'http://x').pathname)?.[1];
    if (!slug || this.closed) return refuseUpgrade(socket, 404, 'Not Found');
    const tenant = await findTenant(this.deps.db, slug);
    // terminated: unknown; suspended: closed to everyone (as its FHIR API, src/tenancy/lifecycle.ts); read-only: served
    if (!isServing(tenant)) return refuseUpgrade(socket, 404, 'Not Found');
    if (serviceLevel(tenant, this.deps.clock()) === 'suspended') return refuseUpgrade(socket, 403, 'Forbidden');
    this.wss!.handleUpgrade(req, socket, head, (ws) => this.connected(ws, tenant.id));
  }

  private connected(ws: WebSocket, tenantId: string): void {
    if (this.closed) return ws.terminate();
    const client: Client = {
      ws, tenantId, keys: new Set(), ready: true, queued: [], alive: true, chain: Promise.resolve(),
      bindTimer: setTimeout(() => client.keys.size || ws.close(1008, `no bind-with-token within ${BIND_WITHIN_MS / 1000} s`), BIND_WITHIN_MS).unref(),
    };
    this.clients.add(client);
    this.deps.metrics.websocketConnections.inc();
    ws.on('pong', () => (client.alive = true));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      client.chain = client.chain.then(() => this.command(client, data, isBinary)).catch((err) => {
        this.deps.log.warn({ err, tenantId }, 'websocket command failed');
        refuse(client, 1011, 'the server could not bind the subscriptions now; try again');
      });
    });
    ws.on('close', () => this.disconnected(client));
  }

  private disconnected(client: Client): void {
    if (!this.clients.delete(client)) return;
    clearTimeout(client.bindTimer);
    this.deps.metrics.websocketConnections.dec();
    for (const key of client.keys) {
      const set = this.bound.get(key);
      set?.delete(client);
      if (set && !set.size) {
        this.bound.delete(key);
        // the last socket for it here: this process no longer listens (commands keep their order on the connection)
        if (this.sub) this.sub.unsubscribe(this.prefix + key).catch((err) => this.warn(err));
      }
    }
  }

  private async command(client: Client, data: RawData, isBinary: boolean): Promise<void> {
    if (client.ws.readyState !== WebSocket.OPEN) return;
    const m = isBinary ? null : /^bind-with-token +(\S+)$/.exec(rawText(data).trim());
    if (!m) {
      client.ws.send('error unknown command: send "bind-with-token <token>" (a token from Subscription/$get-ws-binding-token)');
      return;
    }
    const binding = await this.takeToken(digest(m[1]), client.tenantId);
    if (!binding) return refuse(client, 1008, 'the binding token is unknown, expired, already used or not for this tenant');
    const ctx = await tenantContext(this.deps, binding.tenantId, 'websocket');
    if (!ctx) return refuse(client, 1008, 'the tenant is gone');
    const states = await ctx.store.read(async (s) => {
      const found: SubscriptionState<SubscriptionSpec>[] = [];
      for (const id of binding.ids) {
        const st = await findState<SubscriptionSpec>(s.q, s.tenantId, id);
        if (st?.spec.channel === 'websocket') found.push(st);
      }
      return found;
    });
    if (!states.length) return refuse(client, 1008, 'none of the bound subscriptions exists any more');
    // notifications that arrive from now on wait until the handshakes are out
    client.ready = false;
    await Promise.all(states.map((st) => this.bind(client, `${binding.tenantId}/${st.id}`)));
    for (const st of states) {
      client.ws.send(this.handshake(ctx.baseUrl, st));
      this.deps.metrics.notifications.inc({ channel: 'websocket', type: 'handshake', outcome: 'delivered' });
    }
    client.ready = true;
    for (const body of client.queued.splice(0)) this.write(client, body);
    clearTimeout(client.bindTimer);
    // events that waited for a client go out now, their retry count reset (a bound client is news to the backoff)
    for (const st of states) await this.resume(ctx, st.id);
  }

  private async bind(client: Client, key: string): Promise<void> {
    if (!this.clients.has(client)) return; // it went away while the bind read the subscriptions
    client.keys.add(key);
    let set = this.bound.get(key);
    if (!set) this.bound.set(key, (set = new Set()));
    const first = !set.size;
    set.add(client);
    if (first && this.deps.config.redisUrl) await this.subscriber().subscribe(this.prefix + key);
  }

  private handshake(baseUrl: string, st: SubscriptionState<SubscriptionSpec>): string {
    const topic = st.spec.topic ? TOPICS.find((x) => x.name === st.spec.topic) : undefined;
    return notificationBundle(
      {
        baseUrl, subscriptionId: st.id, status: st.status, type: 'handshake', eventsSinceStart: st.eventsSinceStart,
        ...(topic ? { topic: topicUrl(this.deps.config.publicBaseUrl, topic) } : {}), content: st.spec.content, events: [],
      },
      this.deps.clock(),
    );
  }

  private async resume(ctx: FhirContext, id: string): Promise<void> {
    const head = await ctx.store.read(async (s) => {
      if (!(await rescheduleEvents(s.q, s.tenantId, id))) return undefined;
      return firstPending(s.q, s.tenantId, id);
    });
    // the first goes now; each delivery queues the next
    if (head) await enqueueEvent(this.deps, ctx.tenant.id, id, head.eventNumber, true);
  }

  /** This process's sockets for `key`: how many took the body. */
  private local(key: string, body: string): number {
    let n = 0;
    for (const c of this.bound.get(key) ?? []) if (this.write(c, body)) n++;
    return n;
  }

  private write(c: Client, body: string): boolean {
    if (!c.ready) {
      c.queued.push(body);
      return true;
    }
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    if (c.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      c.ws.terminate();
      return false;
    }
    c.ws.send(body);
    return true;
  }

  private ping(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  private async keepToken(hash: string, b: Binding): Promise<void> {
    if (!this.deps.config.redisUrl) {
      const now = this.deps.clock().getTime();
      for (const [h, x] of this.tokens) if (x.expiresAt <= now) this.tokens.delete(h);
      this.tokens.set(hash, b);
      return;
    }
    try {
      await this.commands().set(`${this.prefix}token:${hash}`, JSON.stringify(b), 'PX', TOKEN_TTL_MS);
    } catch (err) {
      throw new FhirError('unavailable', 'Binding tokens cannot be issued now (Redis does not answer); retry shortly', { code: 'SUBSCRIPTION_CHANNEL_UNAVAILABLE', headers: { 'Retry-After': '5' }, cause: err });
    }
  }

  /** The token's binding, taken (single use) when it is valid for `tenantId`; a token of another tenant stays. */
  private async takeToken(hash: string, tenantId: string): Promise<Binding | undefined> {
    const now = this.deps.clock().getTime();
    if (!this.deps.config.redisUrl) {
      const b = this.tokens.get(hash);
      if (!b || b.tenantId !== tenantId || b.expiresAt <= now) return undefined;
      this.tokens.delete(hash);
      return b;
    }
    const key = `${this.prefix}token:${hash}`;
    const raw = await this.commands().get(key);
    const b = raw ? (JSON.parse(raw) as Binding) : undefined;
    if (!b || b.tenantId !== tenantId || b.expiresAt <= now) return undefined;
    // DEL answers 1 to one taker only: two sockets racing with one token bind once
    return (await this.commands().del(key)) === 1 ? b : undefined;
  }

  private commands(): Redis {
    return (this.pub ??= this.redis());
  }

  private subscriber(): Redis {
    if (!this.sub) {
      this.sub = this.redis();
      this.sub.on('message', (channel: string, body: string) => {
        if (channel.startsWith(this.prefix)) this.local(channel.slice(this.prefix.length), body);
      });
    }
    return this.sub;
  }

  private redis(): Redis {
    // commands fail within 2 s while Redis is down (a delivery then retries); the subscriber re-subscribes on reconnect
    const r = new Redis(this.deps.config.redisUrl!, { maxRetriesPerRequest: 1, commandTimeout: 2000, connectTimeout: 2000 });
    r.on('error', (err) => this.warn(err));
    return r;
  }

  private warn(err: unknown): void {
    if (this.closed || Date.now() - this.warnedAt < WARN_EVERY_MS) return;
    this.warnedAt = Date.now();
    this.deps.log.warn({ err }, 'websocket channel: Redis error');
  }
}

/** Tokens are kept as SHA-256 digests: a read of the store (or of Redis) binds nothing. */
function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function rawText(data: RawData): string {
  return Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
}

/** Sends `error <reason>`, then closes with `code` (1008: policy violation, 1011: server error). */
function refuse(client: Client, code: number, reason: string): void {
  if (client.ws.readyState !== WebSocket.OPEN) return;
  client.ws.send(`error ${reason}`);
  client.ws.close(code, reason.slice(0, 120));
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
