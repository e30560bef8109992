// Builds response Bundles around stored resource JSON without parsing and re-serialising each resource.
// Placeholders carry a random per-response nonce, so text a client controls (echoed in an outcome, say)
// can never be mistaken for one.
import { randomBytes } from 'node:crypto';

export class RawJsonBuilder {
  private readonly raws: string[] = [];
  private readonly nonce = randomBytes(8).toString('hex');

  /** A placeholder value that serialises to the given JSON text verbatim. */
  raw(json: string): string {
    this.raws.push(json);
    return `\u0000${this.nonce}:${this.raws.length - 1}\u0000`;
  }

  stringify(value: unknown): string {
    const pattern = new RegExp(`"\\\\u0000${this.nonce}:(\\d+)\\\\u0000"`, 'g');
    return JSON.stringify(value).replace(pattern, (_, i: string) => this.raws[Number(i)]);
  }
}
