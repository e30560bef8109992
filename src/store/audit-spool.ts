// The audit trail's records outside a write's own statement (reads, searches, refused requests, sign-ins, token
// issue): appended to a local spool file before the request answers, shipped to audit_event in batches behind it.
//
// Why a file: issue 12 asks that "a read never waits on its audit row and no audit record is lost when the process
// dies after answering". Appending one line to a file costs a few microseconds (a write(2) into the page cache, which
// outlives the process); a database round trip per read cost W2 a quarter of its throughput. A shipper then moves the
// records into audit_event (one INSERT per tenant per batch; it keeps the lines it has not shipped in memory as well,
// so it does not read its own file back unless the database stayed away long enough to pass MEMORY_LINES) and
// advances its offset; a file whose records are all
// stored is removed. A process that died leaves its file behind: the next process on the same DATA_DIR claims it (an
// atomic rename, so two never ship one file) and ships what it holds. Each record carries an origin key (file,
// line, position): records a dead process had shipped without advancing its offset are recognised and not stored twice.
//
// What the file does not survive: the loss of the machine (or its disk) before the shipper ran (it runs 20 ms after
// an append). docs/audit.md says so.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AuditRecord, AuditSink } from '../core/audit.js';
import type { Db, Queryable } from '../platform/db.js';
import type { Logger } from '../platform/log.js';
import { insertAudit, storedOrigins } from './audit.js';

/** One line of a spool file: the records of one call, for one tenant. */
interface SpoolLine {
  /** origin prefix: the file's instance and the line's number (each record adds its position). */
  o: string;
  t: string;
  r: AuditRecord[];
}

/** A NUL, or a surrogate without its other half. */
const NOT_FOR_POSTGRES = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A spool line and its JSON text, as PostgreSQL accepts its strings: one with a NUL or a lone UTF-16 surrogate (an
 * error message quoting a malformed body, say) is made well-formed, U+FFFD in their place, or the batch it ships in
 * would be refused again and again. The common line has neither (JSON.stringify escapes both as \u....) and is
 * stringified once. `json`: the line's text when the caller has it (read from a spool file).
 */
export function wellFormed(line: SpoolLine, json = JSON.stringify(line)): { line: SpoolLine; json: string } {
  if (!json.includes('\\u')) return { line, json };
  const clean = JSON.stringify(line, (_k, v: unknown) => (typeof v === 'string' ? v.replace(NOT_FOR_POSTGRES, '\uFFFD') : v));
  return { line: JSON.parse(clean) as SpoolLine, json: clean };
}

/** Spool instances alive in this process (several servers may share one process and DATA_DIR: tests do). */
const LIVE = new Set<string>();

const SUFFIX = '.audit.jsonl';
/** A shipped file is replaced by a fresh one once it has grown past this. */
const ROTATE_BYTES = 8 * 1024 * 1024;
/** At most this much of a file is read per batch. */
const READ_BYTES = 4 * 1024 * 1024;
/** At most this many lines per batch shipped from memory. */
const BATCH_LINES = 5000;
/**
 * Lines kept in memory for the shipper beyond which it reads them back from the file instead (the database is
 * away for long: memory stays bounded, the file holds everything).
 */
const MEMORY_LINES = 100_000;

export interface SpoolOptions {
  /** Milliseconds between an append and the shipping of its batch. */
  shipIntervalMs?: number;
  /** Unshipped lines kept in memory before the shipper reads from the file instead (default MEMORY_LINES). */
  memoryLines?: number;
}

/** `<host>.<pid>.<instance>.<n>.audit.jsonl`: who owns a spool file. */
function ownerOf(name: string): { host: string; pid: number; instance: string } | undefined {
  const m = /^(.+)\.(\d+)\.([0-9a-f]{12})\.\d+\.audit\.jsonl$/.exec(name);
  return m ? { host: m[1], pid: Number(m[2]), instance: m[3] } : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Host names go into file names: keep them to safe characters. */
const HOST = hostname().replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64) || 'host';

/** The name of a spool file: who owns it (this host, `pid`, the spool `instance`) and its number. */
export function spoolFileName(pid: number, instance: string, n: number): string {
  return `${HOST}.${pid}.${instance}.${n}${SUFFIX}`;
}

