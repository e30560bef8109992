// Requests in flight, each with a cancellation signal that fires when its client goes away (or the server cuts it at the
// shutdown deadline): the signal cancels the request's database statement, so abandoned work stops at once.
import type { Request, Response } from 'express';
import type { Logger } from '../platform/log.js';
import { Cancellation, type CancelSignal } from '../platform/cancel.js';

interface InFlight {
  req: Request;
  res: Response;
  controller: Cancellation;
  started: bigint;
}

export class InFlightRequests {
  private readonly open = new Set<InFlight>();

  /** Registers a request; returns its signal. */
  track(req: Request, res: Response): CancelSignal {
    const entry: InFlight = { req, res, controller: new Cancellation(), started: process.hrtime.bigint() };
    this.open.add(entry);
    res.on('close', () => {
      this.open.delete(entry);
      // closed before the whole response was written: the client is gone, stop its work
      if (!res.writableFinished) entry.controller.abort(new DOMException('the client closed the connection', 'AbortError'));
    });
    return entry.controller;
  }

  get size(): number {
    return this.open.size;
  }

  /** Shutdown deadline: every unfinished request is logged, its statement cancelled and its connection closed. */
  cutAll(log: Logger): number {
    const cut = [...this.open];
    for (const e of cut) {
      const durationMs = Math.round(Number(process.hrtime.bigint() - e.started) / 1e4) / 100;
      // path only: query strings carry PHI
      ((e.res.locals.log as Logger | undefined) ?? log).warn({ method: e.req.method, path: e.req.originalUrl.split('?')[0], requestId: e.res.locals.requestId, durationMs }, 'request cut at shutdown deadline');
      e.controller.abort(new DOMException('the server is shutting down', 'AbortError'));
      e.res.destroy();
    }
    this.open.clear();
    return cut.length;
  }
}
