/* The image front end against the official fixtures (shared/conformance/preprocess): Pillow's
 * 8-bit bicubic resize byte for byte, the vision tensors exactly, the PNG files decoded through
 * GStreamer, and the edges: tiny and extreme sizes, padded strides, refused input. */
#include <string.h>
#include <math.h>

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include "common.h"
#include "imagebind-frontend.h"

typedef struct {
  const char *stem;
  guint width, height, resized_w, resized_h;
} Fixture;

/* manifest.json, "vision" */
static const Fixture fixtures[] = {
  { "image_landscape_320x241", 320, 241, 297, 224 },
  { "image_portrait_181x292", 181, 292, 224, 361 },
  { "image_small_100x80", 100, 80, 280, 224 },
};

static IbNpy *
load_stem (const char *stem, const char *suffix)
{
  g_autofree char *rel = g_strdup_printf ("preprocess/%s%s", stem, suffix);
  return ib_test_load_npy (rel);
}

static void
test_resize_matches_pillow (void)
{
  if (!ib_test_need_conformance ())
    return;
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    const Fixture *fx = &fixtures[f];
    g_autoptr (IbNpy) rgb = load_stem (fx->stem, ".rgb.npy");
    g_autoptr (IbNpy) ref = load_stem (fx->stem, ".resized.npy");
    g_autofree guint8 *out = NULL;
    GError *error = NULL;
    gsize differing = 0;

    g_assert_cmpint (rgb->dtype, ==, IB_NPY_U8);
    g_assert_cmpint (rgb->shape[0], ==, fx->height);
    g_assert_cmpint (rgb->shape[1], ==, fx->width);
    g_assert_cmpint (ref->shape[0], ==, fx->resized_h);
    g_assert_cmpint (ref->shape[1], ==, fx->resized_w);
    out = g_malloc ((gsize) fx->resized_w * fx->resized_h * 3);
    g_assert_true (imagebind_image_resize_bicubic (rgb->data, fx->width, fx->height,
            (gsize) fx->width * 3, out, fx->resized_w, fx->resized_h, &error));
    g_assert_no_error (error);
    for (gsize i = 0; i < ref->n_elements; i++)
      differing += out[i] != ((guint8 *) ref->data)[i];
    g_test_message ("%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes differ", fx->stem,
        differing, ref->n_elements);
    g_assert_cmpuint (differing, ==, 0);
  }
}

/* max |got - ref| over one (3, 224, 224) tensor */
static double
max_abs_diff (const float *got, const float *ref, gsize n)
{
  double m = 0;
  for (gsize i = 0; i < n; i++) {
    double d = fabs ((double) got[i] - (double) ref[i]);
    if (!(d <= m))
      m = isnan (d) ? INFINITY : d;
  }
  return m;
}

static void
check_tensor (const guint8 *rgb, guint width, guint height, gsize stride, guint index,
    const char *what)
{
  g_autoptr (IbNpy) ref = ib_test_load_npy ("preprocess/vision_tensors.npy");
  ImageBindImageParams params = imagebind_image_default_params ();
  gsize n = 3 * 224 * 224;
  g_autofree float *out = g_new (float, n);
  GError *error = NULL;
  double diff;

  g_assert_cmpint (ref->shape[0], ==, 3);
  g_assert_true (imagebind_image_to_tensor (&params, rgb, width, height, stride, out, &error));
  g_assert_no_error (error);
  diff = max_abs_diff (out, (const float *) ref->data + index * n, n);
  g_test_message ("%s: max abs difference %g", what, diff);
  g_assert_cmpfloat (diff, ==, 0.0);
}

static void
test_tensor_matches_official (void)
{
  if (!ib_test_need_conformance ())
    return;
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    g_autoptr (IbNpy) rgb = load_stem (fixtures[f].stem, ".rgb.npy");
    check_tensor (rgb->data, fixtures[f].width, fixtures[f].height,
        (gsize) fixtures[f].width * 3, f, fixtures[f].stem);
  }
}

