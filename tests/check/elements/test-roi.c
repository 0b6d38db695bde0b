/* Per-region inference with the tiny model, through GstHarness: regions of
 * interest attached by the test as a detector would (GstVideoRegionOfInterestMeta).
 *
 * - imagebindvision: each region's embedding is, bit for bit, the runtime's image front end
 *   and encoder on the region's pixels cropped out (odd sizes, regions touching the frame's
 *   edges, one partly outside, one covering everything); empty, outside and overflowing
 *   rectangles are skipped and counted, never a crash; each meta names its region; roi-list
 *   mode, object-class, max-regions; live mode embeds a frame's regions together.
 * - imagebindmatch: each region's best result lands in its ROI meta as the "imagebind-match"
 *   parameter and in the match message's `regions`; a region equal to the frame scores as the
 *   frame; detectors giving one id to several regions are told apart by type and rectangle.
 * - imagebindoverlay draws the region's label end to end.
 *
 * Usage: test-roi model.gguf; the tests skip without it. */
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <string.h>

#include <imagebind.h>
#include <imagebind-frontend.h>
#include "gstimagebindmeta.h"
#include "gstimagebindmatchmeta.h"
#include "gstimagebindroi.h"
#include "common.h"

#define W 97
#define H 61
#define CAPS "video/x-raw,format=RGB,width=97,height=61,framerate=25/1"

static const gchar *model_path;
static ImageBindModel *model;
static ImageBindContext *ctx;
static guint out_dim;

static GstBuffer *
random_frame (guint32 seed, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, GST_ROUND_UP_4 (W * 3) * H, NULL);
  GstMapInfo map;
  GRand *rand = g_rand_new_with_seed (seed);

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  gst_buffer_unmap (buf, &map);
  g_rand_free (rand);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  return buf;
}

static GstVideoRegionOfInterestMeta *
add_roi (GstBuffer * buf, const gchar * type, gint id, guint x, guint y, guint w, guint h)
{
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buf, type, x, y, w, h);

  roi->id = id;
  return roi;
}

/* The runtime on the pixels of @frame (RGB, W x H) inside x, y, w, h, copied out tightly
 * packed: what an application embedding the crop itself gets. */
static void
reference_crop (GstBuffer * frame, guint x, guint y, guint w, guint h, gfloat * out)
{
  ImageBindImageParams params = imagebind_image_params_from_model (model);
  gsize stride = GST_ROUND_UP_4 (W * 3);
  guint8 *crop = g_malloc ((gsize) w * h * 3);
  gfloat *tensor = g_new (gfloat, 3 * (gsize) params.size * params.size);
  gint64 shape[4] = { 1, 3, params.size, params.size };
  GError *err = NULL;
  GstMapInfo map;

  gst_buffer_map (frame, &map, GST_MAP_READ);
  for (guint r = 0; r < h; r++)
    memcpy (crop + (gsize) r * w * 3, map.data + (gsize) (y + r) * stride + (gsize) x * 3,
        (gsize) w * 3);
  gst_buffer_unmap (frame, &map);
  g_assert_true (imagebind_image_to_tensor (&params, crop, w, h, (gsize) w * 3, tensor, &err));
  g_assert_no_error (err);
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, tensor, shape, 4, out, &err));
  g_assert_no_error (err);
  g_free (tensor);
  g_free (crop);
}

static GstHarness *
vision_harness (const gchar * first_prop, ...)
{
  GstElement *e = gst_element_factory_make ("imagebindvision", NULL);
  GstHarness *h;
  va_list args;

  g_assert_nonnull (e);
  /* one thread, as the reference context: bit-identical results */
  g_object_set (e, "model", model_path, "n-threads", 1, "sync", 1, "stats-interval",
      (guint64) 0, NULL);
  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (e), first_prop, args);
  va_end (args);
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, CAPS);
  return h;
}

static GstBus *
harness_bus (GstHarness * h)
{
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (h->element, bus);
  return bus;
}

/* The last element message named @name on @bus (copy), dropping the others; NULL if none. */
static GstStructure *
last_message (GstBus * bus, const gchar * name)
{
  GstStructure *s = NULL;
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    if (gst_message_has_name (msg, name)) {
      if (s)
        gst_structure_free (s);
      s = gst_structure_copy (gst_message_get_structure (msg));
    }
    gst_message_unref (msg);
  }
  return s;
}

