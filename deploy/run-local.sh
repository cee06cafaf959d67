#!/usr/bin/env bash
# Run the whole service locally: PostgreSQL, demo data, the broker, SLA timers, a demo town worker, the adapters, a demo feed and the dashboard.
#
#   deploy/run-local.sh [options]      build, start, run until Ctrl-C
#     --reset         first delete the local database (VAR/pg)
#     --var DIR       keep the database, configs and demo files in DIR [var]  (env GD_RUN_VAR)
#     --ports P       auto: free ports picked at random; or a base port B: intake B,
#                     work B+1, status B+2, Open311 B+3, dashboard B+4
#                     [7701, with Open311 7780 and dashboard 8080]          (env GD_RUN_PORTS)
#     --build DIR     build directory [build/release]                      (env GD_RUN_BUILD)
#     --no-build      use DIR as built: install nothing, build nothing
#     --rate N        demo 12345 orders per second [2]                     (env GD_DEMO_RATE)
#
# Installs missing packages, builds build/release, starts (or reuses) a
# private PostgreSQL cluster in VAR/pg, applies broker/sql/*.sql, loads the
# demo district (deploy/demo/load.sh) into an empty database, writes one
# config file per program into VAR/etc (the format of deploy/config/) and
# runs gd-broker, gd-sla for all towns, a gd-worker for the queues of the
# first demo town (deploy/demo/handler.sh handles each incident), gd-open311,
# gd-hotline following VAR/demo/orders.jsonl, which deploy/demo/hotline_feed.py
# appends to, and gd-dashboard. Prints where to look; VAR/run-local.env has
# the endpoints for gdctl. Ctrl-C (or SIGTERM) stops them and then
# PostgreSQL; the data stays in VAR/pg.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$(pwd)
# shellcheck source=deploy/lib-pg.sh
. deploy/lib-pg.sh

usage()
{
    sed -n '3,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

reset=0
build_it=1
var=${GD_RUN_VAR:-$repo/var}
ports=${GD_RUN_PORTS:-7701}
build=${GD_RUN_BUILD:-build/release}
rate=${GD_DEMO_RATE:-2}
while (($#)); do
    case $1 in
    --reset) reset=1 ;;
    --no-build) build_it=0 ;;
    --var | --ports | --build | --rate)
        (($# >= 2)) || usage
        case $1 in
        --var) var=$2 ;;
        --ports) ports=$2 ;;
        --build) build=$2 ;;
        --rate) rate=$2 ;;
        esac
        shift
        ;;
    *) usage ;;
    esac
    shift
