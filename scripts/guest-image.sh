#!/usr/bin/env bash
# guest-image.sh [OUTDIR]: build the built-in guest image `builtin:tiny`
# (default OUTDIR: build/guest/tiny in the repo):
#   OUTDIR/vmlinuz       Debian's current kernel (linux-image-amd64's dependency)
#   OUTDIR/initrd.img    gzip'd newc cpio: busybox-static, the guest tools from
#                        tests/guest/tools, the kernel modules below with their
#                        dependencies, and tests/guest/rootfs (/init etc.)
#   OUTDIR/manifest.txt  what went in
# Idempotent: when the inputs (package versions, module list, this script,
# the tool sources and rootfs files, the compiler) are unchanged it says so and
# does nothing. Packages are fetched with `apt-get download` into
# ${PLEXUS_CACHE:-/var/cache/plexus}/debs (~/.cache/plexus when not root,
# which also reads root's), keyed by package and version, so later builds
# download nothing; without a usable cache it downloads into a temporary
# folder. `apt-get update` runs only when apt knows no kernel package or a
# download fails. Needs: apt, dpkg, gcc with static glibc, cpio (or falls
# back to busybox's), gzip; kmod's modinfo or binutils' objcopy help resolve
# module dependencies (scripts/guest-moddeps.sh).
# docs/guest-image.md describes the image.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/build/guest/tiny}
case $out in /*) ;; *) out=$PWD/$out ;; esac

# Loaded at boot, in dependency order (virtio_pci is not a dependency of
# virtio_net but is what binds it to a PCI device; cxl_port is built in).
MODULES_LOAD=(e1000 virtio_net virtio_pci can can_raw can_dev sja1000 kvaser_pci
  cxl_acpi cxl_pci cxl_mem cxl_pmem)
# In the image for `modprobe` only: vcan (a local CAN FD test interface),
# slcan (the serial-line CAN path), sja1000_isa (needs port= irq=, binds
# pcm3680_pci). Debian's 6.1 kernel has no ctucanfd driver
# (CONFIG_CAN_CTUCANFD_PCI is not set), so QEMU's ctucan_pci has no driver.
MODULES_EXTRA=(vcan slcan sja1000_isa)
TOOLS=(pxcan pxpoke)
CFLAGS=(-static -O2 -s -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
  -Wmissing-prototypes)

log() { echo "guest-image: $*" >&2; }
die() {
  echo "guest-image: error: $*" >&2
  exit 1
}
for cmd in apt-cache apt-get dpkg gcc gzip sha256sum flock; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found (run scripts/install-deps.sh)"
done

if [ -n "${PLEXUS_CACHE:-}" ]; then
  cache=$PLEXUS_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  cache=/var/cache/plexus
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/plexus
fi

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9 # two builds of one OUTDIR wait for each other

work=$(mktemp -d "${TMPDIR:-/tmp}/plexus-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT

updated=0
apt_update() {
  [ "$updated" -eq 0 ] || return 1
  [ "$(id -u)" -eq 0 ] || die "apt's package lists are missing or stale: run 'apt-get update' as root"
  log "running apt-get update"
  apt-get update -q >&2 || die "apt-get update failed"
  updated=1
}

kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}

# versions PKG...: "PKG VERSION" per package, the versions apt would
# download (one apt-cache call: each costs about a second here)
versions() {
  apt-cache show --no-all-versions "$@" 2>/dev/null |
    awk '/^Package: /{p=$2} /^Version: /{if (p != "") print p, $2; p=""}'
}

resolve() {
  kpkg=$(kernel_package)
  if [ -z "$kpkg" ]; then
    apt_update || true
    kpkg=$(kernel_package)
    [ -n "$kpkg" ] || die "apt-cache depends linux-image-amd64 names no kernel package"
  fi
  local v
  v=$(versions "$kpkg" busybox-static)
  kpkg_ver=$(awk -v p="$kpkg" '$1 == p {print $2; exit}' <<<"$v")
  bb_ver=$(awk '$1 == "busybox-static" {print $2; exit}' <<<"$v")
  [ -n "$kpkg_ver" ] || die "apt knows no version of $kpkg"
  [ -n "$bb_ver" ] || die "apt knows no version of busybox-static"
}

# fetch PKG VERSION: print the path of the .deb, downloading it when the
# cache does not have it. Returns 1 when the download fails.
fetch() {
  local pkg=$1 ver=$2 file dest tmpd
  local -a aptopts=()
  file="${pkg}_${ver//:/%3a}_amd64.deb"
  # A user's own cache first, then root's shared one (read only).
  for dest in "$cache/debs" /var/cache/plexus/debs; do
    if [ -s "$dest/$file" ]; then
      echo "$dest/$file"
      return 0
    fi
  done
  dest=$cache/debs
  if ! mkdir -p "$dest" 2>/dev/null || [ ! -w "$dest" ]; then
    log "cache $cache is not writable: downloading without caching"
    dest=$work/debs
    mkdir -p "$dest"
  fi
  tmpd=$(mktemp -d "$dest/.download.XXXXXX")
  # As root apt drops to the _apt user, who cannot write a private folder.
  [ "$(id -u)" -ne 0 ] || aptopts=(-o APT::Sandbox::User=root)
  log "downloading $pkg $ver"
  if ! (cd "$tmpd" && apt-get "${aptopts[@]}" -q download "$pkg=$ver" >&2); then
    rm -rf "$tmpd"
    return 1
  fi
  # The rename makes a cache entry whole or absent, never partial.
  mv "$tmpd"/*.deb "$dest/$file"
  rmdir "$tmpd"
  echo "$dest/$file"
}

resolve

# Every input that changes the image goes into the stamp.
inputs_hash() {
  {
    echo "kernel $kpkg $kpkg_ver"
    echo "busybox-static $bb_ver"
    echo "load ${MODULES_LOAD[*]}"
    echo "extra ${MODULES_EXTRA[*]}"
    echo "tools ${TOOLS[*]} ${CFLAGS[*]}"
    gcc -dumpfullversion -dumpversion
    cd "$repo" && find scripts/guest-image.sh scripts/guest-moddeps.sh tests/guest/tools \
      tests/guest/rootfs -type f | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$hash" ] &&
  [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ -s "$out/manifest.txt" ]; then
  log "$out is up to date ($kpkg $kpkg_ver, busybox $bb_ver)"
  exit 0
fi
rm -f "$out/.stamp"

if ! kdeb=$(fetch "$kpkg" "$kpkg_ver") || ! bbdeb=$(fetch busybox-static "$bb_ver"); then
  # Stale package lists name versions the mirror no longer has.
  apt_update || die "downloading $kpkg $kpkg_ver or busybox-static $bb_ver failed"
  resolve
  hash=$(inputs_hash)
  kdeb=$(fetch "$kpkg" "$kpkg_ver") || die "downloading $kpkg $kpkg_ver failed"
  bbdeb=$(fetch busybox-static "$bb_ver") || die "downloading busybox-static $bb_ver failed"
fi

log "building $out from $kpkg $kpkg_ver and busybox-static $bb_ver"
dpkg -x "$kdeb" "$work/kernel"
dpkg -x "$bbdeb" "$work/busybox"
kvers=("$work"/kernel/lib/modules/*)
if [ ${#kvers[@]} -ne 1 ] || [ ! -d "${kvers[0]}" ]; then
  die "$kdeb: expected one lib/modules/<version>"
fi
kver=${kvers[0]##*/}
moddir=$work/kernel/lib/modules/$kver
vmlinuz=$work/kernel/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "$kdeb: no boot/vmlinuz-$kver"
bb=$work/busybox/bin/busybox
[ -x "$bb" ] || die "$bbdeb: no bin/busybox"

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/plexus,proc,sys,dev,run,tmp,root,mnt,var/log}
mkdir -p "$root/lib/modules/$kver" "$root/usr/share/udhcpc"
chmod 1777 "$root/tmp"

