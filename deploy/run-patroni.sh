#!/usr/bin/env bash
# A local highly available PostgreSQL for the HA demo: etcd and three Patroni members (PostgreSQL 15, synchronous replication) on loopback.
#
#   deploy/run-patroni.sh [DIR]     start, print the DSN, run until Ctrl-C
#
# DIR [var/patroni] must not hold a cluster (a previous run removes its
# own). Installs missing packages (deploy/install-deps.sh), starts the
# cluster as deploy/lib-patroni.sh describes (free ports, `postgres` user
# when run as root), applies broker/sql/*.sql and loads the demo district,
# then prints the multi-host DSN for gd-broker --db and the commands to try
# a failover. Ctrl-C (or SIGTERM) stops everything and removes DIR.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$(pwd)

case ${1:-} in
-h | --help)
    sed -n '3,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
dir=${1:-$repo/var/patroni}

deploy/install-deps.sh || exit 1
# shellcheck source=deploy/lib-patroni.sh
. deploy/lib-patroni.sh

started=0
# shellcheck disable=SC2317  # invoked through trap
cleanup()
{
    local rc=$?
    trap - EXIT INT TERM HUP
    if ((started)); then
        echo "run-patroni: stopping the cluster and removing $dir" >&2
        gdha_stop "$dir" || echo "run-patroni: could not stop/remove everything in $dir" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

if [[ -e $dir/env || -e $dir/m0 || -e $dir/root ]]; then
    echo "run-patroni: $dir holds a cluster (of a run still going?); remove it or give another DIR" >&2
    exit 1
fi
started=1
mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
gdha_start "$dir" || exit 1
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
gdpg_migrate "$GD_DB_DSN" || exit 1
deploy/demo/load.sh "$GD_DB_DSN" >/dev/null || {
    echo "run-patroni: loading the demo district failed" >&2
    exit 1
}
root=$GD_HA_ROOT
cat <<TXT

Patroni cluster up: leader $(gdha_leader "$dir"), synchronous replication on.

  database (multi-host, primary only):
    $GD_DB_DSN
  the same over TCP (password in $PGPASSFILE):
    $GD_DB_DSN_TCP

  broker:        gd-broker --db "$GD_DB_DSN" --intake tcp://127.0.0.1:7701 ...
  members:       patronictl -c $root/m0/patroni.yml list
  switch:        patronictl -c $root/m0/patroni.yml failover --candidate <sync standby> --force
  kill a host:   (. deploy/lib-patroni.sh; gdha_kill $dir <member>; gdha_member_start $dir <member>)
  logs:          $root/m*/patroni.log (Patroni and PostgreSQL), $root/etcd/etcd.log

Ctrl-C stops everything and removes $dir.
TXT
while :; do
    sleep 5 &
    wait $!
done
