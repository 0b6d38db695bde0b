#!/usr/bin/env python3
"""GObject introspection of libgstimagebind: the README's "From Python" example runs as written
(with the shipped model) and prints the expected tags; through the typelib, the embedding and
match metas read in a pad probe equal, value for value, their GstCustomMeta mirrors (an
independent route, tested in C); the nth accessors, get_result() bounds, enums and the region
parameter structure.

Usage: test_gi.py <typelib dir> <README.md> [tiny model.gguf]. Exits 77 (skipped) without
PyGObject; the typelib must be there (the test is only registered when the build made it)."""
import array
import math
import os
import re
import subprocess
import sys

typelib_dir, readme = sys.argv[1], sys.argv[2]
tiny_model = sys.argv[3] if len(sys.argv) > 3 else None

# The pipelines need videotestsrc and fakesink too, in a registry of their own.
os.environ.pop("GST_PLUGIN_SYSTEM_PATH_1_0", None)
os.environ["GST_REGISTRY_1_0"] = os.environ.get("GST_REGISTRY_1_0", "registry") + "-gi"
os.environ["GI_TYPELIB_PATH"] = typelib_dir + os.pathsep + os.environ.get("GI_TYPELIB_PATH", "")
os.environ["LD_LIBRARY_PATH"] = typelib_dir + os.pathsep + os.environ.get("LD_LIBRARY_PATH", "")

# The library is found through LD_LIBRARY_PATH, which the loader reads at start: run again with
# it in the environment.
if os.environ.get("IB_TEST_GI_CHILD") != "1":
    os.environ["IB_TEST_GI_CHILD"] = "1"
    os.execv(sys.executable, [sys.executable] + sys.argv)

try:
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
except (ImportError, ValueError) as e:
    print(f"SKIP: PyGObject with Gst 1.0 not available: {e}")
    sys.exit(77)

# 1. The README example, as written, in a process of its own.
text = open(readme, encoding="utf-8").read()
section = text.split("\n## From Python\n", 1)[1]
example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
run = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                     timeout=120)
print(run.stdout, run.stderr, sep="\n")
assert run.returncode == 0, run.returncode
lines = run.stdout.strip().splitlines()
assert len(lines) == 3, lines
for i, line in enumerate(lines):
    # "vision <pts> <width> a bouncing ball [('a bouncing ball', p), ...]"
    m = re.match(r"vision (\d+) (\d+) a bouncing ball \[\('a bouncing ball', ([0-9.]+)\)", line)
    assert m, line
    assert int(m.group(1)) == i * Gst.SECOND // 30, line
    assert int(m.group(2)) > 0 and float(m.group(3)) > 0.5, line
print("ok: the README example tags the ball")

if not tiny_model:
    print("the tiny model was not given: typed accessors not compared with the mirrors")
    sys.exit(0)

