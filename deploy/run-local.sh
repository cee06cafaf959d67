#!/usr/bin/env bash
# Run the whole service locally: PostgreSQL, demo data, gd-broker, the SLA timers and a demo town worker.
#
#   deploy/run-local.sh            build, start, run until Ctrl-C
#   deploy/run-local.sh --reset    first delete the local database (var/pg)
#
# Installs missing packages, builds build/release, starts (or reuses) a
# private PostgreSQL cluster in var/pg, applies broker/sql/*.sql, loads the
# demo district (deploy/demo/load.sh) into an empty database and runs
# build/release/broker/gd-broker, gd-sla for all towns and a gd-worker for
# the queues of the first demo town (deploy/demo/handler.sh handles each
# incident). Ctrl-C (or SIGTERM) stops them and then PostgreSQL; the data
# stays in var/pg.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$(pwd)
# shellcheck source=deploy/lib-pg.sh
. deploy/lib-pg.sh

pgdir=$repo/var/pg
broker_bin=$repo/build/release/broker/gd-broker
intake=tcp://127.0.0.1:7701
work=tcp://127.0.0.1:7702
status=tcp://127.0.0.1:7703

reset=0
for arg in "$@"; do
    case $arg in
    --reset) reset=1 ;;
    *)
        sed -n '3,5s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
    esac
done

say()
{
    printf 'run-local: %s\n' "$*" >&2
}

die()
{
    say "$*"
    exit 1
}

# The broker invocation. Endpoints and flags are the broker's own options
# (gd-broker --help); change them here.
start_broker()
{
    local dsn=$1
    "$broker_bin" --db "$dsn" --intake "$intake" --work "$work" --status "$status" &
    broker_pid=$!
}

sla_bin=$repo/build/release/workers/gd-sla/gd-sla
worker_bin=$repo/build/release/workers/gd-worker/gd-worker
demo_town=500113001

# The SLA timers for every town, and one town's worker: its grid and
# community queues and its four sector queues, handled by the demo script.
start_workers()
{
    local dsn=$1 queues
    if [[ -x $sla_bin ]]; then
        "$sla_bin" --work "$work" --all --name local-sla &
        worker_pids+=($!)
    fi
    [[ -x $worker_bin ]] || return 0
    # gd-worker serves at most 64 queues: the sectors, the communities,
    # then as many grids as fit
    queues=$("$(gdpg_bindir)/psql" -X -At -d "$dsn" -c \
        "SELECT string_agg(q, ',') FROM (
           SELECT q FROM (
             SELECT 0 AS o, '${demo_town}.' || s AS q
               FROM unnest(ARRAY['party','economy','livelihood','safety']) s
             UNION ALL SELECT 1, code FROM org_unit
               WHERE code LIKE '${demo_town}%' AND level = 'community'
             UNION ALL SELECT 2, code FROM org_unit
               WHERE code LIKE '${demo_town}%' AND level = 'grid') a
           ORDER BY o, q LIMIT 64) b") || return 0
    mkdir -p "$repo/var"
    cat >"$repo/var/demo-worker.ini" <<INI
[gd-worker]
endpoints = $work
credit = 8
name = demo-town-$demo_town
handler = $repo/deploy/demo/handler.sh
handler_timeout_ms = 30000
INI
    # the queue list is long: on the command line (INI lines are limited)
    "$worker_bin" --config "$repo/var/demo-worker.ini" --queues "$queues" &
    worker_pids+=($!)
}

worker_pids=()
broker_pid=""
sleeper_pid=""
pg_started=0

