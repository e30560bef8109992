#!/usr/bin/env node
// SMART Backend Services helper for operators and integrators (no dependencies):
//   node scripts/backend-client.mjs keygen <dir>                          ES384 key pair: <dir>/private.jwk.json, <dir>/jwks.json
//   node scripts/backend-client.mjs assertion <private.jwk.json> <client_id> <token_url>   prints a signed client assertion (5 min)
// Register <dir>/jwks.json with: npm run cli -- client add <tenant> --type backend --jwks-file <dir>/jwks.json --scope "..."
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const [cmd, ...args] = process.argv.slice(2);

if (cmd === 'keygen' && args[0]) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const kid = randomBytes(8).toString('hex');
  const meta = { kid, alg: 'ES384', use: 'sig' };
  mkdirSync(args[0], { recursive: true });
  writeFileSync(join(args[0], 'private.jwk.json'), JSON.stringify({ ...privateKey.export({ format: 'jwk' }), ...meta }, null, 2), { mode: 0o600 });
  writeFileSync(join(args[0], 'jwks.json'), JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), ...meta }] }, null, 2));
  console.log(`wrote ${join(args[0], 'private.jwk.json')} (keep it secret) and ${join(args[0], 'jwks.json')} (register it)`);
} else if (cmd === 'assertion' && args.length === 3) {
  const [file, clientId, tokenUrl] = args;
  const jwk = JSON.parse(readFileSync(file, 'utf8'));
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES384', typ: 'JWT', kid: jwk.kid };
  const claims = { iss: clientId, sub: clientId, aud: tokenUrl, exp: now + 300, jti: randomUUID() };
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = sign('sha384', Buffer.from(input), { key: createPrivateKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' });
  console.log(`${input}.${signature.toString('base64url')}`);
} else {
  console.error('usage: node scripts/backend-client.mjs keygen <dir> | assertion <private.jwk.json> <client_id> <token_url>');
  process.exit(2);
}
