#!/usr/bin/env bash
# run-subscriber-bench.sh - intake throughput of gd-broker with 0 and with N status subscribers connected.
#
# usage: tests/bench/run-subscriber-bench.sh [BUILD_DIR] [SUBSCRIBERS] [ROUNDS] [TOTAL]
#   defaults: build/release 100 3 20000
#
# One broker on a private PostgreSQL; alternately (ROUNDS times each) runs
# bench-broker's intake phase with no subscriber, and with SUBSCRIBERS SUB
# sockets (bench-subscribers, one process) draining every status message.
# Prints each round's accepted/s and the mean drop. Not a test: figures
# depend on the machine (run it on an idle one).
#   GD_SUB_TOPICS=queue.,broker   subscribe to these prefixes only (default: everything)
#   GD_SUB_NICE=19                run the subscribers at this nice level (default 0)
#   GD_BENCH_SPREAD=0             send every SUBMIT to one grid (default 1: spread over
#                                 every grid and category, so that transitions differ
#                                 and batch per town as a real district's do)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
subs=${2:-100}
rounds=${3:-3}
total=${4:-20000}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
if [ -z "${GD_DB_DSN:-}" ]; then
    exec "$top/tests/pg/with-pg.sh" "$0" "$build" "$subs" "$rounds" "$total"
fi
for b in broker/gd-broker tests/bench/bench-broker tests/bench/bench-subscribers; do
    [ -x "$build/$b" ] || { echo "no $build/$b: build it first" >&2; exit 2; }
done
"$top/deploy/demo/load.sh" "$GD_DB_DSN" >/dev/null
run=$(mktemp -d /tmp/gd-subbench.XXXXXX)
broker=""
trap '[ -n "$broker" ] && kill $broker 2>/dev/null; wait 2>/dev/null; rm -rf "$run"' EXIT

# One measurement: empty tables, a fresh broker (its idempotency index must
# not answer the previous round's external ids), SUBSCRIBERS subscribers
# (0 = none), then bench-broker's intake phase; prints accepted/s.
intake()
{
    local n=$1 sp=""
    psql -XAtq -c "TRUNCATE incident_event, incident"
    rm -f "$run"/intake "$run"/work "$run"/status
    "$build/broker/gd-broker" --db "$GD_DB_DSN" --intake "ipc://$run/intake" \
        --work "ipc://$run/work" --status "ipc://$run/status" --log-level warn \
        --max-pending 100000 >>"$run/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do [ -S "$run/work" ] && break; sleep 0.1; done
    if ((n > 0)); then
        nice -n "${GD_SUB_NICE:-0}" "$build/tests/bench/bench-subscribers" "ipc://$run/status" \
            "$n" 600 ${GD_SUB_TOPICS:+"$GD_SUB_TOPICS"} >/dev/null &
        sp=$!
    fi
    sleep 2 # database connected, subscriptions live
    # bench-broker's line: "intake  N SUBMITs, ...: R accepted/s (...)"
    env GD_BENCH_SPREAD="${GD_BENCH_SPREAD:-1}" "$build/tests/bench/bench-broker" "$GD_DB_DSN" "ipc://$run/intake" "ipc://$run/work" \
        "$total" 4 500 100 1 | sed -n 's/^intake .*: \([0-9]*\) accepted\/s.*/\1/p'
    [ -n "$sp" ] && kill $sp 2>/dev/null
    kill $broker
    wait $broker 2>/dev/null || true
    broker=""
    [ -n "$sp" ] && wait $sp 2>/dev/null
    return 0
}

echo "machine $(nproc) cores, PostgreSQL $(psql -XAtc 'show server_version'), $total SUBMITs per round"
with=() without=()
for r in $(seq "$rounds"); do
    a=$(intake 0)
    b=$(intake "$subs")
    echo "round $r: 0 subscribers $a accepted/s, $subs subscribers $b accepted/s"
    without+=("$a")
    with+=("$b")
done
python3 - "${without[*]}" "${with[*]}" "$subs" <<'PY'
import sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = sum(a) / len(a), sum(b) / len(b)
print(f"mean: 0 subscribers {ma:.0f}/s, {sys.argv[3]} subscribers {mb:.0f}/s, drop {100 * (ma - mb) / ma:.1f}%")
PY
