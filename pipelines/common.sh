# Shared set-up of the example pipelines (sourced, not run).
#
# Environment the scripts read:
#   MODEL            the ImageBind model (.gguf). Default: the shipped model,
#                    models/imagebind-default.gguf, when it exists.
#   GST_PLUGIN_PATH  where gst-launch-1.0 finds the imagebind plugin. Default: <repo>/build/plugin
#                    (an uninstalled build: meson setup build && meson compile -C build).
#   NUM_BUFFERS      stop after this many buffers of the source (finite run, e.g. for tests);
#                    default: run until Ctrl-C.
#   GST_LAUNCH       the launcher (default gst-launch-1.0).

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$REPO_DIR/build/plugin}"
GST_LAUNCH="${GST_LAUNCH:-gst-launch-1.0}"
NUM_BUFFERS="${NUM_BUFFERS:--1}"

say () { echo "$(basename "$0"): $*" >&2; }

# The model: $MODEL, else the shipped one; otherwise explain how to make one and stop.
find_model () {
  if [ -z "${MODEL:-}" ] && [ -f "$REPO_DIR/models/imagebind-default.gguf" ]; then
    MODEL="$REPO_DIR/models/imagebind-default.gguf"
  fi
  if [ -z "${MODEL:-}" ]; then
    say "no model: set MODEL=/path/to/model.gguf. Convert the official checkpoint with"
    say "  python3 models/convert.py imagebind_huge.pth imagebind-huge.gguf"
    say "(see models/GGUF.md), or use the tiny test model of a build: build/tests/imagebind-tiny.gguf"
    exit 2
  fi
  if [ ! -f "$MODEL" ]; then
    say "model file '$MODEL' does not exist"
    exit 2
  fi
}

# The shipped model knows only GStreamer's test scenes: say so, once, when it is the model.
shipped_model_note () {
  if [ "$(realpath "$MODEL" 2>/dev/null)" = "$(realpath "$REPO_DIR/models/imagebind-default.gguf")" ]; then
    say "model: the shipped default model, which knows only GStreamer's test scenes (bars,"
    say "noise, ball, tones, ticking...: models/train/README.md); for real scenes and sounds"
    say "use the official model: MODEL=imagebind-huge.gguf (models/convert.py --preset huge)"
  fi
}

# Prompts from the arguments as one gst-launch property value, quoted twice: a GstValueArray of
# quoted strings, <"a dog", "a cat">, itself quoted for the launch syntax, so that prompts may
# hold spaces, commas and quotes: prompts="<\"a dog\", \"a cat\">".
prompts_property () {
  local array="" p
  for p in "$@"; do
    p=${p//\\/\\\\}
    p=${p//\"/\\\"}
    array="$array${array:+, }\"$p\""
  done
  array="<$array>"
  array=${array//\\/\\\\}
  array=${array//\"/\\\"}
  printf 'prompts="%s"' "$array"
}

# num-buffers=N for a source when a finite run was asked for, else nothing.
num_buffers_property () {
  if [ "$NUM_BUFFERS" -ge 0 ] 2>/dev/null; then
    printf 'num-buffers=%s' "$NUM_BUFFERS"
  fi
}

# TRUE when the run is finite (NUM_BUFFERS set): test sources then run as fast as they can.
finite_run () {
  [ "$NUM_BUFFERS" -ge 0 ] 2>/dev/null
}
