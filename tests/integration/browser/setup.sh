#!/usr/bin/env bash
# Installs playwright-core (pinned in package.json) into a cached node_modules for the browser test.
#
#   tests/integration/browser/setup.sh [DIR]
#
# DIR (default $GD_NODE_DIR, else ~/.cache/griddispatch/node) gets
# package.json and node_modules/. Nothing is fetched when the pinned version
# is already there, so a second run works offline; npm's own cache makes a
# re-install offline-friendly too (--prefer-offline). Browsers are never
# downloaded: playwright-core has no browser, and the test points it at
# /usr/bin/chromium. Prints the node_modules path on success.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:-${GD_NODE_DIR:-$HOME/.cache/griddispatch/node}}
want=$(sed -n 's/.*"playwright-core": "\([^"]*\)".*/\1/p' "$here/package.json")
have=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$dir/node_modules/playwright-core/package.json" 2>/dev/null || true)
if [[ $have != "$want" ]]; then
    mkdir -p "$dir"
    cp "$here/package.json" "$dir/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --prefer-offline --no-audit \
        --no-fund --loglevel=error >&2
fi
echo "$dir/node_modules"
