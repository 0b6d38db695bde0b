/* CLIP-family model files in the elements: the tiny OpenCLIP model through
 * `appsrc ! imagebindvision ! imagebindmatch ! appsink` scores every frame as the runtime's C API
 * does, with the file's own mean/std. (The elements of the towers a CLIP file lacks refusing
 * it: test-encoders, /encoders/clip-model-other-towers.)
 *
 * Usage: test-openclip-elements clip=CLIP.gguf | imagebind=TINY.gguf
 *   clip: a converted OpenCLIP file; else the ImageBind tiny model's vision and text towers,
 *   marked as an OpenCLIP file (the elements treat both alike). Tests skip without either.
 *   plugins=DIR: GStreamer's plugin directory, for appsrc/appsink (hidden by the test
 *   environment). */
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <glib/gstdio.h>
#include <imagebind.h>
#include <imagebind-frontend.h>
#include <imagebind-tokenizer.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "gstimagebindmatchmeta.h"
#include "model-edit.h"

#define TOL 1e-5
#define WIDTH 64
#define HEIGHT 48
#define N_FRAMES 4

static gchar *clip_path;
static gboolean clip_path_is_temporary;

static gboolean
need_model (void)
{
  if (!clip_path) {
    g_test_skip ("no model given (tests/meson.build passes the converted OpenCLIP tiny model, "
        "or the ImageBind tiny one)");
    return FALSE;
  }
  return TRUE;
}

/* ---- imagebindvision ! imagebindmatch vs the C API ---- */

static const gchar *const prompts[] = { "a red square", "a photo of a dog", "stripes", "night" };
#define N_PROMPTS G_N_ELEMENTS (prompts)

/* Frame @k: smooth gradients and stripes that differ from frame to frame. */
static void
make_frame (guint k, guint8 * rgb)
{
  for (guint y = 0; y < HEIGHT; y++)
    for (guint x = 0; x < WIDTH; x++)
      for (guint c = 0; c < 3; c++)
        rgb[(y * WIDTH + x) * 3 + c] = (guint8) ((x * (3 + k) + y * (5 + c) + 60 * k * c +
                ((x / (4 + k)) % 2) * 90) % 256);
}

/* The runtime's text embeddings of the prompts (as the model outputs them). */
static gfloat *
text_embeddings (ImageBindModel * model, ImageBindContext * ctx)
{
  ImageBindInputGeometry geo;
  const ImageBindTokenizer *tok;
  GError *err = NULL;
  guint dim = imagebind_model_out_dim (model);
  gint32 *ids;
  gfloat *out = g_new (gfloat, N_PROMPTS * dim);

  imagebind_model_input_geometry (model, &geo);
  tok = imagebind_model_get_tokenizer (model, &err);
  g_assert_no_error (err);
  ids = g_new0 (gint32, N_PROMPTS * geo.context_length);
  for (guint i = 0; i < N_PROMPTS; i++)
    g_assert_true (imagebind_tokenize (tok, prompts[i], -1, ids + i * geo.context_length,
            geo.context_length, &err));
  g_assert_true (imagebind_embed_text (ctx, ids, N_PROMPTS, out, &err));
  g_assert_no_error (err);
  g_free (ids);
  return out;
}

/* The runtime's vision embedding of a frame: the image front end with @p, then the encoder. */
static void
frame_embedding (const ImageBindImageParams * p, ImageBindContext * ctx, const guint8 * rgb,
    gfloat * out)
{
  gfloat *tensor = g_new (gfloat, 3 * (gsize) p->size * p->size);
  gint64 shape[4] = { 1, 3, p->size, p->size };
  GError *err = NULL;

  g_assert_true (imagebind_image_to_tensor (p, rgb, WIDTH, HEIGHT, WIDTH * 3, tensor, &err));
  g_assert_true (imagebind_embed (ctx, IMAGEBIND_MODALITY_VISION, tensor, shape, 4, out, &err));
  g_assert_no_error (err);
  g_free (tensor);
}