# 2. The typed accessors against the custom-meta mirrors.
gi.require_version("GstImageBind", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, GstImageBind, GstVideo  # noqa: E402

Gst.init(None)
PROMPTS = ["dog", "bars", "snow"]  # no spaces: written unquoted in the array
pipeline = Gst.parse_launch(
    "videotestsrc num-buffers=3 ! video/x-raw,width=32,height=32,framerate=30/1 ! "
    f"imagebindvision model={tiny_model} n-threads=1 sync=true custom-meta=true ! "
    f"imagebindmatch model={tiny_model} custom-meta=true top-k=0 "
    f"prompts=\"<{', '.join(PROMPTS)}>\" ! fakesink name=sink")
checked = []


def probe(pad, info):
    buf = info.get_buffer()
    assert GstImageBind.buffer_get_n_imagebind_embedding_metas(buf) == 1
    assert GstImageBind.buffer_get_n_imagebind_match_metas(buf) == 1
    emb = GstImageBind.buffer_get_imagebind_embedding_meta(buf)
    assert GstImageBind.buffer_get_imagebind_embedding_meta_nth(buf, 1) is None
    match = GstImageBind.buffer_get_imagebind_match_meta_nth(buf, 0)
    assert GstImageBind.buffer_get_imagebind_match_meta_nth(buf, 1) is None
    assert GstImageBind.buffer_get_imagebind_match_meta_by_modality(
        buf, GstImageBind.Modality.AUDIO) is None

    # the embedding, against its mirror
    s = buf.get_custom_meta("GstImageBindEmbeddingCustomMeta").get_structure()
    mirror = array.array("f", s.get_value("vector-f32").get_data())
    vector = emb.get_vector()
    assert len(vector) == emb.dim == s.get_value("dim") == len(mirror) > 0
    assert all(a == b for a, b in zip(vector, mirror)), "vector differs from the mirror"
    assert emb.modality == GstImageBind.Modality.VISION
    assert emb.modality.value_nick == s.get_string("modality") == "vision"
    assert emb.logit_scale == s.get_value("logit-scale")
    assert abs(math.sqrt(sum(x * x for x in vector)) - emb.logit_scale) < 1e-4
    assert emb.pts == s.get_value("pts") == buf.pts
    assert emb.duration == s.get_value("duration")
    assert emb.running_time == s.get_value("running-time")
    assert emb.model_id == s.get_string("model-id") and emb.model_id

    # the match, against its mirror
    s = buf.get_custom_meta("GstImageBindMatchCustomMeta").get_structure()
    labels = list(s.get_value("labels-strv"))
    cosines = array.array("d", s.get_value("scores-f64").get_data())
    probabilities = array.array("d", s.get_value("probabilities-f64").get_data())
    indices = array.array("I", s.get_value("indices-u32").get_data())
    assert match.n_results == len(labels) == len(PROMPTS)
    assert match.mode == GstImageBind.MatchMode.CLASSIFY
    assert match.modality == GstImageBind.Modality.VISION
    results = [match.get_result(i) for i in range(match.n_results)]
    assert match.get_result(match.n_results) is None
    assert [r.label for r in results] == labels
    assert [r.index for r in results] == list(indices)
    assert [r.cosine for r in results] == list(cosines)
    assert [r.probability for r in results] == list(probabilities)
    assert not any(r.detected for r in results)
    assert abs(sum(probabilities) - 1.0) < 1e-6
    assert list(probabilities) == sorted(probabilities, reverse=True)
    assert match.top_label == labels[0] == s.get_string("top-label")
    assert match.top_index == indices[0] and match.top_probability == probabilities[0]
    assert match.pts == emb.pts
    found = match.find_result(indices[1])
    assert found.label == labels[1]

    # the region parameter structure, filled from a result
    region = Gst.Buffer.new()
    roi = GstVideo.buffer_add_video_region_of_interest_meta(region, "ball", 1, 2, 3, 4)
    GstImageBind.roi_add_match_param(roi, results[0], GstImageBind.MatchMode.DETECT)
    param = GstImageBind.roi_get_match_param(roi)
    assert param.get_name() == "imagebind-match"
    assert param.get_string("label") == labels[0] and param.get_string("mode") == "detect"
    assert param.get_double("probability") == (True, probabilities[0])
    assert param.get_double("cosine") == (True, cosines[0])
    checked.append(buf.pts)
    return Gst.PadProbeReturn.OK


pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE,
                                            Gst.MessageType.EOS | Gst.MessageType.ERROR)
pipeline.set_state(Gst.State.NULL)
assert msg.type == Gst.MessageType.EOS, msg.parse_error()
assert len(checked) == 3, checked

# the region an embedding describes (imagebindvision inference-region=roi-list)
buf = Gst.Buffer.new()
emb = GstImageBind.buffer_add_imagebind_embedding_meta(
    buf, GstImageBind.Modality.VISION, [0.5, 0.25], 1.0, "m")
assert emb.get_region() is None and not emb.has_region
region = GstImageBind.Region()
region.id, region.x, region.y, region.w, region.h = 7, 1, 2, 30, 40
region.roi_type = GLib.quark_from_string("face")
emb.set_region(region)
got = emb.get_region()
assert emb.has_region and (got.id, got.x, got.y, got.w, got.h) == (7, 1, 2, 30, 40)
assert GLib.quark_to_string(got.roi_type) == "face"
s = emb.to_structure()
assert s.get_value("region-id") == 7 and s.get_string("region-type") == "face"
print("ok: the region of an embedding meta through GstImageBind-1.0")

# enums
assert GstImageBind.Modality.AUDIO.value_nick == "audio"
assert GstImageBind.MatchMode.DETECT.value_nick == "detect"
print("ok: 3 buffers' metas read through GstImageBind-1.0 equal their mirrors")
