/* The encoder elements with the tiny conformance model, through GstHarness.
 *
 * Usage: test-encoders <tiny model .gguf>  (tests that need the model skip without it) */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <imagebind.h>
#include <imagebind-frontend.h>
#include "gstimagebindmeta.h"
#include "gstimagebindencoder.h"
#include "common.h"
#include "gguf.h"
#include "gguf-builder.h"
#include "model-edit.h"

/* The runtime against itself: only summation order (threads) may differ. */
#define TOLERANCE 1e-5

static const gchar *model_path;
static ImageBindModel *model;
static ImageBindContext *ctx;
static guint out_dim;

static gboolean
have_element (const gchar * name)
{
  GstElementFactory *f = gst_element_factory_find (name);

  if (!f) {
    gchar *msg = g_strdup_printf ("element %s not built", name);
    g_test_skip (msg);
    g_free (msg);
    return FALSE;
  }
  gst_object_unref (f);
  return TRUE;
}

/* A harness around @factory with the tiny model and the given properties (NULL-terminated). */
static GstHarness *
encoder_harness (const gchar * factory, const gchar * caps, const gchar * first_prop, ...)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  GstHarness *h;
  va_list args;

  g_assert_nonnull (e);
  /* one thread: the test machine is shared, and the results do not depend on it */
  g_object_set (e, "model", model_path, "n-threads", 1, NULL);
  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (e), first_prop, args);
  va_end (args);
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  if (caps)
    gst_harness_set_src_caps_str (h, caps);
  return h;
}

static void
reference_embed (ImageBindModality modality, const gfloat * tensor, const gint64 * shape,
    guint n_dims, gfloat * out)
{
  GError *err = NULL;

  g_assert_true (imagebind_embed (ctx, modality, tensor, shape, n_dims, out, &err));
  g_assert_no_error (err);
}

static void
assert_vector_close (const gfloat * got, const gfloat * ref)
{
  double err = ib_test_rel_error (got, ref, out_dim);

  if (err > TOLERANCE)
    g_error ("relative error %g > %g", err, TOLERANCE);
}

static GstBuffer *
random_buffer (gsize size, guint32 seed)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  GstMapInfo map;
  GRand *rand = g_rand_new_with_seed (seed);
  gsize i;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (i = 0; i < size; i++)
    map.data[i] = (guint8) g_rand_int (rand);
  gst_buffer_unmap (buf, &map);
  g_rand_free (rand);
  return buf;
}

static void
assert_same_bytes (GstBuffer * buf, GBytes * expected)
{
  GstMapInfo map;

  g_assert_true (gst_buffer_map (buf, &map, GST_MAP_READ));
  g_assert_cmpmem (map.data, map.size, g_bytes_get_data (expected, NULL),
      g_bytes_get_size (expected));
  gst_buffer_unmap (buf, &map);
}

static GBytes *
buffer_bytes (GstBuffer * buf)
{
  GstMapInfo map;
  GBytes *b;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  b = g_bytes_new (map.data, map.size);
  gst_buffer_unmap (buf, &map);
  return b;
}

/* Counts the embedding metas on every buffer the harness has output so far. */
static guint
drain_count_metas (GstHarness * h, guint * n_buffers)
{
  GstBuffer *buf;
  guint n = 0;

  while ((buf = gst_harness_try_pull (h))) {
    n += gst_buffer_get_n_imagebind_embedding_metas (buf);
    if (n_buffers)
      (*n_buffers)++;
    gst_buffer_unref (buf);
  }
  return n;
}

/* ---- vision ---- */

static void
vision_reference (const guint8 * rgb, guint width, guint height, gsize stride, gfloat * out)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  ImageBindInputGeometry geometry;
  gfloat *tensor;
  gint64 shape[4];
  GError *err = NULL;

  imagebind_model_input_geometry (model, &geometry);
  params.size = geometry.image_size;
  tensor = g_new (gfloat, 3 * params.size * params.size);
  g_assert_true (imagebind_image_to_tensor (&params, rgb, width, height, stride, tensor, &err));
  shape[0] = 1;
  shape[1] = 3;
  shape[2] = shape[3] = params.size;
  reference_embed (IMAGEBIND_MODALITY_VISION, tensor, shape, 4, out);
  g_free (tensor);
}

/* Sync mode: the meta is the runtime's embedding of the same frame, the bytes and even the
 * memory are the input's, and the same picture as BGRx gives the same embedding. */
static void
test_vision_sync_equals_runtime (void)
{
  GstHarness *h;
  GstBuffer *in, *out, *bgrx;
  GstMemory *in_mem;
  GBytes *bytes;
  GstImageBindEmbeddingMeta *meta;
  GstMapInfo map, bmap;
  gfloat *ref;
  guint dim, i;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=RGB,width=64,height=48,framerate=25/1", "sync", TRUE, NULL);
  in = random_buffer (64 * 48 * 3, 1);
  GST_BUFFER_PTS (in) = 0;
  GST_BUFFER_DURATION (in) = GST_SECOND / 25;
  bytes = buffer_bytes (in);
  in_mem = gst_buffer_peek_memory (in, 0);

  ref = g_new (gfloat, out_dim);
  gst_buffer_map (in, &map, GST_MAP_READ);
  vision_reference (map.data, 64, 48, 64 * 3, ref);
  /* the same picture as BGRx */
  bgrx = gst_buffer_new_allocate (NULL, 64 * 48 * 4, NULL);
  gst_buffer_map (bgrx, &bmap, GST_MAP_WRITE);
  for (i = 0; i < 64 * 48; i++) {
    bmap.data[4 * i + 0] = map.data[3 * i + 2];
    bmap.data[4 * i + 1] = map.data[3 * i + 1];
    bmap.data[4 * i + 2] = map.data[3 * i + 0];
    bmap.data[4 * i + 3] = 0xff;
  }
  gst_buffer_unmap (bgrx, &bmap);
  gst_buffer_unmap (in, &map);

  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  /* pass-through: the very same memory, untouched */
  g_assert_true (gst_buffer_peek_memory (out, 0) == in_mem);
  assert_same_bytes (out, bytes);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 1);
  meta = gst_buffer_get_imagebind_embedding_meta (out);
  g_assert_cmpint (meta->modality, ==, GST_IMAGE_BIND_MODALITY_VISION);
  g_assert_cmpuint (meta->pts, ==, 0);
  g_assert_cmpuint (meta->duration, ==, GST_SECOND / 25);
  g_assert_cmpuint (meta->running_time, ==, 0);
  g_assert_cmpuint (meta->stream_time, ==, 0);
  g_assert_cmpfloat (meta->logit_scale, ==, imagebind_model_logit_scale (model,
          IMAGEBIND_MODALITY_VISION));
  g_assert_true (g_str_has_suffix (meta->model_id, ":imagebind-tiny.gguf"));
  assert_vector_close (gst_image_bind_embedding_meta_get_vector (meta, &dim), ref);
  g_assert_cmpuint (dim, ==, out_dim);
  gst_buffer_unref (out);

  gst_harness_set_src_caps_str (h, "video/x-raw,format=BGRx,width=64,height=48,framerate=25/1");
  GST_BUFFER_PTS (bgrx) = GST_SECOND / 25;
  g_assert_cmpint (gst_harness_push (h, bgrx), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  meta = gst_buffer_get_imagebind_embedding_meta (out);
  g_assert_nonnull (meta);
  assert_vector_close (meta->vector, ref);
  gst_buffer_unref (out);

  g_bytes_unref (bytes);
  g_free (ref);
  gst_harness_teardown (h);
}

/* Every advertised format negotiates and gets an embedding; other caps are refused. */
static void
test_vision_caps (void)
{
  static const gchar *formats[] = { "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA",
    "BGRA", "ARGB", "ABGR", "I420", "NV12", "YUY2", "GRAY8"
  };
  static const gchar *refused[] = {
    "video/x-raw,format=P010_10LE,width=32,height=32,framerate=1/1",
    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved",
    "video/x-raw(memory:DMABuf),format=RGB,width=32,height=32,framerate=1/1",
  };
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstHarness *h;
    GstVideoInfo info;
    GstBuffer *out;
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=34,height=26,framerate=1/1",
        formats[i]);
    GstImageBindEmbeddingMeta *meta;
    guint k;

    h = encoder_harness ("imagebindvision", caps, "sync", TRUE, NULL);
    {
      GstCaps *c = gst_caps_from_string (caps);
      g_assert_true (gst_video_info_from_caps (&info, c));
      gst_caps_unref (c);
    }
    g_assert_cmpint (gst_harness_push (h, random_buffer (info.size, i)), ==, GST_FLOW_OK);
    out = gst_harness_pull (h);
    meta = gst_buffer_get_imagebind_embedding_meta (out);
    g_assert_nonnull (meta);
    for (k = 0; k < meta->dim; k++)
      g_assert_true (isfinite (meta->vector[k]));
    gst_buffer_unref (out);
    gst_harness_teardown (h);
    g_free (caps);
  }

  for (i = 0; i < G_N_ELEMENTS (refused); i++) {
    GstElement *e = gst_element_factory_make ("imagebindvision", NULL);
    GstPad *sink = gst_element_get_static_pad (e, "sink");
    GstCaps *caps = gst_caps_from_string (refused[i]);

    g_assert_false (gst_pad_query_accept_caps (sink, caps));
    gst_caps_unref (caps);
    gst_object_unref (sink);
    gst_object_unref (e);
  }
}

/* interval 100 ms over frames 40 ms apart: frames 0, 3, 6, 9 (0, 120, 240, 360 ms). */
static void
test_vision_interval (void)
{
  GstHarness *h;
  guint i, with_meta[10] = { 0 };

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1", "sync", TRUE,
      "interval", (guint64) 100 * GST_MSECOND, NULL);
  for (i = 0; i < 10; i++) {
    GstBuffer *buf = random_buffer (16 * 16, 100 + i);
    GstBuffer *out;

    GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
    out = gst_harness_pull (h);
    with_meta[i] = gst_buffer_get_n_imagebind_embedding_metas (out);
    if (with_meta[i])
      g_assert_cmpuint (gst_buffer_get_imagebind_embedding_meta (out)->pts, ==,
          GST_BUFFER_PTS (out));
    gst_buffer_unref (out);
  }
  for (i = 0; i < 10; i++)
    g_assert_cmpuint (with_meta[i], ==, (i % 3 == 0) ? 1 : 0);
  gst_harness_teardown (h);
}

