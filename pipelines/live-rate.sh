#!/usr/bin/env bash
# How many frames per second a live pipeline embeds: a live test source at FPS frames/s through
# imagebindvision (live mode: the video never waits for the model) and imagebindmatch into a
# clock-synchronised sink, for DURATION seconds. Prints the frames that reached the sink, the
# frames the sink dropped as late (QoS), the embeddings matched, their rate over the run, and the
# longest gap between two embedded frames (a stall shows there).
#
#   MODEL=vit-b-32.gguf pipelines/live-rate.sh
#   MODEL=vit-b-32.gguf DURATION=20 FPS=30 WIDTH=1280 HEIGHT=720 chrt -f 1 pipelines/live-rate.sh
#
# A ViT-B-32-shaped model without downloading one (random weights: speed only):
#   python3 tools/make-random-openclip.py ViT-B-32 /tmp/vit-b-32.safetensors
#   python3 models/convert.py /tmp/vit-b-32.safetensors vit-b-32.gguf --preset ViT-B-32 \
#       --bpe bpe_simple_vocab_16e6.txt.gz
#
# Reading the rate: in live mode the worker embeds, as soon as it is done, the newest frame
# that arrived while it was busy (the others pass without an embedding), so with an inference
# time T (pre-processing included) the rate is about min(FPS, 1/T): 20/s needs T <= 50 ms.
# Compare with `imagebind-bench --model MODEL --modality vision` in the same conditions (on a
# shared machine, run both under `chrt -f 1`).
#
# Environment (see common.sh for MODEL and GST_PLUGIN_PATH):
#   DURATION  seconds of video (default 10)
#   FPS       frame rate of the source (default 25)
#   WIDTH, HEIGHT  frame size (default 320x240, videotestsrc's)
#   INTERVAL  imagebindvision interval in nanoseconds (default 0: every frame it can)
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model

DURATION="${DURATION:-10}"
FPS="${FPS:-25}"
WIDTH="${WIDTH:-320}"
HEIGHT="${HEIGHT:-240}"
INTERVAL="${INTERVAL:-0}"
frames=$((DURATION * FPS))
log=$(mktemp)
trap 'rm -f "$log"' EXIT

prompts=$(prompts_property "a dog" "a cat" "colour bars" "a ball" "snow")
"$GST_LAUNCH" -m videotestsrc is-live=true num-buffers="$frames" \
  ! "video/x-raw,framerate=$FPS/1,width=$WIDTH,height=$HEIGHT" \
  ! imagebindvision model="$MODEL" interval="$INTERVAL" \
  ! imagebindmatch model="$MODEL" "$prompts" \
  ! fakesink sync=true qos=true silent=false -v >"$log" 2>&1 || {
    say "the pipeline failed:"; grep -i -E "error|warning" "$log" >&2; exit 1; }

grep -o 'imagebind-match, .*running-time=(guint64)[0-9]*' "$log" \
  | sed 's/.*running-time=(guint64)//' \
  | awk -v sent="$frames" -v fps="$FPS" \
      -v rendered="$(grep 'last-message = chain' "$log" | grep -vc ' gap ')" \
      -v late="$(grep -c 'GstMessageQOS\|(qos)' "$log")" '
    { t[n++] = $1 }
    END {
      gap = 0
      for (i = 1; i < n; i++) if (t[i] - t[i - 1] > gap) gap = t[i] - t[i - 1]
      rate = n > 1 ? (n - 1) / ((t[n - 1] - t[0]) / 1e9) : 0
      printf "frames: %d sent at %d/s, %d reached the sink, %d dropped late (QoS)\n", \
        sent, fps, rendered, late
      printf "embeddings: %d, %.1f per second, longest gap between embedded frames %.0f ms\n", \
        n, rate, gap / 1e6
    }'
