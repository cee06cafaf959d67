#!/usr/bin/env bash
# handler.sh - the demo town's incident handler for gd-worker: reads the
# incident as JSON on stdin, "handles" it for a moment and reports it
# resolved (exit 0 with the result text on stdout). Real towns plug in
# their own system here.
set -euo pipefail
cat >/dev/null
sleep "0.$((RANDOM % 9 + 1))"
echo "已按规定处置 (handled by the demo town worker for ${GD_QUEUE:-?}, incident ${GD_INCIDENT_ID:-?})"