/* The meta's stream-time and running-time come from the segment: start 10 s, time 100 s,
 * base 5 s; a frame at 12 s is at stream-time 102 s and running-time 7 s. */
static void
test_vision_segment_times (void)
{
  GstHarness *h;
  GstSegment segment;
  GstBuffer *buf, *out;
  GstImageBindEmbeddingMeta *meta;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1", "sync", TRUE, NULL);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.start = 10 * GST_SECOND;
  segment.time = 100 * GST_SECOND;
  segment.base = 5 * GST_SECOND;
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  buf = random_buffer (16 * 16, 77);
  GST_BUFFER_PTS (buf) = 12 * GST_SECOND;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  meta = gst_buffer_get_imagebind_embedding_meta (out);
  g_assert_nonnull (meta);
  g_assert_cmpuint (meta->pts, ==, 12 * GST_SECOND);
  g_assert_cmpuint (meta->duration, ==, 40 * GST_MSECOND);
  g_assert_cmpuint (meta->stream_time, ==, 102 * GST_SECOND);
  g_assert_cmpuint (meta->running_time, ==, 7 * GST_SECOND);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

/* Live mode with a model slower than the stream: every buffer passes at once, the stream does
 * not wait for inference, so fewer embeddings than buffers. */
static void
test_vision_live_slow_model (void)
{
  GstHarness *h;
  guint i, n_buffers = 0, n_metas;

  if (!ib_test_need_model (model_path))
    return;
  /* 60 s per inference, interrupted when the element stops */
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1",
      "simulate-latency", (guint64) 60 * GST_SECOND, NULL);
  for (i = 0; i < 20; i++) {
    GstBuffer *buf = random_buffer (16 * 16, i);
    GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  }
  n_metas = drain_count_metas (h, &n_buffers);
  g_assert_cmpuint (n_buffers, ==, 20);
  g_assert_cmpuint (n_metas, ==, 0);
  gst_harness_teardown (h);
}

/* Live mode with a model slower than the stream: of the frames that arrive while the worker is
 * busy, the newest is embedded as soon as it is done (the older ones pass without an
 * embedding), instead of the worker idling until a frame arrives after it. */
static void
test_vision_live_newest_waits (void)
{
  GstHarness *h;
  GstBuffer *out;
  guint i, n_buffers = 0, n_metas = 0;
  gboolean newest = FALSE;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1",
      "simulate-latency", (guint64) 300 * GST_MSECOND, NULL);
  /* the worker is busy for 300 ms with the first frame it takes while all six arrive */
  for (i = 0; i < 6; i++) {
    GstBuffer *buf = random_buffer (16 * 16, 30 + i);
    GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
    GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  }
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));

  while ((out = gst_harness_try_pull (h))) {
    gpointer state = NULL;
    GstImageBindEmbeddingMeta *meta;

    n_buffers++;
    while ((meta = gst_buffer_iterate_imagebind_embedding_meta (out, &state))) {
      n_metas++;
      if (meta->pts == 5 * 40 * GST_MSECOND)
        newest = TRUE;
    }
    gst_buffer_unref (out);
  }
  /* the first frame (if the worker took it before the second arrived) and the newest */
  g_assert_true (newest);
  g_assert_cmpuint (n_metas, >=, 1);
  g_assert_cmpuint (n_metas, <=, 2);
  g_assert_cmpuint (n_buffers, >=, 6);
  gst_harness_teardown (h);
}

/* Live mode: every result carries the span of the frame it describes and equals the
 * runtime's embedding of that frame; results still in flight at EOS arrive on an empty
 * GAP buffer before EOS. */
static void
test_vision_live_results (void)
{
  GstHarness *h;
  GstBuffer *frames[6], *out;
  guint i, n_buffers = 0, n_metas = 0, n_gap = 0;
  gfloat *ref = g_new (gfloat, out_dim);

  if (!ib_test_need_model (model_path)) {
    g_free (ref);
    return;
  }
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=RGB,width=32,height=32,framerate=25/1", NULL);
  for (i = 0; i < G_N_ELEMENTS (frames); i++) {
    frames[i] = random_buffer (32 * 32 * 3, 50 + i);
    GST_BUFFER_PTS (frames[i]) = i * 40 * GST_MSECOND;
    GST_BUFFER_DURATION (frames[i]) = 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, gst_buffer_ref (frames[i])), ==, GST_FLOW_OK);
  }
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));

  while ((out = gst_harness_try_pull (h))) {
    gpointer state = NULL;
    GstImageBindEmbeddingMeta *meta;

    n_buffers++;
    if (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_GAP)) {
      n_gap++;
      g_assert_cmpuint (gst_buffer_get_size (out), ==, 0);
    }
    while ((meta = gst_buffer_iterate_imagebind_embedding_meta (out, &state))) {
      guint k = (guint) (meta->pts / (40 * GST_MSECOND));
      GstMapInfo map;

      g_assert_cmpuint (k, <, G_N_ELEMENTS (frames));
      g_assert_cmpuint (meta->pts, ==, GST_BUFFER_PTS (frames[k]));
      g_assert_cmpuint (meta->duration, ==, 40 * GST_MSECOND);
      /* never attached to a frame before the one it describes */
      g_assert_cmpuint (GST_BUFFER_PTS (out), >=, meta->pts);
      gst_buffer_map (frames[k], &map, GST_MAP_READ);
      vision_reference (map.data, 32, 32, 32 * 3, ref);
      gst_buffer_unmap (frames[k], &map);
      assert_vector_close (meta->vector, ref);
      n_metas++;
    }
    gst_buffer_unref (out);
  }
  /* the 6 frames, and at most one empty buffer for what was still being computed */
  g_assert_cmpuint (n_buffers - n_gap, ==, 6);
  g_assert_cmpuint (n_gap, <=, 1);
  g_assert_cmpuint (n_metas, >=, 1);
  g_assert_cmpuint (n_metas, <=, 6);

  for (i = 0; i < G_N_ELEMENTS (frames); i++)
    gst_buffer_unref (frames[i]);
  g_free (ref);
  gst_harness_teardown (h);
}

/* Results of work started before a flush never come out after it. */
static void
test_vision_live_flush (void)
{
  GstHarness *h;
  GstBuffer *buf, *out;
  GstSegment segment;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1",
      "simulate-latency", (guint64) 200 * GST_MSECOND, NULL);
  buf = random_buffer (16 * 16, 7);
  GST_BUFFER_PTS (buf) = 0;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (h));

  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.start = segment.time = 10 * GST_SECOND;
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  buf = random_buffer (16 * 16, 8);
  GST_BUFFER_PTS (buf) = 10 * GST_SECOND;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));

  while ((out = gst_harness_try_pull (h))) {
    gpointer state = NULL;
    GstImageBindEmbeddingMeta *meta;
    while ((meta = gst_buffer_iterate_imagebind_embedding_meta (out, &state)))
      g_assert_cmpuint (meta->pts, ==, 10 * GST_SECOND);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

/* Caps change mid-stream: both formats embedded, bytes untouched. */
static void
test_vision_caps_change (void)
{
  GstHarness *h;
  const gchar *caps[2] = {
    "video/x-raw,format=RGB,width=40,height=30,framerate=25/1",
    "video/x-raw,format=I420,width=24,height=20,framerate=25/1"
  };
  guint i, k;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision", NULL, "sync", TRUE, NULL);
  for (k = 0; k < 2; k++) {
    GstVideoInfo info;
    GstCaps *c = gst_caps_from_string (caps[k]);

    gst_video_info_from_caps (&info, c);
    gst_caps_unref (c);
    gst_harness_set_src_caps_str (h, caps[k]);
    for (i = 0; i < 2; i++) {
      GstBuffer *buf = random_buffer (info.size, 10 * k + i), *out;
      GBytes *bytes = buffer_bytes (buf);

      GST_BUFFER_PTS (buf) = (2 * k + i) * 40 * GST_MSECOND;
      g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
      out = gst_harness_pull (h);
      assert_same_bytes (out, bytes);
      g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 1);
      gst_buffer_unref (out);
      g_bytes_unref (bytes);
    }
  }
  gst_harness_teardown (h);
}

/* custom-meta mirrors the embedding as a GstCustomMeta structure. */
static void
test_vision_custom_meta (void)
{
  GstHarness *h;
  GstBuffer *buf, *out;
  GstCustomMeta *cmeta;
  GstImageBindEmbeddingMeta *meta;
  const GValue *vector;
  guint k;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1", "sync", TRUE,
      "custom-meta", TRUE, NULL);
  buf = random_buffer (16 * 16, 3);
  GST_BUFFER_PTS (buf) = 0;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  meta = gst_buffer_get_imagebind_embedding_meta (out);
  cmeta = gst_buffer_get_custom_meta (out, GST_IMAGE_BIND_EMBEDDING_CUSTOM_META_NAME);
  g_assert_nonnull (meta);
  g_assert_nonnull (cmeta);
  g_assert_cmpstr (gst_structure_get_string (gst_custom_meta_get_structure (cmeta), "modality"),
      ==, "vision");
  vector = gst_structure_get_value (gst_custom_meta_get_structure (cmeta), "vector");
  g_assert_cmpuint (gst_value_array_get_size (vector), ==, out_dim);
  for (k = 0; k < out_dim; k++)
    g_assert_cmpfloat (g_value_get_float (gst_value_array_get_value (vector, k)), ==,
        meta->vector[k]);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

/* Live mode adds no latency; sync mode adds the (estimated, then measured) inference time. */
static void
test_latency (void)
{
  gboolean sync;

  if (!ib_test_need_model (model_path))
    return;
  for (sync = FALSE; sync <= TRUE; sync++) {
    GstHarness *h = encoder_harness ("imagebindvision",
        "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1", "sync", sync, NULL);
    GstQuery *q = gst_query_new_latency ();
    GstClockTime min, max;
    gboolean live;

    gst_harness_set_upstream_latency (h, 10 * GST_MSECOND);
    g_assert_true (gst_pad_peer_query (h->sinkpad, q));
    gst_query_parse_latency (q, &live, &min, &max);
    if (sync)
      g_assert_cmpuint (min, >, 10 * GST_MSECOND);
    else
      g_assert_cmpuint (min, ==, 10 * GST_MSECOND);
    gst_query_unref (q);
    gst_harness_teardown (h);
  }
}