static GstImageBindEmbeddingMeta *
region_meta (GstBuffer * buf, gint id, const gchar * type)
{
  gpointer state = NULL;
  GstImageBindEmbeddingMeta *m;

  while ((m = gst_buffer_iterate_imagebind_embedding_meta (buf, &state))) {
    const GstImageBindRegion *r = gst_image_bind_embedding_meta_get_region (m);
    if (r && r->id == id && r->roi_type == g_quark_from_string (type))
      return m;
  }
  return NULL;
}

/* Each region's embedding equals the runtime on its crop, bit for bit; hostile rectangles are
 * skipped and counted; the whole frame is embedded first, as without regions. */
static void
test_crops_equal_front_end (void)
{
  static const struct {
    gint id;
    guint x, y, w, h;           /* as attached */
    guint cx, cy, cw, ch;       /* the crop: clamped to the frame */
  } regions[] = {
    {1, 10, 5, 33, 21, 10, 5, 33, 21},  /* odd sizes */
    {2, 60, 40, 37, 21, 60, 40, 37, 21},        /* touches the right and bottom edges */
    {3, 0, 0, 5, 61, 0, 0, 5, 61},      /* left edge, full height, narrow */
    {4, 80, 50, 100, 100, 80, 50, 17, 11},      /* partly outside */
    {5, 0, 0, G_MAXUINT, G_MAXUINT, 0, 0, W, H},        /* huge: the whole frame */
    {6, 1, 1, 1, 1, 1, 1, 1, 1},        /* one pixel */
  };
  GstHarness *h;
  GstBus *bus;
  GstBuffer *in, *out;
  GstStructure *stats;
  gfloat *ref;
  guint64 n;

  if (!ib_test_need_model (model_path))
    return;
  h = vision_harness ("inference-region", 2, NULL);
  bus = harness_bus (h);
  in = random_frame (11, 0);
  for (guint i = 0; i < G_N_ELEMENTS (regions); i++)
    add_roi (in, "thing", regions[i].id, regions[i].x, regions[i].y, regions[i].w,
        regions[i].h);
  /* hostile: empty, outside the frame, x + w overflowing 32 bits */
  add_roi (in, "thing", 100, 5, 5, 0, 10);
  add_roi (in, "thing", 101, 200, 10, 10, 10);
  add_roi (in, "thing", 102, G_MAXUINT - 3, 0, 10, 10);
  add_roi (in, "thing", 103, 10, H, 10, 10);

  ref = g_new (gfloat, out_dim);
  g_assert_cmpint (gst_harness_push (h, gst_buffer_ref (in)), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==,
      1 + G_N_ELEMENTS (regions));

  {
    GstImageBindEmbeddingMeta *whole = gst_buffer_get_imagebind_embedding_meta (out);
    g_assert_false (whole->has_region);
    g_assert_null (gst_image_bind_embedding_meta_get_region (whole));
    reference_crop (in, 0, 0, W, H, ref);
    g_assert_cmpmem (whole->vector, out_dim * sizeof (gfloat), ref, out_dim * sizeof (gfloat));
  }
  for (guint i = 0; i < G_N_ELEMENTS (regions); i++) {
    GstImageBindEmbeddingMeta *m = region_meta (out, regions[i].id, "thing");
    const GstImageBindRegion *r;

    g_assert_nonnull (m);
    r = gst_image_bind_embedding_meta_get_region (m);
    /* named as attached, not as clamped: readers find the ROI meta by it */
    g_assert_cmpuint (r->x, ==, regions[i].x);
    g_assert_cmpuint (r->y, ==, regions[i].y);
    g_assert_cmpuint (r->w, ==, regions[i].w);
    g_assert_cmpuint (r->h, ==, regions[i].h);
    g_assert_cmpuint (m->pts, ==, 0);
    reference_crop (in, regions[i].cx, regions[i].cy, regions[i].cw, regions[i].ch, ref);
    g_assert_cmpmem (m->vector, out_dim * sizeof (gfloat), ref, out_dim * sizeof (gfloat));
  }
  /* the structure mirror names the region too */
  {
    GstStructure *s = gst_image_bind_embedding_meta_to_structure (region_meta (out, 4, "thing"));
    gint id;
    guint w;

    g_assert_true (gst_structure_get_int (s, "region-id", &id));
    g_assert_cmpint (id, ==, 4);
    g_assert_true (gst_structure_get_uint (s, "region-w", &w));
    g_assert_cmpuint (w, ==, 100);
    g_assert_cmpstr (gst_structure_get_string (s, "region-type"), ==, "thing");
    gst_structure_free (s);
  }
  gst_buffer_unref (out);
  gst_buffer_unref (in);

  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  stats = last_message (bus, "imagebind-encoder-stats");
  g_assert_nonnull (stats);
  g_assert_true (gst_structure_get_uint64 (stats, "embedded", &n));
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (gst_structure_get_uint64 (stats, "regions", &n));
  g_assert_cmpuint (n, ==, G_N_ELEMENTS (regions));
  g_assert_true (gst_structure_get_uint64 (stats, "regions-skipped", &n));
  g_assert_cmpuint (n, ==, 4);
  gst_structure_free (stats);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  g_free (ref);
  gst_harness_teardown (h);
}