/* Rows padded beyond width * 3 with junk that must never be read. */
static void
test_padded_stride (void)
{
  if (!ib_test_need_conformance ())
    return;
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    const Fixture *fx = &fixtures[f];
    g_autoptr (IbNpy) rgb = load_stem (fx->stem, ".rgb.npy");
    gsize stride = (gsize) fx->width * 3 + 13;
    g_autofree guint8 *padded = g_malloc ((gsize) fx->height * stride);
    memset (padded, 0xa5, (gsize) fx->height * stride);
    for (guint y = 0; y < fx->height; y++)
      memcpy (padded + y * stride, (guint8 *) rgb->data + (gsize) y * fx->width * 3,
          (gsize) fx->width * 3);
    check_tensor (padded, fx->width, fx->height, stride, f, "padded stride");
  }
}

/* ---- PNG files through GStreamer ---- */

/* pngdec lives in the system plugin directory, which the test environment hides (the plugin
 * tests see only this project's plugin). Use it here, with a private registry file. */
static gboolean
init_gst_with_system_plugins (void)
{
  static gsize done = 0;
  static gboolean have_pngdec = FALSE;
  if (g_once_init_enter (&done)) {
    const char *reg = g_getenv ("GST_REGISTRY_1_0");
    g_autofree char *own = reg ? g_strconcat (reg, ".test-image", NULL)
        : g_build_filename (g_get_tmp_dir (), "imagebind-test-image-registry.bin", NULL);
    g_setenv ("GST_REGISTRY_1_0", own, TRUE);
    g_unsetenv ("GST_PLUGIN_SYSTEM_PATH_1_0");
    g_setenv ("GST_PLUGIN_PATH_1_0", "", TRUE);
    gst_init (NULL, NULL);
    have_pngdec = gst_registry_check_feature_version (gst_registry_get (), "pngdec", 1, 0, 0);
    g_once_init_leave (&done, 1);
  }
  return have_pngdec;
}

/* Decodes @path to packed RGB; returns the pixels (owned by the returned sample). */
static GstSample *
decode_png (const char *path, GstVideoInfo *info)
{
  g_autofree char *desc = NULL;
  GError *error = NULL;
  GstElement *pipeline;
  GstElement *sink;
  GstSample *sample;
  GstCaps *caps;

  {
    g_autofree char *quoted = g_strescape (path, NULL);
    desc = g_strdup_printf ("filesrc location=\"%s\" ! pngdec ! videoconvert ! "
        "video/x-raw,format=RGB ! appsink name=sink sync=false", quoted);
  }
  pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND);
  g_assert_nonnull (sample);
  caps = gst_sample_get_caps (sample);
  g_assert_true (gst_video_info_from_caps (info, caps));
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return sample;
}

static void
test_png_decode (void)
{
  if (!ib_test_need_conformance ())
    return;
  if (!init_gst_with_system_plugins ()) {
    g_test_skip ("GStreamer pngdec not found (install gstreamer1.0-plugins-good)");
    return;
  }
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    const Fixture *fx = &fixtures[f];
    g_autofree char *rel = g_strdup_printf ("preprocess/%s.png", fx->stem);
    g_autofree char *path = ib_test_fixture (rel);
    g_autoptr (IbNpy) rgb = load_stem (fx->stem, ".rgb.npy");
    GstVideoInfo info;
    GstSample *sample = decode_png (path, &info);
    GstVideoFrame frame;
    const guint8 *pixels;
    gsize stride, differing = 0;

    g_assert_true (gst_video_frame_map (&frame, &info, gst_sample_get_buffer (sample),
            GST_MAP_READ));
    g_assert_cmpuint (GST_VIDEO_FRAME_WIDTH (&frame), ==, fx->width);
    g_assert_cmpuint (GST_VIDEO_FRAME_HEIGHT (&frame), ==, fx->height);
    pixels = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
    stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    for (guint y = 0; y < fx->height; y++)
      for (gsize x = 0; x < (gsize) fx->width * 3; x++)
        differing += pixels[y * stride + x] != ((guint8 *) rgb->data)[y * fx->width * 3 + x];
    g_test_message ("%s.png: %" G_GSIZE_FORMAT " decoded bytes differ from PIL's", fx->stem,
        differing);
    g_assert_cmpuint (differing, ==, 0);
    check_tensor (pixels, fx->width, fx->height, stride, f, "decoded PNG");
    gst_video_frame_unmap (&frame);
    gst_sample_unref (sample);
  }
}