export class AuditSpool implements AuditSink {
  private readonly instance = randomBytes(6).toString('hex');
  private fileNo = 0;
  private fd: number | undefined;
  private path = '';
  private size = 0;
  private shipped = 0;
  private lineNo = 0;
  /**
   * The lines appended and not yet shipped, as written (the shipper stores them without reading the file back), in
   * file order from offset `shipped`. Empty while `overflowed`: the shipper then reads from the file until it has
   * caught up.
   */
  private pending: { line: SpoolLine; bytes: number }[] = [];
  private overflowed = false;
  private timer: NodeJS.Timeout | undefined;
  private shipping: Promise<void> | undefined;
  /** After a failed batch the next attempt checks which records were stored after all. */
  private uncertain = false;
  private failures = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly shipIntervalMs: number;
  private readonly memoryLines: number;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly dir: string,
    opts: SpoolOptions = {},
  ) {
    this.shipIntervalMs = opts.shipIntervalMs ?? 20;
    this.memoryLines = opts.memoryLines ?? MEMORY_LINES;
    LIVE.add(this.instance);
  }

  /** Ships the files stopped processes left, now and every `intervalMs` (the server and the worker do; the CLI not). */
  startRecovery(intervalMs = 60_000): void {
    const sweep = () => void this.recover().catch((err: unknown) => this.log.error({ err }, 'audit spool: recovery failed'));
    sweep();
    this.sweeper = setInterval(sweep, intervalMs);
    this.sweeper.unref();
  }

  record(tenantId: string, records: AuditRecord[], q?: Queryable): Promise<void> {
    if (!records.length) return Promise.resolve();
    // a transaction's own reads are stored in it (and rolled back with it)
    if (q) return insertAudit(q, tenantId, records);
    if (this.closed) return Promise.reject(new Error('the audit spool is closed'));
    try {
      this.append(tenantId, records);
    } catch (err) {
      // the request fails rather than answer unaudited (disk full, DATA_DIR not writable)
      return Promise.reject(err);
    }
    this.schedule(this.shipIntervalMs);
    return Promise.resolve();
  }

  /** Resolves once every record appended before the call is in audit_event (the AuditEvent API reads after it). */
  async settle(): Promise<void> {
    const target = this.size;
    const path = this.path;
    while (this.fd !== undefined && this.path === path && this.shipped < target) {
      await this.shipNow();
      if (this.failures) throw new Error('audit records could not be stored');
    }
  }

  /** Ships what is left and removes the file (shutdown). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.timer);
    try {
      while (this.fd !== undefined && this.shipped < this.size) {
        await this.shipNow();
        if (this.failures) break;
      }
    } catch (err) {
      this.log.error({ err }, 'audit spool: records left in the spool file, the next start ships them');
    }
    if (this.fd !== undefined) {
      closeSync(this.fd);
      if (this.shipped >= this.size) unlinkSync(this.path);
      this.fd = undefined;
    }
    LIVE.delete(this.instance);
  }

  /**
   * Claims and ships every spool file whose process is gone (each claimed by renaming it into this instance's name,
   * so two processes never ship the same file). Runs at start and every sweep interval.
   */
  async recover(): Promise<number> {
    if (this.closed || !existsSync(this.dir)) return 0;
    let total = 0;
    for (const name of readdirSync(this.dir)) {
      const owner = ownerOf(name);
      if (!owner || this.isLiveOwner(owner)) continue;
      const claimed = join(this.dir, spoolFileName(process.pid, this.instance, ++this.fileNo));
      try {
        renameSync(join(this.dir, name), claimed);
      } catch {
        continue; // another process claimed it first
      }
      try {
        total += await this.shipFile(claimed);
        unlinkSync(claimed);
      } catch (err) {
        // left under this instance's name: the next sweep after this process ends retries it
        this.log.error({ err, file: claimed }, 'audit spool: a recovered file could not be shipped');
      }
    }
    if (total) this.log.warn({ records: total }, 'audit spool: shipped the records a stopped process had left');
    return total;
  }

  private isLiveOwner(o: { host: string; pid: number; instance: string }): boolean {
    if (o.host !== HOST) return true; // another machine's file (a shared DATA_DIR): its own processes ship it
    if (o.pid === process.pid) return LIVE.has(o.instance);
    return isAlive(o.pid);
  }

  private append(tenantId: string, records: AuditRecord[]): void {
    if (this.fd === undefined) this.open();
    const { line, json } = wellFormed({ o: `${this.instance}.${this.fileNo}.${++this.lineNo}`, t: tenantId, r: records });
    const buf = Buffer.from(`${json}\n`);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd!, buf, off, buf.length - off);
    } catch (err) {
      // a line written in part would stop every later one from being read: cut it off again
      if (off) ftruncateSync(this.fd!, this.size);
      throw err;
    }
    this.size += buf.length;
    if (this.overflowed) return;
    if (this.pending.length < this.memoryLines) this.pending.push({ line, bytes: buf.length });
    else {
      this.overflowed = true;
      this.pending = [];
    }
  }

  private open(): void {
    mkdirSync(this.dir, { recursive: true });
    this.path = join(this.dir, spoolFileName(process.pid, this.instance, ++this.fileNo));
    this.fd = openSync(this.path, 'a+');
    this.size = fstatSync(this.fd).size;
    this.shipped = 0;
    this.lineNo = 0;
    this.pending = [];
    this.overflowed = false;
  }

  private schedule(ms: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.shipNow().catch(() => undefined);
    }, ms);
  }

  /** One shipping round at a time; a caller arriving during one waits for it and then runs its own. */
  private async shipNow(): Promise<void> {
    while (this.shipping) await this.shipping;
    this.shipping = this.shipBatch().finally(() => {
      this.shipping = undefined;
    });
    return this.shipping;
  }

  private async shipBatch(): Promise<void> {
    if (this.fd === undefined || this.shipped >= this.size) return;
    const fromMemory = !this.overflowed;
    let lines: SpoolLine[];
    let bytes = 0;
    if (fromMemory) {
      const batch = this.pending.slice(0, BATCH_LINES);
      lines = batch.map((p) => p.line);
      for (const p of batch) bytes += p.bytes;
    } else {
      const read = readLines(this.fd, this.shipped, Math.min(this.size, this.shipped + READ_BYTES));
      if (read.damaged) this.log.error({ file: this.path, lines: read.damaged }, 'audit spool: unreadable lines skipped');
      ({ lines, bytes } = read);
    }
    try {
      await this.store(lines, this.uncertain);
      this.shipped += bytes;
      if (fromMemory) this.pending.splice(0, lines.length);
      // caught up with the file: appends from here on are kept in memory again
      else if (this.shipped >= this.size) this.overflowed = false;
      this.uncertain = false;
      this.failures = 0;
    } catch (err) {
      this.uncertain = true;
      this.failures++;
      this.log.error({ err, failures: this.failures }, 'audit spool: records could not be stored yet; they stay in the spool');
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule(Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7)));
      return;
    }
    if (this.shipped < this.size) this.schedule(0);
    else if (this.size >= ROTATE_BYTES) this.rotate();
  }

  /** Everything in the file is stored: start a new one and remove it. */
  private rotate(): void {
    const old = { fd: this.fd!, path: this.path };
    this.fd = undefined;
    closeSync(old.fd);
    unlinkSync(old.path);
  }

  private async shipFile(path: string): Promise<number> {
    const fd = openSync(path, 'r');
    try {
      const end = fstatSync(fd).size;
      let at = 0;
      let n = 0;
      while (at < end) {
        const { lines, bytes, damaged } = readLines(fd, at, Math.min(end, at + READ_BYTES));
        if (damaged) this.log.error({ file: path, lines: damaged }, 'audit spool: unreadable lines skipped');
        if (!bytes) break; // a torn last line: the process died while writing it, before answering
        await this.store(lines, true);
        n += lines.reduce((k, l) => k + l.r.length, 0);
        at += bytes;
      }
      return n;
    } finally {
      closeSync(fd);
    }
  }

  /** Stores the lines' records, one INSERT per tenant; `dedup`: leave out those stored before. */
  private async store(lines: SpoolLine[], dedup: boolean): Promise<void> {
    const byTenant = new Map<string, AuditRecord[]>();
    for (const line of lines) {
      const list = byTenant.get(line.t) ?? [];
      line.r.forEach((r, i) => list.push({ ...r, origin: `${line.o}.${i}` }));
      byTenant.set(line.t, list);
    }
    await Promise.all(
      [...byTenant].map(([tenantId, records]) =>
        this.db.withTenant(tenantId, async (q) => {
          let rest = records;
          if (dedup) {
            const seen = await storedOrigins(q, tenantId, records);
            rest = records.filter((r) => !seen.has(r.origin!));
          }
          await insertAudit(q, tenantId, rest);
        }),
      ),
    );
  }
}

/** The complete lines of fd between `from` and `to` (a line cut at `to` is left for the next read). */
function readLines(fd: number, from: number, to: number): { lines: SpoolLine[]; bytes: number; damaged: number } {
  const buf = Buffer.alloc(to - from);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, from + got);
    if (n === 0) break;
    got += n;
  }
  const lastNl = buf.lastIndexOf(10, got - 1);
  if (lastNl < 0) return { lines: [], bytes: 0, damaged: 0 };
  const lines: SpoolLine[] = [];
  let damaged = 0;
  for (const text of buf.toString('utf8', 0, lastNl).split('\n')) {
    if (!text) continue;
    try {
      // written by this code, or by a version that did not make its strings well-formed
      lines.push(wellFormed(JSON.parse(text) as SpoolLine, text).line);
    } catch {
      damaged++; // the disk, not this code, damaged it: the rest of the file still ships
    }
  }
  return { lines, bytes: lastNl + 1, damaged };
}
