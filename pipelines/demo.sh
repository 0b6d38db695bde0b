#!/bin/sh
# The first demo: GStreamer's test sources cycle through eight scenes (picture and sound), the
# ImageBind encoders embed them, imagebindmatch compares the embeddings with text prompts, and
# the tags are printed, in plain words, as they change. Uses the shipped default model
# (models/imagebind-default.gguf), trained on such scenes (models/train/README.md): the
# sounds are recognised from text prompts although no sound was ever paired with text.
#
#   pipelines/demo.sh            # builds the project in ./build if needed, plays ~32 s
#   FAST=1 pipelines/demo.sh     # as fast as the CPU goes, no real-time pacing
#
# The scene parameters (colours, frequencies, volumes) are outside the training ranges.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

if [ ! -f "$BUILD/build.ninja" ]; then
  echo "Setting up the build in ./$BUILD (meson + ninja)..."
  meson setup "$BUILD" >/dev/null
fi
echo "Building..."
meson compile -C "$BUILD" imagebind-tags gstimagebind >/dev/null   # what the demo runs

export GST_PLUGIN_PATH_1_0="$PWD/$BUILD/plugin"
export GST_REGISTRY_1_0="$PWD/$BUILD/demo-registry.bin"
SYNC=true
[ -n "$FAST" ] && SYNC=false

SECONDS_PER_SCENE=4
FPS=10
FRAMES=$((SECONDS_PER_SCENE * FPS))
# Audio buffers of 1000 samples at 16 kHz: audiotestsrc (1.22) leaves the first sample of a tick
# that starts exactly on a buffer boundary uninitialised; 190 ms ticks never meet one here.
BUFFERS=$((SECONDS_PER_SCENE * 16))
VCAPS="video/x-raw,width=320,height=240,framerate=$FPS/1"
# 16-bit: audiotestsrc (1.22) leaves the first sample of every tick uninitialised; as a float
# that can be 1e30 or inf (which the encoder refuses), as 16-bit PCM at worst a click
ACAPS="audio/x-raw,format=S16LE,rate=16000,channels=1"

# scene: videotestsrc properties | audiotestsrc properties
SCENES='pattern=smpte|wave=sine freq=720 volume=0.6
pattern=ball foreground-color=0xffffdd00 motion=sweep|wave=ticks freq=1400 tick-interval=190000000 volume=0.68
pattern=snow|wave=white-noise volume=0.6
pattern=checkers-8|wave=square freq=140 volume=0.6
pattern=solid-color foreground-color=0xffff100c|wave=sine freq=105 volume=0.6
pattern=zone-plate kx2=20 ky2=20 kt2=2|wave=saw freq=300 volume=0.6
pattern=solid-color foreground-color=0xff183af7|wave=red-noise volume=0.68
pattern=black|wave=sine volume=0.000000001'
# (black's sound: audiotestsrc flags real silence as GAP buffers, which the encoder skips as
# "no data"; a sine at -180 dBFS is below the spectrogram's floor, i.e. silence to the model.)

VIDEO_PROMPTS='"<\"colour bars\", \"static noise\", \"a black screen\", \"a bouncing ball\", \"a checkerboard\", \"circular rings\", \"a red screen\", \"a white screen\", \"a blue screen\", \"a pinwheel\">"'
AUDIO_PROMPTS='"<\"a steady tone\", \"white noise\", \"silence\", \"ticking\", \"a buzzing square wave\", \"a sawtooth wave\", \"a low hum\", \"a high whistle\", \"a deep rumble\", \"wind\">"'

SOURCES=$(echo "$SCENES" | while IFS='|' read -r video audio; do
  printf ' videotestsrc num-buffers=%s %s ! %s ! v.' "$FRAMES" "$video" "$VCAPS"
  printf ' audiotestsrc num-buffers=%s samplesperbuffer=1000 %s ! %s ! a.' "$BUFFERS" "$audio" "$ACAPS"
done)

echo "Eight scenes of $SECONDS_PER_SCENE s: colour bars with a tone, a ball with ticks, snow with"
echo "noise, a checkerboard with a square wave, red with a hum, rings with a sawtooth, blue with a"
echo "rumble, black with silence. The video is tagged every second, the sound every 2 s."
echo
exec "$BUILD/tools/imagebind-tags" \
  "concat name=v ! videoconvert ! imagebindvision sync=true interval=1000000000" \
  "! imagebindmatch prompts=$VIDEO_PROMPTS ! fakesink sync=$SYNC" \
  "concat name=a ! audioconvert ! imagebindaudio sync=true" \
  "! imagebindmatch prompts=$AUDIO_PROMPTS ! fakesink sync=$SYNC" \
  "$SOURCES"
