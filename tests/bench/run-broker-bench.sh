#!/usr/bin/env bash
# run-broker-bench.sh - the broker benchmark on a private PostgreSQL:
# raw PostgreSQL rate, durable intake through gd-broker, SUBMIT->DELIVER latency.
# usage: tests/bench/run-broker-bench.sh [BUILD_DIR] [bench-broker args after the endpoints]
#   GD_BENCH_CURVE=1: the same with CurveZMQ on every endpoint
#   GD_BENCH_BROKER_ARGS="...": extra gd-broker options
#   GD_BENCH_LOADED=1: GD_DB_DSN already holds the demo district (deploy/demo/load.sh
#     is not run again; psql's PG* variables must name the same database)
#   GD_BENCH_GEO=1: intake with positions (placed by the broker) beside intake with grid
#     codes (bench-broker's GD_BENCH_GEO), and bench-locate; boundaries from
#     GD_BENCH_BOUNDARIES: `demo` (what deploy/demo/load.sh imported), an .sql file
#     filling unit_boundary, or a file for `gdctl import boundaries`; by default
#     tests/bench/grid-lattice.sql (a lattice cell per grid and strips for its micro-grids)
#   e.g. tests/bench/run-broker-bench.sh build/release 100000 4 500 1000 10
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
shift || true
case "$build" in /*) ;; *) build="$top/$build" ;; esac
if [ -z "${GD_DB_DSN:-}" ]; then
    # re-run ourselves beside a throw-away cluster
    exec "$top/tests/pg/with-pg.sh" "$0" "$build" "$@"
fi
[ -x "$build/broker/gd-broker" ] || { echo "no $build/broker/gd-broker: build it first" >&2; exit 2; }
[ "${GD_BENCH_LOADED:-0}" = 1 ] || "$top/deploy/demo/load.sh" "$GD_DB_DSN" >/dev/null
if [ "${GD_BENCH_GEO:-0}" = 1 ]; then
    boundaries=${GD_BENCH_BOUNDARIES:-$top/tests/bench/grid-lattice.sql}
    case "$boundaries" in
    demo) ;;
    *.sql) psql -XqAt -v ON_ERROR_STOP=1 -f "$boundaries" >/dev/null ;;
    *) "$build/workers/gdctl/gdctl" import boundaries "$boundaries" ;;
    esac
fi
run=$(mktemp -d /tmp/gd-bench.XXXXXX)
log="$run/broker.log"
curve=()
if [ "${GD_BENCH_CURVE:-0}" = 1 ]; then
    # CurveZMQ on every endpoint: keys for the broker and two principals
    gdctl="$build/workers/gdctl/gdctl"
    for who in broker intake worker; do "$gdctl" keygen "$who" "$run" >/dev/null; done
    key() { sed -n "s/^$2 = //p" "$run/$1.key"; }
    printf '[bench-intake]\nkey = %s\nrole = intake\nscope = 500113\n\n[bench-worker]\nkey = %s\nrole = worker\nscope = 500113\n' \
        "$(key intake public)" "$(key worker public)" >"$run/principals.ini"
    curve=(--curve-key "$run/broker.key" --principals "$run/principals.ini")
    export GD_BENCH_SERVER_KEY GD_BENCH_PUBLIC_intake GD_BENCH_SECRET_intake \
        GD_BENCH_PUBLIC_worker GD_BENCH_SECRET_worker
    GD_BENCH_SERVER_KEY=$(key broker public)
    GD_BENCH_PUBLIC_intake=$(key intake public)
    GD_BENCH_SECRET_intake=$(key intake secret)
    GD_BENCH_PUBLIC_worker=$(key worker public)
    GD_BENCH_SECRET_worker=$(key worker secret)
fi
start_broker() {
    rm -f "$run/intake" "$run/work" "$run/status"
    "$build/broker/gd-broker" --db "$GD_DB_DSN" --intake "ipc://$run/intake" \
        --work "ipc://$run/work" --status "ipc://$run/status" --log-level warn \
        --max-pending 100000 "${curve[@]}" ${GD_BENCH_BROKER_ARGS:-} >>"$log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do [ -S "$run/work" ] && break; sleep 0.1; done
}
stop_broker() {
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
}
broker=
trap 'stop_broker; rm -rf "$run"' EXIT
echo "machine   $(nproc) cores, $(uname -r), PostgreSQL $(psql -XAtc 'show server_version'), fsync $(psql -XAtc 'show fsync')"
if [ "${GD_BENCH_GEO:-0}" = 1 ]; then
    # ABBA, each phase on a new broker over empty tables: no phase inherits
    # the open incidents (and hash tables) of the one before
    "$build/tests/bench/bench-locate" "$GD_DB_DSN"
    out="$run/geo.out"
    for mode in given position position given; do
        psql -XqAt -c "TRUNCATE incident_event, incident" >/dev/null
        start_broker
        GD_BENCH_GEO=$mode GD_BENCH_CPU_PIDS=${GD_BENCH_CPU_PIDS:-$broker} \
            "$build/tests/bench/bench-broker" "$GD_DB_DSN" "ipc://$run/intake" \
            "ipc://$run/work" "$@" | tee -a "$out"
        stop_broker
    done
    awk '/^intake +grid code given/ { g += $(NF - 4); ng++ }
         /^intake +position/ { p += $(NF - 4); np++ }
         END { printf "geo       grid code given %.0f/s, position %.0f/s (ABBA means): " \
                      "position / given = %.2f; %.0f position lookups/s through the intake path\n",
                      g / ng, p / np, (p / np) / (g / ng), p / np }' "$out"
else
    start_broker
    # the broker's CPU per SUBMIT (and with its backends', the CPU ratio to raw)
    export GD_BENCH_CPU_PIDS=${GD_BENCH_CPU_PIDS:-$broker}
    "$build/tests/bench/bench-broker" "$GD_DB_DSN" "ipc://$run/intake" "ipc://$run/work" "$@"
fi
grep -E "error|warn" "$log" | head -5 || true
