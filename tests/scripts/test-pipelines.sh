#!/usr/bin/env bash
# Runs every pipelines/ script with a model (the tiny conformance model in the build) on a
# finite test source and checks that it ends by itself and that gst-launch-1.0 -m printed
# imagebind-match messages of the expected modalities (and, in detect mode with threshold -1,
# a detection start; live-rate: a summary with embeddings).
#
# With a q8 model file (models/GGUF.md) as a third argument, also one pipeline with every
# encoder element and the matcher on that file (model=...q8.gguf and nothing else changed).
#
#   tests/scripts/test-pipelines.sh MODEL.gguf BUILD_PLUGIN_DIR [MODEL-q8.gguf]
set -uo pipefail

model="${1:-}"
plugin_dir="${2:-}"
q8_model="${3:-}"
root=$(cd "$(dirname "$0")/../.." && pwd)
pipelines="$root/pipelines"

if [ -z "$model" ] || [ ! -f "$model" ]; then
  echo "1..0 # SKIP no test model (the conformance fixtures are absent)"
  exit 0
fi

# The scripts need GStreamer's own plugins besides the build's
. "$root/tests/scripts/launch-env.sh"
ib_launch_env "$plugin_dir" pipelines
export MODEL="$model"
export G_DEBUG=fatal-criticals

n=0
failed=0
check () {
  local name="$1" want="$2"; shift 2
  local out rc m
  n=$((n + 1))
  out=$(timeout 120 "$@" 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "not ok $n - $name: exit status $rc"
    echo "$out" | tail -20 | sed 's/^/# /'
    failed=1
    return
  fi
  for m in $want; do
    pattern="imagebind-match, .*modality=(string)$m"
    [ "$m" = detection ] && pattern='imagebind-detection, .*event=(string)start'
    [ "$m" = rate ] && pattern='^embeddings: [1-9][0-9]*, .* per second'
    if ! echo "$out" | grep -q "$pattern"; then
      echo "not ok $n - $name: no message matching '$pattern'"
      echo "$out" | grep -v "imagebind-DEBUG" | tail -20 | sed 's/^/# /'
      failed=1
      return
    fi
  done
  if [ "$want" = rate ]; then
    echo "ok $n - $name: $(echo "$out" | grep '^embeddings:')"
  else
    echo "ok $n - $name: $(echo "$out" | grep -c 'imagebind-match, ') imagebind-match messages"
  fi
}

# microphone-tagging.sh, not a finite run, with GST_LAUNCH=echo: the pipeline it would run.
# Where autoaudiosrc falls back to its silent fake source (no audio server or device, as on
# CI), the script must say so and use the test tone instead.
check_microphone_fallback () {
  local out probe
  n=$((n + 1))
  probe=$(timeout 10 gst-launch-1.0 -v autoaudiosrc ! audioconvert ! fakesink num-buffers=1 2>&1)
  out=$(env -u NUM_BUFFERS GST_LAUNCH=echo timeout 60 "$pipelines/microphone-tagging.sh" "a beep" 2>&1)
  if ! grep -q 'fake-auto-audio-src' <<<"$probe"; then
    echo "ok $n - microphone-fallback # SKIP autoaudiosrc does not fall back to its fake source here"
  elif grep -q 'fell back to a silent' <<<"$out" && grep -q 'audiotestsrc' <<<"$out" &&
      ! grep -q 'autoaudiosrc !' <<<"$out"; then
    echo "ok $n - microphone-fallback: noticed, the test tone used instead"
  else
    echo "not ok $n - microphone-fallback: autoaudiosrc's silent fake source was not noticed"
    echo "$out" | tail -20 | sed 's/^/# /'
    failed=1
  fi
}

if [ -n "$q8_model" ] && [ -f "$q8_model" ]; then echo "1..7"; else echo "1..6"; fi
check camera-tagging vision env NUM_BUFFERS=10 DEVICE=/nonexistent \
  "$pipelines/camera-tagging.sh" "a dog" "a \"quoted\" cat, with a comma"
check microphone-tagging audio env NUM_BUFFERS=30 "$pipelines/microphone-tagging.sh" "a beep"
check microphone-tagging-detect "audio detection" env NUM_BUFFERS=30 MODE=detect THRESHOLD=-1 \
  MIN_DURATION=0 "$pipelines/microphone-tagging.sh" "a beep" "silence"
check file-tagging "vision audio" "$pipelines/file-tagging.sh"
check live-rate rate env DURATION=2 "$pipelines/live-rate.sh"
check_microphone_fallback

if [ -n "$q8_model" ] && [ -f "$q8_model" ]; then
  # Every encoder element on the q8 file, each followed by a matcher (whose prompts go through
  # the text encoder of the same file); text itself from a subtitle file.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf '1\n00:00:00,000 --> 00:00:01,000\na dog barking\n\n2\n00:00:01,000 --> 00:00:02,000\nrain\n' \
    > "$tmp/q8.srt"
  m="model=$q8_model"
  match="imagebindmatch $m prompts=<\"a\",\"b\"> ! fakesink"
  check q8-every-element "vision audio depth thermal imu text" gst-launch-1.0 -m \
    videotestsrc num-buffers=3 ! videoconvert ! imagebindvision $m sync=true ! $match \
    videotestsrc num-buffers=3 pattern=ball ! videoconvert ! video/x-raw,format=GRAY8 \
      ! imagebinddepth $m sync=true ! $match \
    videotestsrc num-buffers=3 pattern=snow ! videoconvert ! video/x-raw,format=GRAY16_LE \
      ! imagebindthermal $m sync=true ! $match \
    audiotestsrc num-buffers=40 samplesperbuffer=1600 ! audio/x-raw,rate=16000 ! audioconvert \
      ! imagebindaudio $m sync=true ! $match \
    audiotestsrc num-buffers=25 samplesperbuffer=200 wave=sine \
      ! audio/x-raw,format=F32LE,rate=200,channels=6,layout=interleaved \
      ! imagebindimu $m sync=true ! $match \
    filesrc location="$tmp/q8.srt" ! subparse ! imagebindtext $m ! $match
fi
exit $failed
