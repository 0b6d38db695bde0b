#!/usr/bin/env bash
# Runs pipelines/av-events.sh (its generated clip: ticking from 4 s, the shipped model) and
# checks that it ends by itself and reports exactly one event, "ticking", heard within one
# audio window (2 s) of 4 s.
#
#   tests/scripts/av-events-check.sh pipelines/av-events.sh BUILD_PLUGIN_DIR
set -uo pipefail
script="$1"
plugin_dir="$2"

# The script needs GStreamer's own plugins (test sources, codecs) besides the build's, and
# finds the shipped model by itself.
. "$(dirname "$0")/launch-env.sh"
ib_launch_env "$plugin_dir" av-events
unset MODEL

out=$(timeout 100 "$script" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: exit status $rc"; exit 1; }
events=$(echo "$out" | grep -c '^event: ')
[ "$events" -eq 1 ] || { echo "FAIL: $events events, expected 1"; exit 1; }
heard=$(echo "$out" | sed -n "s/^event: 'ticking' heard at \([0-9.]*\) s.*/\1/p")
[ -n "$heard" ] || { echo "FAIL: the event is not 'ticking'"; exit 1; }
awk -v t="$heard" 'BEGIN { exit !(t >= 2.0 && t <= 6.0) }' \
  || { echo "FAIL: ticking heard at $heard s, not within 2 s of 4 s"; exit 1; }
echo "ok: ticking heard at $heard s"
