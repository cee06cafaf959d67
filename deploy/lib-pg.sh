# shellcheck shell=bash
# Private PostgreSQL clusters for tests and local runs; sourced, not executed.
#
# A cluster is addressed by its directory DIR, which holds:
#   DIR/env      KEY='value' lines: PGHOST PGPORT PGUSER PGDATABASE PGPASSFILE
#                GD_DB_DSN GD_DB_DSN_TCP GD_PG_DIR (source with set -a)
#   DIR/pgpass   password file for TCP connections (libpq reads PGPASSFILE)
#   DIR/data     PGDATA            DIR/run   unix socket directory
#   DIR/log      server log (postgres.log)
# As root the server runs as the `postgres` user. When `postgres` cannot reach
# DIR (a parent directory is not traversable) or DIR is too long for a unix
# socket path, the cluster files live in a mktemp directory under /tmp whose
# path is recorded in DIR/root; DIR/log is then a symlink into it.
#
# Authentication: unix socket with trust, the socket directory being private
# to the cluster owner (and root); TCP only on 127.0.0.1 with scram-sha-256 and
# a random password kept in DIR/pgpass. The role is a superuser named after
# the invoking user (root as root), the database is `griddispatch`.
#
# Every function returns non-zero on failure after printing why on stderr.

GDPG_DBNAME=${GDPG_DBNAME:-griddispatch}
GDPG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

gdpg__log()
{
    printf 'pg: %s\n' "$*" >&2
}

# Directory holding initdb, pg_ctl, psql: $GD_PG_BINDIR, else the newest
# /usr/lib/postgresql/*/bin, else whatever is on PATH.
gdpg_bindir()
{
    if [[ -n ${GD_PG_BINDIR:-} ]]; then
        printf '%s\n' "$GD_PG_BINDIR"
        return 0
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -name initdb -path '*/bin/*' \
        2>/dev/null | sort -V | tail -n 1)
    if [[ -n $d ]]; then
        dirname "$d"
        return 0
    fi
    d=$(command -v initdb 2>/dev/null) || {
        gdpg__log "initdb not found; run deploy/install-deps.sh or set GD_PG_BINDIR"
        return 1
    }
    dirname "$d"
}

