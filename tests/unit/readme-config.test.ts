// The README's configuration table is the one generated from src/config (STYLE.md §6).
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { CONFIG_KEYS } from '../../src/config/index.js';

describe('README configuration table', () => {
  it('lists every configuration key with its default and meaning', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const k of CONFIG_KEYS) expect(readme).toContain(`| \`${k.env}\` | \`${k.default}\` | ${k.doc} |`);
  });
});
