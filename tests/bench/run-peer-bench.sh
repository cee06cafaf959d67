#!/usr/bin/env bash
# run-peer-bench.sh - gd-broker's durable intake beside RabbitMQ's durable publish with confirms,
# on the same machine, in the same run, rounds in ABBA order.
#
# usage: tests/bench/run-peer-bench.sh [BUILD_DIR] [total] [connections] [window] [rounds]
#   defaults: build/release 100000 4 1000 2
#   GD_PEER_INSTALL=1: install rabbitmq-server and librabbitmq-dev with apt-get first
#   (then rebuild, so that meson finds librabbitmq and builds bench-amqp)
#
# A round: RabbitMQ (a quorum queue, then a classic durable queue; 512-byte
# persistent messages; `connections` publishers each with `window`
# unconfirmed) and gd-broker (the same number of intake clients with the
# same window, 512-byte descriptions; each ACCEPTED is committed), in the
# order A B B A for each pair of rounds. RabbitMQ runs as a private node of
# this script: its own node name, loopback ports found free now, its own
# epmd port, and its data under a temporary directory; the system's service
# is never touched. The node, its epmd, the broker and the PostgreSQL
# cluster are stopped on every exit.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/release}
total=${2:-100000}
conns=${3:-4}
window=${4:-1000}
rounds=${5:-2}
case "$build" in /*) ;; *) build="$top/$build" ;; esac

if [ "${GD_PEER_INSTALL:-0}" = 1 ] && [ -z "${GD_DB_DSN:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        rabbitmq-server librabbitmq-dev
fi
rabbit_bin=/usr/lib/rabbitmq/bin
if [ ! -x "$rabbit_bin/rabbitmq-server" ]; then
    echo "run-peer-bench: rabbitmq-server is not installed (GD_PEER_INSTALL=1 installs it)" >&2
    exit 77
fi
if [ ! -x "$build/tests/bench/bench-amqp" ]; then
    echo "run-peer-bench: no $build/tests/bench/bench-amqp: install librabbitmq-dev and rebuild" >&2
    exit 77
fi
[ -x "$build/broker/gd-broker" ] || { echo "no $build/broker/gd-broker: build it first" >&2; exit 2; }
if [ -z "${GD_DB_DSN:-}" ]; then
    # re-run ourselves beside a throw-away cluster
    exec "$top/tests/pg/with-pg.sh" "$0" "$build" "$total" "$conns" "$window" "$rounds"
fi
"$top/deploy/demo/load.sh" "$GD_DB_DSN" >/dev/null

run=$(mktemp -d /tmp/gd-peer.XXXXXX)
broker=""
rabbit=""
# A port nobody listens on now, on loopback.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
amqp_port=$(free_port)
dist_port=$(free_port)
epmd_port=$(free_port)
while [ "$dist_port" = "$amqp_port" ]; do dist_port=$(free_port); done
while [ "$epmd_port" = "$amqp_port" ] || [ "$epmd_port" = "$dist_port" ]; do epmd_port=$(free_port); done

# Everything the node and rabbitmqctl read, private to this run.
export HOME="$run/home" # the Erlang cookie
export ERL_EPMD_PORT=$epmd_port
export RABBITMQ_NODENAME="gdpeer$$@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$amqp_port
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE="$run/mnesia"
export RABBITMQ_LOG_BASE="$run/log"
export RABBITMQ_PID_FILE="$run/rabbit.pid"
export RABBITMQ_CONFIG_FILE="$run/rabbitmq"
export RABBITMQ_ADVANCED_CONFIG_FILE="$run/advanced.config"
export RABBITMQ_ENABLED_PLUGINS_FILE="$run/enabled_plugins"
export RABBITMQ_CONF_ENV_FILE="$run/rabbitmq-env.conf"
export RABBITMQ_ENABLED_PLUGINS=""
mkdir -p "$HOME" "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
printf 'listeners.tcp.1 = 127.0.0.1:%s\nlog.console = false\n' "$amqp_port" >"$run/rabbitmq.conf"
echo '[].' >"$run/advanced.config"
echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
: >"$RABBITMQ_CONF_ENV_FILE"

stop_all() {
    set +e
    if [ -n "$broker" ]; then kill "$broker" 2>/dev/null; wait "$broker" 2>/dev/null; fi
    if [ -n "$rabbit" ]; then
        "$rabbit_bin/rabbitmqctl" -q stop >/dev/null 2>&1 || kill "$rabbit" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$rabbit" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$rabbit" 2>/dev/null
        wait "$rabbit" 2>/dev/null
    fi
    # the epmd that the node started on our private port
    epmd -port "$epmd_port" -kill >/dev/null 2>&1
    rm -rf "$run"
}
trap stop_all EXIT

"$rabbit_bin/rabbitmq-server" >"$run/rabbit.out" 2>&1 &
rabbit=$!
if ! "$rabbit_bin/rabbitmqctl" -q --timeout 120 wait "$RABBITMQ_PID_FILE" >"$run/wait.out" 2>&1; then
    echo "run-peer-bench: the RabbitMQ node did not start:" >&2
    tail -20 "$run/wait.out" "$run/rabbit.out" >&2
    exit 1
fi

echo "machine   $(nproc) cores, $(uname -r), PostgreSQL $(psql -XAtc 'show server_version'), fsync $(psql -XAtc 'show fsync'); RabbitMQ $("$rabbit_bin/rabbitmqctl" -q version 2>/dev/null || echo '?'), Erlang $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null || echo '?')"

# One RabbitMQ measurement; prints its rate.
amqp_round() {
    local out
    out=$("$build/tests/bench/bench-amqp" 127.0.0.1 "$amqp_port" "$1" "$total" "$conns" "$window" 512)
    echo "$out" >&2
    echo "$out" | sed -n 's/.*: \([0-9]*\) confirmed\/s.*/\1/p'
}

