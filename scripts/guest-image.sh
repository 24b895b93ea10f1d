#!/usr/bin/env bash
# guest-image.sh [OUTDIR]: build the built-in guest image `builtin:tiny`
# (default OUTDIR: build/guest/tiny in the repo):
#   OUTDIR/vmlinuz       Debian's current kernel (linux-image-amd64's dependency)
#   OUTDIR/initrd.img    gzip'd newc cpio: busybox-static, the guest tools from
#                        tests/guest/tools, the kernel modules below with their
#                        dependencies, the CAN FD driver ctucanfd built out of
#                        tree for this kernel, and tests/guest/rootfs (/init etc.)
#   OUTDIR/manifest.txt  what went in
# Idempotent: when the inputs (package versions, module list, this script,
# the tool sources and rootfs files, the compiler) are unchanged it says so and
# does nothing. Packages are fetched with `apt-get download` into
# ${PLEXUS_CACHE:-/var/cache/plexus}/debs (~/.cache/plexus when not root,
# which also reads root's), keyed by package and version, so later builds
# download nothing; without a usable cache it downloads into a temporary
# folder. The ctucanfd modules are cached in CACHE/ctucanfd/ and the driver's
# source files in CACHE/src/ (the 139 MB linux-source package is not kept).
# `apt-get update` runs only when apt knows no kernel package or a download
# fails. Needs: apt, dpkg, gcc with static glibc, cpio (or falls back to
# busybox's), gzip; kmod's modinfo or binutils' objcopy help resolve module
# dependencies (scripts/guest-moddeps.sh); for ctucanfd, the kernel's gcc
# (gcc-12), make, xz, tar, libelf (objtool) and binutils' strip. When the
# ctucanfd build fails the image is built without it (a warning, manifest
# "ctucanfd: failed") and not stamped, so the next run tries again.
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
# pcm3680_pci).
MODULES_EXTRA=(vcan slcan sja1000_isa)
# QEMU's CAN FD controller ctucan_pci: Debian's 6.1 kernel has no driver for
# it (CONFIG_CAN_CTUCANFD* unset), so ctucanfd + ctucanfd_pci are built out of
# tree (build_ctucanfd) and loaded at boot after kvaser_pci.
# PLEXUS_GUEST_CTUCANFD=0 leaves them out (no headers/source downloads).
CTUCANFD=${PLEXUS_GUEST_CTUCANFD:-1}
CTUCANFD_SRC=(ctucanfd.h ctucanfd_base.c ctucanfd_kframe.h ctucanfd_kregs.h ctucanfd_pci.c)
CTUCANFD_RECIPE=1 # bump when build_ctucanfd changes what it builds: keys its cache
TOOLS=(pxcan pxpoke pxivshmem pxcxl)
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

# fetch PKG VERSION [nocache]: print the path of the .deb, downloading it
# when the cache does not have it (with `nocache`, into the build's temporary
# folder, dropped afterwards: for linux-source, of which a few files are used).
# Returns 1 when the download fails.
fetch() {
  local pkg=$1 ver=$2 nocache=${3:-} base dest tmpd f
  local -a aptopts=() hits=()
  # apt's own file name, PKG_VERSION_ARCH.deb with the epoch's ':' as %3a
  base="${pkg}_${ver//:/%3a}_"
  # A user's own cache first, then root's shared one (read only).
  for dest in "$cache/debs" /var/cache/plexus/debs; do
    for f in "$dest/$base"*.deb; do
      if [ -s "$f" ]; then
        echo "$f"
        return 0
      fi
    done
  done
  dest=$cache/debs
  if [ -n "$nocache" ]; then
    dest=$work/debs
    mkdir -p "$dest"
  elif ! mkdir -p "$dest" 2>/dev/null || [ ! -w "$dest" ]; then
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
  hits=("$tmpd/$base"*.deb)
  if [ ! -s "${hits[0]}" ]; then
    rm -rf "$tmpd"
    return 1
  fi
  # The rename makes a cache entry whole or absent, never partial.
  mv "${hits[0]}" "$dest/"
  rm -rf "$tmpd"
  echo "$dest/${hits[0]##*/}"
}

