#!/usr/bin/env bash
# Audio-driven video event detection over a media file with a video and an audio stream: the
# decoded video goes through imagebindvision, the audio through imagebindaudio, and imagebindav
# joins the two by running time. When a sound matching one of the prompts is heard, it scores
# the video around that moment against the same prompt and reports the best-matching frames;
# the script prints those events (and, with VERBOSE=1, every imagebind-av message: how well
# what is heard matches what is seen, and the fused audio+video tags).
#
#   pipelines/av-events.sh                      # generated clip, the shipped default model
#   MODEL=imagebind-huge.gguf pipelines/av-events.sh clip.mp4 "a dog barking" "a car horn"
#
# Without a file argument (or with "-"), an 8 s clip is generated first (Theora + Vorbis in Ogg,
# in a temporary directory): a bouncing ball throughout, silent for 4 s, then ticking (the
# scenes the default model knows, with held-out parameters: models/train/README.md). The
# default prompts are sounds of that world; the ticking should be reported at about 4 s.
#
# Environment (see common.sh for MODEL and GST_PLUGIN_PATH):
#   THRESHOLD  cosine score above which a prompt counts as heard (default 0.5)
#   WINDOW     nanoseconds of video scored before and after a detection (default 2000000000)
#   INTERVAL   nanoseconds between embedded video frames (default 0: every frame)
#   VERBOSE    1: also print the imagebind-av and imagebind-av-fused messages
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model

file="${1:--}"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- "a steady tone" "white noise" "silence" "ticking" "a low hum"

THRESHOLD="${THRESHOLD:-0.5}"
WINDOW="${WINDOW:-2000000000}"
INTERVAL="${INTERVAL:-0}"
VERBOSE="${VERBOSE:-0}"
post_messages=false
[ "$VERBOSE" = 1 ] && post_messages=true

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$file" = - ]; then
  file="$tmp/clip.ogg"
  say "no file given: generating an 8 s test clip (ball; silence, then ticking from 4 s)"
  # A sine at -180 dBFS: digital silence once encoded. 16-bit samples: audiotestsrc (1.22)
  # leaves the first sample of every tick uninitialised, which as a float can be 1e30 or inf.
  gst-launch-1.0 -q -e \
    videotestsrc num-buffers=80 pattern=ball foreground-color=0xffffdd00 \
      ! video/x-raw,width=320,height=240,framerate=10/1 ! theoraenc ! queue \
      ! oggmux name=mux ! filesink location="$file" \
    audiotestsrc num-buffers=64 samplesperbuffer=1000 wave=sine volume=0.000000001 \
      ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! c. \
    audiotestsrc num-buffers=64 samplesperbuffer=1000 wave=ticks freq=1400 \
      tick-interval=190000000 volume=0.68 ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! c. \
    concat name=c ! audioconvert ! vorbisenc ! queue ! mux.
fi
[ -f "$file" ] || { say "no such file: $file"; exit 2; }
uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$file")
prompts=$(prompts_property "$@")

echo "+ $GST_LAUNCH -m uridecodebin uri=$uri ... imagebindav ..." >&2
$GST_LAUNCH -m uridecodebin uri="$uri" name=dec \
  imagebindav name=av model="$MODEL" threshold="$THRESHOLD" window="$WINDOW" \
    post-messages=$post_messages "$prompts" ! fakesink sync=false \
  dec. ! videoconvert ! queue \
    ! imagebindvision model="$MODEL" sync=true interval="$INTERVAL" ! av.video \
  dec. ! audioconvert ! audioresample ! queue \
    ! imagebindaudio model="$MODEL" sync=true ! av.audio > "$tmp/log" 2>&1 || {
  rc=$?
  tail -20 "$tmp/log" >&2
  exit $rc
}

[ "$VERBOSE" = 1 ] && grep -E 'imagebind-av(-fused)?, ' "$tmp/log" || true

# One line per event, in words, then the message itself.
seconds () {
  awk -v ns="$1" 'BEGIN { if (ns == 18446744073709551615) print "-"; else printf "%.2f", ns / 1e9 }'
}
n=0
while IFS= read -r line; do
  n=$((n + 1))
  field () { echo "$line" | sed -n "s/.* $1=([a-z0-9]*)\\([^,;]*\\).*/\\1/p"; }
  label=$(echo "$line" | sed -n 's/.* label=(string)\(\("[^"]*"\)\|[^,]*\),.*/\1/p' \
    | tr -d '"' | sed 's/\\ / /g')
  echo "event: '$label' heard at $(seconds "$(field audio-running-time)") s" \
    "(audio score $(field audio-score)); best frame at $(seconds "$(field best-timestamp)") s" \
    "(score $(field best-score)) among $(field n-frames) frames of" \
    "$(seconds "$(field window-start)")-$(seconds "$(field window-end)") s"
  echo "  $line" | sed 's/^  Got message #[0-9]* from element "av" (element): /  /'
done < <(grep 'imagebind-av-event, ' "$tmp/log")
echo "$n event(s)"
