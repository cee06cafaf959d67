#!/usr/bin/env bash
# run-sla-sync-bench.sh - a million live deadlines end to end: how long the
# broker takes to recover N open incidents, how long gd-sla takes to receive
# the full set of their deadlines over the work endpoint, and the RSS of both.
# usage: tests/bench/run-sla-sync-bench.sh [BUILD_DIR] [N]   (default build/release 1000000)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
n=${2:-1000000}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
if [ -z "${GD_DB_DSN:-}" ]; then
    exec "$top/tests/pg/with-pg.sh" "$0" "$build" "$n"
fi
"$top/deploy/demo/load.sh" "$GD_DB_DSN" >/dev/null
# N open incidents spread over the demo grids, with wall-clock deadlines
# an hour or more ahead (nothing fires during the measurement)
t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -d "$GD_DB_DSN" <<SQL
WITH g AS (SELECT code, row_number() OVER (ORDER BY code) - 1 AS i, count(*) OVER () AS n
             FROM org_unit WHERE level = 'grid'),
     r AS (SELECT s AS id, g.code FROM generate_series(1, $n) s
             JOIN g ON g.i = s % g.n)
INSERT INTO incident (id, source, external_id, category, priority, state, version, queue,
                      owner_unit, owner_level, location_unit, description, received_at,
                      updated_at, sign_due, resolve_due, sign_warn, resolve_warn)
SELECT id, 'bench', 'sla-' || id, 'LH-0101', 'normal', 'QUEUED', 1, code, code, 'grid', code,
       'deadline benchmark', now(), now(), now() + interval '1 hour' + id * interval '1 ms',
       now() + interval '3 days', now() + interval '50 minutes', now() + interval '2 days'
FROM r;
INSERT INTO incident_event (incident_id, version, at, kind, to_state, queue)
SELECT id, 1, received_at, 'receive', 'QUEUED', queue FROM incident WHERE source = 'bench';
ANALYZE incident;
SQL
t1=$(date +%s.%N)
printf 'setup     %d open incidents inserted in %.1f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
run=$(mktemp -d /tmp/gd-slabench.XXXXXX)
trap 'kill $broker $sla 2>/dev/null; wait 2>/dev/null; rm -rf "$run"' EXIT
t0=$(date +%s.%N)
"$build/broker/gd-broker" --db "$GD_DB_DSN" --intake "ipc://$run/i" --work "ipc://$run/w" \
    --status "ipc://$run/s" --sla-alarm-ms 3600000 >"$run/broker.log" 2>&1 &
broker=$!
until grep -q "ready:" "$run/broker.log"; do sleep 0.1; kill -0 $broker; done
t1=$(date +%s.%N)
printf 'recovery  broker ready with %d open incidents after %.1f s; RSS %s\n' "$n" \
    "$(echo "$t1 - $t0" | bc)" "$(grep VmRSS /proc/$broker/status | awk '{print $2, $3}')"
"$build/workers/gd-sla/gd-sla" --work "ipc://$run/w" --all --name bench >"$run/sla.log" 2>&1 &
sla=$!
t0=$(date +%s.%N)
until grep -q "synced:" "$run/sla.log"; do sleep 0.05; kill -0 $sla; done
t1=$(date +%s.%N)
printf 'sync      gd-sla holds the full set after %.1f s: %s\n' "$(echo "$t1 - $t0" | bc)" \
    "$(grep -o 'synced:.*' "$run/sla.log" | head -1)"
printf 'memory    gd-sla RSS %s; broker RSS %s\n' \
    "$(grep VmRSS /proc/$sla/status | awk '{print $2, $3}')" \
    "$(grep VmRSS /proc/$broker/status | awk '{print $2, $3}')"