# CAN FD: QEMU's ctucan_pci needs ctucanfd + ctucanfd_pci, which Debian's 6.1
# kernel does not build (CONFIG_CAN_CTUCANFD* unset). They are built out of
# tree against the headers of exactly the image's kernel, from the driver
# files of the matching linux-source package (docs/guest-image.md).
build_ctucanfd() { # puts ctucanfd.ko and ctucanfd_pci.ko into $moddir/extra
  local cfg cc ccver key d srcdir srcpkg hpkg hdeps h deb hdr mk ok f cmd
  local -a debs=()
  cfg=$work/kernel/boot/config-$kver
  # The kernel's own compiler (gcc-12): the headers' Makefile calls it.
  cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$cfg" 2>/dev/null)
  [ -n "$cc" ] || { log "ctucanfd: no CONFIG_CC_VERSION_TEXT in $cfg"; return 1; }
  command -v "$cc" >/dev/null 2>&1 || { log "ctucanfd: the kernel's compiler '$cc' is not installed"; return 1; }
  for cmd in make xz tar; do
    command -v "$cmd" >/dev/null 2>&1 || { log "ctucanfd: '$cmd' not found (run scripts/install-deps.sh)"; return 1; }
  done
  ccver=$("$cc" -dumpfullversion -dumpversion)
  key="${kver}_${kpkg_ver//:/%3a}_${cc}-${ccver}_r${CTUCANFD_RECIPE}"
  mkdir -p "$moddir/extra"

  # 1. built modules, cached per kernel, compiler and recipe
  for d in "$cache/ctucanfd/$key" "/var/cache/plexus/ctucanfd/$key"; do
    if [ -s "$d/ctucanfd.ko" ] && [ -s "$d/ctucanfd_pci.ko" ]; then
      cp "$d/ctucanfd.ko" "$d/ctucanfd_pci.ko" "$moddir/extra/"
      log "ctucanfd: modules from the cache ($d)"
      return 0
    fi
  done

  # 2. the driver's files (cached per source version): only they are taken
  # out of the 130 MB linux-source tarball; tar stops once it has them.
  srcpkg=linux-source-$(cut -d. -f1,2 <<<"$kver")
  srcdir=
  for d in "$cache/src/${srcpkg}_${kpkg_ver//:/%3a}_ctucanfd" \
    "/var/cache/plexus/src/${srcpkg}_${kpkg_ver//:/%3a}_ctucanfd"; do
    if [ -s "$d/ctucanfd_pci.c" ]; then
      srcdir=$d
      break
    fi
  done
  if [ -z "$srcdir" ]; then
    deb=$(fetch "$srcpkg" "$kpkg_ver" nocache) || { log "ctucanfd: downloading $srcpkg $kpkg_ver failed"; return 1; }
    mkdir -p "$work/lsrc"
    local inner=./usr/src/$srcpkg.tar.xz top=$srcpkg/drivers/net/can/ctucanfd
    local -a members=()
    for f in "${CTUCANFD_SRC[@]}"; do members+=("$top/$f"); done
    # tar exits after the last member; the writers before it then die of
    # SIGPIPE, so the files decide success, not the pipeline's status.
    { dpkg-deb --fsys-tarfile "$deb" | tar -xO "$inner" | xz -T0 -dc |
      tar -x -C "$work/lsrc" --occurrence=1 "${members[@]}"; } 2>/dev/null || true
    for f in "${CTUCANFD_SRC[@]}"; do
      [ -s "$work/lsrc/$top/$f" ] || { log "ctucanfd: $deb has no $top/$f"; return 1; }
    done
    case $deb in "$work"/*) rm -f "$deb" ;; esac
    srcdir=$work/lsrc/$top
    cache_put "$cache/src/${srcpkg}_${kpkg_ver//:/%3a}_ctucanfd" "$srcdir"/*
  fi

  # 3. the headers of this kernel (linux-headers-<release>, its -common
  # part, linux-kbuild), unpacked here rather than installed: no root, and
  # the host's /usr/src stays as it is
  hpkg=linux-headers-$kver
  hdeps=$(apt-cache depends "$hpkg" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\)$/\1/p')
  [ -n "$hdeps" ] || { log "ctucanfd: apt-cache depends $hpkg names no headers/kbuild packages"; return 1; }
  for h in "$hpkg" $hdeps; do
    deb=$(fetch "$h" "$kpkg_ver") || { log "ctucanfd: downloading $h $kpkg_ver failed"; return 1; }
    debs+=("$deb")
  done
  hdr=$work/headers
  for deb in "${debs[@]}"; do dpkg -x "$deb" "$hdr"; done
  mk=$hdr/usr/src/$hpkg/Makefile
  [ -f "$mk" ] || { log "ctucanfd: $hpkg has no usr/src/$hpkg/Makefile"; return 1; }
  # It includes the -common Makefile by absolute path.
  sed -i "s|^include /usr/src/|include $hdr/usr/src/|" "$mk"

  # 4. build (Kbuild as drivers/net/can/ctucanfd/Makefile with both =m)
  mkdir -p "$work/ctucanfd"
  cp "$srcdir"/* "$work/ctucanfd/"
  printf '%s\n' 'obj-m := ctucanfd.o ctucanfd_pci.o' 'ctucanfd-y := ctucanfd_base.o' \
    >"$work/ctucanfd/Kbuild"
  log "ctucanfd: building ctucanfd.ko, ctucanfd_pci.ko for $kver with $cc $ccver"
  # The prefix map keeps the temporary folder's name out of the modules
  # (__FILE__ in WARN_ON, debug info and so the build ID): the in-tree path
  # instead, so every build of one version gives the same bytes.
  local maps="-ffile-prefix-map=$work/ctucanfd/=drivers/net/can/ctucanfd/"
  maps+=" -ffile-prefix-map=$work/headers/=/"
  if ! make -C "$hdr/usr/src/$hpkg" M="$work/ctucanfd" -j"$(nproc)" KCFLAGS="$maps" modules \
    >"$work/ctucanfd.log" 2>&1; then
    tail -n 30 "$work/ctucanfd.log" >&2
    log "ctucanfd: the module build failed"
    return 1
  fi
  ok=1
  for f in ctucanfd ctucanfd_pci; do
    [ -s "$work/ctucanfd/$f.ko" ] || ok=0
    # Debug info is 90 % of the file; the guest has no use for it.
    if command -v strip >/dev/null 2>&1; then strip --strip-debug "$work/ctucanfd/$f.ko"; fi
  done
  [ "$ok" -eq 1 ] || { log "ctucanfd: the build made no .ko"; return 1; }
  cp "$work/ctucanfd/ctucanfd.ko" "$work/ctucanfd/ctucanfd_pci.ko" "$moddir/extra/" || return 1
  cache_put "$cache/ctucanfd/$key" "$moddir/extra/ctucanfd.ko" "$moddir/extra/ctucanfd_pci.ko"
  return 0
}

# cache_put DIR FILE...: make DIR hold copies of FILE..., whole or not at all
# (a rename); quietly nothing when the cache is not writable or DIR exists.
cache_put() {
  local dir=$1 t
  shift
  mkdir -p "${dir%/*}" 2>/dev/null && [ -w "${dir%/*}" ] || return 0
  t=$(mktemp -d "${dir%/*}/.new.XXXXXX") || return 0
  if cp "$@" "$t/" && chmod 755 "$t" && mv -T "$t" "$dir" 2>/dev/null; then
    return 0
  fi
  rm -rf "$t"
}

resolve

# Every input that changes the image goes into the stamp.
inputs_hash() {
  {
    echo "kernel $kpkg $kpkg_ver"
    echo "busybox-static $bb_ver"
    echo "load ${MODULES_LOAD[*]}"
    echo "extra ${MODULES_EXTRA[*]}"
    echo "ctucanfd $CTUCANFD r$CTUCANFD_RECIPE ${CTUCANFD_SRC[*]}"
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

# Without the CAN FD modules the image is still built (everything else
# works), but not stamped: the next run tries again.
complete=1
ctucanfd_state=off
if [ "$CTUCANFD" = 1 ]; then
  if build_ctucanfd; then
    MODULES_LOAD+=(ctucanfd_pci)
    ctucanfd_state=built
  else
    log "WARNING: no ctucanfd modules: ctucan_pci (CAN FD) guests will have no CAN interface"
    ctucanfd_state=failed
    complete=0
  fi
fi

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
  case $ctucanfd_state in
  built) echo "ctucanfd: built out of tree against linux-headers-$kver $kpkg_ver (lib/modules/$kver/extra)" ;;
  *) echo "ctucanfd: $ctucanfd_state" ;;
  esac
  echo "tools: ${TOOLS[*]}"
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
if [ "$complete" -eq 1 ]; then
  echo "$hash" >"$out/.stamp"
else
  log "not stamped: the next run tries the ctucanfd build again"
fi
log "done: $out/vmlinuz ($(du -h "$out/vmlinuz" | cut -f1)), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
