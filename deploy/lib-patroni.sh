# shellcheck shell=bash
# A local highly available PostgreSQL: one etcd and three Patroni members (PostgreSQL 15)
# on loopback, for tests and the HA demo; sourced, not executed.
#
# A cluster is addressed by its directory DIR, which holds:
#   DIR/env         KEY='value' lines: GD_DB_DSN (multi-host, unix sockets,
#                   target_session_attrs=read-write) GD_DB_DSN_TCP (the same
#                   over 127.0.0.1, password in PGPASSFILE) PGPASSFILE GD_HA_DIR
#                   GD_HA_ROOT GD_HA_MEMBERS GD_HA_REST (member=REST URL, space
#                   separated) GD_HA_ETCD (client URL)
#   DIR/pgpass      password file for the TCP DSN
#   ROOT/etcd/      etcd's data, its log and pid
#   ROOT/mN/        member N (m0 m1 m2): patroni.yml, data/ (PGDATA), run/
#                   (unix socket dir, 0700), patroni.log, patroni.pid, pgpass
# ROOT is DIR, unless the cluster owner cannot reach DIR or DIR is too long for
# unix socket paths: then a mktemp directory under /tmp, recorded in DIR/root.
#
# As root everything (etcd, Patroni, PostgreSQL) runs as the `postgres` user,
# since PostgreSQL refuses to run as root. Ports are picked free at start.
# Authentication: unix socket with trust (the socket directories are private
# to the cluster owner and root), loopback TCP with scram-sha-256 and random
# passwords. The superuser is `postgres`; the database is `griddispatch`.
#
# Patroni runs with synchronous_mode and synchronous_mode_strict: a COMMIT
# returns only once a synchronous standby has flushed it, so whatever the
# primary acknowledged survives its loss; with no standby left, writes wait.
# ttl 6 s, loop_wait 1 s, retry_timeout 2 s: a dead primary's leader key
# expires within about 6 s and a standby is promoted.
#
# Every function returns non-zero on failure after printing why on stderr.

# shellcheck source=deploy/lib-pg.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"

GDHA_MEMBERS=(m0 m1 m2)
GDHA_SCOPE=griddispatch
GDHA_TTL=${GDHA_TTL:-6}
GDHA_LOOP_WAIT=${GDHA_LOOP_WAIT:-1}
GDHA_RETRY_TIMEOUT=${GDHA_RETRY_TIMEOUT:-2}

gdha__log()
{
    printf 'patroni: %s\n' "$*" >&2
}

gdha_root()
{
    gdpg_root "$1"
}

# Read KEY of DIR/env.
gdha_env_get()
{
    gdpg_env_get "$1" "$2"
}

gdha__need()
{
    local p
    for p in patroni patronictl etcd; do
        command -v "$p" >/dev/null 2>&1 || {
            gdha__log "$p not found; run deploy/install-deps.sh (Debian: patroni etcd-server)"
            return 1
        }
    done
}

# Start CMD... in its own session as the cluster owner, output appended to
# LOG, its pid written to PIDFILE (the pid of CMD itself, not of runuser).
gdha__spawn()
{
    local log=$1 pidfile=$2
    shift 2
    # shellcheck disable=SC2016  # expanded by the inner shell
    gdpg_as_owner bash -c 'echo $$ >"$1"; shift; exec setsid "$@" </dev/null' \
        _ "$pidfile" "$@" >>"$log" 2>&1 &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    gdha__log "$* did not start"
    return 1
}

