/* imagebindoverlay: frames rendered through the element (GstHarness, match metas and region
 * metas attached by the test; and a pipeline with the tiny model), their pixels compared with
 * the input: where the panel, a bar, a highlight or a region box must be drawn they differ,
 * everywhere else they are identical. The composition meta instead of blending when downstream
 * takes it; wrong caps refused; results held until the next, cleared by flushes.
 *
 * Usage: test-overlay [model.gguf] [gstreamer plugins dir]; the pipeline test skips without
 * them. It writes the frame it checks to test-overlay-frame.png (current directory) to look at. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <gst/app/gstappsink.h>
#include <cairo.h>
#include <string.h>

#include "common.h"
#include "gstimagebindmatchmeta.h"
#include "gstimagebindroi.h"

#define W 320
#define H 240
#define GREY 0x40
#define CAPS "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1"

static const gchar *model_path;

/* What changed between an input frame (uniform GREY) and an output frame. */
typedef struct {
  guint changed;
  gint x0, y0, x1, y1;          /* bounding box of changed pixels, x1/y1 exclusive */
  guint blue;                   /* pixels of the bar colour (0.25, 0.6, 1.0) at full opacity */
  guint amber;                  /* pixels of the detection colour (1.0, 0.75, 0.0) */
} Diff;

static GstBuffer *
grey_frame (void)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, W * H * 4, NULL);
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i += 4) {
    map.data[i] = map.data[i + 1] = map.data[i + 2] = GREY;
    map.data[i + 3] = 0xff;
  }
  gst_buffer_unmap (buf, &map);
  return buf;
}

static Diff
diff_frame (GstBuffer * buf)
{
  Diff d = { 0, W, H, 0, 0, 0, 0 };
  GstMapInfo map;

  g_assert_true (gst_buffer_map (buf, &map, GST_MAP_READ));
  g_assert_cmpuint (map.size, ==, W * H * 4);
  for (gint y = 0; y < H; y++) {
    for (gint x = 0; x < W; x++) {
      const guint8 *p = map.data + (y * W + x) * 4;     /* B G R x */

      if (p[0] == GREY && p[1] == GREY && p[2] == GREY)
        continue;
      d.changed++;
      d.x0 = MIN (d.x0, x);
      d.y0 = MIN (d.y0, y);
      d.x1 = MAX (d.x1, x + 1);
      d.y1 = MAX (d.y1, y + 1);
      if (p[0] >= 250 && ABS (p[1] - 153) <= 2 && ABS (p[2] - 64) <= 2)
        d.blue++;
      if (p[0] <= 2 && ABS (p[1] - 191) <= 2 && p[2] >= 250)
        d.amber++;
    }
  }
  gst_buffer_unmap (buf, &map);
  return d;
}

static gboolean
pixel_is_grey (GstBuffer * buf, gint x, gint y)
{
  GstMapInfo map;
  gboolean grey;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  grey = map.data[(y * W + x) * 4] == GREY && map.data[(y * W + x) * 4 + 1] == GREY &&
      map.data[(y * W + x) * 4 + 2] == GREY;
  gst_buffer_unmap (buf, &map);
  return grey;
}

static void
add_match (GstBuffer * buf, GstImageBindMatchMode mode, const gdouble * scores,
    const gboolean * detected, guint n)
{
  static const gchar *labels[] = { "a bouncing ball", "colour bars", "static noise", "snow" };
  GstImageBindMatchResult results[4];

  g_assert_cmpuint (n, <=, 4);
  for (guint i = 0; i < n; i++) {
    results[i].index = i;
    results[i].label = (gchar *) labels[i];
    results[i].probability = scores[i];
    results[i].cosine = scores[i];
    results[i].detected = detected ? detected[i] : FALSE;
  }
  g_assert_nonnull (gst_buffer_add_imagebind_match_meta (buf, GST_IMAGE_BIND_MODALITY_VISION,
          mode, results, n));
}

static GstHarness *
new_overlay (void)
{
  GstHarness *h = gst_harness_new ("imagebindoverlay");

  gst_harness_set_src_caps_str (h, CAPS);
  return h;
}