/* ---- edges ---- */

static float
normalised (guint8 v, int c)
{
  ImageBindImageParams p = imagebind_image_default_params ();
  volatile float x = (float) v / 255.0f;
  volatile float centred = x - p.mean[c];
  return centred / p.std[c];
}

static void
test_one_pixel (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  const guint8 px[3] = { 0, 128, 255 };
  gsize plane = 224 * 224;
  g_autofree float *out = g_new (float, 3 * plane);
  GError *error = NULL;

  /* every tap of a 1 -> 224 resize reads the same pixel and the weights sum to 1 */
  g_assert_true (imagebind_image_to_tensor (&params, px, 1, 1, 3, out, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 3; c++)
    for (gsize i = 0; i < plane; i++)
      g_assert_cmpfloat (out[c * plane + i], ==, normalised (px[c], c));
}

/* 1 x N and N x 1: the official rule makes the long side size * N (never 0 wide); the tensor
 * is the centre window of that resize, computed without materialising it. Checked against a
 * full resize through the public function. */
static void
check_extreme (guint width, guint height)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  guint rw = width <= height ? 224 : 224 * width / height;
  guint rh = width <= height ? 224 * height / width : 224;
  /* rint rounds half to even in the default rounding mode, like Python's round */
  guint left = (guint) rint ((rw - 224) / 2.0), top = (guint) rint ((rh - 224) / 2.0);
  gsize plane = 224 * 224;
  g_autofree guint8 *rgb = g_malloc ((gsize) width * height * 3);
  g_autofree guint8 *full = g_malloc ((gsize) rw * rh * 3);
  g_autofree float *out = g_new (float, 3 * plane);
  GError *error = NULL;

  for (gsize i = 0; i < (gsize) width * height * 3; i++)
    rgb[i] = (guint8) (i * 37 + (i / 3) * (i / 3) * 11);   /* content with sharp edges */
  g_assert_true (imagebind_image_resize_bicubic (rgb, width, height, (gsize) width * 3, full, rw,
          rh, &error));
  g_assert_no_error (error);
  g_assert_true (imagebind_image_to_tensor (&params, rgb, width, height, (gsize) width * 3, out,
          &error));
  g_assert_no_error (error);
  for (int c = 0; c < 3; c++)
    for (guint y = 0; y < 224; y++)
      for (guint x = 0; x < 224; x++)
        g_assert_cmpfloat (out[c * plane + y * 224 + x], ==,
            normalised (full[((gsize) (top + y) * rw + left + x) * 3 + c], c));
}

static void
test_extreme_aspect (void)
{
  check_extreme (1, 40);     /* 224 x 8960, crop top 4368 */
  check_extreme (40, 1);
  check_extreme (3, 290);    /* 224 x 21653: odd difference, top = round(10714.5) = 10714 */
  check_extreme (290, 3);
  check_extreme (900, 450);  /* plain downscale, both passes */
}

/* Evaluates @call (which sets `error`), then checks that it failed with an input error. */
#define EXPECT_INPUT_ERROR(call) G_STMT_START { \
    GError *error = NULL; \
    g_assert_false (call); \
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT); \
    g_test_message ("refused: %s", error->message); \
    g_error_free (error); \
  } G_STMT_END

