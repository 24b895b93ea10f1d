#!/usr/bin/env bash
# check.sh: every test plexus has, in the order that fails fastest.
#   1. debug-optimized build with -Werror: unit, guest-tool and integration
#      tests
#   2. an ASan + UBSan build: the same, and the end-to-end tests with QEMU
#      guests (run once, here: their time is the guests' boots, the same in
#      both builds, and the sanitizers watch the daemons while guests use
#      them)
#   3. a short libFuzzer run of every fuzz target (FUZZ_SECONDS each,
#      default 10, one target per core)
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
passed=0
failed=0
failures=()

count_meson() { # count_meson BUILDDIR LABEL
  local log="$1/meson-logs/testlog.json" p f
  [ -f "$log" ] || { failed=$((failed + 1)); failures+=("$2: no test log"); return; }
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$f" -eq 0 ] || failures+=("$2: $f test program(s) failed")
}

step() { printf '\n==> %s\n' "$*"; }

step "build (warnings are errors)"
if bash scripts/build.sh build; then
  step "built-in guest image (cached downloads)"
  if bash scripts/guest-image.sh build/guest/tiny; then
    export PLEXUS_IMAGE_DIR="$PWD/build/guest"
  else
    failed=$((failed + 1)); failures+=("guest image could not be built (e2e tests will skip)")
  fi
  step "tests (unit, guest tools, integration)"
  meson test -C build --print-errorlogs --num-processes 1 --suite unit --suite guest \
    --suite integration
  count_meson build "tests"
else
  failed=$((failed + 1)); failures+=("build failed")
fi

step "ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if bash scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false; then
  step "tests under ASan + UBSan (with the end-to-end tests)"
  meson test -C build-asan --print-errorlogs --num-processes 1 --timeout-multiplier 3
  count_meson build-asan "ASan tests"
else
  failed=$((failed + 1)); failures+=("ASan build failed")
fi

step "fuzz: every target for ${FUZZ_SECONDS}s"
fuzz_log=$(mktemp)
bash scripts/fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee "$fuzz_log"
if line=$(grep -E '^fuzz-summary: [0-9]+ passed, [0-9]+ failed' "$fuzz_log" | tail -1); then
  p=$(sed -E 's/^fuzz-summary: ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failures+=("fuzz: $f target(s) failed")
else
  failed=$((failed + 1)); failures+=("fuzz run did not complete (build failed?)")
fi
rm -f "$fuzz_log"

echo
for m in "${failures[@]}"; do echo "FAILED: $m"; done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
