#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - builds the libFuzzer target with clang and fuzzes the GDP/1 decoder on one core.
#
# Configures build/fuzz (clang, ASan+UBSan, the library instrumented with
# -fsanitize=fuzzer-no-link) on first use, builds only the fuzz target,
# and runs it for SECONDS (default 300) from the committed seeds in
# tests/fuzz/corpus/decode. New inputs go to build/fuzz/corpus-decode, so
# the committed seeds stay as they are and later runs resume. A crash
# leaves its input as build/fuzz/crash-* and makes the script fail.
set -euo pipefail

secs=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build/fuzz

if [[ ! -f $build/build.ninja ]]; then
    CC=clang meson setup "$build" "$root" \
        -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" tests/fuzz/fuzz-decode

work=$build/corpus-decode
mkdir -p "$work"
log=$build/fuzz-decode.log

# -malloc_limit_mb: no single allocation may approach the sizes a forged
# array header could request from msgpack-c.
set +e
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/tests/fuzz/fuzz-decode" \
    -max_total_time="$secs" -max_len=8192 -malloc_limit_mb=64 -rss_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$build/" \
    "$work" "$root/tests/fuzz/corpus/decode" >"$log" 2>&1
status=$?
set -e

grep -E '^#[0-9]+ +DONE|^==[0-9]+==|^SUMMARY|deadly signal|fuzz-decode:' "$log" || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
echo "fuzz-decode: ${secs}s, ${execs:-?} executions, ${rate:-?} exec/s, corpus $(ls "$work" | wc -l) inputs, exit $status (log: $log)"
exit $status
