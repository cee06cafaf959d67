#!/usr/bin/env bash
# run-subscriber-bench.sh - intake throughput of gd-broker with 0 and with N status subscribers connected.
#
# usage: tests/bench/run-subscriber-bench.sh [BUILD_DIR] [SUBSCRIBERS] [ROUNDS] [TOTAL]
#   defaults: build/release 100 3 20000 (figures in README: 100 16 60000)
#
# One broker on a private PostgreSQL; each round runs bench-broker's intake
# phase (TOTAL SUBMITs) twice, with no subscriber and with SUBSCRIBERS SUB
# sockets (bench-subscribers, one process) draining what they subscribed to,
# in ABBA order. Prints each round's accepted/s, the CPU time per 1000
# SUBMITs of the broker, the subscribers and the whole machine, what each
# subscriber received; then the mean drop with its 95% interval (paired by
# round). Not a test: figures depend on the machine (run it on an idle one;
# SUBSCRIBERS 0 measures the noise: both sides without subscribers).
#   GD_SUB_TOPICS=queue.,broker   subscribe to these prefixes only (default: everything)
#   GD_SUB_TOPICS=towns           each subscriber follows one town (its inc. and queue.
#                                 topics, sla., alarm., broker), the towns in turn
#   GD_SUB_NICE=19                run the subscribers at this nice level (default 0)
#   GD_BENCH_LOADED=1             GD_DB_DSN already holds the demo district: load.sh is
#                                 not run again (psql's PG* variables name the same database)
#   GD_BROKER_ARGS="--status-batch-ms 200"   more gd-broker options
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
[ "${GD_BENCH_LOADED:-0}" = 1 ] || "$top/deploy/demo/load.sh" "$GD_DB_DSN" >/dev/null
if [ "${GD_SUB_TOPICS:-}" = towns ]; then
    GD_SUB_TOPICS="towns:$(psql -XAtq -c "SELECT string_agg(code, ',' ORDER BY code) FROM org_unit WHERE level = 'town'")"
fi
read -ra broker_args <<<"${GD_BROKER_ARGS:-}"
run=$(mktemp -d /tmp/gd-subbench.XXXXXX)
broker=""
trap '[ -n "$broker" ] && kill $broker 2>/dev/null; wait 2>/dev/null; rm -rf "$run"' EXIT

# One measurement: empty tables, a fresh broker (its idempotency index must
# not answer the previous round's external ids), SUBSCRIBERS subscribers
# (0 = none), then bench-broker's intake phase; prints accepted/s, the CPU
# ms per 1000 SUBMITs of the broker, the subscribers and the machine, and
# the messages and bytes each subscriber received.
intake()
{
    local n=$1 sp=""
    psql -XAtq -c "TRUNCATE incident_event, incident" -c CHECKPOINT # no checkpoint mid-run
    rm -f "$run"/intake "$run"/work "$run"/status
    "$build/broker/gd-broker" --db "$GD_DB_DSN" --intake "ipc://$run/intake" \
        --work "ipc://$run/work" --status "ipc://$run/status" --log-level warn \
        --max-pending 100000 "${broker_args[@]}" >>"$run/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do [ -S "$run/work" ] && break; sleep 0.1; done
    if ((n > 0)); then
        nice -n "${GD_SUB_NICE:-0}" "$build/tests/bench/bench-subscribers" "ipc://$run/status" \
            "$n" 600 ${GD_SUB_TOPICS:+"$GD_SUB_TOPICS"} >"$run/subs.out" &
        sp=$!
    fi
    sleep 2 # database connected, subscriptions live
    # bench-broker's lines: "intake  N SUBMITs, ...: R accepted/s (...)" and
    # "cpu  intake: pid B x ms, [pid S y ms,] machine z ms per 1000 SUBMITs"
    env GD_BENCH_SPREAD="${GD_BENCH_SPREAD:-1}" GD_BENCH_INTAKE_ONLY=1 \
        GD_BENCH_CPU_PIDS="$broker${sp:+,$sp}" \
        "$build/tests/bench/bench-broker" "$GD_DB_DSN" "ipc://$run/intake" "ipc://$run/work" \
        "$total" 4 500 >"$run/bench.out"
    python3 - "$run/bench.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rate = re.search(r"^intake .*: (\d+) accepted/s", out, re.M).group(1)
cpu = [float(x) for x in re.findall(r"([\d.]+) ms", out.split("cpu", 1)[1])]
broker, subs, machine = cpu[0], (cpu[1] if len(cpu) == 3 else 0), cpu[-1]
print(rate, broker, subs, machine, end=" ")
PY
    if [ -n "$sp" ]; then
        sleep 1 # the subscribers drain what is queued for them
        kill $sp 2>/dev/null
    fi
    kill $broker
    wait $broker 2>/dev/null || true
    broker=""
    if [ -n "$sp" ]; then
        wait $sp 2>/dev/null
        # "subscribers N, messages received M (m each), B bytes (b each)"
        sed -n 's/.*(\([0-9]*\) each).*(\([0-9]*\) each).*/\1 \2/p' "$run/subs.out"
    else
        echo "- -"
    fi
    return 0
}

