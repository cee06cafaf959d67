#!/usr/bin/env bash
# Private throw-away PostgreSQL clusters for tests.
#
#   tests/pg/pgctl.sh start DIR     new cluster in DIR, free port, database
#                                   griddispatch, env file DIR/env
#   tests/pg/pgctl.sh migrate DSN   apply broker/sql/*.sql in lexical order
#   tests/pg/pgctl.sh stop DIR      stop the server and remove DIR
#   tests/pg/pgctl.sh halt DIR      stop the server, keep DIR (outage tests)
#   tests/pg/pgctl.sh resume DIR    start a halted server again (same port if
#                                   free; DIR/env is rewritten otherwise)
#   tests/pg/pgctl.sh status DIR    exit 0 when the server is running
#
# DIR/env holds KEY='value' lines (PGHOST PGPORT PGUSER PGDATABASE PGPASSFILE
# GD_DB_DSN GD_DB_DSN_TCP GD_PG_DIR); load it with `set -a; . DIR/env; set +a`.
# The layout and rules are described in deploy/lib-pg.sh.
set -uo pipefail

# shellcheck source=deploy/lib-pg.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib-pg.sh"

usage()
{
    sed -n '3,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

(($# == 2)) || usage
case $1 in
start) gdpg_start "$2" ;;
migrate) gdpg_migrate "$2" ;;
stop) gdpg_stop "$2" ;;
halt) gdpg_halt "$2" ;;
resume) gdpg_resume "$2" ;;
status) gdpg_running "$2" ;;
*) usage ;;
esac
