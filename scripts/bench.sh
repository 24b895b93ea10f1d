#!/usr/bin/env bash
# bench.sh [BUILD_DIR] [--quick]: build and run the side-by-side benchmarks.
# Every figure is a ratio against a peer measured in the same run (raw libzmq,
# greedy placement, ...); nothing here is a pass/fail gate. The machine should
# be otherwise idle: the transport bench keeps two processes busy, the CAN
# bench two plexus-node daemons and its frame driver; the Ethernet bench
# the same, plus vde_switch and vde_plug (Debian's vde2) as its peer; the
# ivshmem bench two nodes and its driver's two threads; the CXL bench two
# nodes (idle) and one driver process per host, with about 4 GiB in /dev/shm.
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
if [ -x "$dir/bench/can/bench_can_drive" ]; then
  echo "== CAN bus (bench/can)"
  /usr/bin/python3 bench/can/bench_can.py --build "$dir" "${quick[@]}" || status=1
  echo
fi
if [ -x "$dir/bench/eth/bench_eth_drive" ]; then
  echo "== Ethernet segment (bench/eth)"
  /usr/bin/python3 bench/eth/bench_eth.py --build "$dir" "${quick[@]}" || status=1
  echo
fi
if [ -x "$dir/bench/ivshmem/bench_ivshmem_drive" ]; then
  echo "== ivshmem region (bench/ivshmem)"
  /usr/bin/python3 bench/ivshmem/bench_ivshmem.py --build "$dir" "${quick[@]}" || status=1
  echo
fi
if [ -x "$dir/bench/cxl/bench_cxl_drive" ]; then
  echo "== CXL LD data (bench/cxl)"
  /usr/bin/python3 bench/cxl/bench_cxl.py --build "$dir" "${quick[@]}" || status=1
  echo
fi
echo "== guest boot (bench/boot)"
if bash scripts/guest-image.sh "$dir/guest/tiny" >/dev/null; then
  sizes=1,2,4
  [ ${#quick[@]} -gt 0 ] && sizes=1
  PLEXUS_IMAGE_DIR="$PWD/$dir/guest" /usr/bin/python3 bench/boot/bench_boot.py --build "$dir" \
    --sizes "$sizes" || status=1
else
  echo "bench/boot: the guest image could not be built; skipped" >&2
  status=1
fi
exit $status
