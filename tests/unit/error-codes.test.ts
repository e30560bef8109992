// The error-code list in docs/errors.md stays in step with the codes src/ emits (STYLE.md §8.6).
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
}

describe('docs/errors.md', () => {
  it('documents every error code raised in src/', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
    const codes = new Set<string>();
    for (const f of files(join(ROOT, 'src'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:code: |entryError\([^;]*?, )'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]);
    }
    expect(codes.size).toBeGreaterThan(50);
    const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });
});
