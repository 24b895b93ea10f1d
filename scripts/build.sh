#!/usr/bin/env bash
# build.sh DIR [meson options...]: configure DIR once (warnings are errors),
# then build it. Re-running only rebuilds what changed.
set -euo pipefail
dir=${1:-build}
shift || true
cd "$(dirname "$0")/.."
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" --werror "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
