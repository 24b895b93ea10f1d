#!/usr/bin/env bash
# bench.sh [BUILD_DIR] [--quick]: build and run the side-by-side benchmarks.
# Every figure is a ratio against a peer measured in the same run (raw libzmq,
# greedy placement, ...); nothing here is a pass/fail gate. The machine should
# be otherwise idle: the transport bench keeps two processes busy.
set -euo pipefail
dir=${1:-build}
shift || true
quick=()
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick) ;;
    *) echo "usage: scripts/bench.sh [BUILD_DIR] [--quick]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
bash scripts/build.sh "$dir"

status=0
if [ -x "$dir/bench/transport/bench_transport" ]; then
  echo "== transport (bench/transport)"
  "$dir/bench/transport/bench_transport" "${quick[@]}" || status=1
  echo
fi
if [ -x "$dir/bench/placement/bench_placement" ]; then
  echo "== placement (bench/placement)"
  "$dir/bench/placement/bench_placement" || status=1
  echo
fi
exit $status
