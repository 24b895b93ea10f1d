#!/usr/bin/env bash
# test_tools.sh: the guest tools' host-side checks, no QEMU and no AF_CAN
# needed: builds pxcan, pxpoke, pxivshmem and pxcxl the way
# scripts/guest-image.sh does, then checks pxcan's frame parser and printer
# (`pxcan print`), pxpoke on a plain file (-f), pxivshmem on a fake ivshmem
# device made of plain files (-S) and pxcxl on a fake CXL sysfs tree (-S).
# Prints "N passed, N failed"; exits non-zero on a failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

for t in pxcan pxpoke pxivshmem pxcxl; do
  if ! gcc -static -O2 -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -o "$tmp/$t" "$repo/tests/guest/tools/$t.c"; then
    echo "FAIL: building $t"
    echo "0 passed, 1 failed"
    exit 1
  fi
done
pxcan=$tmp/pxcan
pxpoke=$tmp/pxpoke
pxivshmem=$tmp/pxivshmem
pxcxl=$tmp/pxcxl

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

# pxivshmem on fake PCI devices: plain files shaped like sysfs's (config,
# resourceN, vendor, device), written with pxpoke. 00:03.0 is an e1000, which
# the scan passes over; 00:04.0 an ivshmem-doorbell with 4 vectors laid out
# as QEMU's (a vendor capability at 0x40, then MSI-X at 0x50 with the table
# at BAR1 + 0 and the PBA at BAR1 + 0x800), own ID 2, a 1 MiB region.
pci=$tmp/pci
# fakedev BDF VENDOR DEVICE: an empty device with a capability list
fakedev() {
  local d=$pci/$1
  mkdir -p "$d"
  echo "$2" >"$d/vendor"
  echo "$3" >"$d/device"
  truncate -s 256 "$d/config"
  truncate -s 256 "$d/resource0"
  truncate -s 4096 "$d/resource1"
  truncate -s 1M "$d/resource2"
  "$pxpoke" -f "$d/config" write 0 32 "$(printf '0x%04x%04x' "$3" "$2")"
  "$pxpoke" -f "$d/config" write 6 16 0x0010
  "$pxpoke" -f "$d/config" write 0x34 8 0x40
}
cfg() { "$pxpoke" -f "$pci/0000:00:04.0/config" "$@"; }
bar0() { "$pxpoke" -f "$pci/0000:00:04.0/resource0" "$@"; }
bar1() { "$pxpoke" -f "$pci/0000:00:04.0/resource1" "$@"; }
fakedev 0000:00:03.0 0x8086 0x100e
fakedev 0000:00:04.0 0x1af4 0x1110
cfg write 0x40 16 0x5009      # vendor-specific, next 0x50
cfg write 0x50 16 0x0011      # MSI-X, last
cfg write 0x52 16 0x0003      # 4 vectors, disabled
cfg write 0x54 32 0x00000001  # table: BAR1 + 0
cfg write 0x58 32 0x00000801  # PBA: BAR1 + 0x800
for v in 0 1 3; do bar1 write $((16 * v + 12)) 32 1; done # masked; vector 2 is not
bar0 write 8 32 2
iv() { "$pxivshmem" -S "$pci" "$@"; }