/* Pushes @buf (taken) through @h and returns the diff of the output with the grey input. */
static Diff
render (GstHarness * h, GstBuffer * buf)
{
  GstBuffer *out;
  Diff d;

  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_nonnull (out);
  d = diff_frame (out);
  gst_buffer_unref (out);
  return d;
}

static Diff
render_match (GstHarness * h, GstImageBindMatchMode mode, const gdouble * scores,
    const gboolean * detected, guint n)
{
  GstBuffer *buf = grey_frame ();

  add_match (buf, mode, scores, detected, n);
  return render (h, buf);
}

static void
test_untouched_without_result (void)
{
  GstHarness *h = new_overlay ();
  Diff d = render (h, grey_frame ());

  g_assert_cmpuint (d.changed, ==, 0);
  gst_harness_teardown (h);
}

static void
test_panel (void)
{
  static const gdouble scores[] = { 0.7, 0.2, 0.1 };
  GstHarness *h = new_overlay ();
  Diff d3, d1, held, wide, br;

  /* top-left by default, 8 pixels from the edges; the translucent background changes every
   * pixel of the panel, so the changed box is the panel */
  d3 = render_match (h, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, scores, NULL, 3);
  g_test_message ("panel of 3 rows: %d,%d-%d,%d, %u changed, %u bar pixels", d3.x0, d3.y0,
      d3.x1, d3.y1, d3.changed, d3.blue);
  g_assert_cmpint (d3.x0, ==, 8);
  g_assert_cmpint (d3.y0, ==, 8);
  g_assert_cmpint (d3.x1, <, W);
  g_assert_cmpint (d3.y1, <, H / 2);
  /* (a few text pixels may blend back to the input's grey) */
  g_assert_cmpuint (d3.changed, >, (guint) ((d3.x1 - d3.x0) * (d3.y1 - d3.y0) * 0.99));
  g_assert_cmpuint (d3.blue, >, 0);
  g_assert_cmpuint (d3.amber, ==, 0);

  /* an empty GAP buffer (an encoder's last results at EOS) passes */
  {
    GstBuffer *gap = gst_buffer_new ();

    GST_BUFFER_FLAG_SET (gap, GST_BUFFER_FLAG_GAP | GST_BUFFER_FLAG_DROPPABLE);
    add_match (gap, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, scores, NULL, 3);
    g_assert_cmpint (gst_harness_push (h, gap), ==, GST_FLOW_OK);
    gap = gst_harness_pull (h);
    g_assert_cmpuint (gst_buffer_get_size (gap), ==, 0);
    gst_buffer_unref (gap);
  }

  /* the result stays on the following frames until the next one */
  held = render (h, grey_frame ());
  g_assert_cmpmem (&held, sizeof held, &d3, sizeof d3);

  /* one row: a third of the height, give or take the padding */
  g_object_set (h->element, "top-k", 1, NULL);
  d1 = render (h, grey_frame ());
  g_assert_cmpint (d1.x0, ==, 8);
  g_assert_cmpint ((d3.y1 - d3.y0) - 8, ==, 3 * ((d1.y1 - d1.y0) - 8));

  /* bar-width is the panel's extra width, exactly */
  g_object_set (h->element, "top-k", 3, "bar-width", 150, NULL);
  wide = render (h, grey_frame ());
  g_assert_cmpint (wide.x1 - wide.x0, ==, (d3.x1 - d3.x0) + 50);
  g_assert_cmpint (wide.y1 - wide.y0, ==, d3.y1 - d3.y0);

  /* another corner and margin */
  g_object_set (h->element, "bar-width", 100, "position", 3, "margin", 4, NULL);
  br = render (h, grey_frame ());
  g_assert_cmpint (br.x1, ==, W - 4);
  g_assert_cmpint (br.y1, ==, H - 4);
  g_assert_cmpint (br.x1 - br.x0, ==, d3.x1 - d3.x0);
  g_assert_cmpint (br.y1 - br.y0, ==, d3.y1 - d3.y0);
  gst_harness_teardown (h);
}

