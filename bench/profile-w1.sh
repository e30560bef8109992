#!/usr/bin/env bash
# What profile validation costs on the founders' W1 ingest (issue 13's target: <= 30%): the same build with the US
# Core lab profiles required for every DiagnosticReport and Observation of the bench tenant, and without, alternated
# ROUNDS times in one session, each on a fresh PostgreSQL database (bench/founders.sh --workloads w1). Prints every
# run, the medians and the cost.
#
#   bench/profile-w1.sh [--rounds N] [--patients N]
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
US_CORE=http://hl7.org/fhir/us/core/StructureDefinition
required="--require-profile DiagnosticReport=$US_CORE/us-core-diagnosticreport-lab --require-profile Observation=$US_CORE/us-core-observation-lab"
out="$(mktemp -d)"
for i in $(seq 1 "$rounds"); do
  for mode in off on; do
    echo "== round $i, lab profiles $mode"
    if [ "$mode" = on ]; then args="$required"; else args=""; fi
    TENANT_SET_ARGS="$args" "$here/bench/founders.sh" --patients "$patients" --label "profiles-$mode" --out-dir "$out" --workloads w1 | tail -2
  done
done
node - "$out" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const runs = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8')));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const by = { 'profiles-off': [], 'profiles-on': [] };
for (const r of runs) by[r.meta?.label ?? r.label]?.push(r);
console.log('run            W1 res/s  W1 bundle p95 ms');
for (const [label, list] of Object.entries(by)) for (const r of list) console.log(`${label.padEnd(14)} ${String(r.w1?.resourcesPerSec).padStart(8)}  ${String(r.w1?.bundleLatencyMs?.p95).padStart(16)}`);
const m = (label, fn) => median(by[label].map(fn).filter((x) => typeof x === 'number'));
const off = m('profiles-off', (r) => r.w1?.resourcesPerSec), on = m('profiles-on', (r) => r.w1?.resourcesPerSec);
console.log(`medians: W1 ${off} -> ${on} res/s (cost ${(((off - on) / off) * 100).toFixed(1)}%)`);
JS
echo "results: $out"
