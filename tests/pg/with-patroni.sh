#!/usr/bin/env bash
# Run a command beside a private throw-away Patroni cluster (etcd + three
# PostgreSQL 15 members, synchronous replication), as deploy/lib-patroni.sh
# describes.
#
#   tests/pg/with-patroni.sh CMD [ARGS...]
#
# Starts the cluster in a mktemp directory, applies broker/sql/*.sql, exports
# GD_DB_DSN (multi-host, target_session_attrs=read-write) GD_DB_DSN_TCP
# PGPASSFILE GD_HA_DIR GD_HA_ROOT GD_HA_MEMBERS GD_HA_REST GD_HA_ETCD and
# GD_HA_LIB (the path of lib-patroni.sh, so a test can kill and restart
# members), runs CMD and exits with its status. Everything is stopped and
# removed on every exit: success, failure, Ctrl-C or SIGTERM.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib=$here/../../deploy/lib-patroni.sh
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")

(($# > 0)) || {
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
}

# shellcheck source=deploy/lib-patroni.sh
. "$lib"

dir=""
child=""

# shellcheck disable=SC2317  # invoked through trap
cleanup()
{
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    if [[ -n $dir ]] && ! gdha_stop "$dir"; then
        echo "with-patroni: could not stop/remove the cluster in $dir" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Nothing of an outer harness (tests/pg/with-pg.sh) must reach the tests:
# they would address its server rather than this cluster.
unset PGHOST PGPORT PGUSER PGDATABASE GD_DB_DSN_TCP GD_PG_DIR GD_PGCTL

dir=$(mktemp -d "${TMPDIR:-/tmp}/griddispatch-ha-test.XXXXXX") || exit 1
started=$SECONDS
if ! gdha_start "$dir"; then
    echo "with-patroni: could not start the Patroni cluster" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
export GD_HA_LIB=$lib
if ! gdpg_migrate "$GD_DB_DSN"; then
    echo "with-patroni: migrations failed" >&2
    exit 1
fi
echo "with-patroni: cluster up in $((SECONDS - started)) s (leader $(gdha_leader "$dir"))" >&2

{ exec 3<&0; } 2>/dev/null || exec 3</dev/null
"$@" <&3 3<&- &
child=$!
wait "$child"
rc=$?
child=""
exit "$rc"
