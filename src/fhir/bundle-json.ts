// Builds response Bundles around stored resource JSON without parsing and re-serialising each resource.
const RAW = /"\\u0000raw(\d+)\\u0000"/g;

export class RawJsonBuilder {
  private readonly raws: string[] = [];

  /** A placeholder value that serialises to the given JSON text verbatim. */
  raw(json: string): string {
    this.raws.push(json);
    return `\u0000raw${this.raws.length - 1}\u0000`;
  }

  stringify(value: unknown): string {
    return JSON.stringify(value).replace(RAW, (_, i: string) => this.raws[Number(i)]);
  }
}