/* A bar's length is its score times bar-width. */
static void
test_bar_length (void)
{
  static const gdouble full[] = { 1.0 }, half[] = { 0.5 }, none[] = { 0.0 };
  GstHarness *h = new_overlay ();
  Diff f, hf, z;

  f = render_match (h, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, full, NULL, 1);
  hf = render_match (h, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, half, NULL, 1);
  z = render_match (h, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, none, NULL, 1);
  g_test_message ("bar pixels: %u at 1.0, %u at 0.5, %u at 0", f.blue, hf.blue, z.blue);
  /* a full bar is 100 pixels long: its height is the number of bar pixels per column */
  g_assert_cmpuint (f.blue % 100, ==, 0);
  g_assert_cmpuint (hf.blue * 2, ==, f.blue);
  g_assert_cmpuint (z.blue, ==, 0);
  /* the panel itself does not depend on the score */
  g_assert_cmpint (f.x1 - f.x0, ==, z.x1 - z.x0);
  gst_harness_teardown (h);
}

/* Detect mode: detected prompts in amber (bar, label, frame around the row), the others not;
 * bars are cosines (a negative one draws an empty bar). */
static void
test_detections_highlighted (void)
{
  static const gdouble scores[] = { 0.3, -0.2 };
  static const gboolean on[] = { TRUE, FALSE }, off[] = { FALSE, FALSE };
  GstHarness *h = new_overlay ();
  Diff hi, lo;

  hi = render_match (h, GST_IMAGE_BIND_MATCH_MODE_DETECT, scores, on, 2);
  lo = render_match (h, GST_IMAGE_BIND_MATCH_MODE_DETECT, scores, off, 2);
  g_test_message ("amber pixels: %u detected, %u not", hi.amber, lo.amber);
  g_assert_cmpuint (hi.amber, >, 30);   /* 30 pixels of bar at least, plus the row frame */
  g_assert_cmpuint (lo.amber, ==, 0);
  g_assert_cmpuint (hi.blue, ==, 0);
  g_assert_cmpuint (lo.blue % 30, ==, 0);
  g_assert_cmpuint (lo.blue, >, 0);
  gst_harness_teardown (h);
}

/* Downstream that takes GstVideoOverlayCompositionMeta gets the pixels untouched and the
 * composition as a meta, which blends into what the element would have drawn. */
static void
test_attach_composition_meta (void)
{
  static const gdouble scores[] = { 0.7, 0.2, 0.1 };
  GstHarness *h = gst_harness_new ("imagebindoverlay");
  GstHarness *hb = new_overlay ();
  GstVideoOverlayCompositionMeta *meta;
  GstBuffer *buf, *out;
  GstVideoFrame frame;
  GstVideoInfo info;
  Diff d, blended, reference;

  gst_harness_add_propose_allocation_meta (h, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
      NULL);
  gst_harness_set_src_caps_str (h, CAPS);
  buf = grey_frame ();
  add_match (buf, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, scores, NULL, 3);
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  d = diff_frame (out);
  g_assert_cmpuint (d.changed, ==, 0);
  meta = gst_buffer_get_video_overlay_composition_meta (out);
  g_assert_nonnull (meta);
  g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (meta->overlay), ==, 1);

  out = gst_buffer_make_writable (out);
  meta = gst_buffer_get_video_overlay_composition_meta (out);
  {
    GstCaps *caps = gst_caps_from_string (CAPS);

    g_assert_true (gst_video_info_from_caps (&info, caps));
    gst_caps_unref (caps);
  }
  g_assert_true (gst_video_frame_map (&frame, &info, out, GST_MAP_READWRITE));
  g_assert_true (gst_video_overlay_composition_blend (meta->overlay, &frame));
  gst_video_frame_unmap (&frame);
  blended = diff_frame (out);
  reference = render_match (hb, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, scores, NULL, 3);
  g_assert_cmpmem (&blended, sizeof blended, &reference, sizeof reference);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  gst_harness_teardown (hb);
}