/* A frame in another format: the regions are cropped from its RGB conversion, as the whole
 * frame is converted. */
static void
test_crops_bgrx (void)
{
  GstHarness *h;
  GstBuffer *in, *out, *rgb;
  GstMapInfo src, dst;
  gfloat *ref;

  if (!ib_test_need_model (model_path))
    return;
  h = vision_harness ("inference-region", 1, NULL);
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=BGRx,width=97,height=61,framerate=25/1");
  rgb = random_frame (12, 0);
  in = gst_buffer_new_allocate (NULL, (gsize) W * H * 4, NULL);
  gst_buffer_map (rgb, &src, GST_MAP_READ);
  gst_buffer_map (in, &dst, GST_MAP_WRITE);
  for (guint y = 0; y < H; y++)
    for (guint x = 0; x < W; x++) {
      const guint8 *p = src.data + y * GST_ROUND_UP_4 (W * 3) + x * 3;
      guint8 *q = dst.data + ((gsize) y * W + x) * 4;
      q[0] = p[2];
      q[1] = p[1];
      q[2] = p[0];
      q[3] = 0xff;
    }
  gst_buffer_unmap (in, &dst);
  gst_buffer_unmap (rgb, &src);
  add_roi (in, "thing", 9, 13, 7, 51, 29);

  ref = g_new (gfloat, out_dim);
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 1);
  reference_crop (rgb, 13, 7, 51, 29, ref);
  g_assert_cmpmem (region_meta (out, 9, "thing")->vector, out_dim * sizeof (gfloat), ref,
      out_dim * sizeof (gfloat));
  gst_buffer_unref (out);
  gst_buffer_unref (rgb);
  g_free (ref);
  gst_harness_teardown (h);
}

/* roi-list: regions only, of the wanted classes, at most max-regions; a frame without regions
 * passes without an embedding and the next one is due. */
static void
test_roi_list_filter_cap (void)
{
  GstHarness *h;
  GstBus *bus;
  GstBuffer *in, *out;
  GstStructure *stats;
  guint64 n;

  if (!ib_test_need_model (model_path))
    return;
  h = vision_harness ("inference-region", 1, "object-class", " face, person ", "max-regions", 2,
      "inference-interval", 2, NULL);
  bus = harness_bus (h);

  /* due (the first frame), but nothing of the wanted classes: passes untouched */
  in = random_frame (21, 0);
  add_roi (in, "car", 1, 0, 0, 10, 10);
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 0);
  gst_buffer_unref (out);

  /* still due although inference-interval is 2 (nothing was embedded yet) */
  in = random_frame (22, 40 * GST_MSECOND);
  add_roi (in, "face", 1, 0, 0, 10, 10);
  add_roi (in, "car", 2, 10, 0, 10, 10);
  add_roi (in, "face", 3, 0, 0, 0, 0);  /* empty: skipped, does not use up the cap */
  add_roi (in, "person", 4, 20, 0, 10, 30);
  add_roi (in, "face", 5, 30, 0, 10, 10);       /* over the cap */
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 2);
  g_assert_nonnull (region_meta (out, 1, "face"));
  g_assert_nonnull (region_meta (out, 4, "person"));
  gst_buffer_unref (out);

  /* not due (inference-interval 2) */
  in = random_frame (23, 80 * GST_MSECOND);
  add_roi (in, "face", 1, 0, 0, 10, 10);
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 0);
  gst_buffer_unref (out);

  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  stats = last_message (bus, "imagebind-encoder-stats");
  g_assert_true (gst_structure_get_uint64 (stats, "embedded", &n));
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (gst_structure_get_uint64 (stats, "regions", &n));
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (gst_structure_get_uint64 (stats, "regions-skipped", &n));
  g_assert_cmpuint (n, ==, 2);
  gst_structure_free (stats);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

