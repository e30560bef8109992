// Module hooks for register-ts.mjs: resolve `./x.js` to `./x.ts` when only the .ts exists, and strip types on load.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import swc from '@swc/core';

export async function resolve(specifier, context, next) {
  if ((specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:')) && specifier.endsWith('.js')) {
    const url = new URL(specifier, context.parentURL);
    if (url.protocol === 'file:' && !existsSync(fileURLToPath(url))) {
      const ts = url.href.slice(0, -3) + '.ts';
      if (existsSync(fileURLToPath(ts))) return { url: ts, shortCircuit: true, format: 'module' };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('.ts')) {
    const source = await readFile(fileURLToPath(url), 'utf8');
    const out = swc.transformSync(source, {
      filename: fileURLToPath(url),
      sourceMaps: 'inline',
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'es6' },
    });
    return { format: 'module', source: out.code, shortCircuit: true };
  }
  return next(url, context);
}