# busybox and one symlink per applet
cp "$bb" "$root/bin/busybox"
while IFS= read -r applet; do
  [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$bb" --list-full)
cp "$work/busybox/usr/share/doc/busybox-static/examples/udhcp/simple.script" \
  "$root/usr/share/udhcpc/default.script"
chmod 755 "$root/usr/share/udhcpc/default.script"

# modules: the boot list in load order, then the extras (for modprobe)
"$repo/scripts/guest-moddeps.sh" "$moddir" "${MODULES_LOAD[@]}" >"$root/etc/plexus/modules"
"$repo/scripts/guest-moddeps.sh" "$moddir" "${MODULES_LOAD[@]}" "${MODULES_EXTRA[@]}" \
  >"$work/modules.all"
while IFS= read -r m; do
  mkdir -p "$root/lib/modules/$kver/${m%/*}"
  cp "$moddir/$m" "$root/lib/modules/$kver/$m"
done <"$work/modules.all"
cp "$moddir/modules.builtin" "$moddir/modules.order" "$root/lib/modules/$kver/"
# modules.dep and modules.alias for busybox modprobe (and the kernel's
# request_module) inside the guest
"$bb" depmod -b "$root" "$kver"

# guest tools
for t in "${TOOLS[@]}"; do
  gcc "${CFLAGS[@]}" -o "$root/bin/$t" "$repo/tests/guest/tools/$t.c" ||
    die "compiling tests/guest/tools/$t.c failed (static glibc is in libc6-dev)"
done

cp -R "$repo/tests/guest/rootfs/." "$root/"
chmod 755 "$root/init"

# manifest
modnames() { sed 's|.*/||; s|\.ko$||; s|-|_|g' "$1" | tr '\n' ' ' | sed 's/ $//'; }
{
  echo "image: builtin:tiny"
  echo "kernel-package: $kpkg $kpkg_ver"
  echo "kernel-release: $kver"
  echo "busybox-static: $bb_ver"
  echo "modules-loaded-at-boot: $(modnames "$root/etc/plexus/modules")"
  echo "modules-in-image: $(modnames "$work/modules.all")"
  echo "tools: ${TOOLS[*]} pxcxl (sh)"
  echo "inputs-sha256: $hash"
} >"$root/etc/plexus/manifest"

# archive: fixed owner and mtime so equal inputs give an equal image
find "$root" -exec touch -h -d @0 {} +
if command -v cpio >/dev/null 2>&1; then
  cpio_cmd=(cpio --quiet -o -H newc -R 0:0 --reproducible)
else
  cpio_cmd=("$bb" cpio -o -H newc -R 0:0)
fi
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "${cpio_cmd[@]}") |
  gzip -9 -n >"$work/initrd.img"

cp "$vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$work/initrd.img" "$out/initrd.img"
{
  cat "$root/etc/plexus/manifest"
  echo "vmlinuz-bytes: $(stat -c %s "$out/vmlinuz")"
  echo "initrd-bytes: $(stat -c %s "$out/initrd.img")"
} >"$out/manifest.txt"
echo "$hash" >"$out/.stamp"
log "done: $out/vmlinuz ($(du -h "$out/vmlinuz" | cut -f1)), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