done
[[ $ports == auto || $ports =~ ^[0-9]+$ ]] || usage
[[ $rate =~ ^[0-9]+([.][0-9]+)?$ ]] || usage
mkdir -p "$var" || exit 1
var=$(cd "$var" && pwd)
[[ $build == /* ]] || build=$repo/$build

pgdir=$var/pg
broker_bin=$build/broker/gd-broker
if [[ $ports == auto ]]; then
    p_intake=$(gdpg_pick_port) && p_work=$(gdpg_pick_port) && p_status=$(gdpg_pick_port) &&
        p_open311=$(gdpg_pick_port) && p_dash=$(gdpg_pick_port) || exit 1
elif [[ $ports == 7701 ]]; then
    p_intake=7701 p_work=7702 p_status=7703 p_open311=7780 p_dash=8080
else
    p_intake=$ports p_work=$((ports + 1)) p_status=$((ports + 2))
    p_open311=$((ports + 3)) p_dash=$((ports + 4))
fi
intake=tcp://127.0.0.1:$p_intake
work=tcp://127.0.0.1:$p_work
status=tcp://127.0.0.1:$p_status

say()
{
    printf 'run-local: %s\n' "$*" >&2
}

die()
{
    say "$*"
    exit 1
}

# The broker, configured by VAR/etc/gd-broker.ini (keys: gd-broker --help).
start_broker()
{
    local dsn=$1
    cat >"$var/etc/gd-broker.ini" <<INI
[gd-broker]
db = $dsn
intake = $intake
work = $work
status = $status
INI
    "$broker_bin" --config "$var/etc/gd-broker.ini" &
    broker_pid=$!
}

sla_bin=$build/workers/gd-sla/gd-sla
worker_bin=$build/workers/gd-worker/gd-worker
open311_bin=$build/workers/open311/gd-open311
hotline_bin=$build/workers/hotline/gd-hotline
dash_bin=$build/workers/dashboard/gd-dashboard
gdctl_bin=$build/workers/gdctl/gdctl
demo_town=500113001

# The SLA timers for every town, and one town's worker: its grid and
# community queues and its four sector queues, handled by the demo script.
start_workers()
{
    local dsn=$1 queues
    if [[ -x $sla_bin ]]; then
        printf '[gd-sla]\nwork = %s\nall = true\nname = local-sla\n' "$work" \
            >"$var/etc/gd-sla-all.ini"
        "$sla_bin" --config "$var/etc/gd-sla-all.ini" &
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
    cat >"$var/etc/gd-worker-$demo_town.ini" <<INI
[gd-worker]
endpoints = $work
credit = 8
name = demo-town-$demo_town
handler = $repo/deploy/demo/handler.sh
handler_timeout_ms = 30000
INI
    # the queue list is long: on the command line (INI lines are limited)
    "$worker_bin" --config "$var/etc/gd-worker-$demo_town.ini" --queues "$queues" &
    worker_pids+=($!)
}

# The adapters and the dashboard, each with its config file in VAR/etc, and
# the demo feed the hotline adapter follows.
start_adapters()
{
    local dsn=$1
    if [[ -x $open311_bin ]]; then
        # one api key, made on the first run and kept
        [[ -s $var/etc/open311-keys ]] ||
            printf 'demo-%s = demo\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" \
                >"$var/etc/open311-keys"
        chmod 600 "$var/etc/open311-keys"
        open311_key=$(sed -n 's/ = .*//p' "$var/etc/open311-keys" | head -n 1)
        cat >"$var/etc/gd-open311.ini" <<INI
[gd-open311]
bind = 127.0.0.1
port = $p_open311
intake = $intake
db = $dsn
keys_file = $var/etc/open311-keys
INI
        "$open311_bin" --config "$var/etc/gd-open311.ini" &
        worker_pids+=($!)
    fi
    if [[ -x $hotline_bin ]]; then
        mkdir -p "$var/demo"
        touch "$var/demo/orders.jsonl"
        cat >"$var/etc/gd-hotline.ini" <<INI
[gd-hotline]
intake = $intake
input = $var/demo/orders.jsonl
follow = true
state = $var/demo/hotline.position
reject = $var/demo/hotline.rejects.jsonl
INI
        "$hotline_bin" --config "$var/etc/gd-hotline.ini" &
        worker_pids+=($!)
        /usr/bin/python3 "$repo/deploy/demo/hotline_feed.py" "$var/demo/orders.jsonl" \
            --rate "$rate" --town "$demo_town" &
        worker_pids+=($!)
    fi
    if [[ -x $dash_bin ]]; then
        cat >"$var/etc/gd-dashboard.ini" <<INI
[gd-dashboard]
status = $status
intake = $intake
db = $dsn
http = 127.0.0.1:$p_dash
INI
        "$dash_bin" --config "$var/etc/gd-dashboard.ini" &
        worker_pids+=($!)
    fi
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
    local pid i
    # adapters, feed, dashboard and workers first (newest first), then the broker
    for ((i = ${#worker_pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${worker_pids[i]}" 2>/dev/null
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

# Installs the packages and builds build/release (unless --no-build).
build_release()
{
    [[ $build == "$repo/build/release" ]] ||
        die "--build DIR needs --no-build (only build/release is built here)"
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
}

if ((build_it)); then
    build_release
elif [[ ! -x $broker_bin ]]; then
    die "--no-build: $broker_bin is not built"
fi

mkdir -p "$var/etc" || exit 1
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
    else
        # a demo database made before the boundaries existed gets them once
        shapes=$("$(gdpg_bindir)/psql" -X -At -d "$GD_DB_DSN" -c \
            "SELECT EXISTS (SELECT 1 FROM org_unit WHERE code = '500113')
                    AND NOT EXISTS (SELECT 1 FROM unit_boundary)") ||
            die "cannot query the database"
        if [[ $shapes == t ]]; then
            say "loading the demo district's boundaries and addresses"
            deploy/import-csv.sh boundaries deploy/demo/data/boundaries.csv "$GD_DB_DSN" ||
                die "loading the demo boundaries failed"
            deploy/import-csv.sh addresses deploy/demo/data/addresses.csv "$GD_DB_DSN" ||
                die "loading the demo addresses failed"
        fi
    fi
fi

cat >"$var/run-local.env" <<ENV
GD_INTAKE=$intake
GD_STATUS=$status
GD_DB_DSN='$GD_DB_DSN'
GD_OPEN311_URL=http://127.0.0.1:$p_open311
GD_DASHBOARD_URL=http://127.0.0.1:$p_dash/
ENV

if [[ -x $broker_bin ]]; then
    say "starting $broker_bin; Ctrl-C stops everything"
    start_broker "$GD_DB_DSN"
    start_workers "$GD_DB_DSN"
    open311_key=""
    start_adapters "$GD_DB_DSN"
    cat >&2 <<INFO

  dashboard    http://127.0.0.1:$p_dash/          (metrics: /metrics)
  Open311      http://127.0.0.1:$p_open311/services.json
               curl -d api_key=$open311_key -d service_code=LV-9901 \\
                    -d description='demo' -d address_string=$demo_town \\
                    http://127.0.0.1:$p_open311/requests.json
  12345 feed   $var/demo/orders.jsonl ($rate orders/s from deploy/demo/hotline_feed.py)
  watch        set -a; . $var/run-local.env; set +a
               $gdctl_bin watch        (every transition as it happens)
               $gdctl_bin top          (the dashboard's numbers in a terminal)
               $gdctl_bin queues
  PostgreSQL   $pgdir (log: $pgdir/log/postgres.log)
               psql "$GD_DB_DSN"
  endpoints    intake $intake, work $work, status $status
  configs      $var/etc/*.ini (the format of deploy/config/README.md)

INFO
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