static GstBuffer *
frame_with_region (gint x, gint y, guint w, guint h, gboolean with_param)
{
  GstBuffer *buf = grey_frame ();
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buf, "ball", x, y, w, h);

  if (with_param) {
    GstImageBindMatchResult r = { 0, (gchar *) "a bouncing ball", 0.31, 0.8, FALSE };

    gst_image_bind_roi_add_match_param (roi, &r, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY);
    /* replaced, not appended, when a region is matched again */
    r.probability = 0.9;
    gst_image_bind_roi_add_match_param (roi, &r, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY);
    g_assert_cmpuint (g_list_length (roi->params), ==, 1);
  }
  return buf;
}

static void
test_regions (void)
{
  GstHarness *h = new_overlay ();
  GstBuffer *buf, *out;
  GstVideoRegionOfInterestMeta *roi;
  const GstStructure *s;
  gdouble p;
  Diff d;

  /* the structure the overlay reads */
  buf = frame_with_region (200, 140, 80, 60, TRUE);
  roi = gst_buffer_get_video_region_of_interest_meta (buf);
  s = gst_image_bind_roi_get_match_param (roi);
  g_assert_nonnull (s);
  g_assert_true (gst_structure_has_name (s, "imagebind-match"));
  g_assert_cmpstr (gst_structure_get_string (s, "label"), ==, "a bouncing ball");
  g_assert_true (gst_structure_get_double (s, "probability", &p));
  g_assert_cmpfloat (p, ==, 0.9);
  g_assert_cmpstr (gst_structure_get_string (s, "mode"), ==, "classify");

  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  d = diff_frame (out);
  g_test_message ("region: %d,%d-%d,%d, %u changed", d.x0, d.y0, d.x1, d.y1, d.changed);
  /* the box's edges and the tag above it; not its inside, nor the rest of the frame */
  g_assert_false (pixel_is_grey (out, 201, 170));
  g_assert_false (pixel_is_grey (out, 278, 170));
  g_assert_false (pixel_is_grey (out, 240, 141));
  g_assert_false (pixel_is_grey (out, 240, 198));
  g_assert_true (pixel_is_grey (out, 240, 170));
  g_assert_false (pixel_is_grey (out, 202, 135));       /* the tag */
  g_assert_cmpint (d.x0, ==, 200);
  g_assert_cmpint (d.y1, ==, 200);
  g_assert_cmpint (d.y0, <, 140);
  g_assert_cmpint (d.y0, >, 100);
  gst_buffer_unref (out);

  /* regions are drawn on their own frame only */
  d = render (h, grey_frame ());
  g_assert_cmpuint (d.changed, ==, 0);

  /* a region without the structure is not ours to draw */
  d = render (h, frame_with_region (200, 140, 80, 60, FALSE));
  g_assert_cmpuint (d.changed, ==, 0);

  /* a box sticking out of the frame is cut, at the top the tag goes inside */
  d = render (h, frame_with_region (280, 0, 100, 1000, TRUE));
  g_assert_cmpint (d.x0, ==, 280);
  g_assert_cmpint (d.x1, ==, W);
  g_assert_cmpint (d.y0, ==, 0);
  g_assert_cmpint (d.y1, ==, H);
  d = render (h, frame_with_region (5000, 5000, 10, 10, TRUE));
  g_assert_cmpuint (d.changed, ==, 0);

  g_object_set (h->element, "show-regions", FALSE, NULL);
  d = render (h, frame_with_region (200, 140, 80, 60, TRUE));
  g_assert_cmpuint (d.changed, ==, 0);
  gst_harness_teardown (h);
}

/* A flush (seek) forgets the result: the panel is not drawn over the new position. */
static void
test_flush_forgets (void)
{
  static const gdouble scores[] = { 0.9 };
  GstHarness *h = new_overlay ();
  Diff d;

  d = render_match (h, GST_IMAGE_BIND_MATCH_MODE_CLASSIFY, scores, NULL, 1);
  g_assert_cmpuint (d.changed, >, 0);
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  {
    GstSegment segment;

    gst_segment_init (&segment, GST_FORMAT_TIME);
    g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  }
  d = render (h, grey_frame ());
  g_assert_cmpuint (d.changed, ==, 0);
  gst_harness_teardown (h);
}