static void
test_refused (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  guint8 px[64] = { 0 };
  float *out = g_new (float, 3 * 224 * 224);
  guint8 small_out[12];

  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 0, 0, 0, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 0, 5, 3, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 5, 0, 15, out, &error));
  /* a declared 100000 x 100000 frame is refused before anything is read or allocated */
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 100000, 100000, 300000, out,
          &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, IMAGEBIND_IMAGE_MAX_SIDE + 1, 1,
          3 * (IMAGEBIND_IMAGE_MAX_SIDE + 1), out, &error));
  /* stride shorter than a row */
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 4, 2, 11, out, &error));
  /* stride * height beyond the address space */
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 4, 4, G_MAXSIZE / 2, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, NULL, 2, 2, 6, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (NULL, px, 2, 2, 6, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 2, 2, 6, NULL, &error));
  params.size = 0;
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 2, 2, 6, out, &error));
  params = imagebind_image_default_params ();
  params.std[1] = 0.0f;
  EXPECT_INPUT_ERROR (imagebind_image_to_tensor (&params, px, 2, 2, 6, out, &error));
  EXPECT_INPUT_ERROR (imagebind_image_resize_bicubic (px, 2, 2, 6, small_out, 0, 2, &error));
  EXPECT_INPUT_ERROR (imagebind_image_resize_bicubic (px, 2, 2, 6, small_out, 100000, 1,
          &error));
  g_free (out);
}

/* The size rule and crop offsets of the manifest, through a tensor size other than 224:
 * a resize to (w, h) is the identity when nothing changes. */
static void
test_identity_resize (void)
{
  guint8 in[5 * 4 * 3], out[5 * 4 * 3];
  GError *error = NULL;
  for (guint i = 0; i < sizeof in; i++)
    in[i] = (guint8) (i * 29);
  g_assert_true (imagebind_image_resize_bicubic (in, 5, 4, 15, out, 5, 4, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (in, sizeof in, out, sizeof out);
}

/* A hand-computed case: one row (0, 255) upscaled 2 -> 4 (scale 0.5, support 2, taps clamped
 * to the image). Output i has centre (i + 0.5) / 2 and taps x = 0, 1 with raw weights
 * K(x - centre + 0.5), a = -0.5:
 *   i = 0: K(0.25) = 0.8671875, K(1.25) = -0.0703125 -> normalised 1.0882, -0.0882
 *          -> 22-bit 4564390, -370086 -> (2^21 + 255 * -370086) < 0 -> 0
 *   i = 1: K(-0.25) = 0.8671875, K(0.75) = 0.2265625 -> 0.79286, 0.20714 -> 3325484, 868820
 *          -> (2^21 + 255 * 868820) >> 22 = 53
 *   i = 2, 3 mirror 1, 0: 255 * 3325484 -> 202, 255 * 4564390 clamps to 255. */
static void
test_hand_computed (void)
{
  const guint8 in[6] = { 0, 0, 0, 255, 255, 255 };
  const guint8 expected[4] = { 0, 53, 202, 255 };
  guint8 out[12], col[4 * 3];
  GError *error = NULL;
  g_assert_true (imagebind_image_resize_bicubic (in, 2, 1, 6, out, 4, 1, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 3; c++)
      g_assert_cmpuint (out[3 * i + c], ==, expected[i]);
  /* the same numbers down a column: the vertical pass */
  g_assert_true (imagebind_image_resize_bicubic (in, 1, 2, 3, col, 1, 4, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 4; i++)
    g_assert_cmpuint (col[3 * i], ==, expected[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/preprocess/image/resize-matches-pillow", test_resize_matches_pillow);
  g_test_add_func ("/preprocess/image/tensor-matches-official", test_tensor_matches_official);
  g_test_add_func ("/preprocess/image/padded-stride", test_padded_stride);
  g_test_add_func ("/preprocess/image/png-decode", test_png_decode);
  g_test_add_func ("/preprocess/image/one-pixel", test_one_pixel);
  g_test_add_func ("/preprocess/image/extreme-aspect", test_extreme_aspect);
  g_test_add_func ("/preprocess/image/identity-resize", test_identity_resize);
  g_test_add_func ("/preprocess/image/hand-computed", test_hand_computed);
  g_test_add_func ("/preprocess/image/refused", test_refused);
  return g_test_run ();
}
