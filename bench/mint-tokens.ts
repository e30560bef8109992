// Access tokens for the benchmarks, through the functions behind the CLI's `client add --type operator` and
// `token` commands (src/auth/admin.ts registerClient, src/auth/tokens.ts mintAccessToken), in one process for any
// number of tenants and tokens (one CLI process per token would be far too slow for bench/auth.ts's fresh-token
// phase). Like the CLI, it reaches a running server's embedded database through the server's loopback socket.
//
//   node --import ./scripts/register-ts.mjs bench/mint-tokens.ts --out FILE [--count N] [--ttl S] [--scope S] <tenant>...
//
// Per tenant: registers the operator client `bench-op-<tenant>` (unless it exists), mints one token with
// mintAccessToken, then N - 1 more with the same claims and a new jti each (so every token is distinct: the
// server has never seen it). Writes {"<tenant>": {"clientId": ..., "scope": ..., "tokens": [...]}} to FILE.
// bench/common.ts operatorTokens() runs it.

import '../src/platform/runtime-notice.js';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { registerClient } from '../src/auth/admin.js';
import { createAuthServer } from '../src/auth/server.js';
import { mintAccessToken, signAccessToken } from '../src/auth/tokens.js';
import { buildDeps, closeDeps } from '../src/compose.js';
import { loadConfig } from '../src/config/index.js';
import { runningEmbeddedUrl } from '../src/platform/embedded.js';
import { createLogger, flushLogs } from '../src/platform/log.js';
import { findClient } from '../src/store/auth-payloads.js';
import { TenantCache } from '../src/tenancy/tenant-cache.js';

const operatorClientId = (tenant: string): string => `bench-op-${tenant}`;

async function run(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { out: { type: 'string' }, count: { type: 'string' }, ttl: { type: 'string' }, scope: { type: 'string' } },
    allowPositionals: true,
  });
  const count = Number(values.count ?? 1);
  const ttl = Number(values.ttl ?? 21_600);
  const scope = values.scope ?? 'system/*.cruds';
  if (!values.out || !positionals.length || !Number.isInteger(count) || count < 1 || !Number.isInteger(ttl) || ttl < 1) {
    console.error('usage: bench/mint-tokens.ts --out FILE [--count N] [--ttl S] [--scope S] <tenant>...');
    return 2;
  }
  const config = loadConfig();
  const level = process.env.LOG_LEVEL ?? 'warn';
  const socket = config.databaseUrl ? undefined : await runningEmbeddedUrl(config.dataDir);
  const deps = await buildDeps({ ...config, logLevel: level }, createLogger(level, 2), socket);
  const auth = createAuthServer(deps, new TenantCache(deps.db));
  try {
    const out: Record<string, { clientId: string; scope: string; tokens: string[] }> = {};
    for (const tenant of positionals) {
      const clientId = operatorClientId(tenant);
      if (!(await findClient(deps.db, clientId))) {
        await registerClient(deps, auth.provider(), { tenant, kind: 'operator', name: `Benchmark operator (${tenant})`, clientId, scope });
      }
      const first = await mintAccessToken(deps, deps.auth.keys, { tenant, clientId, scope, ttlSeconds: ttl });
      const tokens = [first.accessToken];
      for (let i = 1; i < count; i++) tokens.push(signAccessToken(deps.auth.keys, { ...first.claims, jti: randomBytes(16).toString('base64url') }));
      out[tenant] = { clientId, scope: first.scope, tokens };
    }
    fs.writeFileSync(values.out, JSON.stringify(out));
    return 0;
  } finally {
    auth.close();
    await closeDeps(deps);
  }
}

run()
  .then((code) => {
    flushLogs();
    process.exit(code);
  })
  .catch((err) => {
    flushLogs();
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  });
