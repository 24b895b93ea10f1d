#!/usr/bin/env bash
# Build the libFuzzer targets and run each one for a while.
#
#   scripts/fuzz.sh [SECONDS]        (default 30 seconds per target)
#
# Environment:
#   FUZZ_BUILD_DIR   build directory          (default: build-fuzz)
#   FUZZ_CORPUS_DIR  working corpora, crashes (default: fuzz-corpus, gitignored)
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-max_len=65536"
#
# Targets run FUZZ_JOBS at a time (default: one per core).
#
# Targets are found, not listed: every executable target named fuzz_* in
# the meson build (any folder), so a decoder added later is fuzzed too. Each
# runs on its own working corpus, FUZZ_CORPUS_DIR/<target>, which starts as
# a copy of its seeds: the checked-in tests/fuzz/seeds/<target>/ if present,
# plus what every gen_seeds* program in the build writes for <target>. The
# seed sources themselves are never written to.
#
# Exit status: 0 if every target ran its time without a crash, leak, timeout
# or sanitizer report; 1 otherwise (reproducers in FUZZ_CORPUS_DIR/crashes/).
set -euo pipefail

secs="${1:-30}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
corpus="${FUZZ_CORPUS_DIR:-$root/fuzz-corpus}"
cd "$root"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=disabled -Dbench=false
fi

# Executable targets named fuzz_* and gen_seeds*, as paths relative to the
# build directory (which is also what ninja calls them).
mapfile -t found < <(meson introspect "$build" --targets | python3 -c '
import json, os, sys
build = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if t["type"] != "executable":
        continue
    if t["name"].startswith("fuzz_") or t["name"].startswith("gen_seeds"):
        for f in t["filename"]:
            print(os.path.relpath(os.path.realpath(f), build))
' "$build")

targets=()
generators=()
for f in "${found[@]}"; do
    case "$(basename "$f")" in
    fuzz_*) targets+=("$f") ;;
    *) generators+=("$f") ;;
    esac
done
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no fuzz_* targets in $build (configured with -Dfuzz=true?)" >&2
    exit 1
fi

ninja -C "$build" "${targets[@]}" "${generators[@]}"

seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
for g in "${generators[@]}"; do
    "$build/$g" "$seeds"
done

mkdir -p "$corpus/crashes"
# One target per core at a time: each libFuzzer run is single-threaded.
jobs_max="${FUZZ_JOBS:-$(nproc)}"
run_one() {
    local t="$1" name dir log
    name="$(basename "$t")"
    dir="$corpus/$name"
    log="$corpus/$name.log"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    if "$build/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$corpus/crashes/$name-" \
        ${FUZZ_ARGS:-} "$dir" >"$log" 2>&1; then
        echo ok >"$corpus/$name.status"
    else
        echo failed >"$corpus/$name.status"
    fi
}
for t in "${targets[@]}"; do
    name="$(basename "$t")"
    dir="$corpus/$name"
    mkdir -p "$dir"
    rm -f "$corpus/$name.status"
    for src in "$root/tests/fuzz/seeds/$name" "$seeds/$name"; do
        if [ -d "$src" ]; then
            cp -rn "$src"/. "$dir"/
        fi
    done
    echo "fuzz: $name for ${secs}s ($(find "$dir" -type f | wc -l) inputs)"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n || true
    done
    run_one "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
    name="$(basename "$t")"
    log="$corpus/$name.log"
    if [ "$(cat "$corpus/$name.status" 2>/dev/null)" = ok ]; then
        echo "fuzz: $name: $(grep -E '^(stat::number_of_executed_units|Done )' "$log" | tail -1)"
    else
        echo "fuzz: $name FAILED; last lines of $log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$name")
    fi
done

# One machine-readable line for scripts/check.sh's total.
echo "fuzz-summary: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: failing targets: ${failed[*]} (reproducers in $corpus/crashes/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no failures"
