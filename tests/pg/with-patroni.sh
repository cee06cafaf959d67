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

# shellcheck source=tests/pg/harness.sh
. "$here/harness.sh"
harness_traps with-patroni gdha_stop

# Nothing of an outer harness (tests/pg/with-pg.sh) must reach the tests:
# they would address its server rather than this cluster.
unset PGHOST PGPORT PGUSER PGDATABASE GD_DB_DSN_TCP GD_PG_DIR GD_PGCTL

harness_dir=$(mktemp -d "${TMPDIR:-/tmp}/griddispatch-ha-test.XXXXXX") || exit 1
dir=$harness_dir
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

harness_run "$@"
