// The folder layering of src/ (STYLE.md §1, issue 9): every folder imports only folders below it in LAYERS, so no
// folder imports a folder that imports it back (a type import counts too); only platform/ imports the drivers.
// eslint.config.js enforces the same list while editing; this test keeps CI honest.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { DRIVERS, LAYERS } from '../../scripts/layers.mjs';

const SRC = new URL('../../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
}

/** The folder of a source file: its first path segment under src/ ("(root)" for main.ts and compose.ts). */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0] : '(root)';
}

interface Edge {
  from: string;
  to: string;
  file: string;
  spec: string;
}

function imports(): { edges: Edge[]; packages: { file: string; spec: string }[] } {
  const edges: Edge[] = [];
  const packages: { file: string; spec: string }[] = [];
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith('.')) {
        packages.push({ file: relative(SRC, file), spec });
        continue;
      }
      const target = resolve(dirname(file), spec);
      const from = folderOf(file);
      const to = folderOf(target);
      if (from !== to) edges.push({ from, to, file: relative(SRC, file), spec });
    }
  }
  return { edges, packages };
}

describe('the folder layering of src/', () => {
  const { edges, packages } = imports();

  it('names every folder of src/ in LAYERS', () => {
    const folders = new Set(files(SRC).map(folderOf));
    for (const f of folders) expect(LAYERS).toContain(f);
  });

  it('imports only downwards: no folder imports a folder above it (so none imports one that imports it back)', () => {
    const upward = edges.filter((e) => LAYERS.indexOf(e.to) > LAYERS.indexOf(e.from)).map((e) => `${e.file} imports ${e.spec} (${e.from} -> ${e.to})`);
    expect(upward).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges) graph.set(e.from, (graph.get(e.from) ?? new Set()).add(e.to));
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      for (const next of graph.get(node) ?? []) {
        if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].join(' -> '));
        else visit(next, [...path, next]);
      }
    };
    for (const start of graph.keys()) visit(start, [start]);
    expect(cycles).toEqual([]);
  });

  it('lets only platform/ import database and logging drivers', () => {
    const outside = packages.filter((p) => DRIVERS.some((d) => p.spec === d || p.spec.startsWith(`${d}/`)) && !p.file.startsWith('platform/')).map((p) => `${p.file}: ${p.spec}`);
    expect(outside).toEqual([]);
  });
});