static void
assert_caps_refused (const gchar * caps)
{
  GstHarness *h = gst_harness_new ("imagebindoverlay");
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 4096, NULL);

  gst_harness_set_src_caps_str (h, caps);
  g_assert_cmpint (gst_harness_push (h, buf), ==, GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
}

static void
test_wrong_caps (void)
{
  assert_caps_refused ("audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  /* frames the element cannot map to draw on */
  assert_caps_refused ("video/x-raw(memory:GLMemory),format=RGBA,width=32,height=32,"
      "framerate=30/1");
  assert_caps_refused ("video/x-bayer,format=rggb,width=32,height=32,framerate=30/1");
  assert_caps_refused ("text/x-raw,format=utf8");
}

/* The whole chain with the tiny model: vision encoder, matcher, overlay; the frame written as
 * PNG to look at. */
static void
test_pipeline (void)
{
  GstElement *pipeline, *sink;
  GstSample *sample;
  GError *error = NULL;
  gchar *desc;
  guint frames = 0;

  if (!model_path || !gst_registry_find_feature (gst_registry_get (), "videotestsrc",
          GST_TYPE_ELEMENT_FACTORY)) {
    g_test_skip ("needs the tiny model and GStreamer's plugins dir as arguments");
    return;
  }
  desc = g_strdup_printf ("videotestsrc num-buffers=3 pattern=solid-color "
      "foreground-color=0xff404040 ! " CAPS " ! imagebindvision model=%s sync=true "
      "n-threads=1 ! imagebindmatch model=%s prompts=\"<ball, bars, snow>\" ! "
      "imagebindoverlay ! appsink name=sink sync=false", model_path, model_path);
  pipeline = gst_parse_launch (desc, &error);
  g_free (desc);
  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstImageBindMatchMeta *meta = gst_buffer_get_imagebind_match_meta (buf);
    Diff d = diff_frame (buf);

    g_assert_nonnull (meta);
    g_assert_cmpuint (meta->n_results, ==, 3);
    g_assert_cmpint (d.x0, ==, 8);
    g_assert_cmpint (d.y0, ==, 8);
    g_assert_true (pixel_is_grey (buf, W - 1, H - 1));
    g_assert_true (pixel_is_grey (buf, W / 2, H - 20));
    g_assert_cmpuint (d.blue, >, 0);
    if (++frames == 3) {
      GstMapInfo map;
      cairo_surface_t *surface;

      gst_buffer_map (buf, &map, GST_MAP_READ);
      surface = cairo_image_surface_create_for_data (map.data, CAIRO_FORMAT_RGB24, W, H, W * 4);
      g_assert_cmpint (cairo_surface_write_to_png (surface, "test-overlay-frame.png"), ==,
          CAIRO_STATUS_SUCCESS);
      cairo_surface_destroy (surface);
      gst_buffer_unmap (buf, &map);
    }
    gst_sample_unref (sample);
  }
  g_assert_cmpuint (frames, ==, 3);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

int
main (int argc, char **argv)
{
  /* the pipeline test needs videotestsrc and appsink: GStreamer's plugin directory (argv[2]) */
  ib_test_gst_init (&argc, &argv, "registry-overlay.bin", argc > 2 ? argv[2] : NULL);
  g_test_init (&argc, &argv, NULL);
  model_path = argc > 1 && argv[1][0] ? argv[1] : NULL;

  g_test_add_func ("/overlay/untouched-without-result", test_untouched_without_result);
  g_test_add_func ("/overlay/panel", test_panel);
  g_test_add_func ("/overlay/bar-length", test_bar_length);
  g_test_add_func ("/overlay/detections-highlighted", test_detections_highlighted);
  g_test_add_func ("/overlay/attach-composition-meta", test_attach_composition_meta);
  g_test_add_func ("/overlay/regions", test_regions);
  g_test_add_func ("/overlay/flush-forgets", test_flush_forgets);
  g_test_add_func ("/overlay/wrong-caps", test_wrong_caps);
  g_test_add_func ("/overlay/pipeline", test_pipeline);
  return g_test_run ();
}
