// Reading a request body: the size limit (413) enforced while streaming, and a client that goes away mid-body.
import type { Request } from 'express';
import { FhirError } from '../core/errors.js';

function tooLarge(message: string): FhirError {
  // The rest of an oversized body is not read: close the connection rather than drain it.
  return new FhirError('too-large', message, { code: 'BODY_TOO_LARGE', headers: { Connection: 'close' } });
}

/** Reads the raw body, enforcing the byte limit while streaming. */
export function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(`Request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: FhirError) => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        fail(tooLarge(`Request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => fail(new FhirError('invalid', 'The request body could not be read', { code: 'BODY_READ_FAILED', cause: err })));
    // A client that goes away mid-body must not leave this promise (and its chunks) pending forever.
    req.on('close', () => fail(new FhirError('invalid', 'The request body ended early', { code: 'BODY_READ_FAILED' })));
  });
}

