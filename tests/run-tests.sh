#!/usr/bin/env bash
# The project's test command (README): builds, runs the whole suite, then the hostile-input
# suites under AddressSanitizer/UBSan and the fuzz targets for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

meson setup build --reconfigure >/dev/null 2>&1 || meson setup build
meson compile -C build
meson test -C build --print-errorlogs --num-processes "$jobs"

# Hostile input (model files, text, media) under AddressSanitizer + UBSan.
CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dfuzzing=true --reconfigure >/dev/null 2>&1 || \
  CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dfuzzing=true
meson compile -C build-asan
# GST_REGISTRY_FORK=no: the uninstrumented plugin scanner cannot load ASan-built plugins
# fast_unwind_on_malloc=0: full allocation stacks, so that tests/lsan.supp can name the
# library constructors whose one-off allocations are not ours
export GST_REGISTRY_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The suite's C programs flagged `sanitize` in tests/meson.build (the Python and gst-launch
# tests cannot load ASan-built libraries)
meson test -C build-asan --print-errorlogs --timeout-multiplier 4 --num-processes "$jobs" \
  --suite sanitize
unset GST_REGISTRY_FORK ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

# Fuzzing, bounded in time.
for f in build-asan/tests/fuzz-*; do
  [ -f "$f" ] && [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="tests/fuzz/corpus-${name#fuzz-}"
  mkdir -p "build-asan/$name-corpus"
  "$f" -max_total_time="${FUZZ_SECONDS:-60}" -rss_limit_mb=2048 "build-asan/$name-corpus" \
    $( [ -d "$corpus" ] && echo "$corpus" ) 2>&1 | tail -n 3
done

python3 tests/summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
