#!/usr/bin/env bash
# Runs the project's whole jest suite against a Citus coordinator (issue 16, docs/scaling.md "Testing on Citus"), then
# prints Citus's counters of the run: how many statements went to one shard and how many to several.
#
#   scripts/citus-test.sh [ADMIN_URL [APP_URL]] [-- <jest arguments>]
#
#   ADMIN_URL  the coordinator's database as a superuser (the tables' owner)   default: $DATABASE_ADMIN_URL
#   APP_URL    the same database as the application's login role              default: $DATABASE_URL
#   REDIS_URL  (environment) the Redis the suite uses, as for `npm test`
#
# The suite uses that one database: its global setup migrates it, which on Citus also distributes the schema
# (src/store/citus.ts), and grants fhir_app to APP_URL's role. Give it a database of its own: the suite leaves tenants
# behind. tests/integration/store/citus-distribute.test.ts runs its Citus part too (CITUS_ADMIN_URL is set); after the
# suite, and alone, it runs once more with CITUS_TEST_SHARD_MOVES=1: `tenant isolate` and `tenant move` of a tenant
# with rows (a split holds the writes of every tenant in the shard, which the suite's other files would feel).
# CITUS_TEST_SHARD_MOVES=0 leaves that out.
# Counters: citus_stat_counters (Citus 13.1+), switched on for the database with citus.enable_stat_counters; they count
# every statement the coordinator ran for the database during the run, test helpers' own queries included.
# CITUS_LOG_MULTI_SHARD=1 also has the coordinator log each multi-shard statement (citus.multi_task_query_log_level),
# so its server log says which statements they were.
set -euo pipefail
cd "$(dirname "$0")/.."

admin=${DATABASE_ADMIN_URL:-}
app=${DATABASE_URL:-}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then admin=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" != "--" ]; then app=$1; shift; fi
[ "${1:-}" = "--" ] && shift
die() { echo "citus-test: $*" >&2; exit 2; }
[ -n "$admin" ] || die "give the coordinator's database (ADMIN_URL argument or DATABASE_ADMIN_URL)"
[ -n "$app" ] || die "give the application's URL on the same database (APP_URL argument or DATABASE_URL)"
[ "$admin" != "$app" ] || die "APP_URL must log in as the application's own role, not as the owner"
command -v psql >/dev/null || die "psql is needed"

sql() { psql "$admin" -X -q -v ON_ERROR_STOP=1 -At -c "$1"; }
version=$(sql "SELECT extversion FROM pg_extension WHERE extname = 'citus'") || die "cannot reach $admin"
[ -n "$version" ] || die "this database is not a Citus cluster (no citus extension)"
sql "SELECT 'worker ' || node_name || ':' || node_port FROM citus_get_active_worker_nodes() ORDER BY node_port"
echo "citus $version"

# ALTER DATABASE <this database> ...: new sessions take it, and the suite's connections are all new
alter_db() { sql "DO \$\$ BEGIN EXECUTE format('ALTER DATABASE %I $1', current_database()); END \$\$"; }
counters=$(sql "SELECT count(*) FROM pg_proc WHERE proname = 'citus_stat_counters_reset'")
if [ "$counters" != 0 ]; then
  alter_db "SET citus.enable_stat_counters = on"
  sql "SELECT citus_stat_counters_reset(oid) FROM pg_database WHERE datname = current_database()" >/dev/null
else
  echo "citus $version has no citus_stat_counters (13.1+): run with CITUS_LOG_MULTI_SHARD=1 and count the" \
       "coordinator log's multi-shard lines instead" >&2
fi
if [ "${CITUS_LOG_MULTI_SHARD:-}" = 1 ]; then
  alter_db "SET citus.multi_task_query_log_level = log"
  trap 'alter_db "RESET citus.multi_task_query_log_level"' EXIT
fi

# both jest runs below must open the secrets the first one stored with the same key
export SECRETS_KEY=${SECRETS_KEY:-$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64"))')}
started=$(date +%s)
rc=0
env -u CITUS_TEST_SHARD_MOVES DATABASE_URL=$app DATABASE_ADMIN_URL=$admin CITUS_ADMIN_URL=$admin npm test -- "$@" || rc=$?
echo "jest exit code $rc after $(( $(date +%s) - started )) s"

if [ "$counters" != 0 ]; then
  echo "Citus executions on the coordinator during the run (citus_stat_counters):"
  psql "$admin" -X -q -c "SELECT query_execution_single_shard AS single_shard, query_execution_multi_shard AS multi_shard,
      connection_establishment_succeeded AS connections_opened, connection_reused, stats_reset
    FROM citus_stat_counters WHERE name = current_database()"
fi

if [ "${CITUS_TEST_SHARD_MOVES:-1}" = 1 ]; then
  echo "tenant isolate and tenant move, alone:"
  moves=0
  DATABASE_URL=$app DATABASE_ADMIN_URL=$admin CITUS_ADMIN_URL=$admin CITUS_TEST_SHARD_MOVES=1 \
    npm test -- tests/integration/store/citus-distribute.test.ts -t 'on a Citus coordinator' || moves=$?
  [ "$rc" != 0 ] || rc=$moves
fi
exit $rc
