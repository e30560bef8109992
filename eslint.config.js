// Lint rules that keep the layering of src/ (scripts/layers.mjs, STYLE.md §1, issue 9): a folder imports only the
// folders below it, so no folder imports a folder that imports it back; only src/platform/ imports drivers.
// `npm run lint`; tests/unit/architecture.test.ts checks the same graph (and its cycles) in CI.
import tsParser from '@typescript-eslint/parser';
import { DRIVERS, LAYERS } from './scripts/layers.mjs';

/** The specifiers by which a file at any depth of one folder could reach folder `f`. */
const reach = (f) => [`./${f}/*`, `../${f}/*`, `../../${f}/*`, `../../../${f}/*`];

export default [
  { files: ['src/**/*.ts'], languageOptions: { parser: tsParser, ecmaVersion: 2022, sourceType: 'module' } },
  ...LAYERS.map((folder, i) => {
    const above = LAYERS.slice(i + 1).filter((f) => f !== '(root)');
    const patterns = [];
    if (above.length) patterns.push({ group: above.flatMap(reach), message: `${folder}/ may not import a folder above it (scripts/layers.mjs).` });
    if (folder !== 'platform') patterns.push({ group: DRIVERS, message: 'Only src/platform/ imports database and logging drivers.' });
    if (folder !== '(root)' && folder !== 'cli') patterns.push({ group: ['./main.js', '../main.js', '../compose.js', '../../compose.js'], message: 'Only the composition root and the CLI build Deps.' });
    return {
      files: folder === '(root)' ? ['src/*.ts'] : [`src/${folder}/**/*.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns }] },
    };
  }),
];
