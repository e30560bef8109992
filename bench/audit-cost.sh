#!/usr/bin/env bash
# What the audit trail costs (issue 12's target: <= 10% on W1 ingest and on W2 reads of the founders' driver): the
# same build run with AUDIT_TRAIL=false and AUDIT_TRAIL=true, alternated ROUNDS times in one session, each on a fresh
# PostgreSQL database (bench/founders.sh --workloads w1,w2). Prints every run, then the medians and the cost.
#
#   bench/audit-cost.sh [--rounds N] [--patients N]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rounds=2; patients=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --patients) patients="$2"; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
out="$(mktemp -d)"
for i in $(seq 1 "$rounds"); do
  for mode in false true; do
    echo "== round $i, AUDIT_TRAIL=$mode"
    AUDIT_TRAIL="$mode" "$here/bench/founders.sh" --patients "$patients" --label "audit-$mode" --out-dir "$out" --workloads w1,w2 | tail -3
  done
done
node - "$out" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const runs = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8')));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const by = { 'audit-false': [], 'audit-true': [] };
for (const r of runs) by[r.meta?.label ?? r.label]?.push(r);
console.log('run            W1 res/s  W1 bundle p95 ms  W2 req/s  W2 p95 ms');
for (const [label, list] of Object.entries(by)) for (const r of list) {
  console.log(`${label.padEnd(14)} ${String(r.w1?.resourcesPerSec).padStart(8)}  ${String(r.w1?.bundleLatencyMs?.p95).padStart(16)}  ${String(r.w2?.reqPerSec).padStart(8)}  ${String(r.w2?.latencyMs?.p95).padStart(9)}`);
}
const m = (label, fn) => median(by[label].map(fn).filter((x) => typeof x === 'number'));
const w1off = m('audit-false', (r) => r.w1?.resourcesPerSec), w1on = m('audit-true', (r) => r.w1?.resourcesPerSec);
const w2off = m('audit-false', (r) => r.w2?.reqPerSec), w2on = m('audit-true', (r) => r.w2?.reqPerSec);
const p95off = m('audit-false', (r) => r.w2?.latencyMs?.p95), p95on = m('audit-true', (r) => r.w2?.latencyMs?.p95);
const cost = (off, on) => `${(((off - on) / off) * 100).toFixed(1)}%`;
console.log(`medians: W1 ${w1off} -> ${w1on} res/s (cost ${cost(w1off, w1on)}); W2 ${w2off} -> ${w2on} req/s (cost ${cost(w2off, w2on)}), p95 ${p95off} -> ${p95on} ms`);
JS
echo "results: $out"
