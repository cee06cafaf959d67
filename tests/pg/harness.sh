# shellcheck shell=bash
# tests/pg/harness.sh - what tests/pg/with-pg.sh and tests/pg/with-patroni.sh share: the clean-up
# on every exit and running the command in the background (sourced by both).
#
#   harness_traps NAME STOP   on every exit (success, failure, Ctrl-C, SIGTERM,
#                             SIGHUP) stop the command if it still runs, then
#                             run `STOP "$harness_dir"` when harness_dir is set
#                             (NAME prefixes the message when that fails)
#   harness_run CMD [ARGS...] runs CMD with this shell's stdin (or /dev/null
#                             when there is none) in the background, so that a
#                             signal is handled at once, and exits with its status

harness_name=""
harness_stop=""
harness_dir=""
harness_child=""

# shellcheck disable=SC2317  # invoked through trap
harness_cleanup()
{
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n $harness_child ]] && kill -0 "$harness_child" 2>/dev/null; then
        kill -TERM "$harness_child" 2>/dev/null
        wait "$harness_child" 2>/dev/null
    fi
    if [[ -n $harness_dir ]] && ! "$harness_stop" "$harness_dir"; then
        echo "$harness_name: could not stop/remove the cluster in $harness_dir" >&2
    fi
    exit "$rc"
}

harness_traps()
{
    harness_name=$1
    harness_stop=$2
    trap harness_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

harness_run()
{
    { exec 3<&0; } 2>/dev/null || exec 3</dev/null
    "$@" <&3 3<&- &
    harness_child=$!
    wait "$harness_child"
    local rc=$?
    harness_child=""
    exit "$rc"
}
