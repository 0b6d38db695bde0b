#!/usr/bin/env python3
"""The documented Python route to the embeddings: PyGObject alone (no gst-python), a pad probe,
buf.get_custom_meta("GstImageBindEmbeddingCustomMeta") with imagebindvision custom-meta=true.

Usage: test_custom_meta.py <model.gguf>; exits 77 (skipped) without PyGObject or a model."""
import array
import math
import os
import sys

# The meson environment isolates the project's plugin; this test also needs videotestsrc and
# fakesink, in a registry of its own.
os.environ.pop("GST_PLUGIN_SYSTEM_PATH_1_0", None)
os.environ["GST_REGISTRY_1_0"] = os.environ.get("GST_REGISTRY_1_0", "registry") + "-python"

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

Gst.init(None)
pipeline = Gst.parse_launch(
    "videotestsrc num-buffers=3 ! video/x-raw,width=32,height=32,framerate=30/1 ! "
    f"imagebindvision model={sys.argv[1]} n-threads=1 sync=true custom-meta=true ! "
    "fakesink name=sink")
got = []


def probe(pad, info):
    meta = info.get_buffer().get_custom_meta("GstImageBindEmbeddingCustomMeta")
    if meta:
        s = meta.get_structure()
        vector = array.array("f", s.get_value("vector-f32").get_data())
        got.append((s.get_string("modality"), s.get_value("dim"), vector,
                    s.get_value("logit-scale"), s.get_value("pts")))
    return Gst.PadProbeReturn.OK


pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE,
                                            Gst.MessageType.EOS | Gst.MessageType.ERROR)
pipeline.set_state(Gst.State.NULL)
assert msg.type == Gst.MessageType.EOS, msg.parse_error()

assert len(got) == 3, got
for i, (modality, dim, vector, scale, pts) in enumerate(got):
    assert modality == "vision"
    assert dim == len(vector) > 0
    # the vision head L2-normalises and has no logit scale: |v| = scale = 1
    norm = math.sqrt(sum(x * x for x in vector))
    assert abs(norm - scale) < 1e-4, (norm, scale)
    assert pts == i * Gst.SECOND // 30, pts
print("ok: 3 embeddings read from Python,", dim, "floats each")
