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
node "$here/bench/ab-report.mjs" "$out" profiles-off profiles-on w1
echo "results: $out"
