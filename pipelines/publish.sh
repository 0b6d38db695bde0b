#!/usr/bin/env bash
# Publishes a video's embeddings and prompt matches as JSON: imagebindvision embeds a frame
# every INTERVAL, imagebindmatch scores it against the prompts, and imagebindpublish sends both
# (one embedding record and one match record per embedded frame) to DESTINATION. The video
# never waits for the destination: records queue (at most 1024) and are sent by the
# publisher's own thread, in batches, with retries. gst-launch-1.0 -m prints the publisher's
# `imagebind-publish-stats` messages (sent, failed, dropped, queued).
#
#   pipelines/publish.sh                                   # JSON lines to ./imagebind.jsonl
#   pipelines/publish.sh /tmp/results.jsonl "a dog" "a cat"
#   pipelines/publish.sh http://127.0.0.1:8080/hook        # POST JSON arrays (webhook)
#   pipelines/publish.sh mqtt://127.0.0.1:1883/cameras/1   # one MQTT message per record
#   FORMAT=qdrant COLLECTION=clips pipelines/publish.sh http://localhost:6333
#
# DESTINATION is a file path (JSON lines, one record a line), a file:// URI, an http(s)://
# URL, or an mqtt(s)://host[:port]/topic URL (e.g. Debian's mosquitto broker; watch with
# `mosquitto_sub -t cameras/1 -v`). With FORMAT=qdrant the URL is a Qdrant server's base URL and each batch is a points
# upsert into COLLECTION (which must exist, with the model's vector size and Cosine distance).
#
# Environment (see common.sh for MODEL, GST_PLUGIN_PATH, NUM_BUFFERS):
#   SOURCE_FILE  a media file to read the video of (default: videotestsrc, 100 frames at
#                25 fps, pattern ball, unless NUM_BUFFERS says otherwise)
#   INTERVAL     nanoseconds between embedded frames (default 1000000000)
#   FORMAT       json (default) or qdrant
#   COLLECTION   Qdrant collection (default imagebind)
#   BATCH_SIZE   records per request (default 16)
set -euo pipefail
. "$(dirname "$0")/common.sh"
find_model

dest="${1:-$PWD/imagebind.jsonl}"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- "a bouncing ball" "colour bars" "static noise" "a person" "a dog"

INTERVAL="${INTERVAL:-1000000000}"
FORMAT="${FORMAT:-json}"
COLLECTION="${COLLECTION:-imagebind}"
BATCH_SIZE="${BATCH_SIZE:-16}"

case "$dest" in
  http://*|https://*|file://*|mqtt://*|mqtts://*) location="$dest" ;;
  *)
    dir=$(cd "$(dirname "$dest")" 2>/dev/null && pwd) || { say "no such directory: $(dirname "$dest")"; exit 2; }
    location="file://$dir/$(basename "$dest")"
    ;;
esac

if [ -n "${SOURCE_FILE:-}" ]; then
  [ -f "$SOURCE_FILE" ] || { say "no such file: $SOURCE_FILE"; exit 2; }
  uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' \
    "$SOURCE_FILE")
  source=(uridecodebin uri="$uri" expose-all-streams=false caps=video/x-raw)
else
  n="$NUM_BUFFERS"
  [ "$n" -ge 0 ] 2>/dev/null || n=100
  source=(videotestsrc pattern=ball num-buffers="$n" ! video/x-raw,framerate=25/1)
fi

prompts=$(prompts_property "$@")
say "publishing to $location (format $FORMAT)"
set -x
$GST_LAUNCH -m -e "${source[@]}" ! videoconvert \
  ! imagebindvision model="$MODEL" sync=true interval="$INTERVAL" \
  ! imagebindmatch model="$MODEL" "$prompts" post-messages=false \
  ! imagebindpublish location="$location" format="$FORMAT" collection="$COLLECTION" \
    batch-size="$BATCH_SIZE" source="$(basename "${SOURCE_FILE:-videotestsrc}")" \
  ! fakesink
