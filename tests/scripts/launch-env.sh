# Sourced by the tests that run gst-launch-1.0 and the pipelines/ scripts as a user does.
#
# ib_launch_env PLUGIN_DIR NAME: GStreamer's own plugins (test sources, codecs), which the
# test environment hides, plus the build's plugin in PLUGIN_DIR, with a registry of their own
# (tests/registry-NAME.bin in the build tree). In a -Db_sanitize=address build the plugin
# needs the ASan runtime loaded first by the (uninstrumented) gst-launch-1.0; leaks are
# checked by the GstHarness tests, not here.
ib_launch_env () {
  local asan
  unset GST_PLUGIN_SYSTEM_PATH_1_0 GST_PLUGIN_PATH_1_0
  export GST_PLUGIN_PATH="$1"
  export GST_REGISTRY_1_0="$1/../tests/registry-$2.bin"
  asan=$(ldd "$1/libgstimagebind.so" 2>/dev/null | awk '/libasan/ { print $3 }')
  if [ -n "$asan" ]; then
    export LD_PRELOAD="$asan"
    export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  fi
}