/* Live mode: a frame's regions are one job, attached together to a later buffer with the
 * frame's timestamp, equal to sync mode's embeddings. */
static void
test_live_regions_together (void)
{
  GstHarness *h;
  GstBuffer *in, *out;
  gfloat *ref;
  guint found = 0;

  if (!ib_test_need_model (model_path))
    return;
  /* later frames are not due, so none replaces the first one's job before the worker takes it */
  h = vision_harness ("inference-region", 2, "sync", 0, "inference-interval", 1000, NULL);
  in = random_frame (31, 0);
  add_roi (in, "a", 1, 3, 4, 40, 30);
  add_roi (in, "b", 2, 50, 20, 47, 41);
  ref = g_new (gfloat, out_dim);
  reference_crop (in, 50, 20, 47, 41, ref);
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (h));

  /* the result comes on a later buffer: push frames until it does (bounded) */
  for (guint i = 1; i < 400 && !found; i++) {
    in = random_frame (31 + i, i * 40 * GST_MSECOND);
    g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
    out = gst_harness_pull (h);
    found = gst_buffer_get_n_imagebind_embedding_metas (out);
    if (found) {
      GstImageBindEmbeddingMeta *b = region_meta (out, 2, "b");

      g_assert_cmpuint (found, ==, 3);
      g_assert_nonnull (region_meta (out, 1, "a"));
      g_assert_nonnull (b);
      g_assert_cmpuint (b->pts, ==, 0);
      g_assert_cmpmem (b->vector, out_dim * sizeof (gfloat), ref, out_dim * sizeof (gfloat));
    } else {
      g_usleep (5000);
    }
    gst_buffer_unref (out);
  }
  g_assert_cmpuint (found, ==, 3);
  g_free (ref);
  gst_harness_teardown (h);
}

static const GValue *
regions_of (const GstStructure * s)
{
  const GValue *v = gst_structure_get_value (s, "regions");

  g_assert_nonnull (v);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (v));
  return v;
}

static const GstStructure *
region_entry (const GValue * regions, gint id, const gchar * type)
{
  for (guint i = 0; i < gst_value_array_get_size (regions); i++) {
    const GstStructure *r = gst_value_get_structure (gst_value_array_get_value (regions, i));
    gint rid;

    g_assert_true (gst_structure_has_name (r, "imagebind-region"));
    g_assert_true (gst_structure_get_int (r, "id", &rid));
    if (rid == id && g_strcmp0 (gst_structure_get_string (r, "roi-type"), type) == 0)
      return r;
  }
  return NULL;
}

static GstHarness *
match_harness (const gchar * vision_props, const gchar * match_props)
{
  gchar *desc = g_strdup_printf ("imagebindvision model=%s n-threads=1 sync=true "
      "stats-interval=0 %s ! imagebindmatch model=%s n-threads=1 "
      "prompt-list=\"a ball;colour bars;snow;a face\" %s", model_path, vision_props,
      model_path, match_props);
  GstHarness *h = gst_harness_new_parse (desc);

  g_free (desc);
  gst_harness_set_src_caps_str (h, CAPS);
  return h;
}

/* imagebindmatch: the region's best result in its ROI meta and in the message; a region equal
 * to the frame scores exactly as the frame; one id given to two regions does not mix them. */