echo "machine $(nproc) cores, PostgreSQL $(psql -XAtc 'show server_version'), $total SUBMITs per round"
echo "CPU figures are ms per 1000 SUBMITs: broker / subscribers / whole machine"
with=() without=()
for r in $(seq "$rounds"); do
    # ABBA order: a drift over the run (the database, the machine) does not
    # favour either side
    if ((r % 2)); then
        read -r a ab _ am _ < <(intake 0)
        read -r b bb bs bm msgs bytes < <(intake "$subs")
    else
        read -r b bb bs bm msgs bytes < <(intake "$subs")
        read -r a ab _ am _ < <(intake 0)
    fi
    echo "round $r: 0 subscribers $a accepted/s (CPU $ab / - / $am)," \
        "$subs subscribers $b accepted/s (CPU $bb / $bs / $bm; each received $msgs messages, $bytes bytes)"
    without+=("$a $ab $am")
    with+=("$b $bb $bm $bs")
done
python3 - "$subs" "${without[@]}" -- "${with[@]}" <<'PY'
import statistics as st
import sys

n = sys.argv[1]
i = sys.argv.index("--")
a = [[float(x) for x in r.split()] for r in sys.argv[2:i]]
b = [[float(x) for x in r.split()] for r in sys.argv[i + 1:]]


def mean(rows, k):
    return sum(r[k] for r in rows) / len(rows)


def paired(k, sign):
    """mean change of field k, with 0 and with n subscribers in the same round,
    in % of the first, and the half-width of its 95% interval"""
    d = [sign * 100 * (y[k] - x[k]) / x[k] for x, y in zip(a, b)]
    half = 1.96 * st.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
    return st.mean(d), half


ma, mb = mean(a, 0), mean(b, 0)
d, h = paired(0, -1)
print(f"mean: 0 subscribers {ma:.0f}/s, {n} subscribers {mb:.0f}/s; "
      f"drop {d:.1f}% ± {h:.1f} (paired by round, 95%)")
ba, bb = mean(a, 1), mean(b, 1)
d, h = paired(1, 1)
print(f"broker CPU per 1000 SUBMITs: {ba:.1f} ms, with {n} subscribers {bb:.1f} ms "
      f"({d:+.1f}% ± {h:.1f}); the subscribers' own {mean(b, 3):.1f} ms")
wa, wb = mean(a, 2), mean(b, 2)
d, h = paired(2, 1)
print(f"machine CPU per 1000 SUBMITs: {wa:.1f} ms, with {n} subscribers {wb:.1f} ms "
      f"({d:+.1f}% ± {h:.1f})")
PY