expect "info finds the ivshmem device" 0 "id 2 size 1048576 bdf 0000:00:04.0" iv info
expect "info -d without a domain" 0 "id 2 size 1048576 bdf 0000:00:04.0" iv -d 00:04.0 info
expect "info -d of another device" 1 "" iv -d 00:03.0 info
expect "info -d of no device" 1 "" iv -d 00:09.0 info
mkdir -p "$tmp/nopci/0000:00:03.0"
cp "$pci/0000:00:03.0/vendor" "$pci/0000:00:03.0/device" "$tmp/nopci/0000:00:03.0/"
expect "info without an ivshmem device" 1 "" "$pxivshmem" -S "$tmp/nopci" info
expect "info without a PCI directory" 1 "" "$pxivshmem" -S "$tmp/nonexistent" info
expect "info turns on memory space" 0 "0x0002" cfg read 4 16
cfg write 4 16 0
expect "pending before anything" 0 $'pba 0x0000000000000000\npending none' iv pending
expect "arm" 0 "" iv arm
expect "arm: memory space and bus master" 0 "0x0006" cfg read 4 16
expect "arm: MSI-X enabled, 4 vectors" 0 "0x8003" cfg read 0x52 16
expect "arm masks an unmasked vector" 0 "0x00000001" bar1 read $((16 * 2 + 12))
expect "arm again" 0 "" iv arm
bar1 write 0x800 32 0xa
expect "pending 1 and 3" 0 $'pba 0x000000000000000a\npending 1 3' iv pending
expect "wait for a pending vector" 0 "vector 1 pending" iv wait 1 1000
expect "wait times out" 1 "timeout" iv wait 0 50
expect "wait beyond the table" 2 "" iv wait 4 10
cfg write 4 16 0
cfg write 0x52 16 0x0003
expect "wait arms first" 0 "vector 3 pending" iv wait 3 10
expect "wait armed it" 0 "0x8003" cfg read 0x52 16
expect "wait armed it: command" 0 "0x0006" cfg read 4 16
expect "ring" 0 "" iv ring 3 1
expect "the doorbell register" 0 "0x00030001" bar0 read 12
expect "ring the highest peer and vector" 0 "" iv ring 65535 255
expect "the doorbell register again" 0 "0xffff00ff" bar0 read 12
expect "ring: peer too big" 2 "" iv ring 65536 0
expect "ring: vector too big" 2 "" iv ring 1 256
expect "ring: not a number" 2 "" iv ring a 0
expect "ring: missing vector" 2 "" iv ring 1
expect "wait: missing timeout" 2 "" iv wait 1
expect "unknown command" 2 "" iv frobnicate
expect "no command" 2 "" iv
fakedev 0000:00:05.0 0x1af4 0x1110
"$pxpoke" -f "$pci/0000:00:05.0/config" write 0x40 16 0x4809
"$pxpoke" -f "$pci/0000:00:05.0/config" write 0x48 16 0x4009
expect "a capability list that loops" 1 "" iv -d 00:05.0 arm
"$pxpoke" -f "$pci/0000:00:05.0/config" write 0x48 16 0x0009
expect "no MSI-X capability" 1 "" iv -d 00:05.0 arm
"$pxpoke" -f "$pci/0000:00:05.0/config" write 6 16 0
expect "no capability list" 1 "" iv -d 00:05.0 pending
truncate -s 8 "$pci/0000:00:05.0/resource0"
expect "BAR0 too small" 1 "" iv -d 00:05.0 info

