#!/usr/bin/env bash
# test_image.sh [IMAGEDIR]: boot the built-in guest image once under TCG and
# check that it comes up: the exact ready marker, every boot module loaded,
# and the NIC and the CAN controllers the boot attaches (e1000, kvaser_pci and
# the CAN FD ctucan_pci on a QEMU can-bus) visible as eth0, can0 and can1/can2
# (can1 brought up in FD mode by plexus.can). The ctucan part is skipped,
# saying so, when the image lacks the out-of-tree ctucanfd modules. Builds
# the image first with scripts/guest-image.sh (a no-op when it is up to date)
# unless PLEXUS_GUEST_NOBUILD=1. IMAGEDIR defaults to build/guest/tiny.
# Prints one line per check, then "N passed, N failed"; exits non-zero on any
# failure, keeping the console log. About 10 s on 2 cores; gives up at 50 s.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
img=${1:-$repo/build/guest/tiny}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-50}
name=pxtest-$$

fail_now() {
  echo "test_image: FAIL: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
  fail_now "qemu-system-x86_64 not found (apt-get install --no-install-recommends qemu-system-x86)"
if [ "${PLEXUS_GUEST_NOBUILD:-0}" != 1 ]; then
  bash "$repo/scripts/guest-image.sh" "$img" || fail_now "building the image in $img failed"
fi
for f in vmlinuz initrd.img; do
  [ -s "$img/$f" ] || fail_now "$img/$f missing (run scripts/guest-image.sh)"
done

log=$(mktemp "${TMPDIR:-/tmp}/plexus-test-image.XXXXXX")
qpid=
cleanup() {
  if [ -n "$qpid" ]; then
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
  fi
}
trap cleanup EXIT

# ctucan_pci (CAN FD) only when the image has its out-of-tree driver; its two
# cores come after kvaser_pci's can0 (the modules load in that order).
fd=0
fdargs=()
fdappend=
if grep -q '^modules-loaded-at-boot:.* ctucanfd_pci' "$img/manifest.txt" 2>/dev/null; then
  fd=1
  fdargs=(-device "ctucan_pci,canbus0=cb0,canbus1=cb0")
  fdappend=" plexus.can=can1:500000:2000000"
fi

# TCG always: nested KVM hangs on these machines. romfile= skips iPXE.
start=$(date +%s%N)
qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -nodefaults -serial stdio \
  -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
  -append "console=ttyS0 quiet panic=-1 plexus.name=$name plexus.debug=1$fdappend" \
  -netdev user,id=n0 -device e1000,netdev=n0,romfile= \
  -object can-bus,id=cb0 -device kvaser_pci,canbus=cb0 "${fdargs[@]}" \
  </dev/null >"$log" 2>&1 &
qpid=$!

deadline=$((SECONDS + BOOT_TIMEOUT))
while ! grep -q 'PLEXUS-GUEST-READY' "$log"; do
  if ! kill -0 "$qpid" 2>/dev/null; then
    qpid=
    break
  fi
  [ $SECONDS -lt $deadline ] || break
  sleep 0.2
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
sleep 0.5 # the lines after the marker, if any
cleanup
qpid=

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
    passed=$((passed + 1))
  else
    echo "FAIL: $what" >&2
    failed=$((failed + 1))
  fi
}
console=$(tr -d '\r' <"$log")
marker_seen() { grep -qx "PLEXUS-GUEST-READY name=$name" <<<"$console"; }
modules_all_loaded() {
  ! grep -q "insmod .* failed" <<<"$console" &&
    grep -q "modules: [0-9]* loaded, 0 failed" <<<"$console"
}
link_with_driver() { # link_with_driver IF DRIVER: `ip link` and the PCI list show them
  grep -q "^[0-9]*: $1:" <<<"$console" && grep -q " $2\$" <<<"$console"
}
check "ready marker 'PLEXUS-GUEST-READY name=$name' within ${BOOT_TIMEOUT}s (${elapsed_ms} ms)" \
  marker_seen
check "every boot module loaded (no 'insmod ... failed')" modules_all_loaded
check "kvaser_pci bound and can0 present" link_with_driver can0 kvaser_pci
check "e1000 bound and eth0 present" link_with_driver eth0 e1000
fd_up() { # can1 up with the CAN FD MTU, both ctucan cores present
  grep -q "^[0-9]*: can1: <[^>]*UP[^>]*> mtu 72 " <<<"$console" &&
    grep -q "^[0-9]*: can2:" <<<"$console" && ! grep -q "can1: pxcan up" <<<"$console"
}
if [ "$fd" -eq 1 ]; then
  check "ctucanfd_pci bound, can1 and can2 present" link_with_driver can1 ctucanfd_pci
  check "can1 up in CAN FD mode (mtu 72)" fd_up
else
  echo "skip: ctucan_pci (CAN FD): $img has no ctucanfd_pci module (see manifest.txt)"
fi

if [ "$failed" -ne 0 ]; then
  keep=$repo/build/guest/test_image.log
  mkdir -p "${keep%/*}" && cp "$log" "$keep" && echo "test_image: console log kept in $keep" >&2
  echo "--- last 30 console lines ---" >&2
  tail -n 30 <<<"$console" >&2
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
