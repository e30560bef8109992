// A real HTTP receiver on loopback for rest-hook notifications: records every request, answers what the test says
// (a status, a redirect, a hang, a closed connection), and verifies the HMAC signature the way a receiver would.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
  at: number;
}

export type Behaviour = (r: Received, res: ServerResponse) => void;

export const ok: Behaviour = (_r, res) => res.writeHead(200).end();

export interface Receiver {
  url: string;
  received: Received[];
  /** What the receiver answers next (default 200). */
  behave(b: Behaviour): void;
  /** Notifications of one type (handshake, heartbeat, event-notification). */
  of(type: string): Received[];
  close(): Promise<void>;
}

/** The SubscriptionStatus Parameters of a notification bundle, as a name -> value map (first value of each). */
export function statusOf(bundle: any): Record<string, any> {
  const params = bundle?.entry?.[0]?.resource?.parameter ?? [];
  const out: Record<string, any> = {};
  for (const p of params) {
    if (p.name === 'notification-event') (out.events ??= []).push(Object.fromEntries(p.part.map((x: any) => [x.name, x.valueString ?? x.valueInstant ?? x.valueReference?.reference])));
    else out[p.name] ??= p.valueString ?? p.valueCode ?? p.valueCanonical ?? p.valueReference?.reference ?? p.valueCodeableConcept?.text;
  }
  return out;
}

/** What a receiver does with X-Tenfhir-Signature (README "Verifying notifications"): true when it is genuine and fresh. */
export function verifySignature(secret: string, header: string | undefined, body: string, toleranceSeconds = 300): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  if (Math.abs(Date.now() / 1000 - Number(m[1])) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex'));
}

export async function startReceiver(path = '/hook'): Promise<Receiver> {
  const received: Received[] = [];
  let behaviour: Behaviour = ok;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const r = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json, at: Date.now() };
      received.push(r);
      behaviour(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return {
    url,
    received,
    behave: (b) => (behaviour = b),
    of: (type) => received.filter((r) => statusOf(r.json).type === type),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