# True when the process of PIDFILE is alive.
gdha__alive()
{
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# The pids of the PostgreSQL server of member directory MDIR: the postmaster
# and its children.
gdha__pg_pids()
{
    local mdir=$1 pm
    pm=$(head -n 1 "$mdir/data/postmaster.pid" 2>/dev/null) || return 0
    [[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null || return 0
    printf '%s\n' "$pm"
    ps -o pid= --ppid "$pm" 2>/dev/null | tr -d ' '
}

# Print N distinct TCP ports that nothing listens on right now, one a line.
# They are taken from below the kernel's ephemeral range (20000 up to
# net.ipv4.ip_local_port_range), since some are bound only seconds later
# (a replica starts after the leader) and an outgoing connection must not
# have taken one meanwhile.
gdha__pick_ports()
{
    local n=$1 lo=32768 range port picked=() p dup i
    range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) && lo=${range%%[[:space:]]*}
    ((lo > 21000)) || lo=32768
    for ((i = 0; ${#picked[@]} < n && i < 100 * n; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % (lo - 20000)))
        gdpg__port_free "$port" || continue
        dup=0
        for p in "${picked[@]}"; do
            [[ $p == "$port" ]] && dup=1
        done
        ((dup == 0)) && picked+=("$port")
    done
    ((${#picked[@]} == n)) || return 1
    printf '%s\n' "${picked[@]}"
}

gdha__write_member_conf()
{
    local root=$1 m=$2 pg_port=$3 rest_port=$4 etcd_port=$5 su_pw=$6 repl_pw=$7 bin
    local mdir=$root/$m
    bin=$(gdpg_bindir) || return 1
    gdpg_as_owner tee "$mdir/patroni.yml" >/dev/null <<YAML || return 1
scope: $GDHA_SCOPE
name: $m
log:
  level: INFO
  format: '%(asctime)s $m %(levelname)s: %(message)s'
restapi:
  listen: 127.0.0.1:$rest_port
  connect_address: 127.0.0.1:$rest_port
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: $GDHA_TTL
    loop_wait: $GDHA_LOOP_WAIT
    retry_timeout: $GDHA_RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: true
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 200
        shared_buffers: 64MB
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        synchronous_commit: 'on'
        wal_retrieve_retry_interval: 500ms
        log_min_messages: warning
        log_line_prefix: '%m [%p] %q%u@%d '
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:$pg_port
  connect_address: 127.0.0.1:$pg_port
  use_unix_socket: true
  data_dir: $mdir/data
  bin_dir: $bin
  pgpass: $mdir/pgpass
  authentication:
    superuser:
      username: postgres
      password: '$su_pw'
    replication:
      username: replicator
      password: '$repl_pw'
    rewind:
      username: postgres
      password: '$su_pw'
  parameters:
    unix_socket_directories: '$mdir/run'
    unix_socket_permissions: '0700'
    logging_collector: 'off'
YAML
    gdpg_as_owner chmod 600 "$mdir/patroni.yml"
}

# The REST URL of member M of DIR.
gdha_rest_url()
{
    local dir=$1 m=$2 entry
    for entry in $(gdha_env_get "$dir" GD_HA_REST); do
        if [[ ${entry%%=*} == "$m" ]]; then
            printf '%s\n' "${entry#*=}"
            return 0
        fi
    done
    gdha__log "no member $m"
    return 1
}

# patronictl on the cluster of DIR with ARGS.
gdha_ctl()
{
    local dir=$1 root
    shift
    root=$(gdha_root "$dir")
    patronictl -c "$root/m0/patroni.yml" "$@"
}

# Start etcd of DIR (its files under ROOT/etcd) on the recorded ports.
gdha__etcd_start()
{
    local root=$1 client=$2 peer=$3 token
    token=gd-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    gdpg_as_owner mkdir -p "$root/etcd" || return 1
    gdpg_as_owner chmod 700 "$root/etcd"
    gdha__spawn "$root/etcd/etcd.log" "$root/etcd/etcd.pid" etcd --name gd \
        --data-dir "$root/etcd/data" \
        --listen-client-urls "http://127.0.0.1:$client" \
        --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "gd=http://127.0.0.1:$peer" \
        --initial-cluster-token "$token" --initial-cluster-state new \
        --log-level warn || return 1
    local i
    for ((i = 0; i < 100; i++)); do
        if etcdctl --endpoints "http://127.0.0.1:$client" endpoint health >/dev/null 2>&1; then
            return 0
        fi
        gdha__alive "$root/etcd/etcd.pid" || break
        sleep 0.1
    done
    gdha__log "etcd did not become healthy; last lines of $root/etcd/etcd.log:"
    tail -n 20 "$root/etcd/etcd.log" >&2
    return 1
}

# Start the Patroni of member M again (after gdha_kill or gdha_member_stop).
gdha_member_start()
{
    local dir=$1 m=$2 root
    root=$(gdha_root "$dir")
    if gdha__alive "$root/$m/patroni.pid"; then
        return 0
    fi
    gdpg_as_owner rm -f "$root/$m/patroni.pid"
    gdha__spawn "$root/$m/patroni.log" "$root/$m/patroni.pid" patroni "$root/$m/patroni.yml"
}

# JSON of GET /cluster from the first member that answers, on stdout.
gdha_cluster_json()
{
    local dir=$1 entry
    for entry in $(gdha_env_get "$dir" GD_HA_REST); do
        if python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/cluster", timeout=2).read().decode())
' "${entry#*=}" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

# Print the name of the member that is the leader now (running primary).
gdha_leader()
{
    local dir=$1
    gdha_cluster_json "$dir" | python3 -c '
import json, sys
for m in json.load(sys.stdin).get("members", []):
    if m.get("role") == "leader" and m.get("state") == "running":
        print(m["name"])
        break
else:
    sys.exit(1)'
}

# Wait (up to SECONDS, default 120) until the cluster is whole: a running
# leader, a synchronous standby and every member running and streaming.
gdha_wait_healthy()
{
    local dir=$1 timeout=${2:-120} deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if gdha_cluster_json "$dir" 2>/dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)
ms = c.get("members", [])
roles = sorted(m.get("role") for m in ms)
ok = (len(ms) == 3 and all(m.get("state") in ("running", "streaming") for m in ms)
      and roles.count("leader") == 1 and roles.count("sync_standby") == 1
      and all(m.get("lag", 0) in (0, "0") for m in ms if m.get("role") != "leader"))
sys.exit(0 if ok else 1)' 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    gdha__log "the cluster in $dir is not whole after ${timeout}s:"
    gdha_ctl "$dir" list >&2 2>&1 || true
    return 1
}

gdha__write_env()
{
    local dir=$1 root=$2 etcd_port=$3
    shift 3
    # the rest: m=pgport:restport for each member
    local hosts="" ports="" tcp_hosts="" rest="" entry m pgp rp
    for entry in "$@"; do
        m=${entry%%=*}
        pgp=${entry#*=}
        rp=${pgp#*:}
        pgp=${pgp%%:*}
        hosts+=${hosts:+,}$root/$m/run
        tcp_hosts+=${tcp_hosts:+,}127.0.0.1
        ports+=${ports:+,}$pgp
        rest+=${rest:+ }$m=http://127.0.0.1:$rp
    done
    {
        printf "GD_DB_DSN='host=%s port=%s user=postgres dbname=%s target_session_attrs=read-write'\n" \
            "$hosts" "$ports" "$GDPG_DBNAME"
        printf "GD_DB_DSN_TCP='host=%s port=%s user=postgres dbname=%s target_session_attrs=read-write'\n" \
            "$tcp_hosts" "$ports" "$GDPG_DBNAME"
        printf "PGPASSFILE='%s'\n" "$dir/pgpass"
        printf "GD_HA_DIR='%s'\n" "$dir"
        printf "GD_HA_ROOT='%s'\n" "$root"
        printf "GD_HA_MEMBERS='%s'\n" "${GDHA_MEMBERS[*]}"
        printf "GD_HA_REST='%s'\n" "$rest"
        printf "GD_HA_ETCD='http://127.0.0.1:%s'\n" "$etcd_port"
    } >"$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"
}

# Create a fresh cluster in DIR (created if missing, must not hold one):
# etcd, then member m0 (which bootstraps the database), then m1 and m2 as
# replicas; waits until it is whole, creates the database and writes DIR/env.
# On failure everything started is stopped; DIR is kept for its logs.
gdha_start()
{
    local dir=$1
    gdha__start "$dir" && return 0
    [[ -d $dir ]] && gdha_halt "$dir"
    return 1
}

gdha__start()
{
    local dir=$1 root su_pw repl_pw etcd_port etcd_peer m pgp rp entries=() bin
    gdha__need || return 1
    bin=$(gdpg_bindir) || return 1
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    if [[ -e $dir/env || -e $dir/root || -e $dir/m0 ]]; then
        gdha__log "$dir already holds a cluster"
        return 1
    fi
    root=$(gdpg_owned_root "$dir" griddispatch-ha) || return 1

    su_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    repl_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    (umask 077 && printf '127.0.0.1:*:*:postgres:%s\n' "$su_pw" >"$dir/pgpass") || return 1

    # etcd client and peer, then PostgreSQL and REST for each member
    local ports=()
    mapfile -t ports < <(gdha__pick_ports $((2 + 2 * ${#GDHA_MEMBERS[@]})))
    ((${#ports[@]} == 2 + 2 * ${#GDHA_MEMBERS[@]})) || {
        gdha__log "not enough free ports"
        return 1
    }
    etcd_port=${ports[0]}
    etcd_peer=${ports[1]}
    gdha__etcd_start "$root" "$etcd_port" "$etcd_peer" || return 1
    local k=2
    for m in "${GDHA_MEMBERS[@]}"; do
        pgp=${ports[k]}
        rp=${ports[k + 1]}
        k=$((k + 2))
        gdpg_as_owner mkdir -p "$root/$m/run" || return 1
        gdpg_as_owner chmod 700 "$root/$m" "$root/$m/run" || return 1
        gdha__write_member_conf "$root" "$m" "$pgp" "$rp" "$etcd_port" "$su_pw" "$repl_pw" ||
            return 1
        entries+=("$m=$pgp:$rp")
    done
    gdha__write_env "$dir" "$root" "$etcd_port" "${entries[@]}"

    gdha_member_start "$dir" m0 || return 1
    local i
    for ((i = 0; i < 600; i++)); do
        gdha_leader "$dir" >/dev/null 2>&1 && break
        if ! gdha__alive "$root/m0/patroni.pid"; then
            gdha__log "m0 exited during bootstrap; last lines of $root/m0/patroni.log:"
            tail -n 30 "$root/m0/patroni.log" >&2
            return 1
        fi
        sleep 0.1
    done
    gdha_leader "$dir" >/dev/null 2>&1 || {
        gdha__log "m0 did not become the leader; last lines of $root/m0/patroni.log:"
        tail -n 30 "$root/m0/patroni.log" >&2
        return 1
    }
    gdha_member_start "$dir" m1 || return 1
    gdha_member_start "$dir" m2 || return 1
    gdha_wait_healthy "$dir" 180 || return 1
    if ! "$bin/psql" -X -q -d "$(gdha_env_get "$dir" GD_DB_DSN | sed "s/dbname=$GDPG_DBNAME/dbname=postgres/")" \
        -c "CREATE DATABASE $GDPG_DBNAME" >/dev/null; then
        gdha__log "CREATE DATABASE $GDPG_DBNAME failed"
        return 1
    fi
}

# Kill member M as a crash of its host would: SIGKILL to its Patroni, its
# postmaster and every backend at once.
gdha_kill()
{
    local dir=$1 m=$2 root pids=()
    root=$(gdha_root "$dir")
    local p
    p=$(cat "$root/$m/patroni.pid" 2>/dev/null)
    [[ $p =~ ^[0-9]+$ ]] && pids+=("$p")
    while read -r p; do
        [[ -n $p ]] && pids+=("$p")
    done < <(gdha__pg_pids "$root/$m")
    ((${#pids[@]} > 0)) || return 0
    kill -KILL "${pids[@]}" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
        local left=0
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null && left=1
        done
        ((left == 0)) && return 0
        sleep 0.05
    done
    gdha__log "member $m: processes ${pids[*]} still alive after SIGKILL"
    return 1
}

# Stop member M cleanly: SIGTERM to Patroni, which stops its PostgreSQL.
gdha_member_stop()
{
    local dir=$1 m=$2 root pid i
    root=$(gdha_root "$dir")
    pid=$(cat "$root/$m/patroni.pid" 2>/dev/null)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # whatever did not stop within 30 s (or was orphaned by a crash) is killed
    gdha_kill "$dir" "$m"
}

# Stop everything of DIR (members, then etcd); keep the files.
gdha_halt()
{
    local dir=$1 root m rc=0 pid
    root=$(gdha_root "$dir")
    [[ -d $root ]] || return 0
    for m in "${GDHA_MEMBERS[@]}"; do
        [[ -d $root/$m ]] || continue
        # no leader race while the members go: stop them together
        pid=$(cat "$root/$m/patroni.pid" 2>/dev/null)
        [[ $pid =~ ^[0-9]+$ ]] && kill -TERM "$pid" 2>/dev/null
    done
    for m in "${GDHA_MEMBERS[@]}"; do
        [[ -d $root/$m ]] || continue
        gdha_member_stop "$dir" "$m" || rc=1
    done
    if gdha__alive "$root/etcd/etcd.pid"; then
        pid=$(cat "$root/etcd/etcd.pid")
        kill -TERM "$pid" 2>/dev/null
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    return "$rc"
}

# Stop everything of DIR and remove DIR (and its /tmp root, if any).
gdha_stop()
{
    local dir=$1 root rc=0
    [[ -d $dir ]] || return 0
    root=$(gdha_root "$dir")
    gdha_halt "$dir" || rc=1
    if [[ $root != "$dir" && $root == /tmp/griddispatch-ha.* ]]; then
        rm -rf -- "$root"
    fi
    rm -rf -- "$dir"
    return "$rc"
}