# Run a command as the owner of the cluster files: `postgres` when we are
# root, ourselves otherwise.
gdpg_as_owner()
{
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

gdpg_role()
{
    id -un
}

# Where the cluster files of DIR actually live.
gdpg_root()
{
    local dir=$1
    if [[ -f $dir/root ]]; then
        cat "$dir/root"
    else
        printf '%s\n' "$dir"
    fi
}

gdpg__port_free()
{
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# Print a TCP port in 20000-60000 that nothing listens on right now.
gdpg_pick_port()
{
    local i port
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
        if gdpg__port_free "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    gdpg__log "no free port found in 20000-60000"
    return 1
}

gdpg__write_env()
{
    local dir=$1 root=$2 port=$3 role
    role=$(gdpg_role)
    {
        printf "PGHOST='%s'\n" "$root/run"
        printf "PGPORT='%s'\n" "$port"
        printf "PGUSER='%s'\n" "$role"
        printf "PGDATABASE='%s'\n" "$GDPG_DBNAME"
        printf "PGPASSFILE='%s'\n" "$dir/pgpass"
        printf "GD_DB_DSN='host=%s port=%s user=%s dbname=%s'\n" \
            "$root/run" "$port" "$role" "$GDPG_DBNAME"
        printf "GD_DB_DSN_TCP='host=127.0.0.1 port=%s user=%s dbname=%s'\n" \
            "$port" "$role" "$GDPG_DBNAME"
        printf "GD_PG_DIR='%s'\n" "$dir"
    } >"$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"
}

# Read KEY of DIR/env.
gdpg_env_get()
{
    local dir=$1 key=$2
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/env"
        printf '%s\n' "${!key}"
    )
}

gdpg__log_tail()
{
    local root=$1
    if [[ -f $root/log/postgres.log ]]; then
        gdpg__log "last lines of $root/log/postgres.log:"
        tail -n 30 "$root/log/postgres.log" >&2
    fi
}

# Start the server of an initialised cluster on PORT. Returns 2 when the port
# turned out to be taken (so the caller may pick another), 1 on other errors.
gdpg__server_start()
{
    local root=$1 port=$2 bin
    bin=$(gdpg_bindir) || return 1
    gdpg_as_owner sed -i "s/^port = .*/port = $port/" "$root/data/postgresql.auto.conf" ||
        return 1
    local before=0
    [[ -f $root/log/postgres.log ]] && before=$(wc -l <"$root/log/postgres.log")
    # Own session: a Ctrl-C meant for the tests must not shut the server down
    # under them; the caller stops it.
    if gdpg_as_owner setsid -w "$bin/pg_ctl" -D "$root/data" -l "$root/log/postgres.log" \
        -w -t 60 -s start >/dev/null </dev/null; then
        return 0
    fi
    if tail -n +"$((before + 1))" "$root/log/postgres.log" 2>/dev/null |
        grep -qE 'could not (bind|create lock file)|Address already in use'; then
        return 2
    fi
    gdpg__log "server failed to start"
    gdpg__log_tail "$root"
    return 1
}

# Create a fresh cluster in DIR (created if missing, must not hold a
# cluster), start it on a free port, create the database and write DIR/env.
# On failure no server is left running; DIR is kept for its logs.
gdpg_start()
{
    local dir=$1
    gdpg__start "$dir" && return 0
    [[ -d $dir ]] && gdpg_halt "$dir"
    return 1
}

# gdpg_owned_root DIR PREFIX: prints the directory the cluster's files go
# in: DIR itself when the postgres user can write there (as root, DIR is
# given to postgres) and its path is short enough for the unix sockets
# below it (107 bytes), else a new /tmp/PREFIX.XXXXXX owned by postgres,
# whose path is then recorded in DIR/root. Returns 1 when that fails.
gdpg_owned_root()
{
    local dir=$1 prefix=$2 root
    root=$dir
    if ((EUID == 0)); then
        chown postgres: "$dir" || return 1
        runuser -u postgres -- test -w "$dir" -a -x "$dir" || root=""
    fi
    # unix socket paths are limited to 107 bytes: $root/.../.s.PGSQL.NNNNN
    if [[ -n $root && ${#root} -gt 80 ]]; then
        root=""
    fi
    if [[ -z $root ]]; then
        root=$(mktemp -d "/tmp/$prefix.XXXXXX") || return 1
        ((EUID == 0)) && chown postgres: "$root"
        printf '%s\n' "$root" >"$dir/root"
    fi
    printf '%s\n' "$root"
}

gdpg__start()
{
    local dir=$1 root bin role port pw rc attempt
    bin=$(gdpg_bindir) || return 1
    role=$(gdpg_role)
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    if [[ -e $dir/env || -e $dir/data || -e $dir/root ]]; then
        gdpg__log "$dir already holds a cluster"
        return 1
    fi

    root=$(gdpg_owned_root "$dir" griddispatch-pg) || return 1

    gdpg_as_owner mkdir -p "$root/log" "$root/run" || return 1
    gdpg_as_owner chmod 700 "$root/run" || return 1
    [[ $root != "$dir" ]] && ln -sfn "$root/log" "$dir/log"

    pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf '%s\n' "$pw" | gdpg_as_owner tee "$root/pwfile" >/dev/null || return 1
    if ! gdpg_as_owner "$bin/initdb" -D "$root/data" -U "$role" --pwfile="$root/pwfile" \
        -A trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$root/log/initdb.log" 2>&1; then
        gdpg_as_owner rm -f "$root/pwfile"
        gdpg__log "initdb failed:"
        tail -n 30 "$root/log/initdb.log" >&2
        return 1
    fi
    gdpg_as_owner rm -f "$root/pwfile"
    (umask 077 && printf '*:*:*:%s:%s\n' "$role" "$pw" >"$dir/pgpass") || return 1

    gdpg_as_owner tee -a "$root/data/postgresql.auto.conf" >/dev/null <<CONF || return 1
port = 0
listen_addresses = '127.0.0.1'
unix_socket_directories = '$root/run'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
CONF
    # Only loopback TCP, with a password; local socket trusted (private dir).
    gdpg_as_owner tee "$root/data/pg_hba.conf" >/dev/null <<HBA || return 1
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
HBA

    for attempt in 1 2 3 4 5; do
        port=$(gdpg_pick_port) || return 1
        gdpg__server_start "$root" "$port"
        rc=$?
        ((rc == 0)) && break
        ((rc == 2)) || return 1
        gdpg__log "port $port taken, retrying (attempt $attempt)"
    done
    ((rc == 0)) || return 1

    if ! "$bin/createdb" -h "$root/run" -p "$port" -U "$role" "$GDPG_DBNAME"; then
        gdpg__log "createdb failed"
        return 1
    fi
    gdpg__write_env "$dir" "$root" "$port"
}

# Start the server of an existing cluster in DIR again, on its recorded port
# if that is free (a new one otherwise, rewriting DIR/env).
gdpg_resume()
{
    local dir=$1 root port rc attempt
    root=$(gdpg_root "$dir")
    if gdpg_running "$dir"; then
        return 0
    fi
    port=$(gdpg_env_get "$dir" PGPORT) || return 1
    for attempt in 1 2 3 4 5; do
        gdpg__server_start "$root" "$port"
        rc=$?
        ((rc == 0)) && break
        ((rc == 2)) || return 1
        gdpg__log "port $port taken, retrying (attempt $attempt)"
        port=$(gdpg_pick_port) || return 1
    done
    ((rc == 0)) || return 1
    gdpg__write_env "$dir" "$root" "$port"
}

# True when the server of DIR is running.
gdpg_running()
{
    local dir=$1 root bin
    root=$(gdpg_root "$dir")
    bin=$(gdpg_bindir) || return 1
    [[ -d $root/data ]] || return 1
    gdpg_as_owner "$bin/pg_ctl" -D "$root/data" status >/dev/null 2>&1
}

# Stop the server of DIR (fast, then immediate, then SIGKILL); keep the files.
gdpg_halt()
{
    local dir=$1 root bin pid
    root=$(gdpg_root "$dir")
    bin=$(gdpg_bindir) || return 1
    [[ -d $root/data ]] || return 0
    gdpg_running "$dir" || return 0
    gdpg_as_owner "$bin/pg_ctl" -D "$root/data" -m fast -w -t 30 -s stop >/dev/null 2>&1 &&
        return 0
    gdpg__log "fast shutdown failed, trying immediate"
    gdpg_as_owner "$bin/pg_ctl" -D "$root/data" -m immediate -w -t 15 -s stop >/dev/null 2>&1 &&
        return 0
    pid=$(head -n 1 "$root/data/postmaster.pid" 2>/dev/null)
    if [[ $pid =~ ^[0-9]+$ ]]; then
        gdpg__log "killing postmaster $pid"
        kill -KILL "$pid" 2>/dev/null
        sleep 1
    fi
    ! gdpg_running "$dir"
}

# Stop the server of DIR and remove DIR (and its /tmp root, if any).
gdpg_stop()
{
    local dir=$1 root rc=0
    [[ -d $dir ]] || return 0
    root=$(gdpg_root "$dir")
    gdpg_halt "$dir" || rc=1
    if [[ $root != "$dir" && $root == /tmp/griddispatch-pg.* ]]; then
        rm -rf -- "$root"
    fi
    rm -rf -- "$dir"
    return "$rc"
}

# Apply the migrations broker/sql/*.sql to DSN in lexical order. The files are
# idempotent and record themselves; this only runs them in order.
gdpg_migrate()
{
    local dsn=$1 bin f n=0 files=()
    local LC_COLLATE=C PGOPTIONS='-c client_min_messages=warning'
    export PGOPTIONS
    bin=$(gdpg_bindir) || return 1
    shopt -s nullglob
    files=("$GDPG_REPO"/broker/sql/*.sql)
    shopt -u nullglob
    for f in "${files[@]}"; do
        if ! "$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$dsn" -f "$f" >/dev/null; then
            gdpg__log "migration $(basename "$f") failed"
            return 1
        fi
        n=$((n + 1))
    done
    ((n > 0)) || gdpg__log "no migrations in broker/sql/"
    return 0
}