# shellcheck disable=SC2317  # invoked through trap
shutdown()
{
    local rc=$?
    trap - EXIT INT TERM HUP
    local pid
    for pid in "${worker_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${worker_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [[ -n $broker_pid ]] && kill -0 "$broker_pid" 2>/dev/null; then
        say "stopping gd-broker"
        kill -TERM "$broker_pid" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$broker_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$broker_pid" 2>/dev/null
        wait "$broker_pid" 2>/dev/null
    fi
    [[ -n $sleeper_pid ]] && kill "$sleeper_pid" 2>/dev/null
    if ((pg_started)); then
        say "stopping PostgreSQL (data kept in $pgdir)"
        gdpg_halt "$pgdir" || say "PostgreSQL did not stop cleanly; see $pgdir/log"
    fi
    exit "$rc"
}

deploy/install-deps.sh || die "installing dependencies failed"

say "building build/release"
if [[ -f build/release/meson-private/coredata.dat ]]; then
    meson setup --reconfigure build/release --buildtype=release >/dev/null
else
    meson setup build/release --buildtype=release >/dev/null
fi || die "meson setup build/release failed"
ninja -C build/release >/dev/null || {
    ninja -C build/release
    die "build failed"
}

mkdir -p var || exit 1
if ((reset)) && [[ -d $pgdir ]]; then
    say "deleting the local database in $pgdir"
    gdpg_stop "$pgdir" || die "could not remove $pgdir"
fi
# A cluster kept under /tmp (see deploy/lib-pg.sh) is gone after a reboot.
if [[ -f $pgdir/root && ! -d $(gdpg_root "$pgdir")/data ]]; then
    say "the cluster recorded in $pgdir/root is gone; creating a new one"
    rm -rf -- "$pgdir"
fi

trap shutdown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -f $pgdir/env ]]; then
    # One instance at a time: both would use var/pg and the same ports.
    gdpg_running "$pgdir" &&
        die "PostgreSQL in $pgdir is already running (another run-local.sh?);" \
            "stop it with: tests/pg/pgctl.sh halt $pgdir"
    say "starting PostgreSQL in $pgdir"
    pg_started=1
    gdpg_resume "$pgdir" || die "PostgreSQL did not start; see $pgdir/log/postgres.log"
elif [[ -e $pgdir ]]; then
    die "$pgdir holds an incomplete cluster; remove it or run with --reset"
else
    say "creating PostgreSQL cluster in $pgdir"
    pg_started=1
    gdpg_start "$pgdir" || die "PostgreSQL did not start; see $pgdir/log"
fi
set -a
# shellcheck disable=SC1091
. "$pgdir/env"
set +a

gdpg_migrate "$GD_DB_DSN" || die "migrations failed"

if [[ -x deploy/demo/load.sh ]]; then
    units=$("$(gdpg_bindir)/psql" -X -At -d "$GD_DB_DSN" -c \
        "SELECT CASE WHEN to_regclass('org_unit') IS NULL THEN -1
                     ELSE (SELECT count(*) FROM org_unit) END") ||
        die "cannot query the database"
    if [[ $units == 0 ]]; then
        say "loading the demo district (deploy/demo/load.sh)"
        deploy/demo/load.sh "$GD_DB_DSN" || die "loading demo data failed"
    fi
fi

cat >&2 <<INFO

  PostgreSQL   $pgdir (log: $pgdir/log/postgres.log)
               psql "$GD_DB_DSN"
               or: set -a; . $pgdir/env; set +a; psql
  intake       $intake    (ROUTER: SUBMIT, QUERY, FEEDBACK, admin)
  work         $work    (ROUTER: workers, SLA timers)
  status       $status    (XPUB: inc.*, queue.*, sla.*, alarm.*, broker)

INFO

if [[ -x $broker_bin ]]; then
    say "starting $broker_bin; Ctrl-C stops everything"
    start_broker "$GD_DB_DSN"
    start_workers "$GD_DB_DSN"
    wait "$broker_pid"
    rc=$?
    broker_pid=""
    say "gd-broker exited with status $rc"
    exit "$rc"
fi

say "$broker_bin is not built yet; PostgreSQL runs until Ctrl-C"
sleep infinity &
sleeper_pid=$!
wait "$sleeper_pid"