/* ---- depth, thermal ---- */

static void
grey_test (const gchar * factory, const gchar * format, guint width, guint height,
    ImageBindModality modality, gboolean disparity)
{
  GstHarness *h;
  GstVideoInfo info;
  GstBuffer *buf, *out;
  GstMapInfo map;
  GBytes *bytes;
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%u,height=%u,framerate=30/1",
      format, width, height);
  guint bits = g_str_equal (format, "GRAY8") ? 8 : 16;
  gsize packed_stride = (gsize) width * bits / 8;
  guint8 *packed = g_malloc (packed_stride * height);
  ImageBindInputGeometry geometry;
  gfloat *tensor, *ref = g_new (gfloat, out_dim);
  gint64 shape[4];
  guint row;
  GstImageBindEmbeddingMeta *meta;
  GError *err = NULL;
  GstCaps *c = gst_caps_from_string (caps);

  gst_video_info_from_caps (&info, c);
  gst_caps_unref (c);
  h = encoder_harness (factory, caps, "sync", TRUE, NULL);
  if (disparity)
    g_object_set (h->element, "format", 1, NULL);
  buf = random_buffer (info.size, 42);
  /* millimetres: keep them plausible (0..8191 mm) */
  gst_buffer_map (buf, &map, GST_MAP_READWRITE);
  for (row = 0; row < height; row++) {
    guint8 *line = map.data + row * GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);
    if (bits == 16) {
      guint x;
      for (x = 0; x < width; x++)
        line[2 * x + 1] &= 0x1f;
    }
    memcpy (packed + row * packed_stride, line, packed_stride);
  }
  gst_buffer_unmap (buf, &map);
  bytes = buffer_bytes (buf);

  imagebind_model_input_geometry (model, &geometry);
  tensor = g_new (gfloat, geometry.image_size * geometry.image_size);
  if (modality == IMAGEBIND_MODALITY_DEPTH)
    g_assert_true (imagebind_depth_to_tensor (geometry.image_size,
            (bits == 8 || disparity) ? IMAGEBIND_DEPTH_DISPARITY : IMAGEBIND_DEPTH_MILLIMETRES,
            packed, bits, width, height, packed_stride, tensor, &err));
  else
    g_assert_true (imagebind_thermal_to_tensor (geometry.image_size, packed, bits, width,
            height, packed_stride, tensor, &err));
  g_assert_no_error (err);
  shape[0] = shape[1] = 1;
  shape[2] = shape[3] = geometry.image_size;
  reference_embed (modality, tensor, shape, 4, ref);

  GST_BUFFER_PTS (buf) = 0;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  assert_same_bytes (out, bytes);
  meta = gst_buffer_get_imagebind_embedding_meta (out);
  g_assert_nonnull (meta);
  g_assert_cmpint (meta->modality, ==, (GstImageBindModality) modality);
  g_assert_cmpfloat (meta->logit_scale, ==, imagebind_model_logit_scale (model, modality));
  assert_vector_close (meta->vector, ref);
  gst_buffer_unref (out);

  g_bytes_unref (bytes);
  g_free (packed);
  g_free (tensor);
  g_free (ref);
  g_free (caps);
  gst_harness_teardown (h);
}

static void
test_depth (void)
{
  if (!ib_test_need_model (model_path))
    return;
  grey_test ("imagebinddepth", "GRAY16_LE", 40, 30, IMAGEBIND_MODALITY_DEPTH, FALSE);
  grey_test ("imagebinddepth", "GRAY16_LE", 33, 21, IMAGEBIND_MODALITY_DEPTH, TRUE);
  grey_test ("imagebinddepth", "GRAY8", 37, 29, IMAGEBIND_MODALITY_DEPTH, FALSE);
}

static void
test_thermal (void)
{
  if (!ib_test_need_model (model_path))
    return;
  grey_test ("imagebindthermal", "GRAY8", 37, 29, IMAGEBIND_MODALITY_THERMAL, FALSE);
  grey_test ("imagebindthermal", "GRAY16_LE", 40, 30, IMAGEBIND_MODALITY_THERMAL, FALSE);
}

/* ---- windowed: IMU and audio ---- */

/* Pushes @n_frames frames of @frame_bytes in random-sized buffers (1 .. max_chunk frames)
 * with timestamps from sample counting. */
static void
push_in_chunks (GstHarness * h, const guint8 * data, gsize n_frames, gsize frame_bytes,
    guint rate, gsize max_chunk, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  gsize done = 0;

  while (done < n_frames) {
    gsize r = (gsize) g_rand_int_range (rand, 1, (gint32) max_chunk + 1);
    gsize n = MIN (r, n_frames - done);
    GstBuffer *buf = gst_buffer_new_memdup (data + done * frame_bytes, n * frame_bytes);

    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (done, GST_SECOND, rate);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (done + n, GST_SECOND, rate) -
        GST_BUFFER_PTS (buf);
    if (done == 0)
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
    done += n;
  }
  g_rand_free (rand);
}

typedef struct {
  GstClockTime pts, duration;
  gfloat *vector;
} Got;

static GArray *
collect_metas (GstHarness * h, guint * n_buffers)
{
  GArray *got = g_array_new (FALSE, TRUE, sizeof (Got));
  GstBuffer *out;

  while ((out = gst_harness_try_pull (h))) {
    gpointer state = NULL;
    GstImageBindEmbeddingMeta *meta;

    if (n_buffers && gst_buffer_get_size (out) > 0)
      (*n_buffers)++;
    while ((meta = gst_buffer_iterate_imagebind_embedding_meta (out, &state))) {
      Got g = { meta->pts, meta->duration, g_memdup2 (meta->vector, out_dim * sizeof (gfloat)) };
      g_array_append_val (got, g);
    }
    gst_buffer_unref (out);
  }
  return got;
}

static void
got_free (GArray * got)
{
  guint i;

  for (i = 0; i < got->len; i++)
    g_free (g_array_index (got, Got, i).vector);
  g_array_unref (got);
}

static void
imu_reference (const gfloat * frames, gsize n, gfloat * out)
{
  ImageBindInputGeometry geometry;
  gfloat *tensor;
  gint64 shape[3];
  GError *err = NULL;

  imagebind_model_input_geometry (model, &geometry);
  tensor = g_new (gfloat, 6 * geometry.imu_num_samples);
  g_assert_true (imagebind_imu_to_tensor (geometry.imu_num_samples, frames, n, tensor, &err));
  g_assert_no_error (err);
  shape[0] = 1;
  shape[1] = 6;
  shape[2] = geometry.imu_num_samples;
  reference_embed (IMAGEBIND_MODALITY_IMU, tensor, shape, 3, out);
  g_free (tensor);
}

/* 100 Hz, 1 s windows, 3.5 s of samples in random buffer sizes: windows at 0, 1, 2 s and the
 * partial window [3 s, 3.5 s) at EOS, each equal to the runtime on the same samples, whatever
 * the buffer sizes. */
static void
test_imu_windows (void)
{
  const guint rate = 100, n = 350;
  gfloat *samples = g_new (gfloat, n * 6);
  gfloat *ref = g_new (gfloat, out_dim);
  GRand *rand = g_rand_new_with_seed (5);
  guint i, chunking;

  if (!ib_test_need_model (model_path))
    goto out;
  for (i = 0; i < n * 6; i++)
    samples[i] = (gfloat) g_rand_double_range (rand, -10.0, 10.0);

  for (chunking = 0; chunking < 3; chunking++) {
    GstHarness *h = encoder_harness ("imagebindimu",
        "audio/x-raw,format=F32LE,rate=100,channels=6,layout=interleaved", "sync", TRUE,
        "window", GST_SECOND, NULL);
    guint n_buffers = 0;
    GArray *got;
    static const gsize max_chunk[3] = { 1, 37, 400 };

    push_in_chunks (h, (const guint8 *) samples, n, 6 * sizeof (gfloat), rate,
        max_chunk[chunking], 11 + chunking);
    g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
    got = collect_metas (h, &n_buffers);
    g_assert_cmpuint (got->len, ==, 4);
    for (i = 0; i < 4; i++) {
      Got *g = &g_array_index (got, Got, i);
      gsize start = i * rate, len = MIN (rate, n - start);

      g_assert_cmpuint (g->pts, ==, i * GST_SECOND);
      g_assert_cmpuint (g->duration, ==, gst_util_uint64_scale (len, GST_SECOND, rate));
      imu_reference (samples + start * 6, len, ref);
      assert_vector_close (g->vector, ref);
    }
    got_free (got);
    gst_harness_teardown (h);
  }
out:
  g_rand_free (rand);
  g_free (samples);
  g_free (ref);
}

