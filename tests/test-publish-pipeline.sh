#!/usr/bin/env bash
# Runs pipelines/publish.sh with a model (the tiny conformance model in the build) on 30 frames
# of videotestsrc (25 fps, one embedded frame a second: frames at 0 s and 1 s) to a JSON-lines
# file and checks the file: 4 lines, embedding then match records at pts 0 and 1 s, with a
# unit-length vector of the model's width. TAP output.
#
#   tests/test-publish-pipeline.sh MODEL.gguf BUILD_PLUGIN_DIR
set -uo pipefail

model="${1:-}"
plugin_dir="${2:-}"
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "$model" ] || [ ! -f "$model" ]; then
  echo "1..0 # SKIP no test model (the conformance fixtures are absent)"
  exit 0
fi

# gst-launch-1.0 needs GStreamer's own plugins (videotestsrc) besides the build's.
unset GST_PLUGIN_SYSTEM_PATH_1_0 GST_PLUGIN_PATH_1_0
export GST_PLUGIN_PATH="$plugin_dir"
export GST_REGISTRY_1_0="$plugin_dir/../tests/registry-publish-pipeline.bin"
export MODEL="$model"
export G_DEBUG=fatal-criticals
asan=$(ldd "$plugin_dir/libgstimagebind.so" 2>/dev/null | awk '/libasan/ { print $3 }')
if [ -n "$asan" ]; then
  export LD_PRELOAD="$asan"
  export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..2"
if out=$(NUM_BUFFERS=30 timeout 120 "$here/../pipelines/publish.sh" "$tmp/out.jsonl" "a dog" \
    "a cat" 2>&1) && echo "$out" | grep -q 'imagebind-publish-stats, sent=(guint64)4, failed=(guint64)0, dropped=(guint64)0, rejected=(guint64)0, queued=(guint64)0, eos=(boolean)true'; then
  echo "ok 1 - publish.sh ends and reports 4 records sent at EOS"
else
  echo "not ok 1 - publish.sh failed or reported other counts"
  echo "$out" | tail -20 | sed 's/^/# /'
  exit 1
fi
if check=$(python3 - "$tmp/out.jsonl" <<'PY'
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 4, len(lines)
recs = [json.loads(l) for l in lines]
assert [r["type"] for r in recs] == ["embedding", "match"] * 2, [r["type"] for r in recs]
assert [r["pts"] for r in recs] == [0, 0, 10**9, 10**9], [r["pts"] for r in recs]
for e in recs[0::2]:
    assert len(e["vector"]) == e["dim"] > 0
    assert abs(math.sqrt(sum(v * v for v in e["vector"])) - 1) < 1e-6
    assert e["modality"] == "vision" and e["source"] == "videotestsrc"
for m in recs[1::2]:
    assert sorted(m["labels"]) == ["a cat", "a dog"], m["labels"]
    assert abs(sum(m["probabilities"]) - 1) < 1e-6
print("dim", recs[0]["dim"])
PY
); then
  echo "ok 2 - the JSON lines: $check, embedding and match at 0 s and 1 s"
else
  echo "not ok 2 - unexpected JSON lines"
  sed 's/^/# /' "$tmp/out.jsonl" | cut -c1-200
  exit 1
fi
