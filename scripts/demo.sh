#!/usr/bin/env bash
# demo.sh BUILDDIR: the main job. Runs the built-in quickstart as far as the
# implementation reaches today, and says plainly what is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
plexus="$build/coordinator/cli/plexus"

echo "plexus $("$plexus" version)"
echo
echo "== 1. authenticated transport: two processes over tcp loopback (CurveZMQ) =="
"$build/bench/transport/bench_transport" --quick
echo
echo "NOT YET: 'plexus up configs/quickstart.yaml --local' (coordinator, nodes and"
echo "guests arrive with the control-plane and guest issues)."
