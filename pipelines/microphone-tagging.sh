#!/usr/bin/env bash
# Tags what a microphone hears with text prompts: imagebindaudio cuts the sound into the
# model's 2 s windows (every HOP nanoseconds) and embeds them on a worker thread (the audio
# never waits for the model); imagebindmatch classifies each window against the prompts, and
# in detect mode announces when a sound starts and stops. gst-launch-1.0 -m prints the
# `imagebind-match` (and `imagebind-detection`) messages.
#
#   MODEL=imagebind-huge.gguf pipelines/microphone-tagging.sh "a dog barking" "speech" "music"
#   MODE=detect THRESHOLD=0.2 pipelines/microphone-tagging.sh "a door knock" "applause"
#
# Environment (see common.sh for MODEL, GST_PLUGIN_PATH, NUM_BUFFERS):
#   SOURCE     auto (default): the default microphone (autoaudiosrc), or audiotestsrc when none
#              works; test: audiotestsrc (always used for finite runs, NUM_BUFFERS of 100 ms).
#   HOP        nanoseconds between the starts of two windows (default 1000000000: 1 s).
#   MODE       classify (default) or detect; THRESHOLD, MIN_DURATION, COOLDOWN for detect.
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model
[ $# -gt 0 ] || set -- "a steady tone" "white noise" "ticking" "speech" "a dog barking"

SOURCE="${SOURCE:-auto}"
HOP="${HOP:-1000000000}"
MODE="${MODE:-classify}"
THRESHOLD="${THRESHOLD:-0.25}"
MIN_DURATION="${MIN_DURATION:-500000000}"
COOLDOWN="${COOLDOWN:-1000000000}"

# autoaudiosrc is a bin without num-buffers: finite runs use the test source.
if finite_run; then
  SOURCE=test
elif [ "$SOURCE" = auto ] && ! timeout 5 gst-launch-1.0 -q autoaudiosrc ! audioconvert \
    ! fakesink num-buffers=1 >/dev/null 2>&1; then
  say "no working microphone (autoaudiosrc failed): using audiotestsrc instead"
  SOURCE=test
fi

if [ "$SOURCE" = test ]; then
  live=true
  finite_run && live=false
  # 100 ms buffers of a 440 Hz tone at 16 kHz
  source=(audiotestsrc is-live=$live wave=sine freq=440 samplesperbuffer=1600
    $(num_buffers_property) ! audio/x-raw,rate=16000)
else
  source=(autoaudiosrc)
fi

prompts=$(prompts_property "$@")
set -x
exec $GST_LAUNCH -m -e "${source[@]}" ! audioconvert ! audioresample \
  ! imagebindaudio model="$MODEL" hop="$HOP" \
  ! imagebindmatch model="$MODEL" mode="$MODE" threshold="$THRESHOLD" \
      min-duration="$MIN_DURATION" cooldown="$COOLDOWN" "$prompts" \
  ! fakesink
