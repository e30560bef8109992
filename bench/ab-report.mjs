// The report of an A/B of bench/founders.sh runs (bench/audit-cost.sh, bench/profile-w1.sh): every run, then the
// medians of each side and what B costs against A. Besides the rates, the server's own CPU per resource (W1) and per
// read (W2), from the driver's --watch-pid figures: on a shared machine whose neighbours move the rates by 20% between
// identical runs, what the server spends per request is the steadier measure of what a change costs.
//
//   node bench/ab-report.mjs DIR LABEL_A LABEL_B w1|w1,w2
import { readdirSync, readFileSync } from 'node:fs';

const [dir, a, b, workloads = 'w1,w2'] = process.argv.slice(2);
const withW2 = workloads.split(',').includes('w2');
const runs = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')));
const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const by = { [a]: [], [b]: [] };
for (const r of runs) by[r.meta?.label ?? r.label]?.push(r);
/** The server's CPU in µs per unit of work: its cores (the driver's pid<PID>Cores of the phase) over the rate. */
function cpuPer(phase, rate) {
  const key = phase?.cpu && Object.keys(phase.cpu).find((k) => /^pid\d+Cores$/.test(k));
  return key && rate ? Math.round((phase.cpu[key] / rate) * 1e6) : undefined;
}
const w1cpu = (r) => cpuPer(r.w1, r.w1?.resourcesPerSec);
const w2cpu = (r) => cpuPer(r.w2, r.w2?.reqPerSec);
console.log(`run            W1 res/s  W1 bundle p95 ms  W1 µs/res${withW2 ? '  W2 req/s  W2 p95 ms  W2 µs/req' : ''}`);
for (const [label, list] of Object.entries(by)) for (const r of list) {
  const w2 = withW2 ? `  ${String(r.w2?.reqPerSec).padStart(8)}  ${String(r.w2?.latencyMs?.p95).padStart(9)}  ${String(w2cpu(r)).padStart(9)}` : '';
  console.log(`${label.padEnd(14)} ${String(r.w1?.resourcesPerSec).padStart(8)}  ${String(r.w1?.bundleLatencyMs?.p95).padStart(16)}  ${String(w1cpu(r)).padStart(9)}${w2}`);
}
const m = (label, fn) => median(by[label].map(fn).filter((x) => typeof x === 'number'));
const cost = (off, on) => `${(((off - on) / off) * 100).toFixed(1)}%`;
const w1a = m(a, (r) => r.w1?.resourcesPerSec), w1b = m(b, (r) => r.w1?.resourcesPerSec);
// CPU per unit: more is a cost, so B's extra over A
const extra = (x, y) => `${(((y - x) / x) * 100).toFixed(1)}%`;
const c1a = m(a, w1cpu), c1b = m(b, w1cpu);
let line = `medians: W1 ${w1a} -> ${w1b} res/s (cost ${cost(w1a, w1b)}), server CPU ${c1a} -> ${c1b} µs/resource (${extra(c1a, c1b)})`;
if (withW2) {
  const w2a = m(a, (r) => r.w2?.reqPerSec), w2b = m(b, (r) => r.w2?.reqPerSec);
  const p95a = m(a, (r) => r.w2?.latencyMs?.p95), p95b = m(b, (r) => r.w2?.latencyMs?.p95);
  const c2a = m(a, w2cpu), c2b = m(b, w2cpu);
  line += `;\n         W2 ${w2a} -> ${w2b} req/s (cost ${cost(w2a, w2b)}), p95 ${p95a} -> ${p95b} ms, server CPU ${c2a} -> ${c2b} µs/read (${extra(c2a, c2b)})`;
}
console.log(line);
