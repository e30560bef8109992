// Where export files live (Bulk 2.0 export.html#file-request): a small put/get/delete interface, so an object store can
// take the place of the local disk later. A file is written under a temporary name and renamed when complete, so a
// partial file is never served; a failed write (disk full) leaves nothing behind.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** One file being written: lines go in; commit() publishes it whole, abort() drops it. */
export interface ExportFileWriter {
  write(line: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface ExportStorage {
  /** Starts writing `name` of one export (replacing a file of that name when committed). */
  put(tenantId: string, exportId: string, name: string): Promise<ExportFileWriter>;
  /** The committed file, or undefined. */
  get(tenantId: string, exportId: string, name: string): Promise<{ stream: Readable; size: number } | undefined>;
  /** Removes every file of the export. */
  delete(tenantId: string, exportId: string): Promise<void>;
}

/** Names the server itself gives (type-n.ndjson): nothing else is ever looked up on disk. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

/** Files on local disk: `<root>/<tenant>/<exportId>/<name>` (root: `<DATA_DIR>/exports`). */
export class LocalExportStorage implements ExportStorage {
  constructor(private readonly root: string) {}

  private dir(tenantId: string, exportId: string): string {
    if (!SAFE_SEGMENT.test(tenantId) || !SAFE_SEGMENT.test(exportId)) throw new Error('invalid export path');
    return join(this.root, tenantId, exportId);
  }

  async put(tenantId: string, exportId: string, name: string): Promise<ExportFileWriter> {
    if (!SAFE_NAME.test(name)) throw new Error('invalid export file name');
    const dir = this.dir(tenantId, exportId);
    await mkdir(dir, { recursive: true });
    const final = join(dir, name);
    const temp = join(dir, `.${name}.${process.pid}.${Date.now()}.part`);
    const out = createWriteStream(temp, { flags: 'w' });
    let failure: Error | undefined;
    out.on('error', (err) => (failure ??= err));
    const opened = new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
    await opened;
    const drop = async () => {
      out.destroy();
      await unlink(temp).catch(() => undefined);
    };
    return {
      write: (line) =>
        new Promise<void>((resolve, reject) => {
          if (failure) return reject(failure);
          // waits for the drain when the buffer is full: memory stays flat however large the file grows
          if (out.write(line)) resolve();
          else out.once('drain', () => (failure ? reject(failure) : resolve()));
        }),
      commit: async () => {
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err || failure ? reject(err ?? failure) : resolve())));
        if (failure) throw failure;
        await rename(temp, final);
      },
      abort: drop,
    };
  }

  async get(tenantId: string, exportId: string, name: string): Promise<{ stream: Readable; size: number } | undefined> {
    if (!SAFE_NAME.test(name) || name.startsWith('.')) return undefined;
    const path = join(this.dir(tenantId, exportId), name);
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) return undefined;
    return { stream: createReadStream(path), size: s.size };
  }

  async delete(tenantId: string, exportId: string): Promise<void> {
    await rm(this.dir(tenantId, exportId), { recursive: true, force: true });
  }
}
