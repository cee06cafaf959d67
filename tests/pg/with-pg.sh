#!/usr/bin/env bash
# Run a command beside a private throw-away PostgreSQL cluster.
#
#   tests/pg/with-pg.sh CMD [ARGS...]
#
# Starts a cluster in a mktemp directory, applies broker/sql/*.sql, exports
# PGHOST PGPORT PGUSER PGDATABASE PGPASSFILE GD_DB_DSN GD_DB_DSN_TCP GD_PG_DIR
# (and GD_PGCTL, the path of pgctl.sh, so a test can halt/resume the server),
# runs CMD and exits with its status. The cluster is stopped and removed on
# every exit: success, failure, Ctrl-C or SIGTERM.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pgctl=$here/pgctl.sh

(($# > 0)) || {
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
}

# shellcheck source=tests/pg/harness.sh
. "$here/harness.sh"

# shellcheck disable=SC2317  # invoked through harness_cleanup
stop_cluster()
{
    "$pgctl" stop "$1"
}
harness_traps with-pg stop_cluster

harness_dir=$(mktemp -d "${TMPDIR:-/tmp}/griddispatch-test.XXXXXX") || exit 1
dir=$harness_dir
if ! "$pgctl" start "$dir"; then
    echo "with-pg: could not start PostgreSQL" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
export GD_PGCTL=$pgctl
if ! "$pgctl" migrate "$GD_DB_DSN"; then
    echo "with-pg: migrations failed" >&2
    exit 1
fi

# Run CMD in the background (stdin passed through) so that a signal to this
# script is handled at once rather than after CMD finishes.
harness_run "$@"
