#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET] - builds the libFuzzer targets with clang and fuzzes one or all of them on one core.
#
# Targets: decode (the GDP/1 decoders), open311 (gd-open311's route, form
# and query parsing), hotline (gd-hotline's order lines); default all, one
# after the other, each for SECONDS (default 300).
#
# Configures $GD_FUZZ_BUILD (default build/fuzz: clang, ASan+UBSan, the
# libraries instrumented with -fsanitize=fuzzer-no-link) on first use,
# builds only the fuzz targets, and runs each from its committed seeds in
# tests/fuzz/corpus/<target> (plus tests/fuzz/<target>.dict when there is
# one). New inputs go to <build>/corpus-<target>, so the committed seeds
# stay as they are and later runs resume. Prints per target the
# executions, executions per second and coverage (libFuzzer's cov: edges
# and ft: features). A crash leaves its input as <build>/crash-* and makes
# the script fail.
set -euo pipefail

secs=${1:-300}
only=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${GD_FUZZ_BUILD:-$root/build/fuzz}
targets=(decode open311 hotline)
if [[ -n $only ]]; then
    [[ " ${targets[*]} " == *" $only "* ]] || { echo "run.sh: no target $only (${targets[*]})" >&2; exit 2; }
    targets=("$only")
fi

if [[ ! -f $build/build.ninja ]]; then
    CC=clang meson setup "$build" "$root" \
        -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}"

# -max_len: the largest input each parser should see in full (open311 and
# hotline accept 16 KiB descriptions). -malloc_limit_mb: no single
# allocation may approach the sizes a forged array header could request
# from msgpack-c.
declare -A max_len=([decode]=8192 [open311]=24576 [hotline]=20480)

failed=0
for t in "${targets[@]}"; do
    work=$build/corpus-$t
    mkdir -p "$work"
    log=$build/fuzz-$t.log
    dict=()
    [[ -f $root/tests/fuzz/$t.dict ]] && dict=(-dict="$root/tests/fuzz/$t.dict")
    set +e
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/tests/fuzz/fuzz-$t" \
        -max_total_time="$secs" -max_len="${max_len[$t]}" -malloc_limit_mb=64 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$build/" "${dict[@]}" \
        "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1
    status=$?
    set -e

    grep -E '^==[0-9]+==|^SUMMARY|deadly signal|fuzz-[a-z0-9]+:' "$log" || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
    edges=$(sed -n 's/^INFO: Loaded [0-9]* modules* *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    echo "fuzz-$t: ${secs}s, ${execs:-?} executions, ${rate:-?} exec/s, cov ${cov:-?} of ${edges:-?} edges, ft ${ft:-?}, corpus $(ls "$work" | wc -l) inputs, exit $status (log: $log)"
    [[ $status -eq 0 ]] || failed=1
done
exit $failed
