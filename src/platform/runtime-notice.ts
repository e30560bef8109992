// Imported first by main.ts and the CLI. oidc-provider 9 prints "Unsupported runtime" on Node 20 at import time;
// this project pins Node 20.19+ and runs its whole suite there (docs/design-notes.md, "oidc-provider on Node 20"),
// so the line would only be noise on every CLI call. Only that exact message is dropped.
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
  warn(...args);
};
