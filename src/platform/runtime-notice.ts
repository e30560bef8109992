// Imported first by main.ts and the CLI. Two oidc-provider warnings that are known and answered here would
// otherwise print on every start or first JWKS fetch:
// - "Unsupported runtime": oidc-provider 9 declares Node 22; this project pins Node 20.19+ and runs its whole suite
//   there (docs/design-notes.md, "oidc-provider 9 on Node 20");
// - "failed to setup SSRF protection": its undici-based guard does not set up on Node 20; src/platform/outbound.ts
//   guards client JWKS URLs instead.
// Only those exact messages are dropped.
const QUIET = ['oidc-provider WARNING: Unsupported runtime', 'oidc-provider WARNING: failed to setup SSRF protection'];
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && QUIET.some((q) => (args[0] as string).includes(q))) return;
  warn(...args);
};
