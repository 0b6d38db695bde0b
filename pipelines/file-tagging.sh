#!/usr/bin/env bash
# Tags a media file with both a video and an audio stream: the decoded video goes through
# imagebindvision and the audio through imagebindaudio, each followed by its own
# imagebindmatch with the same prompts (the model file is loaded once and shared by all four
# elements). The encoders run in sync mode: every due frame and window is embedded, so the
# results are reproducible; the file is read as fast as it decodes (the sinks do not sync to
# the clock). gst-launch-1.0 -m prints the `imagebind-match` messages of both
# streams (field modality = "vision" or "audio").
#
#   MODEL=imagebind-huge.gguf pipelines/file-tagging.sh clip.mp4 "a dog" "a guitar" "rain"
#
# Without a file argument (or with "-" as the file), a 3 s clip is generated first with
# videotestsrc and audiotestsrc (Theora + Vorbis in Ogg, in a temporary directory).
#
# Environment (see common.sh for MODEL and GST_PLUGIN_PATH):
#   INTERVAL   nanoseconds between embedded video frames (default 1000000000: one a second).
#   HOP        nanoseconds between the starts of two audio windows (default 2000000000).
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model

file="${1:--}"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- "colour bars" "a bouncing ball" "a steady tone" "white noise" "music"

INTERVAL="${INTERVAL:-1000000000}"
HOP="${HOP:-2000000000}"

if [ "$file" = - ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  file="$tmp/clip.ogg"
  say "no file given: generating a 3 s test clip $file"
  gst-launch-1.0 -q -e \
    videotestsrc num-buffers=75 pattern=smpte ! video/x-raw,width=320,height=240,framerate=25/1 \
      ! theoraenc ! queue ! oggmux name=mux ! filesink location="$file" \
    audiotestsrc num-buffers=150 samplesperbuffer=320 wave=sine freq=880 \
      ! audio/x-raw,rate=16000,channels=1 ! audioconvert ! vorbisenc ! queue ! mux.
fi
[ -f "$file" ] || { say "no such file: $file"; exit 2; }
uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$file")
prompts=$(prompts_property "$@")

# No `set -x` here: a trap is pending, so gst-launch-1.0 is not exec-ed either.
echo "+ $GST_LAUNCH -m uridecodebin uri=$uri ..." >&2
$GST_LAUNCH -m uridecodebin uri="$uri" name=dec \
  dec. ! queue ! videoconvert \
    ! imagebindvision model="$MODEL" sync=true interval="$INTERVAL" \
    ! imagebindmatch name=video_match model="$MODEL" "$prompts" ! fakesink sync=false \
  dec. ! queue ! audioconvert ! audioresample \
    ! imagebindaudio model="$MODEL" sync=true hop="$HOP" \
    ! imagebindmatch name=audio_match model="$MODEL" "$prompts" ! fakesink sync=false