/* Overlapping windows (hop < window), and a flush resets the accumulator. */
static void
test_imu_hop_and_flush (void)
{
  const guint rate = 100;
  gfloat *samples = g_new0 (gfloat, 300 * 6);
  GstHarness *h;
  GArray *got;
  GstSegment segment;
  guint i;

  if (!ib_test_need_model (model_path)) {
    g_free (samples);
    return;
  }
  for (i = 0; i < 300 * 6; i++)
    samples[i] = (gfloat) ((i * 7919) % 101) / 10.0f;

  /* window 1 s, hop 0.5 s, 2.2 s: windows at 0, 0.5, 1.0 s; at EOS the tail [1.5, 2.2) */
  h = encoder_harness ("imagebindimu",
      "audio/x-raw,format=F32LE,rate=100,channels=6,layout=interleaved", "sync", TRUE,
      "window", GST_SECOND, "hop", GST_SECOND / 2, NULL);
  push_in_chunks (h, (const guint8 *) samples, 220, 6 * sizeof (gfloat), rate, 23, 1);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 4);
  for (i = 0; i < 3; i++)
    g_assert_cmpuint (g_array_index (got, Got, i).pts, ==, i * GST_SECOND / 2);
  g_assert_cmpuint (g_array_index (got, Got, 3).pts, ==, 3 * GST_SECOND / 2);
  g_assert_cmpuint (g_array_index (got, Got, 3).duration, ==, 700 * GST_MSECOND);
  got_free (got);
  gst_harness_teardown (h);

  /* 1.5 s, flush, then 0.8 s: no window from the mixed samples; 0.2 s more completes the
   * first window of the new segment. */
  h = encoder_harness ("imagebindimu",
      "audio/x-raw,format=F32LE,rate=100,channels=6,layout=interleaved", "sync", TRUE,
      "window", GST_SECOND, NULL);
  push_in_chunks (h, (const guint8 *) samples, 150, 6 * sizeof (gfloat), rate, 50, 2);
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  got_free (got);
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  for (i = 0; i < 2; i++) {
    gsize n = i == 0 ? 80 : 20;
    GstBuffer *buf = gst_buffer_new_memdup (samples + (i == 0 ? 0 : 80) * 6, n * 6 * 4);

    GST_BUFFER_PTS (buf) = 20 * GST_SECOND + (i == 0 ? 0 : 800 * GST_MSECOND);
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
    got = collect_metas (h, NULL);
    g_assert_cmpuint (got->len, ==, i);
    if (i == 1)
      g_assert_cmpuint (g_array_index (got, Got, 0).pts, ==, 20 * GST_SECOND);
    got_free (got);
  }
  gst_harness_teardown (h);
  g_free (samples);
}

static void
audio_reference (const gfloat * mono, gsize n, gfloat * out)
{
  ImageBindAudioParams params = imagebind_audio_params_from_model (model);
  gfloat *tensor = g_new (gfloat, params.clips * params.num_mel_bins * params.target_len);
  gint64 shape[5] = { 1, params.clips, 1, params.num_mel_bins, params.target_len };
  GError *err = NULL;

  g_assert_true (imagebind_audio_to_tensor (&params, mono, 1, n, tensor, &err));
  g_assert_no_error (err);
  reference_embed (IMAGEBIND_MODALITY_AUDIO, tensor, shape, 5, out);
  g_free (tensor);
}

/* 16 kHz stereo F32, 5 s in random buffer sizes: windows [0, 2), [2, 4) s and the partial
 * [4, 5) s at EOS, equal to the file-based front end (imagebind_audio_to_tensor, official
 * 3 clips) on channel 0 of the same samples. */
static void
test_audio_windows (void)
{
  const guint rate = 16000, n = 5 * 16000;
  gfloat *stereo, *mono, *ref;
  GRand *rand;
  guint i, chunking;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    return;
  stereo = g_new (gfloat, n * 2);
  mono = g_new (gfloat, n);
  ref = g_new (gfloat, out_dim);
  rand = g_rand_new_with_seed (9);
  for (i = 0; i < n; i++) {
    mono[i] = (gfloat) (0.3 * sin (i * 0.05) + g_rand_double_range (rand, -0.1, 0.1));
    stereo[2 * i] = mono[i];
    stereo[2 * i + 1] = (gfloat) g_rand_double_range (rand, -1, 1);
  }

  for (chunking = 0; chunking < 2; chunking++) {
    GstHarness *h = encoder_harness ("imagebindaudio",
        "audio/x-raw,format=F32LE,rate=16000,channels=2,layout=interleaved", "sync", TRUE,
        NULL);
    GArray *got;
    guint n_buffers = 0;
    static const gsize max_chunk[2] = { 1024, 40000 };

    push_in_chunks (h, (const guint8 *) stereo, n, 2 * sizeof (gfloat), rate,
        max_chunk[chunking], 21 + chunking);
    g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
    got = collect_metas (h, &n_buffers);
    g_assert_cmpuint (got->len, ==, 3);
    for (i = 0; i < 3; i++) {
      Got *g = &g_array_index (got, Got, i);
      gsize start = i * 2 * rate, len = MIN (2 * rate, n - start);

      g_assert_cmpuint (g->pts, ==, i * 2 * GST_SECOND);
      g_assert_cmpuint (g->duration, ==, gst_util_uint64_scale (len, GST_SECOND, rate));
      audio_reference (mono + start, len, ref);
      assert_vector_close (g->vector, ref);
    }
    got_free (got);
    gst_harness_teardown (h);
  }
  g_rand_free (rand);
  g_free (stereo);
  g_free (mono);
  g_free (ref);
}

/* S16LE, and a tail shorter than one 25 ms fbank frame is not embedded at EOS. */
static void
test_audio_short_tail (void)
{
  const guint n = 32000 + 300;  /* 2 s + 18.75 ms */
  gint16 *pcm;
  GstHarness *h;
  GArray *got;
  guint i;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    return;
  pcm = g_new (gint16, n);
  for (i = 0; i < n; i++)
    pcm[i] = (gint16) (8000 * sin (i * 0.01));
  h = encoder_harness ("imagebindaudio",
      "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved", "sync", TRUE, NULL);
  push_in_chunks (h, (const guint8 *) pcm, n, 2, 16000, 5000, 3);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpuint (g_array_index (got, Got, 0).duration, ==, 2 * GST_SECOND);
  got_free (got);
  gst_harness_teardown (h);
  g_free (pcm);
}

/* Buffers flagged GAP are silence (their bytes are not read): a window of GAP buffers with
 * garbage in them is embedded, and equals the front end on zeros. audiotestsrc wave=silence
 * produces such buffers. */
static void
test_audio_gap_is_silence (void)
{
  const guint n = 32000;
  gfloat *garbage, *zeros, *ref;
  GstHarness *h;
  GArray *got;
  guint i;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    return;
  garbage = g_new (gfloat, n);
  zeros = g_new0 (gfloat, n);
  ref = g_new (gfloat, out_dim);
  for (i = 0; i < n; i++)
    garbage[i] = (gfloat) sin (i * 0.3);
  h = encoder_harness ("imagebindaudio",
      "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", "sync", TRUE, NULL);
  for (i = 0; i < 4; i++) {
    GstBuffer *buf = gst_buffer_new_memdup (garbage + i * (n / 4), n / 4 * sizeof (gfloat));
    GST_BUFFER_PTS (buf) = i * GST_SECOND / 2;
    GST_BUFFER_DURATION (buf) = GST_SECOND / 2;
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  }
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpuint (g_array_index (got, Got, 0).pts, ==, 0);
  audio_reference (zeros, n, ref);
  assert_vector_close (g_array_index (got, Got, 0).vector, ref);
  got_free (got);
  gst_harness_teardown (h);
  g_free (garbage);
  g_free (zeros);
  g_free (ref);
}

/* Caps change mid-stream at the same rate (F32 mono -> S16 stereo): the window under way goes
 * on across it and equals the front end on the joined samples. */
static void
test_audio_caps_change (void)
{
  const gsize n_a = 24000, n_b = 16000;
  gfloat *a = g_new (gfloat, n_a), *mono = g_new (gfloat, n_a + n_b), *ref;
  gint16 *b = g_new (gint16, 2 * n_b);
  GstHarness *h;
  GstBuffer *buf;
  GArray *got;
  gsize i;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    goto out;
  for (i = 0; i < n_a; i++)
    mono[i] = a[i] = (gfloat) (0.5 * sin (i * 0.03));
  for (i = 0; i < n_b; i++) {
    b[2 * i] = (gint16) (10000 * cos (i * 0.07));
    b[2 * i + 1] = 1234;
    mono[n_a + i] = b[2 * i] / 32768.0f;
  }
  h = encoder_harness ("imagebindaudio",
      "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", "sync", TRUE, NULL);
  buf = gst_buffer_new_memdup (a, n_a * sizeof (gfloat));
  GST_BUFFER_PTS (buf) = 0;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  gst_harness_set_src_caps_str (h,
      "audio/x-raw,format=S16LE,rate=16000,channels=2,layout=interleaved,channel-mask=(bitmask)0x3");
  buf = gst_buffer_new_memdup (b, 2 * n_b * sizeof (gint16));
  GST_BUFFER_PTS (buf) = 1500 * GST_MSECOND;
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpuint (g_array_index (got, Got, 0).pts, ==, 0);
  ref = g_new (gfloat, out_dim);
  audio_reference (mono, 32000, ref);
  assert_vector_close (g_array_index (got, Got, 0).vector, ref);
  g_free (ref);
  got_free (got);
  gst_harness_teardown (h);
out:
  g_free (a);
  g_free (b);
  g_free (mono);
}

/* ---- states and model files ---- */

static void
test_state_cycling (void)
{
  GstElement *e;
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  e = gst_element_factory_make ("imagebindvision", NULL);
  g_object_set (e, "model", model_path, NULL);
  for (i = 0; i < 20; i++) {
    g_assert_cmpint (gst_element_set_state (e, GST_STATE_PLAYING), !=,
        GST_STATE_CHANGE_FAILURE);
    g_assert_cmpint (gst_element_set_state (e, GST_STATE_NULL), ==, GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (e);
}

/* Every element of the plugin through all states (the model set where there is one). */
static void
test_all_elements_states (void)
{
  static const GstState order[] = { GST_STATE_READY, GST_STATE_PAUSED, GST_STATE_PLAYING,
    GST_STATE_PAUSED, GST_STATE_READY, GST_STATE_NULL, GST_STATE_PLAYING, GST_STATE_NULL
  };
  GList *features, *l;
  guint n = 0;
  gchar *publish_path;

  if (!ib_test_need_model (model_path))
    return;
  publish_path = g_build_filename (g_get_tmp_dir (), "ib-test-states.jsonl", NULL);
  features = gst_registry_get_feature_list_by_plugin (gst_registry_get (), "imagebind");
  for (l = features; l; l = l->next) {
    GstElement *e;
    guint k;

    if (!GST_IS_ELEMENT_FACTORY (l->data))
      continue;
    e = gst_element_factory_create (GST_ELEMENT_FACTORY (l->data), NULL);
    g_assert_nonnull (e);
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (e), "model"))
      g_object_set (e, "model", model_path, NULL);
    /* the publisher needs a destination to start (it never writes to stdout unasked) */
    if (g_str_equal (GST_OBJECT_NAME (l->data), "imagebindpublish")) {
      gchar *uri = g_filename_to_uri (publish_path, NULL, NULL);
      g_object_set (e, "location", uri, NULL);
      g_free (uri);
    }
    for (k = 0; k < G_N_ELEMENTS (order); k++) {
      GstStateChangeReturn ret = gst_element_set_state (e, order[k]);
      if (ret == GST_STATE_CHANGE_FAILURE)
        g_error ("%s: change to %s failed", GST_OBJECT_NAME (l->data),
            gst_element_state_get_name (order[k]));
    }
    gst_object_unref (e);
    n++;
  }
  gst_plugin_feature_list_free (features);
  g_unlink (publish_path);
  g_free (publish_path);
  g_assert_cmpuint (n, >=, 4);
}

