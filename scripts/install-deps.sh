#!/usr/bin/env bash
# Install the Debian 12 packages plexus needs to build, test and run.
# Idempotent: does nothing (and touches no network) when all are present.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  clang-format
  libzmq3-dev libsodium-dev libmsgpack-dev libuv1-dev libcmocka-dev
  libyaml-dev libjansson-dev libmetis-dev libnl-route-3-dev
  python3-pytest python3-zmq iproute2 procps graphviz
  cpio kmod binutils gzip xz-utils libelf1 qemu-system-x86
  tshark libslirp-dev libglib2.0-dev libpcap-dev vde2
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "hint: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
