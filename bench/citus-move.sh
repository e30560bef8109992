#!/usr/bin/env bash
# Issue 16's operations under load: the founders' driver (../shared/bench) reads (W2) and updates (W4) one tenant on a
# Citus cluster while `tenant move` (online, logical replication) and then `tenant isolate` run on that tenant; each
# driver run reports its failed requests and its latency tail (the pause, if any). docs/scaling.md "Figures".
#
#   bench/citus-move.sh [--port P] [--workers P1,P2] [--patients N] [--sec S]
#
# Needs a running cluster (docs/scaling.md: coordinator 127.0.0.1:9600, workers 9601/9602) whose nodes allow Citus's
# logical decoding plugin (output_plugin_libraries), and Node 20. A fresh database is created and dropped.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
port=9600; workers="9601,9602"; patients=1000; sec=40; http=18190
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --patients) patients="$2"; shift 2 ;;
    --sec) sec="$2"; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
work="$(mktemp -d)"
driver="${FHIR_BENCH_DIR:-${TMPDIR:-/tmp}/fhir-bench}"
if [ ! -d "$driver/node_modules" ]; then
  rm -rf "$driver" && cp -r "$here/../shared/bench" "$driver" && (cd "$driver" && npm ci --no-audit --no-fund >/dev/null)
fi
db="tenfhir_move_$$"
nodes="$port ${workers//,/ }"
for p in $nodes; do
  psql -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
  psql -q -h 127.0.0.1 -p "$p" -U postgres -d "$db" -c "CREATE EXTENSION citus" >/dev/null
done
psql -q -h 127.0.0.1 -p "$port" -U postgres -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $port)" >/dev/null
for w in ${workers//,/ }; do psql -q -h 127.0.0.1 -p "$port" -U postgres -d "$db" -c "SELECT citus_add_node('127.0.0.1', $w)" >/dev/null; done
# the application's login role, on every node (Citus opens the worker connections as it)
for p in $nodes; do
  psql -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenfhir_bench') THEN CREATE ROLE tenfhir_bench LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END \$\$;" >/dev/null
done
export DATABASE_URL="postgres://tenfhir_bench@127.0.0.1:$port/$db" DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:$port/$db"
export PORT="$http" PUBLIC_BASE_URL="http://127.0.0.1:$http" DATA_DIR="$work/data" DEMO_TENANT=false LOG_LEVEL=warn
export SECRETS_KEY="$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64"))')"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  for p in $nodes; do psql -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$here" && exec node --import ./scripts/register-ts.mjs src/main.ts) > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break; sleep 0.5; done
cli() { (cd "$here" && node --import ./scripts/register-ts.mjs src/cli/index.ts "$@"); }
cli tenant create fb --name "fhir-bench" >/dev/null
cli client add fb --type operator --name "fhir-bench driver" --id fb-ops --scope 'system/*.cruds' >/dev/null
token="$(cli token fb --client fb-ops --scope 'system/*.cruds' --ttl 86400 2>/dev/null)"
drive() { # drive LABEL WORKLOADS: W2 and W4 each run for --sec seconds (two drivers at once: reads and updates together)
  (cd "$driver" && node src/cli.mjs --base "http://127.0.0.1:$http/fhir/fb" --token "$token" --patients "$patients" -c 4 \
    --tag tmove --label "$1" --state "$work/state.json" --out "$work/$1.json" --workloads "$2" --w2-sec "$sec" --w4-sec "$sec" --w4-hot 0 --warmup-sec 1)
}
summary() { node -e '
const r = require(process.argv[1]);
const line = (n, w) => w && console.log(`${n}: ${w.reqPerSec ?? w.updatesPerSec ?? w.resourcesPerSec}/s, errors ${w.errors}, p50 ${w.latencyMs?.p50 ?? w.putLatencyMs?.p50} ms, p99 ${w.latencyMs?.p99 ?? w.putLatencyMs?.p99} ms, max ${w.latencyMs?.max ?? w.putLatencyMs?.max} ms`);
line("W2", r.w2);
for (const [k, p] of Object.entries(r.w4 ?? {}).filter(([k]) => k !== "cpu")) line(`W4 ${k}`, { ...p, conflicts: undefined });
' "$work/$1.json"; }
under_load() { # under_load LABEL COMMAND...: W2 and W4 at once, COMMAND started 8 s in
  local label=$1; shift
  drive "$label-w2" w2 > "$work/$label-w2.out" 2>&1 &
  local d2=$!
  drive "$label-w4" w4 > "$work/$label-w4.out" 2>&1 &
  local d4=$!
  sleep 8
  local start; start=$(date +%s.%N)
  "$@"
  echo "$label took $(echo "$(date +%s.%N) - $start" | bc) s"
  wait $d2 || echo "W2 driver exited $?"
  wait $d4 || echo "W4 driver exited $?"
  summary "$label-w2"
  summary "$label-w4"
}
echo "== W1: $patients patients into tenant fb"
drive load w1 | tail -3
where() { psql -h 127.0.0.1 -p "$port" -U postgres -d "$db" -Atc "SELECT nodename || ':' || nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE shardid = get_shard_id_for_distribution_column('resource', 'fb')"; }
from="$(where)"
to=""; for w in ${workers//,/ }; do [ "127.0.0.1:$w" != "$from" ] && to="127.0.0.1:$w" && break; done
echo "== W2 + W4 while 'tenant move fb --node $to' runs (the shard group is on $from)"
under_load move cli tenant move fb --node "$to"
echo "the shard group is now on $(where)"
echo "== W2 + W4 while 'tenant isolate fb' runs"
under_load isolate cli tenant isolate fb
grep -E '"level":(50|60)' "$work/server.log" | head -5 || true