/* Elements using one file (also through another path) share one loaded model. */
static void
test_model_shared (void)
{
  GstElement *a, *b;
  gchar *dir, *link;

  if (!ib_test_need_model (model_path))
    return;
  dir = g_dir_make_tmp ("ib-plugin-XXXXXX", NULL);
  link = g_build_filename (dir, "alias.gguf", NULL);
  {
    gchar *abs = g_canonicalize_filename (model_path, NULL);
    g_assert_cmpint (symlink (abs, link), ==, 0);
    g_free (abs);
  }
  a = gst_element_factory_make ("imagebindvision", NULL);
  b = gst_element_factory_make ("imagebinddepth", NULL);
  g_object_set (a, "model", model_path, NULL);
  g_object_set (b, "model", link, NULL);
  g_assert_cmpint (gst_element_set_state (a, GST_STATE_READY), ==, GST_STATE_CHANGE_SUCCESS);
  g_assert_cmpint (gst_element_set_state (b, GST_STATE_READY), ==, GST_STATE_CHANGE_SUCCESS);
  g_assert_nonnull (gst_image_bind_encoder_get_model (GST_IMAGE_BIND_ENCODER (a)));
  g_assert_true (gst_image_bind_encoder_get_model (GST_IMAGE_BIND_ENCODER (a)) ==
      gst_image_bind_encoder_get_model (GST_IMAGE_BIND_ENCODER (b)));
  gst_element_set_state (a, GST_STATE_NULL);
  gst_element_set_state (b, GST_STATE_NULL);
  g_assert_null (gst_image_bind_encoder_get_model (GST_IMAGE_BIND_ENCODER (a)));
  gst_object_unref (a);
  gst_object_unref (b);
  g_unlink (link);
  g_rmdir (dir);
  g_free (link);
  g_free (dir);
}

/* The state change of @factory fails and the bus error names the file (and, when given,
 * @reason). */
static void
expect_element_model_error (const gchar * factory, const gchar * file,
    const gchar * must_contain, const gchar * reason)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *e = gst_element_factory_make (factory, NULL);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL;

  if (file)
    g_object_set (e, "model", file, NULL);
  gst_bin_add (GST_BIN (pipeline), e);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), ==,
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  gst_message_parse_error (msg, &err, &debug);
  g_test_message ("error: %s", err->message);
  g_assert_true (err->domain == GST_RESOURCE_ERROR);
  g_assert_nonnull (strstr (err->message, must_contain));
  if (reason)
    g_assert_nonnull (strstr (err->message, reason));
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  /* and the pipeline shuts down cleanly */
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_NULL), ==,
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

static void
expect_model_error (const gchar * file, const gchar * must_contain, const gchar * reason)
{
  expect_element_model_error ("imagebindvision", file, must_contain, reason);
}

static void
test_missing_and_bad_model (void)
{
  gchar *dir = g_dir_make_tmp ("ib-plugin-XXXXXX", NULL);
  gchar *bad = g_build_filename (dir, "garbage.gguf", NULL);
  gchar *missing = g_build_filename (dir, "missing.gguf", NULL);

  expect_model_error (missing, missing, "No such file");
  g_assert_true (g_file_set_contents (bad, "this is not a GGUF file at all", -1, NULL));
  expect_model_error (bad, bad, NULL);

  /* nothing configured and no default model installed */
  if (!g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED, G_FILE_TEST_EXISTS) &&
      !g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_EXISTS)) {
    g_unsetenv ("IMAGEBIND_MODEL");
    expect_model_error (NULL, "'model' property", GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED);
  }
  /* $IMAGEBIND_MODEL is used when the property is unset, and the error says it came from
   * there and how to change it */
  g_setenv ("IMAGEBIND_MODEL", missing, TRUE);
  expect_model_error (NULL, missing, "(from $IMAGEBIND_MODEL)");
  expect_model_error (NULL, "No such file", "Unset IMAGEBIND_MODEL");
  /* a directory says so, and names the model files in it */
  expect_model_error (dir, dir, "is a directory");
  expect_model_error (dir, "give the path of a .gguf file", "It holds garbage.gguf");
  g_setenv ("IMAGEBIND_MODEL", dir, TRUE);
  expect_model_error (NULL, "is a directory", "(from $IMAGEBIND_MODEL)");
  g_unsetenv ("IMAGEBIND_MODEL");

  g_unlink (bad);
  g_rmdir (dir);
  g_free (bad);
  g_free (missing);
  g_free (dir);
}

/* The lookup the elements and the tools share (imagebind_model_find()): the caller's path,
 * else $IMAGEBIND_MODEL, else the shipped default model where it is a regular file, each with
 * where it came from (which the error messages above name). */
