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
node "$here/bench/ab-report.mjs" "$out" audit-false audit-true w1,w2
echo "results: $out"
