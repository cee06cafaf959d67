#!/usr/bin/env bash
# The long fault-injection run: tests/integration/test_faults.py and
# test_ha.py with every cycle count and duration multiplied, then
# test_patroni.py (PostgreSQL primary lost: GD_FAULTS_SCALE cycles of each
# kind) beside a Patroni cluster.
#
#   tests/faults/run-long.sh [BUILD_DIR] [-- PYTEST-ARGS...]
#
#   GD_FAULTS_SCALE  multiplier of cycles and durations [10]
#   GD_FAULTS_SEED   seed of the random fault moments [random, printed]
#
# BUILD_DIR (default $GD_BUILD_DIR, else build/dev) must hold gd-broker,
# gd-sla and gd-worker. Runs beside a private PostgreSQL (tests/pg/with-pg.sh),
# then beside a private Patroni cluster (tests/pg/with-patroni.sh); each
# scenario prints the checker's verdict line `checker [scenario]: ...`.
# PYTEST-ARGS go to both runs. Exits non-zero when either failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${GD_BUILD_DIR:-$repo/build/dev}
if (($# > 0)) && [[ $1 != -- ]]; then
    build=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
build=$(cd "$build" && pwd) || exit 2
for b in broker/gd-broker workers/gd-sla/gd-sla workers/gd-worker/gd-worker; do
    [[ -x $build/$b ]] || {
        echo "run-long: $build/$b missing (ninja -C $build)" >&2
        exit 2
    }
done

export GD_BUILD_DIR=$build GD_SOURCE_DIR=${GD_SOURCE_DIR:-$repo} PYTHONDONTWRITEBYTECODE=1
export GD_FAULTS_SCALE=${GD_FAULTS_SCALE:-10}
cd "$repo/tests/integration" || exit 1
"$repo/tests/pg/with-pg.sh" /usr/bin/python3 -m pytest -q -s -rxX -p no:cacheprovider \
    test_faults.py test_ha.py "$@"
rc=$?
"$repo/tests/pg/with-patroni.sh" /usr/bin/python3 -m pytest -q -s -rxX -p no:cacheprovider \
    test_patroni.py "$@"
rc_patroni=$?
((rc == 0)) && rc=$rc_patroni
exit "$rc"
