#!/usr/bin/env bash
# Tags what a microphone hears with text prompts: imagebindaudio cuts the sound into the
# model's 2 s windows (every HOP nanoseconds) and embeds them on a worker thread (the audio
# never waits for the model); imagebindmatch classifies each window against the prompts, and
# in detect mode announces when a sound starts and stops. gst-launch-1.0 -m prints the
# `imagebind-match` (and `imagebind-detection`) messages.
#
#   pipelines/microphone-tagging.sh "ticking" "a steady tone" "white noise"      (shipped model)
#   MODEL=imagebind-huge.gguf pipelines/microphone-tagging.sh "a dog barking" "speech" "music"
#   MODE=detect THRESHOLD=0.2 pipelines/microphone-tagging.sh "a door knock" "applause"
#
# Environment (see common.sh for MODEL, GST_PLUGIN_PATH, NUM_BUFFERS):
#   SOURCE     auto (default): the default microphone (autoaudiosrc), or audiotestsrc when none
#              works, which includes autoaudiosrc falling back to its silent fake source
#              (no audio server, no device): tags of silence would mean nothing, so the script
#              says so and uses the test tone; test: audiotestsrc (always used for finite
#              runs, NUM_BUFFERS of 100 ms); or any source element with its properties,
#              e.g. SOURCE="alsasrc device=hw:1".
#
# The shipped default model knows only the sounds of GStreamer's test sources (tones, ticking,
# noises, hum, whistle, wind: models/train/README.md); "speech" or "a dog barking" need the
# official model (models/convert.py --preset huge); the script says so.
#   HOP        nanoseconds between the starts of two windows (default 1000000000: 1 s).
#   MODE       classify (default) or detect; THRESHOLD, MIN_DURATION, COOLDOWN for detect.
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model
[ $# -gt 0 ] || set -- "a steady tone" "white noise" "ticking" "silence" "a low hum" "wind"
shipped_model_note

SOURCE="${SOURCE:-auto}"
HOP="${HOP:-1000000000}"
MODE="${MODE:-classify}"
THRESHOLD="${THRESHOLD:-0.25}"
MIN_DURATION="${MIN_DURATION:-500000000}"
COOLDOWN="${COOLDOWN:-1000000000}"

# autoaudiosrc is a bin without num-buffers: finite runs use the test source.
if finite_run; then
  SOURCE=test
elif [ "$SOURCE" = auto ]; then
  # -v names the element autoaudiosrc picked: without an audio server or device it falls back,
  # with only a warning, to "fake-auto-audio-src", a source of silence.
  if ! probe=$(timeout 15 gst-launch-1.0 -v autoaudiosrc ! audioconvert ! fakesink num-buffers=1 \
      2>&1); then
    say "no working microphone (autoaudiosrc failed): using audiotestsrc instead"
    SOURCE=test
  elif grep -q 'fake-auto-audio-src' <<<"$probe"; then
    why=$(grep -m1 '^WARNING' <<<"$probe" | sed 's/^WARNING: from element [^ ]*: //') || true
    say "autoaudiosrc found no working microphone${why:+ ($why)} and fell back to a silent"
    say "fake source: using audiotestsrc's tone instead. Start the audio server (PulseAudio/"
    say "PipeWire) or pick a device, e.g. SOURCE=\"alsasrc device=hw:1\""
    SOURCE=test
  fi
fi

if [ "$SOURCE" = test ]; then
  live=true
  finite_run && live=false
  # 100 ms buffers of a 440 Hz tone at 16 kHz
  source=(audiotestsrc is-live=$live wave=sine freq=440 samplesperbuffer=1600
    $(num_buffers_property) ! audio/x-raw,rate=16000)
elif [ "$SOURCE" = auto ]; then
  source=(autoaudiosrc)
else
  read -r -a source <<<"$SOURCE"
fi

prompts=$(prompts_property "$@")
set -x
exec $GST_LAUNCH -m -e "${source[@]}" ! audioconvert ! audioresample \
  ! imagebindaudio model="$MODEL" hop="$HOP" \
  ! imagebindmatch model="$MODEL" mode="$MODE" threshold="$THRESHOLD" \
      min-duration="$MIN_DURATION" cooldown="$COOLDOWN" "$prompts" \
  ! fakesink
