// The breached-password list (BREACHED_PASSWORDS_FILE): SHA-1 hashes of passwords exposed in data breaches, one per
// line in hex, optionally followed by `:count`, sorted by hash — the format of Have I Been Pwned's offline
// "ordered by hash" download. The file may be tens of gigabytes, so it is never loaded: each question is a binary
// search over byte offsets, some 35 small reads for the full list.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

const HASH_LENGTH = 40;
/** Bytes read at an offset: a whole line (hash, count, line break) fits several times. */
const CHUNK = 512;

/** The first whole line starting at or after `pos`: its hash (upper case) and where the line after it starts. */
async function lineFrom(fh: FileHandle, pos: number, size: number): Promise<{ hash: string; next: number } | undefined> {
  let start = pos;
  if (pos > 0) {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(CHUNK), 0, CHUNK, pos - 1);
    const nl = buffer.subarray(0, bytesRead).indexOf(10);
    if (nl < 0) return undefined;
    start = pos + nl;
  }
  if (start >= size) return undefined;
  const { buffer, bytesRead } = await fh.read(Buffer.alloc(CHUNK), 0, CHUNK, start);
  const text = buffer.subarray(0, bytesRead).toString('latin1');
  const end = text.indexOf('\n');
  const line = end < 0 ? text : text.slice(0, end);
  return { hash: line.slice(0, HASH_LENGTH).toUpperCase(), next: end < 0 ? size : start + end + 1 };
}

/** Whether the sorted hash file holds the SHA-1 hash of `password`. */
export async function isBreachedPassword(file: string, password: string): Promise<boolean> {
  const target = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    // invariant: a line holding the target, if any, starts in [lo, hi)
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const line = await lineFrom(fh, mid, size);
      // no line (the end), or a blank one (trailing line breaks): the target lies before
      if (!line || line.hash.length < HASH_LENGTH || line.hash > target) hi = mid;
      else if (line.hash < target) lo = line.next;
      else return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}
