#!/usr/bin/env bash
# Tags a live camera with text prompts: every 0.5 s a frame is embedded (imagebindvision, on a
# worker thread: the video never waits for the model) and classified against the prompts
# (imagebindmatch); gst-launch-1.0 -m prints each result as an `imagebind-match` message
# (labels, cosine scores, softmax probabilities, top label), and imagebindoverlay draws the top
# labels with their probabilities as bars on the video.
#
#   pipelines/camera-tagging.sh "a bouncing ball" "colour bars" "a red screen"   (shipped model)
#   MODEL=imagebind-huge.gguf pipelines/camera-tagging.sh "a person" "a dog" "a cup of coffee"
#
# The shipped default model knows only the world of GStreamer's test sources (ten kinds of
# test scene, models/train/README.md): its default prompts are those scenes, and pointed at a
# real camera it answers with one of them. Prompts about the real world ("a person", "a dog")
# need the official model (models/convert.py --preset huge); the script says so.
#
# Environment (see common.sh for MODEL, GST_PLUGIN_PATH, NUM_BUFFERS):
#   DEVICE    the camera (default /dev/video0). Without a camera, videotestsrc is used instead.
#   INTERVAL  nanoseconds between embedded frames (default 500000000).
#   SINK      where the video goes (default fakesink; autovideosink to watch it).
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model
[ $# -gt 0 ] || set -- "a bouncing ball" "colour bars" "static noise" "a black screen" \
  "a red screen" "a checkerboard"
shipped_model_note

DEVICE="${DEVICE:-/dev/video0}"
INTERVAL="${INTERVAL:-500000000}"
SINK="${SINK:-fakesink}"

if [ -e "$DEVICE" ]; then
  source=(v4l2src device="$DEVICE" $(num_buffers_property))
else
  say "no camera at $DEVICE: using videotestsrc instead (set DEVICE=... for another camera)"
  live=true
  finite_run && live=false
  source=(videotestsrc is-live=$live pattern=ball $(num_buffers_property))
fi

# The overlay is built when Pango and Cairo were found (.ci/install-deps installs them).
if gst-inspect-1.0 imagebindoverlay >/dev/null 2>&1; then
  overlay=(imagebindoverlay top-k=3 font-desc="Sans 14" bar-width=120 ! videoconvert ! $SINK)
else
  say "imagebindoverlay is not built (Pango/Cairo missing): the video is not labelled"
  overlay=(videoconvert ! $SINK)
fi

prompts=$(prompts_property "$@")
set -x
exec $GST_LAUNCH -m -e "${source[@]}" ! videoconvert \
  ! imagebindvision model="$MODEL" interval="$INTERVAL" \
  ! imagebindmatch name=match model="$MODEL" "$prompts" \
  ! "${overlay[@]}"