static void
test_vision_match_pipeline (void)
{
  /* another mean/std than CLIP's: the element must take the file's */
  IbTestKeyEdit keys[] = {
    IB_TEST_F32S ("imagebind.vision.image_mean", 3, 0.5f, 0.4f, 0.3f),
    IB_TEST_F32S ("imagebind.vision.image_std", 3, 0.2f, 0.25f, 0.3f),
  };
  gchar *path, *desc;
  GstElement *pipeline, *src, *sink, *match;
  GError *err = NULL;
  ImageBindModel *model;
  ImageBindContext *ctx;
  gfloat *t, e[1024];
  guint8 frames[N_FRAMES][WIDTH * HEIGHT * 3];
  guint dim, n = 0;
  GstSample *sample;
  ImageBindImageParams file_params, clip_params = imagebind_image_default_params ();
  gdouble moved = 0;

  if (!need_model ())
    return;
  if (!gst_registry_check_feature_version (gst_registry_get (), "appsrc", 1, 0, 0)) {
    g_test_skip ("appsrc not found: pass plugins=<GStreamer's plugin directory>");
    return;
  }
  path = ib_test_clip_variant (clip_path, keys, G_N_ELEMENTS (keys));
  model = imagebind_model_load (path, &err);
  g_assert_no_error (err);
  dim = imagebind_model_out_dim (model);
  g_assert_cmpuint (dim, <=, G_N_ELEMENTS (e));
  ctx = imagebind_context_new (model, NULL);
  t = text_embeddings (model, ctx);
  file_params = imagebind_image_params_from_model (model);

  desc = g_strdup_printf ("appsrc name=src format=time caps=video/x-raw,format=RGB,width=%d,"
      "height=%d,framerate=5/1 ! imagebindvision model=\"%s\" n-threads=1 sync=true ! "
      "imagebindmatch name=match model=\"%s\" n-threads=1 ! appsink name=sink sync=false",
      WIDTH, HEIGHT, path, path);
  pipeline = gst_parse_launch (desc, &err);
  g_assert_no_error (err);
  g_free (desc);
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  match = gst_bin_get_by_name (GST_BIN (pipeline), "match");
  ib_test_set_prompts (match, prompts, N_PROMPTS);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (guint k = 0; k < N_FRAMES; k++) {
    GstBuffer *buf;
    make_frame (k, frames[k]);
    buf = gst_buffer_new_memdup (frames[k], sizeof frames[k]);
    GST_BUFFER_PTS (buf) = k * GST_SECOND / 5;
    GST_BUFFER_DURATION (buf) = GST_SECOND / 5;
    g_assert_cmpint (gst_app_src_push_buffer (GST_APP_SRC (src), buf), ==, GST_FLOW_OK);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));

  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstImageBindMatchMeta *mm = gst_buffer_get_imagebind_match_meta (buf);
    guint k = (guint) (GST_BUFFER_PTS (buf) / (GST_SECOND / 5));
    gdouble cosine[N_PROMPTS], prob[N_PROMPTS];

    g_assert_nonnull (mm);
    g_assert_cmpuint (k, <, N_FRAMES);
    frame_embedding (&file_params, ctx, frames[k], e);
    ib_test_reference_scores (e, t, dim, N_PROMPTS, cosine, prob);
    g_assert_cmpuint (mm->n_results, ==, N_PROMPTS);
    for (guint i = 0; i < mm->n_results; i++) {
      const GstImageBindMatchResult *r = &mm->results[i];
      g_test_message ("frame %u \"%s\": cosine %.7f (runtime %.7f), p %.7f (runtime %.7f)", k,
          r->label, r->cosine, cosine[r->index], r->probability, prob[r->index]);
      g_assert_cmpstr (r->label, ==, prompts[r->index]);
      g_assert_cmpfloat (fabs (r->cosine - cosine[r->index]), <=, TOL);
      g_assert_cmpfloat (fabs (r->probability - prob[r->index]), <=, TOL);
    }
    /* with CLIP's default mean/std (what an element ignoring the file would use) */
    frame_embedding (&clip_params, ctx, frames[k], e);
    ib_test_reference_scores (e, t, dim, N_PROMPTS, cosine, prob);
    for (guint i = 0; i < mm->n_results; i++)
      moved = MAX (moved, fabs (mm->results[i].cosine - cosine[mm->results[i].index]));
    n++;
    gst_sample_unref (sample);
  }
  g_assert_cmpuint (n, ==, N_FRAMES);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (match);
  gst_object_unref (pipeline);

  /* the file's mean/std matter: CLIP's would give other scores for the same frames */
  g_test_message ("CLIP's mean/std instead of the file's move the cosines by up to %.3g", moved);
  g_assert_cmpfloat (moved, >, 100 * TOL);
  g_free (t);
  imagebind_context_free (ctx);
  imagebind_model_unref (model);
  g_unlink (path);
  g_free (path);
}

int
main (int argc, char **argv)
{
  int ret;

  ib_test_gst_init (&argc, &argv, "registry-openclip-elements.bin", NULL);
  g_test_init (&argc, &argv, NULL);
  for (int i = 1; i < argc; i++) {
    if (g_str_has_prefix (argv[i], "plugins=")) {
      /* appsrc and appsink only: scanning the whole directory costs seconds */
      g_autofree char *app = g_build_filename (argv[i] + 8, "libgstapp.so", NULL);
      GstPlugin *plugin = gst_plugin_load_file (app, NULL);
      if (plugin)
        gst_object_unref (plugin);
    }
    if (g_str_has_prefix (argv[i], "clip=") && argv[i][5] &&
        g_file_test (argv[i] + 5, G_FILE_TEST_EXISTS)) {
      g_free (clip_path);
      clip_path = g_strdup (argv[i] + 5);
      clip_path_is_temporary = FALSE;
    } else if (g_str_has_prefix (argv[i], "imagebind=") && argv[i][10] && !clip_path &&
        g_file_test (argv[i] + 10, G_FILE_TEST_EXISTS)) {
      IbTestKeyEdit family = IB_TEST_STR ("imagebind.source_family", "openclip");
      clip_path = ib_test_clip_variant (argv[i] + 10, &family, 1);
      clip_path_is_temporary = TRUE;
    }
  }
  g_test_add_func ("/openclip-elements/vision-match-pipeline", test_vision_match_pipeline);
  ret = g_test_run ();
  if (clip_path_is_temporary)
    g_unlink (clip_path);
  g_free (clip_path);
  return ret;
}