static void
test_match_regions (void)
{
  GstHarness *h;
  GstBus *bus;
  GstBuffer *in, *out;
  GstStructure *msg;
  GstImageBindMatchMeta *mmeta;
  const GValue *regions;
  gpointer state = NULL;
  GstMeta *meta;
  guint n_rois = 0;

  if (!ib_test_need_model (model_path))
    return;
  h = match_harness ("inference-region=both", "top-k=2");
  bus = harness_bus (h);
  in = random_frame (41, 0);
  add_roi (in, "face", 7, 0, 0, W, H);  /* the whole frame */
  add_roi (in, "person", 7, 5, 6, 30, 40);      /* the same id: told apart by type */
  add_roi (in, "face", 7, 40, 6, 30, 40);       /* and by rectangle */
  add_roi (in, "face", 8, 0, 0, 0, 0);  /* empty: not embedded, no result */
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);

  /* the whole frame: one match meta, as without regions */
  g_assert_cmpuint (gst_buffer_get_n_imagebind_embedding_metas (out), ==, 4);
  mmeta = gst_buffer_get_imagebind_match_meta (out);
  g_assert_nonnull (mmeta);
  {
    guint n_match = 0;
    while (gst_buffer_iterate_imagebind_match_meta (out, &state))
      n_match++;
    g_assert_cmpuint (n_match, ==, 1);
  }
  g_assert_cmpuint (mmeta->n_results, ==, 2);

  msg = last_message (bus, "imagebind-match");
  g_assert_nonnull (msg);
  g_assert_cmpstr (gst_structure_get_string (msg, "top-label"), ==, mmeta->top_label);
  regions = regions_of (msg);
  g_assert_cmpuint (gst_value_array_get_size (regions), ==, 3);

  state = NULL;
  while ((meta = gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    const GstStructure *param = gst_image_bind_roi_get_match_param (roi);
    const GstStructure *entry;
    gdouble cosine, prob, top_score;
    guint index, x;
    const GValue *labels;

    n_rois++;
    if (roi->w == 0) {
      g_assert_null (param);
      continue;
    }
    g_assert_nonnull (param);
    entry = NULL;
    for (guint i = 0; i < gst_value_array_get_size (regions); i++) {
      const GstStructure *r = gst_value_get_structure (gst_value_array_get_value (regions, i));
      g_assert_true (gst_structure_get_uint (r, "x", &x));
      if (x == roi->x && g_strcmp0 (gst_structure_get_string (r, "roi-type"),
              g_quark_to_string (roi->roi_type)) == 0)
        entry = r;
    }
    g_assert_nonnull (entry);
    g_assert_nonnull (region_entry (regions, 7, g_quark_to_string (roi->roi_type)));
    /* the parameter is the message's best result for that region */
    g_assert_cmpstr (gst_structure_get_string (param, "label"), ==,
        gst_structure_get_string (entry, "top-label"));
    g_assert_true (gst_structure_get_double (param, "cosine", &cosine));
    g_assert_true (gst_structure_get_double (entry, "top-score", &top_score));
    g_assert_cmpfloat (cosine, ==, top_score);
    g_assert_true (gst_structure_get_double (param, "probability", &prob));
    g_assert_true (gst_structure_get_uint (param, "index", &index));
    g_assert_cmpstr (gst_structure_get_string (param, "mode"), ==, "classify");
    labels = gst_structure_get_value (entry, "labels");
    g_assert_cmpuint (gst_value_array_get_size (labels), ==, 2);
    if (roi->w == W) {
      /* the region is the frame: the same scores as the frame */
      g_assert_cmpstr (gst_structure_get_string (param, "label"), ==, mmeta->top_label);
      g_assert_cmpfloat (cosine, ==, mmeta->results[0].cosine);
      g_assert_cmpfloat (prob, ==, mmeta->results[0].probability);
      g_assert_cmpint ((gint) index, ==, mmeta->top_index);
    }
  }
  g_assert_cmpuint (n_rois, ==, 4);
  gst_structure_free (msg);
  gst_buffer_unref (out);

  /* roi-list: no whole-frame result; the message has empty whole-frame lists and the regions */
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);

  h = match_harness ("inference-region=roi-list", "mode=detect threshold=-1");
  bus = harness_bus (h);
  in = random_frame (42, 0);
  add_roi (in, "face", 3, 10, 10, 20, 20);
  g_assert_cmpint (gst_harness_push (h, in), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_null (gst_buffer_get_imagebind_match_meta (out));
  {
    GstVideoRegionOfInterestMeta *roi = gst_buffer_get_video_region_of_interest_meta_id (out, 3);
    const GstStructure *param = gst_image_bind_roi_get_match_param (roi);
    gboolean detected = FALSE;

    g_assert_nonnull (param);
    g_assert_cmpstr (gst_structure_get_string (param, "mode"), ==, "detect");
    /* threshold -1: every score is above it in this frame */
    g_assert_true (gst_structure_get_boolean (param, "detected", &detected));
    g_assert_true (detected);
  }
  msg = last_message (bus, "imagebind-match");
  g_assert_nonnull (msg);
  g_assert_false (gst_structure_has_field (msg, "top-label"));
  g_assert_cmpuint (gst_value_array_get_size (gst_structure_get_value (msg, "labels")), ==, 0);
  regions = regions_of (msg);
  g_assert_cmpuint (gst_value_array_get_size (regions), ==, 1);
  g_assert_nonnull (region_entry (regions, 3, "face"));
  gst_structure_free (msg);
  gst_buffer_unref (out);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

/* End to end: imagebindoverlay draws the region's box and label from the matcher's parameter:
 * pixels change inside the region's box, a pixel far from it and from the panel does not. */
static void
test_overlay_draws_region (void)
{
  GstElementFactory *f = gst_element_factory_find ("imagebindoverlay");
  GstHarness *h;
  GstBuffer *in, *out;
  GstMapInfo a, b;
  gchar *desc;
  guint changed_in_box = 0;

  if (!f) {
    g_test_skip ("imagebindoverlay not built (no pangocairo)");
    return;
  }
  gst_object_unref (f);
  if (!ib_test_need_model (model_path))
    return;
  desc = g_strdup_printf ("imagebindvision model=%s n-threads=1 sync=true stats-interval=0 "
      "inference-region=roi-list ! imagebindmatch model=%s n-threads=1 "
      "prompt-list=\"a ball;snow\" ! imagebindoverlay", model_path, model_path);
  h = gst_harness_new_parse (desc);
  g_free (desc);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=BGRx,width=320,height=240,"
      "framerate=25/1");
  in = gst_buffer_new_allocate (NULL, 320 * 240 * 4, NULL);
  gst_buffer_memset (in, 0, 0x40, 320 * 240 * 4);
  GST_BUFFER_PTS (in) = 0;
  add_roi (in, "face", 1, 150, 120, 100, 80);
  g_assert_cmpint (gst_harness_push (h, gst_buffer_ref (in)), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_nonnull (gst_image_bind_roi_get_match_param
      (gst_buffer_get_video_region_of_interest_meta_id (out, 1)));
  gst_buffer_map (in, &a, GST_MAP_READ);
  gst_buffer_map (out, &b, GST_MAP_READ);
  for (guint y = 120; y < 200; y++)
    for (guint x = 150; x < 250; x++)
      changed_in_box += memcmp (a.data + (y * 320 + x) * 4, b.data + (y * 320 + x) * 4, 3) != 0;
  g_assert_cmpuint (changed_in_box, >, 0);
  /* far from the box and from the top-left panel (no whole-frame result: no panel) */
  g_assert_cmpmem (a.data + (230 * 320 + 10) * 4, 3, b.data + (230 * 320 + 10) * 4, 3);
  g_assert_cmpmem (a.data + (10 * 320 + 10) * 4, 3, b.data + (10 * 320 + 10) * 4, 3);
  gst_buffer_unmap (out, &b);
  gst_buffer_unmap (in, &a);
  gst_buffer_unref (out);
  gst_buffer_unref (in);
  gst_harness_teardown (h);
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

  g_test_add_func ("/roi/vision/crops-equal-front-end", test_crops_equal_front_end);
  g_test_add_func ("/roi/vision/crops-bgrx", test_crops_bgrx);
  g_test_add_func ("/roi/vision/roi-list-filter-cap", test_roi_list_filter_cap);
  g_test_add_func ("/roi/vision/live-regions-together", test_live_regions_together);
  g_test_add_func ("/roi/match/regions", test_match_regions);
  g_test_add_func ("/roi/overlay/draws-region", test_overlay_draws_region);
  ret = g_test_run ();
  if (ctx)
    imagebind_context_free (ctx);
  if (model)
    imagebind_model_unref (model);
  return ret;
}
