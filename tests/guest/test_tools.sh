#!/usr/bin/env bash
# test_tools.sh: the guest tools' host-side checks, no QEMU and no AF_CAN
# needed: builds pxcan and pxpoke the way scripts/guest-image.sh does, then
# checks pxcan's frame parser and printer (`pxcan print`) and pxpoke on a
# plain file (-f). Prints "N passed, N failed"; exits non-zero on a failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

for t in pxcan pxpoke; do
  if ! gcc -static -O2 -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -o "$tmp/$t" "$repo/tests/guest/tools/$t.c"; then
    echo "FAIL: building $t"
    echo "0 passed, 1 failed"
    exit 1
  fi
done
pxcan=$tmp/pxcan
pxpoke=$tmp/pxpoke

# expect DESCRIPTION WANT_RC WANT_STDOUT COMMAND...
expect() {
  local what=$1 want_rc=$2 want_out=$3 out rc
  shift 3
  out=$("$@" 2>"$tmp/err")
  rc=$?
  if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want_out" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what: exit $rc (want $want_rc)"
    echo "  got:  $(printf '%q' "$out")"
    echo "  want: $(printf '%q' "$want_out")"
    sed 's/^/  stderr: /' "$tmp/err"
  fi
}

# pxcan: cansend syntax in, candump format out
expect "classic" 0 "  -  123   [4]  DE AD BE EF" "$pxcan" print 123#DEADBEEF
expect "extended, dotted" 0 "  -  12345678   [3]  01 02 03" "$pxcan" print 12345678#01.02.03
expect "empty" 0 "  -  7FF   [0] " "$pxcan" print 7FF#
expect "remote request" 0 "  -  123   [0]  remote request" "$pxcan" print 123#R
expect "remote request, length" 0 "  -  123   [4]  remote request" "$pxcan" print 123#R4
expect "FD" 0 "  -  123  [04]  DE AD BE EF" "$pxcan" print 123##1DEADBEEF
expect "FD, padded to 12" 0 "  -  123  [12]  01 02 03 04 05 06 07 08 09 00 00 00" \
  "$pxcan" print 123##3010203040506070809
expect "FD, 64 bytes" 0 "  -  1FFFFFFF  [64] $(printf ' %02X' $(seq 0 63))" \
  "$pxcan" print "1FFFFFFF##0$(printf '%02X' $(seq 0 63))"
expect "-x: direction and FD flags" 0 \
  $'  -  TX B -  123  [04]  DE AD BE EF\n  -  TX - -  123   [1]  11\n  -  TX B E  12345678  [12]  01 02 03 04 05 06 07 08 09 00 00 00\n  -  TX - -  123  [01]  AA' \
  "$pxcan" print -x 123##1DEADBEEF 123#11 12345678##3010203040506070809 123##0AA
expect "several frames" 0 $'  -  001   [1]  01\n  -  002   [1]  02' "$pxcan" print 001#01 002#02
for bad in 800#00 12#00 123 123#1 123#112233445566778899 123#RR 123#R9 123###1 123#G0 \
  20000000#00 "123##0$(printf '%02X' $(seq 0 64))" 12G#00; do
  expect "rejects '$bad'" 2 "" "$pxcan" print "$bad"
done
expect "usage" 2 "" "$pxcan" frobnicate

# pxpoke on a file
f=$tmp/mem
truncate -s 1M "$f"
expect "fill addr pattern, odd edges" 0 "" "$pxpoke" -f "$f" fill 3 1000 addr:0x55
expect "verify it" 0 "verify: 1000 bytes ok" "$pxpoke" -f "$f" verify 3 1000 addr:0x55
expect "a wider range differs at the edge" 1 \
  $'mismatch at 0x0: expected 0x55, got 0x00\nverify: 1 of 1003 bytes differ' \
  "$pxpoke" -f "$f" verify 0 1003 addr:0x55
expect "write 32" 0 "" "$pxpoke" -f "$f" write 0x10 32 0xdeadbeef
expect "read 32" 0 "0xdeadbeef" "$pxpoke" -f "$f" read 0x10
expect "read 64" 0 "0x00000000deadbeef" "$pxpoke" -f "$f" read 0x10 64
expect "read 8" 0 "0xbe" "$pxpoke" -f "$f" read 0x11 8
expect "unaligned 64-bit read" 2 "" "$pxpoke" -f "$f" read 0x11 64
expect "value too wide" 2 "" "$pxpoke" -f "$f" write 0 8 0x100
expect "empty range" 2 "" "$pxpoke" -f "$f" fill 0 0 1
expect "fill 1M constant" 0 "" "$pxpoke" -f "$f" fill 0 1M 0x0123456789abcdef
expect "verify 1M constant" 0 "verify: 1048576 bytes ok" "$pxpoke" -f "$f" verify 0 1M 0x0123456789abcdef
expect "dump" 0 "00000000000ffff8: ef cd ab 89 67 45 23 01" "$pxpoke" -f "$f" dump 0xffff8 8
expect "host sees little-endian words" 0 "0123456789abcdef" \
  bash -c "od -A n -t x8 -j 8 -N 8 '$f' | tr -d ' '"
expect "missing file" 1 "" "$pxpoke" -f "$tmp/nonexistent" read 0
expect "unmappable file" 1 "" "$pxpoke" -f /dev/null read 0
expect "beyond the end of a file" 1 "" "$pxpoke" -f "$f" verify 0xff000 0x1008 0
expect "beyond the end of a file, read" 1 "" "$pxpoke" -f "$f" read 0x100000 8

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
