#!/usr/bin/env python3
"""The documented Python route to the match results: PyGObject alone (no gst-python). Reads the
imagebind-match bus messages and the GstImageBindMatchCustomMeta mirror (imagebindmatch
custom-meta=true) through their plain fields (labels-strv, scores-f64, probabilities-f64,
indices-u32) and checks them against each other and the softmax / cosine ranges.

Usage: test_match_python.py <model.gguf>; exits 77 (skipped) without PyGObject or a model."""
import array
import os
import subprocess
import sys

# In a -Db_sanitize=address build the plugin needs the ASan runtime loaded before Python:
# run again with it preloaded (leaks are checked by the C tests, not here).
plugin = os.path.join(os.environ.get("GST_PLUGIN_PATH_1_0", ""), "libgstimagebind.so")
if os.path.exists(plugin) and "libasan" not in os.environ.get("LD_PRELOAD", ""):
    ldd = subprocess.run(["ldd", plugin], capture_output=True, text=True).stdout
    asan = [line.split()[2] for line in ldd.splitlines() if "libasan" in line and "=>" in line]
    if asan:
        env = dict(os.environ, LD_PRELOAD=asan[0],
                   ASAN_OPTIONS="detect_leaks=0:" + os.environ.get("ASAN_OPTIONS", ""))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

# The scripts need videotestsrc and fakesink too, in a registry of their own.
os.environ.pop("GST_PLUGIN_SYSTEM_PATH_1_0", None)
os.environ["GST_REGISTRY_1_0"] = os.environ.get("GST_REGISTRY_1_0", "registry") + "-match-python"

try:
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
except (ImportError, ValueError) as e:
    print(f"SKIP: PyGObject with Gst 1.0 not available: {e}")
    sys.exit(77)

if len(sys.argv) < 2:
    print("SKIP: no model given")
    sys.exit(77)

PROMPTS = ["a dog", "a \"quoted\" cat", "colour bars"]

Gst.init(None)
model = sys.argv[1]
pipeline = Gst.parse_launch(
    "videotestsrc num-buffers=3 ! video/x-raw,width=32,height=32,framerate=30/1 ! "
    f"imagebindvision model={model} n-threads=1 sync=true ! "
    f"imagebindmatch name=match model={model} n-threads=1 custom-meta=true ! "
    "fakesink name=sink")
# Setting the prompts from Python needs a Gst.ValueArray (gst-python); a launch-syntax string
# works with PyGObject alone.
quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in PROMPTS)
Gst.util_set_object_arg(pipeline.get_by_name("match"), "prompts", f"<{quoted}>")

metas = []


def plain(s):
    return (list(s.get_value("labels-strv")),
            array.array("I", s.get_value("indices-u32").get_data()).tolist(),
            array.array("d", s.get_value("scores-f64").get_data()).tolist(),
            array.array("d", s.get_value("probabilities-f64").get_data()).tolist())


def probe(pad, info):
    meta = info.get_buffer().get_custom_meta("GstImageBindMatchCustomMeta")
    if meta:
        s = meta.get_structure()
        metas.append((s.get_string("modality"), s.get_string("top-label"), plain(s)))
    return Gst.PadProbeReturn.OK


pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
pipeline.set_state(Gst.State.PLAYING)
bus = pipeline.get_bus()
messages = []
while True:
    msg = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS |
                                 Gst.MessageType.ERROR | Gst.MessageType.ELEMENT)
    if msg.type != Gst.MessageType.ELEMENT:
        break
    s = msg.get_structure()
    if s.get_name() == "imagebind-match":
        messages.append((s.get_string("modality"), s.get_string("top-label"),
                         s.get_value("top-probability"), s.get_value("timestamp"), plain(s)))
pipeline.set_state(Gst.State.NULL)
assert msg.type == Gst.MessageType.EOS, msg.parse_error()

assert len(messages) == 3, messages
assert len(metas) == 3, metas
for i, (modality, top, top_p, ts, (labels, indices, scores, probs)) in enumerate(messages):
    assert modality == "vision"
    assert ts == i * Gst.SECOND // 30, ts
    assert sorted(labels) == sorted(PROMPTS), labels
    assert [PROMPTS[k] for k in indices] == labels
    assert top == labels[0] and top_p == probs[0]
    assert abs(sum(probs) - 1.0) < 1e-9, probs
    assert probs == sorted(probs, reverse=True)
    assert all(-1.0 - 1e-9 <= c <= 1.0 + 1e-9 for c in scores), scores
    # the meta mirror on the buffer says the same
    assert metas[i] == (modality, top, (labels, indices, scores, probs)), (metas[i], messages[i])
print("ok: 3 imagebind-match messages and match metas read from Python; top labels",
      [m[1] for m in messages])