# pxcxl on a fake CXL sysfs tree shaped like Linux 6.1's under QEMU 7.2
# (plain files, and symlinks where the kernel has them): root0 with windows
# decoder0.0 (bridge 64) and decoder0.1 (bridge 68); mem0 behind bridge 68
# (port1, whose uport is the ACPI0016 device root0/dport68 names), so the
# right window is the second; mem1 behind bridge 64 with region5 already;
# mem2 without an endpoint (cxl_mem not bound). The "kernel" made region0
# under decoder0.1 in advance: nothing here reacts to writes.
sys=$tmp/sys
cxlfake() {
  local P=$sys/devices/platform/ACPI0017:00 R pci d
  R=$P/root0
  mkdir -p "$sys/bus/cxl/devices" "$sys/bus/cxl/drivers/cxl_region" "$sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0016:00" \
    "$sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0016:01"
  : >"$sys/bus/cxl/drivers/cxl_region/bind"
  : >"$sys/bus/cxl/drivers/cxl_region/unbind"
  mkdir -p "$R/decoder0.0" "$R/decoder0.1" "$R/port1/endpoint3/decoder3.0" "$R/port2/endpoint4/decoder4.0"
  ln -s ../../LNXSYSTM:00/LNXSYBUS:00/ACPI0016:01 "$R/dport64"
  ln -s ../../LNXSYSTM:00/LNXSYBUS:00/ACPI0016:00 "$R/dport68"
  ln -s ../../../LNXSYSTM:00/LNXSYBUS:00/ACPI0016:00 "$R/port1/uport"
  ln -s ../../../LNXSYSTM:00/LNXSYBUS:00/ACPI0016:01 "$R/port2/uport"
  for d in 0.0:64:0x110000000:region6 0.1:68:0x120000000:region0; do
    IFS=: read -r n t start next <<<"$d"
    d=$R/decoder$n
    echo "$next" >"$d/create_pmem_region"
    : >"$d/delete_region"
    echo 1 >"$d/interleave_ways"
    echo 256 >"$d/interleave_granularity"
    echo "$t" >"$d/target_list"
    echo "$start" >"$d/start"
    echo 0x10000000 >"$d/size"
  done
  for m in 0:44:1:3 1:40:2:4 2:48::; do
    IFS=: read -r n bus port ep <<<"$m"
    pci=$sys/devices/pci0000:$bus/0000:$bus:00.0/0000:$((bus + 1)):00.0/mem$n
    mkdir -p "$pci/pmem"
    echo 0x10000000 >"$pci/pmem/size"
    echo 4096 >"$pci/label_storage_size"
    ln -s "../../../devices/pci0000:$bus/0000:$bus:00.0/0000:$((bus + 1)):00.0/mem$n" \
      "$sys/bus/cxl/devices/mem$n"
    [ -n "$ep" ] || continue
    ln -s "../../../../../pci0000:$bus/0000:$bus:00.0/0000:$((bus + 1)):00.0/mem$n" \
      "$R/port$port/endpoint$ep/uport"
    d=$R/port$port/endpoint$ep/decoder$ep.0
    echo 0x0000000000000000 >"$d/dpa_size"
    echo none >"$d/mode"
    : >"$d/region"
    ln -s "../../../devices/platform/ACPI0017:00/root0/port$port/endpoint$ep" \
      "$sys/bus/cxl/devices/endpoint$ep"
    ln -s "../../../devices/platform/ACPI0017:00/root0/port$port/endpoint$ep/decoder$ep.0" \
      "$sys/bus/cxl/devices/decoder$ep.0"
  done
  for r in 0.1:region0:0x120000000 0.0:region5:0x110000000; do
    IFS=: read -r n name start <<<"$r"
    d=$R/decoder$n/$name
    mkdir -p "$d"
    for f in interleave_ways interleave_granularity uuid size target0; do : >"$d/$f"; done
    echo 0 >"$d/commit"
    echo "$start" >"$d/resource"
    ln -s "../../../devices/platform/ACPI0017:00/root0/decoder$n/$name" "$sys/bus/cxl/devices/$name"
  done
  # region5 is mem1's, committed and bound
  echo 268435456 >"$R/decoder0.0/region5/size"
  echo decoder4.0 >"$R/decoder0.0/region5/target0"
  echo 1 >"$R/decoder0.0/region5/commit"
  echo region5 >"$R/port2/endpoint4/decoder4.0/region"
  echo 0x10000000 >"$R/port2/endpoint4/decoder4.0/dpa_size"
  ln -s ../../../../../../bus/cxl/drivers/cxl_region "$R/decoder0.0/region5/driver"
  for d in root0 port1 port2 decoder0.0 decoder0.1; do
    local rel=root0
    [ "$d" = root0 ] || rel=root0/$d
    ln -s "../../../devices/platform/ACPI0017:00/$rel" "$sys/bus/cxl/devices/$d"
  done
}
cxlfake
R=$sys/devices/platform/ACPI0017:00/root0
cx() { "$pxcxl" -S "$sys" "$@"; }
attr() { cat "$1"; }

expect "list" 0 "memdev mem0 pmem 268435456 lsa 4096 bridge 68 decoder decoder3.0 region -
memdev mem1 pmem 268435456 lsa 4096 bridge 64 decoder decoder4.0 region region5
memdev mem2 pmem 268435456 lsa 4096 bridge - decoder - region -
window decoder0.0 hpa 0x110000000 size 268435456 bridges 64
window decoder0.1 hpa 0x120000000 size 268435456 bridges 68
region region0 hpa 0x120000000 size 0 memdev - commit 0 driver -
region region5 hpa 0x110000000 size 268435456 memdev mem1 commit 1 driver cxl_region" cx list
expect "a memdev with a region names it" 0 "region region5 hpa 0x110000000 size 268435456" \
  cx region mem1
