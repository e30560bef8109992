#!/usr/bin/env bash
# What one build costs against another (issue 11's target: rate limits + quotas + policy checks <= 5% on W2 reads):
# two checkouts of this project, BEFORE (a git revision, checked out into a temporary directory) and this one,
# alternated ROUNDS times in one session, each run on a fresh PostgreSQL database (bench/founders.sh --repo).
# Prints every run, then the medians and the cost of this build.
#
#   bench/builds-cost.sh --before REV [--rounds N] [--patients N] [--workloads w1,w2]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
before=""; rounds=2; patients=1000; workloads="w1,w2"
while [ $# -gt 0 ]; do
  case "$1" in
    --before) before="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --patients) patients="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
[ -n "$before" ] || { echo "usage: bench/builds-cost.sh --before REV [--rounds N] [--patients N]"; exit 2; }
old="$(mktemp -d)"
out="$(mktemp -d)"
trap 'rm -rf "$old"' EXIT
git -C "$here" archive "$before" | tar -x -C "$old"
ln -s "$here/node_modules" "$old/node_modules"
# the shared driver is found as ../shared from a checkout: the old build borrows this one's
[ -e "$old/../shared" ] || export FHIR_BENCH_DIR="${FHIR_BENCH_DIR:-${TMPDIR:-/tmp}/fhir-bench}"
for i in $(seq 1 "$rounds"); do
  echo "== round $i, before ($before)"
  "$here/bench/founders.sh" --repo "$old" --patients "$patients" --label before --out-dir "$out" --workloads "$workloads" | tail -2
  echo "== round $i, this build"
  "$here/bench/founders.sh" --patients "$patients" --label after --out-dir "$out" --workloads "$workloads" | tail -2
done
node "$here/bench/ab-report.mjs" "$out" before after "$workloads"
echo "results: $out"
