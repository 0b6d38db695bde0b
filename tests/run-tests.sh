#!/usr/bin/env bash
# The project's test command (README): builds, runs the whole suite, then the hostile-input
# suites under AddressSanitizer/UBSan and the fuzz targets for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

meson setup build --reconfigure >/dev/null 2>&1 || meson setup build
meson compile -C build
meson test -C build --print-errorlogs --num-processes "$jobs"

# The optional dependencies really are optional: the libraries, the plugin and the tools build
# with json-glib, libsoup and libmosquitto disabled, and link none of them (compile only,
# counted in the summary as the test "minimal-build").
minimal_log=build-minimal/minimal-build.json
minimal_opts=(-Djson=disabled -Dsoup=disabled -Dmqtt=disabled)
if { meson setup build-minimal "${minimal_opts[@]}" --reconfigure >/dev/null 2>&1 ||
      meson setup build-minimal "${minimal_opts[@]}" >/dev/null; } &&
    meson compile -C build-minimal imagebind gstimagebind-1.0 gstimagebind imagebind-embed \
      imagebind-search imagebind-index imagebind-tags imagebind-preprocess imagebind-bench &&
    ! ldd build-minimal/plugin/libgstimagebind.so build-minimal/tools/imagebind-embed \
      build-minimal/tools/imagebind-search | grep -E 'json-glib|soup|mosquitto'; then
  result=OK
else
  echo "minimal-build: FAILED (the build with ${minimal_opts[*]})"
  result=FAIL
fi
mkdir -p build-minimal
echo "{\"name\": \"minimal-build\", \"result\": \"$result\"}" > "$minimal_log"

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

# Fuzzing, bounded in time. Each fuzzer is one line of the summary (a crash is a failure
# there, with libFuzzer's last lines above it), so the run still ends with the summary.
fuzz_log=build-asan/fuzz.json
: > "$fuzz_log"
for f in build-asan/tests/fuzz-*; do
  [ -f "$f" ] && [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="tests/fuzz/corpus-${name#fuzz-}"
  mkdir -p "build-asan/$name-corpus"
  result=OK
  "$f" -max_total_time="${FUZZ_SECONDS:-60}" -rss_limit_mb=2048 "build-asan/$name-corpus" \
    $( [ -d "$corpus" ] && echo "$corpus" ) > "build-asan/$name.log" 2>&1 || result=FAIL
  tail -n 3 "build-asan/$name.log"
  echo "$name: $result"
  echo "{\"name\": \"$name\", \"result\": \"$result\"}" >> "$fuzz_log"
done

python3 tests/summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
  "$minimal_log" "$fuzz_log"
