// Where a server's CPU went, from a V8 .cpuprofile (node --cpu-prof, e.g. SERVER_NODE_ARGS of bench/founders.sh):
// self time by function and by source file, optionally only inside a window of the run (the profile's seconds from
// its start, e.g. the W2 phase of a driver run). Idle time is left out of the shares.
//
//   node bench/cpu-top.mjs PROFILE.cpuprofile [--from S] [--to S] [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '30' } } });
if (!positionals[0]) {
  console.error('usage: node bench/cpu-top.mjs PROFILE.cpuprofile [--from S] [--to S] [--top N]');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(positionals[0], 'utf8'));
const from = values.from === undefined ? -Infinity : Number(values.from) * 1e6;
const to = values.to === undefined ? Infinity : Number(values.to) * 1e6;
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
let t = 0;
let total = 0;
let idle = 0;
prof.samples.forEach((id, i) => {
  t += prof.timeDeltas[i];
  if (t < from || t > to) return;
  const dt = prof.timeDeltas[i + 1] ?? 0;
  const f = nodes.get(id).callFrame;
  if (f.functionName === '(idle)' || f.functionName === '(program)') {
    if (f.functionName === '(idle)') idle += dt;
    return;
  }
  total += dt;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
});
const byFile = new Map();
for (const [key, v] of self) {
  const file = key.split(' ').slice(1).join(' ').replace(/:\d+$/, '').replace(/^(node_modules\/(@[^/]+\/)?[^/]+).*$/, '$1') || '(native)';
  byFile.set(file, (byFile.get(file) ?? 0) + v);
}
const top = Number(values.top);
const pct = (v) => `${((v / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`busy ${(total / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s in the window`);
console.log('\nby file:');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
console.log('\nby function:');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
