#!/usr/bin/env bash
# Run the whole test suite: the single test command (also what CI runs).
#
#   tests/run-all.sh            full run
#   GD_TEST_QUICK=1 tests/run-all.sh   (or --quick) skip the sanitizer pass
#
# 1. installs missing Debian packages (deploy/install-deps.sh);
# 2. builds build/test with -Dwerror=true and runs every meson test beside a
#    private PostgreSQL (tests/pg/with-pg.sh exports GD_DB_DSN, PGHOST, ...);
# 3. builds build/asan with AddressSanitizer + UBSan and runs the unit suite
#    and the broker's integration suites against the sanitized broker;
# 4. totals both runs from meson's testlog.json and ends with the line
#    `N passed, N failed, N skipped`. Exits non-zero when anything failed
#    (a test, a build, the database harness) or when no test ran.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$(pwd)

quick=${GD_TEST_QUICK:-0}
for arg in "$@"; do
    case $arg in
    --quick) quick=1 ;;
    *)
        echo "usage: $0 [--quick]" >&2
        exit 2
        ;;
    esac
done

python=/usr/bin/python3
step_failures=()
logs=()

step()
{
    printf '\n==> %s\n' "$*"
}

# setup_build DIR MESON-OPTIONS...: configure (or reconfigure) and build DIR.
setup_build()
{
    local dir=$1
    shift
    if [[ -f $dir/meson-private/coredata.dat ]]; then
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
    else
        mkdir -p "$(dirname "$dir")"
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
    fi || {
        cat "$dir.setup.log" >&2
        echo "run-all: meson setup $dir failed" >&2
        return 1
    }
    ninja -C "$dir" || {
        echo "run-all: build of $dir failed" >&2
        return 1
    }
}

step "dependencies"
if ! deploy/install-deps.sh; then
    echo "run-all: installing dependencies failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

step "browser test tools (playwright-core from npm, cached in \$GD_NODE_DIR or ~/.cache/griddispatch/node)"
tests/integration/browser/setup.sh >/dev/null ||
    echo "run-all: playwright-core could not be installed; test_dashboard's browser test will fail" >&2

step "build build/test (-Dwerror=true)"
if setup_build build/test -Dwerror=true; then
    step "meson test build/test (with a private PostgreSQL)"
    rm -f build/test/meson-logs/testlog.json
    tests/pg/with-pg.sh meson test -C build/test --print-errorlogs --num-processes 2
    rc=$?
    logs+=("build/test/meson-logs/testlog.json:$rc")
else
    step_failures+=("build/test: build failed")
fi

if [[ $quick == 1 ]]; then
    step "sanitizer pass skipped (quick run)"
else
    step "build build/asan (address,undefined)"
    if setup_build build/asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false; then
        step "meson test build/asan --suite unit"
        rm -f build/asan/meson-logs/testlog.json
        meson test -C build/asan --suite unit --print-errorlogs --num-processes 2
        rc=$?
        logs+=("build/asan/meson-logs/testlog.json:$rc")
        # The broker's own integration suites again, against the sanitized
        # gd-broker: memory errors and leaks (LeakSanitizer makes the broker
        # exit non-zero at SIGTERM, which the fixtures report) under real load.
        step "meson test build/asan: broker integration suites (with a private PostgreSQL)"
        rm -f build/asan/meson-logs/asan-broker.json
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            tests/pg/with-pg.sh meson test -C build/asan --logbase asan-broker \
            --print-errorlogs --num-processes 2 \
            test_intake test_lifecycle test_routing test_workers test_escalation test_recovery
        rc=$?
        logs+=("build/asan/meson-logs/asan-broker.json:$rc")
    else
        step_failures+=("build/asan: build failed")
    fi
fi

step "summary"
counts=$("$python" - "$repo" "${logs[@]}" <<'PY'
import json, os, sys

PASS = {"OK", "EXPECTEDFAIL"}
SKIP = {"SKIP"}
# Arguments: repo, then LOG:RC for each `meson test` run (RC = its exit
# status). A run that exited non-zero without a failed test in its log (the
# database harness failed, meson itself failed) counts as one failure.
repo, runs = sys.argv[1], sys.argv[2:]
total = {"passed": 0, "failed": 0, "skipped": 0}
for arg in runs:
    path, rc = arg.rsplit(":", 1)
    run = os.path.dirname(os.path.dirname(path))
    mine = {"passed": 0, "failed": 0, "skipped": 0}
    failed = []
    try:
        with open(os.path.join(repo, path), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                t = json.loads(line)
                res = t.get("result", "ERROR")
                if res in PASS:
                    mine["passed"] += 1
                elif res in SKIP:
                    mine["skipped"] += 1
                else:
                    mine["failed"] += 1
                    failed.append("%s (%s)" % (t.get("name", "?"), res))
    except FileNotFoundError:
        print("%s: no test log" % run, file=sys.stderr)
    if rc != "0" and mine["failed"] == 0:
        mine["failed"] += 1
        failed.append("meson test itself (exit status %s)" % rc)
    print("%-11s %d passed, %d failed, %d skipped" % (run + ":", mine["passed"],
          mine["failed"], mine["skipped"]), file=sys.stderr)
    for name in failed:
        print("    FAILED %s" % name, file=sys.stderr)
    for k in total:
        total[k] += mine[k]
print(total["passed"], total["failed"], total["skipped"])
PY
) || counts="0 0 0"
read -r passed failed skipped <<<"$counts"

# A build that failed counts as one failure.
for f in "${step_failures[@]}"; do
    echo "run-all: FAILED $f" >&2
done
failed=$((failed + ${#step_failures[@]}))

status=0
if ((failed > 0)); then
    status=1
elif ((passed == 0)); then
    echo "run-all: no test ran" >&2
    status=1
fi

line="$passed passed, $failed failed"
((skipped > 0)) && line+=", $skipped skipped"
echo "$line"
exit "$status"
