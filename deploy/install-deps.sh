#!/usr/bin/env bash
# Install the Debian 12 packages griddispatch needs to build, test and run.
#
# Only missing packages are installed; when everything is present the script
# prints nothing and exits 0. Runs apt-get directly as root, through sudo
# otherwise. Set GD_DEPS_DRY_RUN=1 to only list what would be installed.
set -euo pipefail

packages=(
    # build
    gcc clang libclang-rt-14-dev meson ninja-build pkg-config
    # libraries
    libzmq3-dev libpq-dev libmsgpack-dev libuv1-dev libcmocka-dev uthash-dev libzstd-dev
    libsystemd-dev
    libjansson-dev libinih-dev libcurl4-openssl-dev libmicrohttpd-dev libgeos-dev
    # PostgreSQL server (private test clusters) and client tools
    postgresql-15 postgresql-client-15 postgresql-15-postgis-3
    # highly available PostgreSQL (tests/pg/with-patroni.sh, deploy/run-patroni.sh):
    # Patroni with etcd (etcdctl checks that etcd is up)
    patroni etcd-server etcd-client
    # integration tests
    python3-zmq python3-msgpack python3-psycopg2 python3-pytest python3-zstandard
    # dashboard tests: headless browser (driven by playwright-core from npm, which
    # nodejs provides), a CJK font for its screenshots, promtool for /metrics
    chromium fonts-wqy-zenhei nodejs prometheus
    # used by the scripts: ss (port probe), runuser
    iproute2 util-linux
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

((${#missing[@]} == 0)) && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [[ ${GD_DEPS_DRY_RUN:-0} == 1 ]]; then
    exit 0
fi

if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: not root and sudo not found; install as root: ${missing[*]}" >&2
    exit 1
fi

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
