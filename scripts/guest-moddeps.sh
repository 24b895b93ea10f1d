#!/usr/bin/env bash
# guest-moddeps.sh MODDIR MODULE...: print the .ko files (paths relative to
# MODDIR, i.e. lib/modules/<version>) that loading MODULE... needs, one per
# line, in load order: every module after all of its dependencies, each once.
#
# Debian's kernel package ships no modules.dep, so dependencies come from each
# module's own .modinfo section: `depends=` (hard, recursive) and the `pre:`
# half of `softdep=` (loaded first when it exists as a file; a soft dependency
# that is built in or absent is skipped). Module names treat '-' and '_' alike,
# as the kernel does. Modules are looked for under MODDIR/kernel and, when
# present, MODDIR/extra and MODDIR/updates (out-of-tree builds such as the
# image's ctucanfd).
#
# How .modinfo is read, first that works: kmod's `modinfo -F`, `objcopy
# --only-section=.modinfo`, or a scan of the file for NUL-separated
# "depends=" strings. PXMODINFO=modinfo|objcopy|scan forces one (for tests).
#
# Exit status: 0, or 1 with a message naming the module when a requested
# module or a hard dependency has no .ko file (or the dependencies loop).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 MODDIR MODULE..." >&2
  exit 2
fi
moddir=$1
shift
[ -d "$moddir/kernel" ] || { echo "guest-moddeps: $moddir/kernel: no such directory" >&2; exit 1; }

method=${PXMODINFO:-}
if [ -z "$method" ]; then
  if command -v modinfo >/dev/null 2>&1; then
    method=modinfo
  elif command -v objcopy >/dev/null 2>&1; then
    method=objcopy
  else
    method=scan
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name -> path relative to MODDIR, for every .ko in the tree
declare -A path_of=()
while IFS= read -r f; do
  b=${f##*/}
  b=${b%.ko}
  path_of[${b//-/_}]=$f
done < <(cd "$moddir" && for d in kernel extra updates; do
  [ ! -d "$d" ] || find "$d" -name '*.ko'
done | LC_ALL=C sort)

declare -A builtin=()
if [ -f "$moddir/modules.builtin" ]; then
  while IFS= read -r f; do
    b=${f##*/}
    b=${b%.ko}
    builtin[${b//-/_}]=1
  done <"$moddir/modules.builtin"
fi

# modinfo_field FILE FIELD: the field's values, one per line
modinfo_field() {
  case $method in
  modinfo) modinfo -F "$2" "$1" ;;
  objcopy)
    objcopy -O binary --only-section=.modinfo "$1" "$tmp/mi"
    tr '\0' '\n' <"$tmp/mi" | sed -n "s/^$2=//p"
    ;;
  scan) tr '\0' '\n' <"$1" | sed -n "s/^$2=//p" ;;
  *) echo "guest-moddeps: unknown PXMODINFO=$method" >&2; exit 2 ;;
  esac
}

declare -A state=() # 1 = being visited, 2 = emitted
order=()

visit() { # visit NAME CHAIN
  local name chain file dep soft
  name=${1//-/_}
  chain="$2 > $name"
  case ${state[$name]:-0} in
  2) return 0 ;;
  1) echo "guest-moddeps: dependency loop:${chain}" >&2; exit 1 ;;
  esac
  file=${path_of[$name]:-}
  if [ -z "$file" ]; then
    echo "guest-moddeps: no module file for '$name' (needed by:${2:- the command line}) in $moddir" >&2
    exit 1
  fi
  state[$name]=1
  # softdep=pre: a b post: c -- only the names between "pre:" and "post:"
  for soft in $(modinfo_field "$moddir/$file" softdep |
    sed -n 's/^.*pre:\(.*\)$/\1/p' | sed 's/post:.*$//'); do
    soft=${soft//-/_}
    if [ -n "${path_of[$soft]:-}" ]; then
      visit "$soft" "$chain"
    elif [ -z "${builtin[$soft]:-}" ]; then
      echo "guest-moddeps: note: soft dependency '$soft' of '$name' is neither a module nor built in" >&2
    fi
  done
  for dep in $(modinfo_field "$moddir/$file" depends | tr ',' ' '); do
    visit "$dep" "$chain"
  done
  state[$name]=2
  order+=("$file")
}

for m in "$@"; do
  visit "$m" ""
done
printf '%s\n' "${order[@]}"
