#!/usr/bin/env bash
# The founders' workload driver (../shared/bench, W1-W4) against this server as shipped (auth, row-level security,
# validation on), on a fresh PostgreSQL database, and optionally the driver's raw-PostgreSQL ceiling in the same run.
# --repo runs another checkout of this project (an A/B of two builds: alternate them in one session).
#
#   bench/founders.sh [--repo DIR] [--patients N] [--label TEXT] [--out-dir DIR] [--ceiling] [--port P] [--workloads w1,w2]
#                     [--pg-port P] [--citus-workers P1,P2] [--keep-db]
#
# --pg-port runs the server on another PostgreSQL on 127.0.0.1 (the ceiling stays on 5432). With --citus-workers, that
# PostgreSQL is a Citus coordinator whose workers listen on 127.0.0.1 at the given ports (docs/scaling.md): the fresh
# database is created with the citus extension on every node and the workers registered; the server distributes it.
#
# The server's environment passes through (e.g. AUDIT_TRAIL=false bench/founders.sh: bench/audit-cost.sh does that);
# TENANT_SET_ARGS holds `tenant set` options for the bench tenant (bench/profile-w1.sh requires the lab profiles);
# SERVER_NODE_ARGS adds node flags to the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
#
# --keep-db leaves the server's database behind (its name is printed) for EXPLAIN and profiling after the run.
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (as on the project's machines) and Node 20.
# Results: JSON files of the driver in --out-dir (default bench/results), one line per file printed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$here"; patients=2000; label=""; out_dir="$here/bench/results"; ceiling=0; port=18180; workloads=""; pg_port=5432; citus_workers=""; keep_db=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo="$(cd "$2" && pwd)"; shift 2 ;;
    --patients) patients="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    --ceiling) ceiling=1; shift ;;
    --port) port="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --pg-port) pg_port="$2"; shift 2 ;;
    --citus-workers) citus_workers="$2"; shift 2 ;;
    --keep-db) keep_db=1; shift ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done
label="${label:-$(git -C "$repo" rev-parse --short HEAD)}"
mkdir -p "$out_dir"
work="$(mktemp -d)"
driver="${FHIR_BENCH_DIR:-${TMPDIR:-/tmp}/fhir-bench}"
if [ ! -d "$driver/node_modules" ]; then
  rm -rf "$driver" && cp -r "$here/../shared/bench" "$driver" && (cd "$driver" && npm ci --no-audit --no-fund >/dev/null)
fi
psql_admin() { psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
db="tenfhir_fb_$$_$RANDOM"
psql_admin -c "CREATE DATABASE $db" >/dev/null
psql_admin -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenfhir_bench') THEN CREATE ROLE tenfhir_bench LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END \$\$;" >/dev/null
if [ -n "$citus_workers" ]; then
  for w in ${citus_workers//,/ }; do
    psql -q -h 127.0.0.1 -p "$w" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
    psql -q -h 127.0.0.1 -p "$w" -U postgres -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenfhir_bench') THEN CREATE ROLE tenfhir_bench LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END \$\$;" >/dev/null
    psql -q -h 127.0.0.1 -p "$w" -U postgres -d "$db" -c "CREATE EXTENSION citus" >/dev/null
  done
  psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -c "CREATE EXTENSION citus" -c "SELECT citus_set_coordinator_host('127.0.0.1', $pg_port)" >/dev/null
  for w in ${citus_workers//,/ }; do psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -c "SELECT citus_add_node('127.0.0.1', $w)" >/dev/null; done
fi
export DATABASE_URL="postgres://tenfhir_bench@127.0.0.1:$pg_port/$db" DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:$pg_port/$db"
export PORT="$port" PUBLIC_BASE_URL="http://127.0.0.1:$port" DATA_DIR="$work/data" DEMO_TENANT=false LOG_LEVEL=warn
export SECRETS_KEY="$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64"))')"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  if [ "$keep_db" = 1 ]; then echo "database kept: postgres://postgres@127.0.0.1:$pg_port/$db"; rm -rf "$work"; return; fi
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  for w in ${citus_workers//,/ }; do psql -q -h 127.0.0.1 -p "$w" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$repo" && exec node ${SERVER_NODE_ARGS:-} --import ./scripts/register-ts.mjs src/main.ts) > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
cli() { (cd "$repo" && node --import ./scripts/register-ts.mjs src/cli/index.ts "$@"); }
cli tenant create fb --name "fhir-bench" >/dev/null
# TENANT_SET_ARGS: settings for the bench tenant (e.g. required profiles: bench/profile-w1.sh)
if [ -n "${TENANT_SET_ARGS:-}" ]; then cli tenant set fb $TENANT_SET_ARGS >/dev/null; fi
cli client add fb --type operator --name "fhir-bench driver" --id fb-ops --scope 'system/*.cruds' >/dev/null
token="$(cli token fb --client fb-ops --scope 'system/*.cruds' --ttl 86400 2>/dev/null)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$out_dir/founders-$label-$stamp.json"
# the server's resident memory once a second while the driver runs (issue 14: RSS stays flat under W1-W4)
(while kill -0 "$server_pid" 2>/dev/null; do ps -o rss= -p "$server_pid" 2>/dev/null; sleep 1; done) > "$work/rss.txt" &
rss_pid=$!
(cd "$driver" && node src/cli.mjs --base "http://127.0.0.1:$port/fhir/fb" --token "$token" --patients "$patients" -c 4 \
  --tag "t$stamp" --label "$label" --watch-pid "$server_pid" --state "$work/state.json" --out "$out" ${workloads:+--workloads "$workloads"})
kill "$rss_pid" 2>/dev/null || true
awk 'NF { if (n == 0) first = $1; if ($1 > peak) peak = $1; last = $1; n++ }
  END { if (n) printf "server RSS while the driver ran: %.0f MB at the start, %.0f MB peak, %.0f MB at the end (%d samples)\n", first/1024, peak/1024, last/1024, n }' "$work/rss.txt"
if [ "$ceiling" = 1 ]; then
  raw="fhirbench_raw_$$_$RANDOM"
  cout="$out_dir/founders-ceiling-$stamp.json"
  (cd "$driver" && node src/cli.mjs --target pg --pg-url "postgres://postgres@127.0.0.1:5432/$raw" --patients "$patients" -c 4 \
    --tag "r$stamp" --label ceiling --state "$work/raw-state.json" --out "$cout")
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $raw WITH (FORCE)" >/dev/null 2>&1 || true
  echo "ceiling: $cout"
  echo "ratios to the ceiling of the same run (issue 14's targets):"
  node "$here/bench/ratios.mjs" "$out" "$cout"
fi
echo "results: $out"