static void
test_model_find (void)
{
  ImageBindModelOrigin origin;
  GError *err = NULL;
  gchar *path;

  g_setenv ("IMAGEBIND_MODEL", "/nowhere/env.gguf", TRUE);
  path = imagebind_model_find ("given.gguf", &origin, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (path, ==, "given.gguf");
  g_assert_cmpint (origin, ==, IMAGEBIND_MODEL_ORIGIN_GIVEN);
  g_assert_null (imagebind_model_origin_describe (origin));
  g_free (path);
  /* an empty setting is no setting (an unset property, `--model ''`) */
  path = imagebind_model_find ("", &origin, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (path, ==, "/nowhere/env.gguf");
  g_assert_cmpint (origin, ==, IMAGEBIND_MODEL_ORIGIN_ENVIRONMENT);
  g_assert_cmpstr (imagebind_model_origin_describe (origin), ==, "from $IMAGEBIND_MODEL");
  g_free (path);

  g_unsetenv ("IMAGEBIND_MODEL");
  path = imagebind_model_find (NULL, &origin, &err);
  if (g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED, G_FILE_TEST_IS_REGULAR)) {
    g_assert_cmpstr (path, ==, GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED);
    g_assert_cmpint (origin, ==, IMAGEBIND_MODEL_ORIGIN_INSTALLED);
  } else if (g_file_test (GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE, G_FILE_TEST_IS_REGULAR)) {
    g_assert_cmpstr (path, ==, GST_IMAGE_BIND_DEFAULT_MODEL_SOURCE);
    g_assert_cmpint (origin, ==, IMAGEBIND_MODEL_ORIGIN_SOURCE_TREE);
  } else {
    g_assert_null (path);
    g_assert_error (err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_nonnull (strstr (err->message, GST_IMAGE_BIND_DEFAULT_MODEL_INSTALLED));
    g_clear_error (&err);
  }
  g_assert_no_error (err);
  if (path)
    g_assert_cmpstr (imagebind_model_origin_describe (origin), ==, "the shipped default model");
  g_free (path);
}

/* The tiny model with only its IMU encoder, in a temporary file. */
static gchar *
write_imu_only_model (void)
{
  static const char *const modalities[] = { "imu", NULL };
  IbTestModelEdit edit = { .modalities = modalities };

  return ib_test_model_edit (model_path, &edit);
}

/* A model without the element's modality fails the state change, saying so; the element of
 * the modality it has works with it. */
static void
test_model_without_modality (void)
{
  gchar *path;
  GstElement *imu;

  if (!ib_test_need_model (model_path))
    return;
  path = write_imu_only_model ();
  expect_model_error (path, path, "(imagebind) has only imu tower; imagebindvision needs a vision tower");
  imu = gst_element_factory_make ("imagebindimu", NULL);
  g_object_set (imu, "model", path, NULL);
  g_assert_cmpint (gst_element_set_state (imu, GST_STATE_READY), ==, GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (imu, GST_STATE_NULL);
  gst_object_unref (imu);
  g_unlink (path);
  g_free (path);
}

/* Model files whose geometry no front end handles fail NULL->READY with the key
 * named, instead of aborting on a 417 TB allocation at the first audio window
 * (clips_per_video 4e9), allocating a 30000^2 tensor per depth frame (image_size 30000 in a
 * model without vision) or buffering audio forever (clip_duration 1e6). */
static void
test_hostile_model_geometry (void)
{
  static const char *const audio[] = { "audio", NULL }, *const depth[] = { "depth", NULL };
  static const IbTestKeyEdit clips = IB_TEST_U32 ("imagebind.audio.clips_per_video", 4000000000u);
  static const IbTestKeyEdit size = IB_TEST_U32 ("imagebind.vision.image_size", 30000);
  static const IbTestKeyEdit duration = IB_TEST_F32 ("imagebind.audio.clip_duration", 1e6f);
  const struct {
    const gchar *factory;
    const char *const *modalities;
    const IbTestKeyEdit *key;
    const gchar *reason;
  } cases[] = {
    { "imagebindaudio", audio, &clips, "imagebind.audio.clips_per_video is 4000000000" },
    { "imagebinddepth", depth, &size, "imagebind.vision.image_size 30000" },
    { "imagebindthermal", NULL, &size, "imagebind.vision.image_size 30000" },
    { "imagebindaudio", audio, &duration, "imagebind.audio.clip_duration is 1e+06 s" },
  };
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    IbTestModelEdit edit = { .modalities = cases[i].modalities, .keys = cases[i].key,
      .n_keys = 1 };
    gchar *path = ib_test_model_edit (model_path, &edit);

    expect_element_model_error (cases[i].factory, path, path, cases[i].reason);
    g_unlink (path);
    g_free (path);
  }
}

/* ---- timestamps and reverse playback of the windowed encoders ---- */

/* A mono F32 buffer of @n samples of @mono from @start at @pts (NONE allowed). */
static GstBuffer *
mono_buffer (const gfloat * mono, gsize start, gsize n, GstClockTime pts, gboolean discont)
{
  GstBuffer *buf = gst_buffer_new_memdup (mono + start, n * sizeof (gfloat));

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, 16000);
  if (discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  return buf;
}

static gfloat *
test_waveform (gsize n, guint32 seed)
{
  gfloat *mono = g_new (gfloat, n);
  GRand *rand = g_rand_new_with_seed (seed);
  gsize i;

  for (i = 0; i < n; i++)
    mono[i] = (gfloat) (0.3 * sin (i * 0.02 * (1 + i / 16000)) + g_rand_double_range (rand, -0.1,
            0.1));
  g_rand_free (rand);
  return mono;
}

/* Window @i of @got is at @pts, lasts @len samples and is the embedding of mono[start, +len). */
static void
assert_audio_window (GArray * got, guint i, GstClockTime pts, const gfloat * mono, gsize start,
    gsize len)
{
  Got *g = &g_array_index (got, Got, i);
  gfloat *ref = g_new (gfloat, out_dim);

  g_assert_cmpuint (g->pts, ==, pts);
  g_assert_cmpuint (g->duration, ==, gst_util_uint64_scale (len, GST_SECOND, 16000));
  audio_reference (mono + start, len, ref);
  assert_vector_close (g->vector, ref);
  g_free (ref);
}

static GstHarness *
audio_harness (void)
{
  return encoder_harness ("imagebindaudio",
      "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved", "sync", TRUE, NULL);
}

/* Reverse playback (a seek of rate -1): buffers come latest first, each flagged DISCONT as
 * reverse decoders do, and continue each other backwards. Windows are counted from the end:
 * [3, 5) s and [1, 3) s, then [0, 1) s at EOS, each the embedding of those samples in time
 * order (a DISCONT must not reset the window: in reverse, every buffer is one). */
static void
test_audio_reverse (void)
{
  const gsize n = 5 * 16000, chunk = 8000;
  gfloat *mono;
  GstHarness *h;
  GstSegment segment;
  GArray *got;
  gsize k;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    return;
  mono = test_waveform (n, 31);
  h = audio_harness ();
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.rate = -1.0;
  segment.stop = 5 * GST_SECOND;
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  for (k = n / chunk; k-- > 0;)
    g_assert_cmpint (gst_harness_push (h, mono_buffer (mono, k * chunk, chunk,
                gst_util_uint64_scale (k * chunk, GST_SECOND, 16000), TRUE)), ==, GST_FLOW_OK);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 3);
  assert_audio_window (got, 0, 3 * GST_SECOND, mono, 3 * 16000, 2 * 16000);
  assert_audio_window (got, 1, 1 * GST_SECOND, mono, 1 * 16000, 2 * 16000);
  assert_audio_window (got, 2, 0, mono, 0, 16000);
  got_free (got);
  gst_harness_teardown (h);
  g_free (mono);
}

/* Windows follow the buffers' timestamps (so that a first buffer without PTS does not make
 * every later embedding's PTS NONE, and a jump or a step back without DISCONT gave windows mixing the
 * samples on both sides, timed as if the stream had gone on):
 * - the first buffer has no PTS, the next ones do: the window is timed from them;
 * - a jump forward (to 10 s) and a step back (to 4 s), without DISCONT: a new window starts at
 *   the buffer's time, holding only samples after the jump;
 * - timestamps that wobble by 1 ms (within GST_IMAGE_BIND_WINDOW_TOLERANCE) keep the window. */
static void
test_audio_timestamps (void)
{
  const gsize n = 4 * 16000, chunk = 8000;
  gfloat *mono;
  GstHarness *h;
  GArray *got;
  gsize k;

  if (!ib_test_need_model (model_path) || !have_element ("imagebindaudio"))
    return;
  mono = test_waveform (n, 37);

  /* no PTS on the first buffer, then 10.5 s, 11 s, ...: the window is at 10 s */
  h = audio_harness ();
  for (k = 0; k < 5; k++)
    g_assert_cmpint (gst_harness_push (h, mono_buffer (mono, k * chunk, chunk,
                k == 0 ? GST_CLOCK_TIME_NONE : 10 * GST_SECOND + k * GST_SECOND / 2, FALSE)),
        ==, GST_FLOW_OK);
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  assert_audio_window (got, 0, 10 * GST_SECOND, mono, 0, 2 * 16000);
  got_free (got);
  gst_harness_teardown (h);

  /* 1.5 s from 0, then a jump to 10 s; 1.5 s from 20 s, then a step back to 4 s: each time the
   * window restarts at the buffer (2 s after it: one window) */
  for (k = 0; k < 2; k++) {
    GstClockTime before = k == 0 ? 0 : 20 * GST_SECOND, after = k == 0 ? 10 * GST_SECOND :
        4 * GST_SECOND;
    gsize j;

    h = audio_harness ();
    for (j = 0; j < 3; j++)
      gst_harness_push (h, mono_buffer (mono, j * chunk, chunk, before + j * GST_SECOND / 2,
              FALSE));
    for (j = 0; j < 4; j++)
      gst_harness_push (h, mono_buffer (mono, 16000 + j * chunk, chunk,
              after + j * GST_SECOND / 2, FALSE));
    got = collect_metas (h, NULL);
    g_assert_cmpuint (got->len, ==, 1);
    assert_audio_window (got, 0, after, mono, 16000, 2 * 16000);
    got_free (got);
    gst_harness_teardown (h);
  }

  /* 1 ms of jitter: one window over all the samples, timed by the buffers (the window follows
   * the latest timestamp, so its time is within the jitter of 1 s) */
  h = audio_harness ();
  for (k = 0; k < 4; k++)
    gst_harness_push (h, mono_buffer (mono, k * chunk, chunk,
            GST_SECOND + k * GST_SECOND / 2 + (k % 2 ? GST_MSECOND : 0), FALSE));
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 1);
  {
    Got *g = &g_array_index (got, Got, 0);
    gfloat *ref = g_new (gfloat, out_dim);

    g_assert_cmpuint (g->pts, >=, GST_SECOND);
    g_assert_cmpuint (g->pts, <=, GST_SECOND + GST_MSECOND);
    g_assert_cmpuint (g->duration, ==, 2 * GST_SECOND);
    audio_reference (mono, 2 * 16000, ref);
    assert_vector_close (g->vector, ref);
    g_free (ref);
  }
  got_free (got);
  gst_harness_teardown (h);
  g_free (mono);
}

/* Reverse playback of video: `interval` spaces embeddings by |pts difference|, whichever way
 * time goes (were the next due time only ever later, only the first frame would be
 * embedded). Frames at 900, 800, ..., 0 ms with interval 250 ms: embedded at
 * 900, 600, 300 and 0 ms. */
static void
test_vision_reverse_interval (void)
{
  GstHarness *h;
  GstSegment segment;
  GArray *got;
  gint k;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=RGB,width=32,height=24,framerate=10/1", "sync", TRUE,
      "interval", 250 * GST_MSECOND, NULL);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.rate = -1.0;
  segment.stop = GST_SECOND;
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  for (k = 9; k >= 0; k--) {
    GstBuffer *buf = random_buffer (32 * 24 * 3, k);

    GST_BUFFER_PTS (buf) = k * 100 * GST_MSECOND;
    GST_BUFFER_DURATION (buf) = 100 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  }
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 4);
  for (k = 0; k < 4; k++)
    g_assert_cmpuint (g_array_index (got, Got, k).pts, ==, (900 - 300 * k) * GST_MSECOND);
  got_free (got);
  gst_harness_teardown (h);
}

/* Whether a buffer pushed after @caps is refused as not negotiated. */
static GstFlowReturn
push_after_caps (const gchar * factory, const gchar * caps, gsize size)
{
  GstHarness *h = encoder_harness (factory, caps, "sync", TRUE, NULL);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  GstFlowReturn ret;

  gst_buffer_memset (buf, 0, 0, size);
  GST_BUFFER_PTS (buf) = 0;
  ret = gst_harness_push (h, buf);
  gst_harness_teardown (h);
  return ret;
}

/* Caps the front ends cannot handle (video up to 2^31 wide, audio at any rate) are refused at
 * negotiation, rather than failing at the first buffer (or allocating a window the size of
 * the rate). The pad
 * templates now stop at 32768 pixels per side and 768 kHz, and an IMU window that cannot be
 * held is refused when the caps are set, with a message saying what to change. */
static void
test_caps_limits (void)
{
  static const gchar *video[] = { "imagebindvision", "imagebinddepth", "imagebindthermal" };
  GstElement *e;
  GstCaps *caps;
  GstStructure *s;
  const GValue *width;
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  for (i = 0; i < G_N_ELEMENTS (video); i++) {
    const gchar *format = i == 0 ? "RGB" : "GRAY8";
    gchar *ok = g_strdup_printf ("video/x-raw,format=%s,width=32,height=24,framerate=1/1", format);
    gchar *wide = g_strdup_printf ("video/x-raw,format=%s,width=40000,height=2,framerate=1/1",
        format);
    GstPad *pad;

    e = gst_element_factory_make (video[i], NULL);
    pad = gst_element_get_static_pad (e, "sink");
    caps = gst_pad_query_caps (pad, NULL);
    s = gst_caps_get_structure (caps, 0);
    width = gst_structure_get_value (s, "width");
    g_assert_cmpint (gst_value_get_int_range_max (width), ==, IMAGEBIND_IMAGE_MAX_SIDE);
    g_assert_cmpint (gst_value_get_int_range_max (gst_structure_get_value (s, "height")), ==,
        IMAGEBIND_IMAGE_MAX_SIDE);
    gst_caps_unref (caps);
    gst_object_unref (pad);
    gst_object_unref (e);
    g_assert_cmpint (push_after_caps (video[i], wide, 40000 * 2 * 3), ==,
        GST_FLOW_NOT_NEGOTIATED);
    g_assert_cmpint (push_after_caps (video[i], ok, 32 * 24 * 3), ==, GST_FLOW_OK);
    g_free (ok);
    g_free (wide);
  }

  if (have_element ("imagebindaudio")) {
    g_assert_cmpint (push_after_caps ("imagebindaudio",
            "audio/x-raw,format=F32LE,rate=1000000,channels=1,layout=interleaved", 4000), ==,
        GST_FLOW_NOT_NEGOTIATED);
    g_assert_cmpint (push_after_caps ("imagebindaudio",
            "audio/x-raw,format=F32LE,rate=768000,channels=1,layout=interleaved", 4000), ==,
        GST_FLOW_OK);
  }

  /* IMU: 10 s at 2 MHz is 2e7 samples of 6 floats: refused with a message */
  {
    GstBus *bus = gst_bus_new ();
    GstHarness *h;
    GstBuffer *buf;
    GstMessage *msg;
    GError *err = NULL;

    e = gst_element_factory_make ("imagebindimu", NULL);
    g_object_set (e, "model", model_path, "sync", TRUE, NULL);
    gst_element_set_bus (e, bus);
    h = gst_harness_new_with_element (e, "sink", "src");
    gst_harness_set_src_caps_str (h,
        "audio/x-raw,format=F32LE,rate=2000000,channels=6,layout=interleaved");
    buf = gst_buffer_new_allocate (NULL, 6 * 4 * 10, NULL);
    gst_buffer_memset (buf, 0, 0, 6 * 4 * 10);
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_NOT_NEGOTIATED);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    g_assert_nonnull (msg);
    gst_message_parse_error (msg, &err, NULL);
    g_test_message ("%s", err->message);
    g_assert_nonnull (strstr (err->message, "lower the 'window' property"));
    g_clear_error (&err);
    gst_message_unref (msg);
    gst_harness_teardown (h);
    gst_element_set_bus (e, NULL);
    gst_object_unref (e);
    gst_object_unref (bus);
  }
}