expect "a memdev without an endpoint" 1 "" cx region mem2
expect "no such memdev" 1 "" cx region mem9
expect "region: the first memdev without one" 0 "region region0 hpa 0x120000000 size 268435456" \
  cx region
expect "the window of mem0's bridge made it" 0 "region0" attr "$R/decoder0.1/create_pmem_region"
expect "not the other window" 0 "region6" attr "$R/decoder0.0/create_pmem_region"
expect "1-way" 0 "1" attr "$R/decoder0.1/region0/interleave_ways"
expect "the window's granularity" 0 "256" attr "$R/decoder0.1/region0/interleave_granularity"
expect "a v4 uuid" 0 "ok" bash -c "grep -qxE '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' \
  '$R/decoder0.1/region0/uuid' && echo ok"
expect "decoder mode" 0 "pmem" attr "$R/port1/endpoint3/decoder3.0/mode"
expect "decoder DPA: all of mem0's pmem" 0 "268435456" attr "$R/port1/endpoint3/decoder3.0/dpa_size"
expect "region size" 0 "268435456" attr "$R/decoder0.1/region0/size"
expect "target0" 0 "decoder3.0" attr "$R/decoder0.1/region0/target0"
expect "committed" 0 "1" attr "$R/decoder0.1/region0/commit"
expect "bound to cxl_region" 0 "region0" attr "$sys/bus/cxl/drivers/cxl_region/bind"
expect "nothing deleted" 0 "" attr "$R/decoder0.1/delete_region"
# delete: unbind (when bound), decommit, detach, free the DPA, delete
ln -s ../../../../../../bus/cxl/drivers/cxl_region "$R/decoder0.1/region0/driver"
expect "delete" 0 "deleted region0" cx delete region0
expect "delete: unbound" 0 "region0" attr "$sys/bus/cxl/drivers/cxl_region/unbind"
expect "delete: decommitted" 0 "0" attr "$R/decoder0.1/region0/commit"
expect "delete: detached" 0 "" attr "$R/decoder0.1/region0/target0"
expect "delete: DPA freed" 0 "0" attr "$R/port1/endpoint3/decoder3.0/dpa_size"
expect "delete: deleted" 0 "region0" attr "$R/decoder0.1/delete_region"
expect "delete: no such region" 1 "" cx delete region9
# A step the kernel refuses (commit cannot be written): what was done is
# undone in reverse order, and the tool says which write failed.
rm -f "$R/decoder0.1/region0/driver" "$R/decoder0.1/delete_region" "$sys/bus/cxl/drivers/cxl_region/bind"
: >"$R/decoder0.1/delete_region"
: >"$sys/bus/cxl/drivers/cxl_region/bind"
rm "$R/decoder0.1/region0/commit"
mkdir "$R/decoder0.1/region0/commit"
echo region0 >"$R/decoder0.1/create_pmem_region"
expect "a refused commit fails" 1 "" cx region mem0
cp "$tmp/err" "$tmp/err.commit"
expect "the failing write is named" 0 "ok" \
  bash -c "grep -q \"writing '1' to .*/region0/commit: Is a directory\" '$tmp/err.commit' && echo ok"
expect "undo: detached" 0 "" attr "$R/decoder0.1/region0/target0"
expect "undo: DPA freed" 0 "0" attr "$R/port1/endpoint3/decoder3.0/dpa_size"
expect "undo: region deleted" 0 "region0" attr "$R/decoder0.1/delete_region"
expect "undo: not bound" 0 "" attr "$sys/bus/cxl/drivers/cxl_region/bind"
# A window smaller than the memdev's pmem is refused before any write.
echo 0x8000000 >"$R/decoder0.1/size"
: >"$R/decoder0.1/delete_region"
expect "window too small" 1 "" cx region mem0
expect "window too small: nothing written" 0 "" attr "$R/decoder0.1/delete_region"
expect "usage: no command" 2 "" cx
expect "usage: unknown command" 2 "" cx frobnicate
expect "usage: a path as memdev" 2 "" cx region ../mem0
expect "usage: too many" 2 "" cx region mem0 mem1
expect "no CXL in sysfs" 1 "" "$pxcxl" -S "$tmp/nonexistent" list

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