# One gd-broker measurement on empty tables and a fresh broker; prints its rate.
broker_round() {
    psql -XAtqc "TRUNCATE incident_event, incident" >/dev/null
    "$build/broker/gd-broker" --db "$GD_DB_DSN" --intake "ipc://$run/intake" \
        --work "ipc://$run/work" --status "ipc://$run/status" --log-level error \
        --max-pending 100000 ${GD_BENCH_BROKER_ARGS:-} >>"$run/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do [ -S "$run/work" ] && break; sleep 0.1; done
    local out
    out=$(GD_BENCH_INTAKE_ONLY=1 GD_BENCH_SIZE=512 "$build/tests/bench/bench-broker" "$GD_DB_DSN" \
        "ipc://$run/intake" "ipc://$run/work" "$total" "$conns" "$window")
    kill "$broker"
    wait "$broker" 2>/dev/null || true
    broker=""
    rm -f "$run/intake" "$run/work" "$run/status"
    echo "$out" >&2
    echo "$out" | sed -n 's/^intake.*: \([0-9]*\) accepted\/s.*/\1/p'
}

quorum=() classic=() gd=()
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2 == 1)); then order="peer gd"; else order="gd peer"; fi
    for side in $order; do
        if [ "$side" = peer ]; then
            q=$(amqp_round quorum)
            c=$(amqp_round classic)
            quorum+=("$q")
            classic+=("$c")
            echo "round $r: rabbitmq quorum $q confirmed/s, classic $c confirmed/s"
        else
            g=$(broker_round)
            gd+=("$g")
            echo "round $r: gd-broker $g accepted/s"
        fi
    done
done

mean() { printf '%s\n' "$@" | awk '{s += $1; n++} END {printf "%.0f", s / n}'; }
mq=$(mean "${quorum[@]}")
mc=$(mean "${classic[@]}")
mg=$(mean "${gd[@]}")
best=$((mq > mc ? mq : mc))
echo "mean      rabbitmq quorum $mq/s, classic $mc/s; gd-broker $mg/s"
awk -v g="$mg" -v b="$best" 'BEGIN {printf "ratio     gd-broker / best rabbitmq = %.2f\n", g / b}'
grep -E "error|warn" "$run/broker.log" | head -5 || true