/* NaN (or infinite) weights: the first embedding posts one STREAM error naming the cause and
 * the flow returns ERROR; later buffers return ERROR without another message. Sync and live
 * mode (NaN vectors must never go downstream as metas). */
static void
test_nan_weights (void)
{
  IbTestModelEdit edit = { .fill_tensors = "modality_heads.vision", .fill_value = NAN };
  gchar *path;
  guint sync;

  if (!ib_test_need_model (model_path))
    return;
  path = ib_test_model_edit (model_path, &edit);
  for (sync = 0; sync < 2; sync++) {
    GstElement *e = gst_element_factory_make ("imagebindvision", NULL);
    GstBus *bus = gst_bus_new ();
    GstHarness *h;
    GstFlowReturn ret = GST_FLOW_OK;
    GstMessage *msg;
    GError *err = NULL;
    guint i;

    g_object_set (e, "model", path, "n-threads", 1, "sync", (gboolean) sync, NULL);
    gst_element_set_bus (e, bus);
    h = gst_harness_new_with_element (e, "sink", "src");
    gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=32,height=24,framerate=30/1");
    /* live mode: the error of the worker comes with one of the next buffers */
    for (i = 0; i < 2000 && ret == GST_FLOW_OK; i++) {
      GstBuffer *buf = random_buffer (32 * 24 * 3, i);
      GST_BUFFER_PTS (buf) = i * GST_MSECOND;
      ret = gst_harness_push (h, buf);
      if (ret == GST_FLOW_OK)
        g_usleep (1000);
    }
    g_assert_cmpint (ret, ==, GST_FLOW_ERROR);
    for (i = 0; i < 3; i++) {
      GstBuffer *buf = random_buffer (32 * 24 * 3, i);
      GST_BUFFER_PTS (buf) = GST_SECOND + i * GST_MSECOND;
      g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_ERROR);
    }
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    g_assert_nonnull (msg);
    gst_message_parse_error (msg, &err, NULL);
    g_test_message ("%s", err->message);
    g_assert_error (err, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED);
    g_assert_nonnull (strstr (err->message, "non-finite embedding"));
    g_clear_error (&err);
    gst_message_unref (msg);
    g_assert_null (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR));
    /* no NaN went downstream */
    g_assert_cmpuint (drain_count_metas (h, NULL), ==, 0);
    gst_harness_teardown (h);
    gst_element_set_bus (e, NULL);
    gst_object_unref (e);
    gst_object_unref (bus);
  }
  g_unlink (path);
  g_free (path);
}

/* A CLIP-family file (vision and text towers only; here the tiny model's two towers
 * marked as OpenCLIP) is refused by the elements of the other towers when the model is
 * loaded, naming the file and what it holds. */
static void
test_clip_model_other_towers (void)
{
  static const gchar *const elements[][2] = {
    { "imagebindaudio", "an audio" }, { "imagebinddepth", "a depth" },
    { "imagebindthermal", "a thermal" }, { "imagebindimu", "an imu" },
  };
  IbTestKeyEdit family = IB_TEST_STR ("imagebind.source_family", "openclip");
  gchar *path;

  if (!ib_test_need_model (model_path))
    return;
  path = ib_test_clip_variant (model_path, &family, 1);
  for (guint i = 0; i < G_N_ELEMENTS (elements); i++) {
    gchar *want = g_strdup_printf ("model %s (openclip) has only vision and text towers; %s "
        "needs %s tower.", path, elements[i][0], elements[i][1]);
    expect_element_model_error (elements[i][0], path, want, NULL);
    g_free (want);
  }
  g_unlink (path);
  g_free (path);
}

/* ---- scheduling and statistics ---- */

/* Answers the encoder's latency query in place of the harness (which says "live"), so that a
 * test can stand for a file (not live) upstream. */
static GstPadProbeReturn
answer_not_live (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  GstQuery *query = GST_PAD_PROBE_INFO_QUERY (info);

  if (GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return GST_PAD_PROBE_OK;
  gst_query_set_latency (query, FALSE, 0, GST_CLOCK_TIME_NONE);
  return GST_PAD_PROBE_HANDLED;
}

static void
make_upstream_not_live (GstHarness * h)
{
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");

  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_QUERY_UPSTREAM, answer_not_live, NULL, NULL);
  gst_object_unref (sink);
}

/* A bus on the harnessed element, to read its messages. */
static GstBus *
harness_bus (GstHarness * h)
{
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (h->element, bus);
  return bus;
}

/* The stats messages posted so far, in order (gst_structure_free each). */
static GPtrArray *
stats_messages (GstBus * bus)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    if (gst_message_has_name (msg, "imagebind-encoder-stats"))
      g_ptr_array_add (list, gst_structure_copy (gst_message_get_structure (msg)));
    gst_message_unref (msg);
  }
  return list;
}

static void
assert_stats (const GstStructure * s, const gchar * mode, guint64 embedded, guint64 skipped,
    gboolean eos)
{
  guint64 got_embedded, got_skipped, elapsed, mean, max;
  gboolean got_eos;
  gdouble eps;

  g_assert_cmpstr (gst_structure_get_string (s, "mode"), ==, mode);
  g_assert_cmpstr (gst_structure_get_string (s, "modality"), ==, "vision");
  g_assert_true (gst_structure_get (s, "embedded", G_TYPE_UINT64, &got_embedded,
          "skipped", G_TYPE_UINT64, &got_skipped, "elapsed", G_TYPE_UINT64, &elapsed,
          "embeddings-per-second", G_TYPE_DOUBLE, &eps,
          "mean-inference-time", G_TYPE_UINT64, &mean,
          "max-inference-time", G_TYPE_UINT64, &max, "eos", G_TYPE_BOOLEAN, &got_eos, NULL));
  g_assert_cmpuint (got_embedded, ==, embedded);
  g_assert_cmpuint (got_skipped, ==, skipped);
  g_assert_cmpint (got_eos, ==, eos);
  g_assert_cmpuint (mean, <=, max);
  g_assert_true (gst_structure_has_field_typed (s, "running-time", G_TYPE_UINT64));
  if (eos && embedded > 0) {
    g_assert_cmpuint (elapsed, >, 0);
    g_assert_cmpuint (mean, >, 0);
    /* embeddings per second over the run, as the fields say */
    g_assert_cmpfloat_with_epsilon (eps, (gdouble) embedded * GST_SECOND / elapsed,
        1e-9 * eps);
  }
}

/* sync=auto (the default) with a file-like (not live) upstream: every frame is embedded on the
 * streaming thread, with a model slower than the frame rate, and carries its own embedding,
 * equal to the runtime's; the same on a second run. Stats: a message after each buffer with
 * stats-interval=1 ns, and the totals at EOS (embedded 8, skipped 0, mode "sync"). */
static void
test_auto_not_live (void)
{
  gfloat *runs[2], *ref = g_new (gfloat, out_dim);
  guint run, i;
  const guint n = 8;

  if (!ib_test_need_model (model_path)) {
    g_free (ref);
    return;
  }
  for (run = 0; run < 2; run++) {
    GstHarness *h = encoder_harness ("imagebindvision",
        "video/x-raw,format=RGB,width=32,height=32,framerate=25/1",
        "simulate-latency", (guint64) 20 * GST_MSECOND, "stats-interval", (guint64) 1, NULL);
    GstBus *bus = harness_bus (h);
    GPtrArray *stats;
    guint64 mean;

    make_upstream_not_live (h);
    runs[run] = g_new (gfloat, (gsize) n * out_dim);
    for (i = 0; i < n; i++) {
      GstBuffer *buf = random_buffer (32 * 32 * 3, 300 + i), *out;
      GstImageBindEmbeddingMeta *meta;
      GstMapInfo map;

      GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
      GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
      gst_buffer_map (buf, &map, GST_MAP_READ);
      vision_reference (map.data, 32, 32, 32 * 3, ref);
      gst_buffer_unmap (buf, &map);
      g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
      out = gst_harness_pull (h);
      g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 1);
      meta = gst_buffer_get_imagebind_embedding_meta (out);
      g_assert_cmpuint (meta->pts, ==, GST_BUFFER_PTS (out));
      assert_vector_close (meta->vector, ref);
      memcpy (runs[run] + (gsize) i * out_dim, meta->vector, out_dim * sizeof (gfloat));
      gst_buffer_unref (out);
    }
    g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));

    stats = stats_messages (bus);
    /* one per buffer (more than 1 ns since the previous), then the totals */
    g_assert_cmpuint (stats->len, ==, n + 1);
    for (i = 0; i < n; i++)
      assert_stats (stats->pdata[i], "sync", i + 1, 0, FALSE);
    assert_stats (stats->pdata[n], "sync", n, 0, TRUE);
    g_assert_true (gst_structure_get_uint64 (stats->pdata[n], "mean-inference-time", &mean));
    g_assert_cmpuint (mean, >=, 20 * GST_MSECOND);
    g_ptr_array_unref (stats);
    gst_element_set_bus (h->element, NULL);
    gst_object_unref (bus);
    gst_harness_teardown (h);
  }
  /* deterministic: bit for bit the same on the second run */
  g_assert_cmpmem (runs[0], n * out_dim * sizeof (gfloat), runs[1],
      n * out_dim * sizeof (gfloat));
  g_free (runs[0]);
  g_free (runs[1]);
  g_free (ref);
}

/* sync=auto with a live upstream (the harness says live): the worker, never a stall; each
 * frame is embedded or counted as skipped; at EOS embedded + skipped = frames. */
static void
test_auto_live_counts_skipped (void)
{
  GstHarness *h;
  GstBus *bus;
  GPtrArray *stats;
  guint64 embedded, skipped;
  guint i, n_metas;
  const guint n = 10;

  if (!ib_test_need_model (model_path))
    return;
  h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1",
      "simulate-latency", (guint64) 300 * GST_MSECOND, "stats-interval", (guint64) 0, NULL);
  bus = harness_bus (h);
  for (i = 0; i < n; i++) {
    GstBuffer *buf = random_buffer (16 * 16, 400 + i);
    GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  }
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  n_metas = drain_count_metas (h, NULL);

  stats = stats_messages (bus);
  g_assert_cmpuint (stats->len, ==, 1);     /* stats-interval 0: only the totals */
  g_assert_true (gst_structure_get (stats->pdata[0], "embedded", G_TYPE_UINT64, &embedded,
          "skipped", G_TYPE_UINT64, &skipped, NULL));
  g_test_message ("live: %" G_GUINT64_FORMAT " embedded, %" G_GUINT64_FORMAT " skipped",
      embedded, skipped);
  g_assert_cmpuint (embedded, >=, 1);
  g_assert_cmpuint (skipped, >=, 1);
  g_assert_cmpuint (embedded + skipped, ==, n);
  g_assert_cmpuint (n_metas, ==, embedded);
  assert_stats (stats->pdata[0], "worker", embedded, skipped, TRUE);
  g_ptr_array_unref (stats);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

/* Which of 12 frames 40 ms apart carry an embedding (sync mode). */
static guint
frames_embedded (guint inference_interval, guint64 interval, gboolean with_meta[12])
{
  GstHarness *h = encoder_harness ("imagebindvision",
      "video/x-raw,format=GRAY8,width=16,height=16,framerate=25/1", "sync", TRUE,
      "inference-interval", inference_interval, "interval", interval, NULL);
  guint i, n = 0;

  for (i = 0; i < 12; i++) {
    GstBuffer *buf = random_buffer (16 * 16, 500 + i), *out;

    GST_BUFFER_PTS (buf) = i * 40 * GST_MSECOND;
    g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
    out = gst_harness_pull (h);
    with_meta[i] = gst_buffer_get_n_imagebind_embedding_metas (out) > 0;
    n += with_meta[i];
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
  return n;
}

/* inference-interval=N: every Nth frame; with interval both must allow the frame. */
static void
test_inference_interval (void)
{
  gboolean with_meta[12];
  guint i;

  if (!ib_test_need_model (model_path))
    return;
  /* every 3rd frame */
  g_assert_cmpuint (frames_embedded (3, 0, with_meta), ==, 4);
  for (i = 0; i < 12; i++)
    g_assert_cmpint (with_meta[i], ==, i % 3 == 0);
  /* every 2nd frame, at least 100 ms apart: the interval decides (0, 120, 240, 360 ms) */
  g_assert_cmpuint (frames_embedded (2, 100 * GST_MSECOND, with_meta), ==, 4);
  for (i = 0; i < 12; i++)
    g_assert_cmpint (with_meta[i], ==, i % 3 == 0);
  /* every 4th frame, at least 100 ms apart: the count decides (0, 160, 320 ms) */
  g_assert_cmpuint (frames_embedded (4, 100 * GST_MSECOND, with_meta), ==, 3);
  for (i = 0; i < 12; i++)
    g_assert_cmpint (with_meta[i], ==, i % 4 == 0);
}

/* inference-interval counts windows for windowed modalities: of the IMU windows at 0, 1, 2 s
 * every 2nd is embedded, and the partial window at EOS as always. */
static void
test_inference_interval_windows (void)
{
  const guint rate = 100, n = 350;
  gfloat *samples = g_new (gfloat, n * 6);
  GstHarness *h;
  GArray *got;
  guint i;

  if (!ib_test_need_model (model_path)) {
    g_free (samples);
    return;
  }
  for (i = 0; i < n * 6; i++)
    samples[i] = (gfloat) ((i * 31) % 17) - 8.0f;
  h = encoder_harness ("imagebindimu",
      "audio/x-raw,format=F32LE,rate=100,channels=6,layout=interleaved", "sync", TRUE,
      "window", GST_SECOND, "inference-interval", 2, NULL);
  push_in_chunks (h, (const guint8 *) samples, n, 6 * sizeof (gfloat), rate, 50, 3);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  got = collect_metas (h, NULL);
  g_assert_cmpuint (got->len, ==, 3);
  g_assert_cmpuint (g_array_index (got, Got, 0).pts, ==, 0);
  g_assert_cmpuint (g_array_index (got, Got, 1).pts, ==, 2 * GST_SECOND);
  g_assert_cmpuint (g_array_index (got, Got, 2).pts, ==, 3 * GST_SECOND);
  got_free (got);
  gst_harness_teardown (h);
  g_free (samples);
}

/* The `sync` enum keeps the boolean spellings: TRUE/FALSE from C, "true"/"false" from
 * gst-launch; the default is auto. */
static void
test_sync_property (void)
{
  GstElement *e = gst_element_factory_make ("imagebindvision", NULL);
  gint sync = -1;

  g_assert_nonnull (e);
  g_object_get (e, "sync", &sync, NULL);
  g_assert_cmpint (sync, ==, GST_IMAGE_BIND_ENCODER_SYNC_AUTO);
  g_object_set (e, "sync", TRUE, NULL);
  g_object_get (e, "sync", &sync, NULL);
  g_assert_cmpint (sync, ==, GST_IMAGE_BIND_ENCODER_SYNC_TRUE);
  gst_util_set_object_arg (G_OBJECT (e), "sync", "false");
  g_object_get (e, "sync", &sync, NULL);
  g_assert_cmpint (sync, ==, GST_IMAGE_BIND_ENCODER_SYNC_FALSE);
  gst_util_set_object_arg (G_OBJECT (e), "sync", "auto");
  g_object_get (e, "sync", &sync, NULL);
  g_assert_cmpint (sync, ==, GST_IMAGE_BIND_ENCODER_SYNC_AUTO);
  gst_object_unref (e);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  if (argc > 1 && g_file_test (argv[1], G_FILE_TEST_EXISTS)) {
    model_path = argv[1];
    ctx = ib_test_open_model (model_path, &model);
    out_dim = imagebind_model_out_dim (model);
  }

  g_test_add_func ("/encoders/vision/sync-equals-runtime", test_vision_sync_equals_runtime);
  g_test_add_func ("/encoders/vision/caps", test_vision_caps);
  g_test_add_func ("/encoders/vision/interval", test_vision_interval);
  g_test_add_func ("/encoders/vision/segment-times", test_vision_segment_times);
  g_test_add_func ("/encoders/vision/live-slow-model", test_vision_live_slow_model);
  g_test_add_func ("/encoders/vision/live-newest-waits", test_vision_live_newest_waits);
  g_test_add_func ("/encoders/vision/live-results", test_vision_live_results);
  g_test_add_func ("/encoders/vision/live-flush", test_vision_live_flush);
  g_test_add_func ("/encoders/vision/caps-change", test_vision_caps_change);
  g_test_add_func ("/encoders/vision/custom-meta", test_vision_custom_meta);
  g_test_add_func ("/encoders/latency", test_latency);
  g_test_add_func ("/encoders/auto/not-live", test_auto_not_live);
  g_test_add_func ("/encoders/auto/live-counts-skipped", test_auto_live_counts_skipped);
  g_test_add_func ("/encoders/inference-interval", test_inference_interval);
  g_test_add_func ("/encoders/inference-interval-windows", test_inference_interval_windows);
  g_test_add_func ("/encoders/sync-property", test_sync_property);
  g_test_add_func ("/encoders/depth", test_depth);
  g_test_add_func ("/encoders/thermal", test_thermal);
  g_test_add_func ("/encoders/imu/windows", test_imu_windows);
  g_test_add_func ("/encoders/imu/hop-and-flush", test_imu_hop_and_flush);
  g_test_add_func ("/encoders/audio/windows", test_audio_windows);
  g_test_add_func ("/encoders/audio/short-tail", test_audio_short_tail);
  g_test_add_func ("/encoders/audio/gap-is-silence", test_audio_gap_is_silence);
  g_test_add_func ("/encoders/audio/caps-change", test_audio_caps_change);
  g_test_add_func ("/encoders/state-cycling", test_state_cycling);
  g_test_add_func ("/encoders/all-elements-states", test_all_elements_states);
  g_test_add_func ("/encoders/model-shared", test_model_shared);
  g_test_add_func ("/encoders/missing-and-bad-model", test_missing_and_bad_model);
  g_test_add_func ("/encoders/model-find", test_model_find);
  g_test_add_func ("/encoders/model-without-modality", test_model_without_modality);
  g_test_add_func ("/encoders/hostile-model-geometry", test_hostile_model_geometry);
  g_test_add_func ("/encoders/nan-weights", test_nan_weights);
  g_test_add_func ("/encoders/caps-limits", test_caps_limits);
  g_test_add_func ("/encoders/audio/reverse", test_audio_reverse);
  g_test_add_func ("/encoders/audio/timestamps", test_audio_timestamps);
  g_test_add_func ("/encoders/vision/reverse-interval", test_vision_reverse_interval);
  g_test_add_func ("/encoders/clip-model-other-towers", test_clip_model_other_towers);
  ret = g_test_run ();

  g_clear_pointer (&ctx, imagebind_context_free);
  g_clear_pointer (&model, imagebind_model_unref);
  return ret;
}
