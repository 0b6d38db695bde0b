/* Depth, thermal and IMU mappings (models/SENSORS.md) and the official video clip path, on
 * small inputs whose outputs are computed by hand in the comments. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "imagebind-frontend.h"

#define EXPECT_INPUT_ERROR(call) G_STMT_START { \
    GError *error = NULL; \
    g_assert_false (call); \
    g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT); \
    g_test_message ("refused: %s", error->message); \
    g_error_free (error); \
  } G_STMT_END

/* float32 results of double formulas: a few float ulps */
#define CMP(a, b) g_assert_cmpfloat_with_epsilon ((a), (b), 3e-7 * fabs (b) + 1e-12)

/* ---- depth ---- */

/* Millimetres, no resize (4 x 1 frame -> size 1 would resize; use 2 x 2 -> size 2).
 * n = clamp(38.914342575 / clamp(8 z, 0.01, 50), 0.01, 75) / 75, z in metres:
 *   0 mm (invalid)  -> disparity 0 -> floor 0.01 -> 0.01 / 75     = 0.000133333
 *   1000 mm         -> 8 m   -> 4.8642928     -> / 75            = 0.0648572376
 *   500 mm          -> 4 m   -> 9.7285856     -> / 75            = 0.1297144753
 *   60 mm           -> 0.48  -> 81.07         -> clamp 75 -> 1.0
 *   10000 mm        -> 80 m, clipped to 50 -> 0.7782869          = 0.0103771580
 *   65535 mm        -> same clip                                 = 0.0103771580 */
static void
test_depth_millimetres (void)
{
  const guint16 mm[2][2] = { { 0, 1000 }, { 500, 60 } };
  const guint16 far[2][2] = { { 10000, 65535 }, { 10000, 65535 } };
  float out[4];
  GError *error = NULL;

  g_assert_true (imagebind_depth_to_tensor (2, IMAGEBIND_DEPTH_MILLIMETRES, mm, 16, 2, 2, 4, out,
          &error));
  g_assert_no_error (error);
  CMP (out[0], 0.01 / 75);
  CMP (out[1], 0.064857237625);
  CMP (out[2], 0.12971447525);
  CMP (out[3], 1.0);
  g_assert_true (imagebind_depth_to_tensor (2, IMAGEBIND_DEPTH_MILLIMETRES, far, 16, 2, 2, 4,
          out, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 4; i++)
    CMP (out[i], 0.01037715802);
}

/* Disparity images: full scale is DepthNorm's ceiling (255 or 65535 = 1.0), 0 floors at
 * 0.01 / 75, 51 / 255 = 0.2, 13107 / 65535 = 0.2. */
static void
test_depth_disparity (void)
{
  const guint8 d8[4] = { 0, 51, 255, 128 };
  const guint16 d16[4] = { 0, 13107, 65535, 1 };
  float out[4];
  GError *error = NULL;

  g_assert_true (imagebind_depth_to_tensor (2, IMAGEBIND_DEPTH_DISPARITY, d8, 8, 2, 2, 2, out,
          &error));
  g_assert_no_error (error);
  CMP (out[0], 0.01 / 75);
  CMP (out[1], 0.2);
  CMP (out[2], 1.0);
  CMP (out[3], 128.0 / 255.0);
  g_assert_true (imagebind_depth_to_tensor (2, IMAGEBIND_DEPTH_DISPARITY, d16, 16, 2, 2, 4, out,
          &error));
  g_assert_no_error (error);
  CMP (out[0], 0.01 / 75);
  CMP (out[1], 0.2);
  CMP (out[2], 1.0);
  CMP (out[3], 0.01 / 75);      /* 75 / 65535 = 0.0011 < 0.01: floored */
}

/* Geometry: an 8 x 4 frame at size 4 keeps its size (short side 4, long int(4 * 8 / 4) = 8)
 * and is centre-cropped at left round((8 - 4) / 2) = 2: columns 2..5. */
static void
test_depth_crop (void)
{
  guint8 d[4][8];
  float out[16];
  GError *error = NULL;
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 8; x++)
      d[y][x] = (guint8) (10 * x + 100 * (y % 2) + 20);
  g_assert_true (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, d, 8, 8, 4, 8, out,
          &error));
  g_assert_no_error (error);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      CMP (out[y * 4 + x], d[y][x + 2] / 255.0);
}

/* Resampling: a 2 x 1 disparity frame (0, 255) -> n = (0.000133333, 1) at size 4: short side
 * 1 -> 4, long int(4 * 2 / 1) = 8, crop left 2. The height 1 -> 4 pass has one tap of weight
 * 1; the width 2 -> 8 pass has Pillow's bicubic weights (scale 0.25, support 2), e.g. output 2:
 * centre 0.625, taps 0, 1: K(-0.125) = 0.978515625, K(0.875) = 0.0908203125, normalised
 * 0.915068, 0.084932 -> 0.915068 * 0.000133 + 0.084932 * 1 = 0.0862330. Outputs 2..5:
 * 0.08623296, 0.34886307, 0.65127027, 0.91390038 (float, double accumulation). */
static void
test_depth_resample (void)
{
  const guint8 d[2] = { 0, 255 };
  const double expected[4] = { 0.08623296022415161, 0.34886306524276733, 0.6512702703475952,
    0.9139003753662109 };
  float out[16];
  GError *error = NULL;
  g_assert_true (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, d, 8, 2, 1, 2, out,
          &error));
  g_assert_no_error (error);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      CMP (out[y * 4 + x], expected[x]);
}

static void
test_depth_refused (void)
{
  guint16 px[16] = { 0 };
  float out[16];
  guint8 *bytes = (guint8 *) px;

  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_MILLIMETRES, px, 8, 4, 4, 4,
          out, &error));        /* mm must be 16-bit */
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, px, 12, 4, 4, 8,
          out, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (0, IMAGEBIND_DEPTH_DISPARITY, px, 16, 4, 4, 8,
          out, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, px, 16, 0, 0, 0,
          out, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, px, 16, 4, 4, 7,
          out, &error));        /* stride < 4 * 2 */
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, px, 16, 3, 3, 7,
          out, &error));        /* odd stride for 16-bit */
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, bytes + 1, 16, 2,
          2, 4, out, &error));  /* misaligned 16-bit pixels */
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, NULL, 16, 2, 2, 4,
          out, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, IMAGEBIND_DEPTH_DISPARITY, px, 16, 2, 2, 4,
          NULL, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (4, (ImageBindDepthFormat) 7, px, 16, 2, 2, 4,
          out, &error));
  EXPECT_INPUT_ERROR (imagebind_depth_to_tensor (224, IMAGEBIND_DEPTH_MILLIMETRES, px, 16,
          100000, 100000, 200000, out, &error));
}

/* ---- thermal ---- */

static void
test_thermal_8bit (void)
{
  const guint8 t[2][2] = { { 0, 17 }, { 200, 255 } };
  float out[4];
  GError *error = NULL;
  g_assert_true (imagebind_thermal_to_tensor (2, t, 8, 2, 2, 2, out, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (out[0], ==, 0.0f);
  g_assert_cmpfloat (out[1], ==, 17.0f / 255.0f);
  g_assert_cmpfloat (out[2], ==, 200.0f / 255.0f);
  g_assert_cmpfloat (out[3], ==, 1.0f);
}

/* 16-bit: min 1000, max 2000 -> (v - 1000) * 255 / 1000 rounded half up:
 * 1000 -> 0, 1100 -> 25.5 -> 26, 1200 -> 51, 2000 -> 255. A constant frame gives 0. */
static void
test_thermal_16bit (void)
{
  const guint16 t[4] = { 1000, 1100, 1200, 2000 };
  const guint16 flat[4] = { 3000, 3000, 3000, 3000 };
  float out[4];
  GError *error = NULL;
  g_assert_true (imagebind_thermal_to_tensor (2, t, 16, 2, 2, 4, out, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (out[0], ==, 0.0f);
  g_assert_cmpfloat (out[1], ==, 26.0f / 255.0f);
  g_assert_cmpfloat (out[2], ==, 51.0f / 255.0f);
  g_assert_cmpfloat (out[3], ==, 1.0f);
  g_assert_true (imagebind_thermal_to_tensor (2, flat, 16, 2, 2, 4, out, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (out[i], ==, 0.0f);
}

/* Pillow's 8-bit "L" resize: (0, 255) as 2 x 1 at size 4 -> 8 x 4, crop left 2; the width pass
 * in 22-bit fixed point gives 0 0 22 89 166 233 255 255, so columns 2..5 are 22 89 166 233. */
static void
test_thermal_resample (void)
{
  const guint8 t[2] = { 0, 255 };
  const guint8 expected[4] = { 22, 89, 166, 233 };
  float out[16];
  GError *error = NULL;
  g_assert_true (imagebind_thermal_to_tensor (4, t, 8, 2, 1, 2, out, &error));
  g_assert_no_error (error);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      g_assert_cmpfloat (out[y * 4 + x], ==, expected[x] / 255.0f);
}

static void
test_thermal_refused (void)
{
  guint16 px[16] = { 0 };
  float out[16];
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, px, 10, 4, 4, 8, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (0, px, 8, 4, 4, 4, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, px, 8, 0, 4, 4, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, px, 8, 4, 4, 3, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, px, 16, 4, 4, 6, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, NULL, 8, 4, 4, 4, out, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (4, px, 8, 4, 4, 4, NULL, &error));
  EXPECT_INPUT_ERROR (imagebind_thermal_to_tensor (224, px, 8, 40000, 2, 40000, out, &error));
}

/* ---- IMU ---- */

/* Two input samples to 5 outputs at positions 0, 0.25, 0.5, 0.75, 1; planar (6, 5) output. */
static void
test_imu_linear (void)
{
  const float in[2 * 6] = {
    0, 1, 9.81f, -2, 0.5f, 100,
    4, 3, 9.81f, 2, -0.5f, 0,
  };
  float out[6 * 5];
  GError *error = NULL;
  g_assert_true (imagebind_imu_to_tensor (5, in, 2, out, &error));
  g_assert_no_error (error);
  for (int j = 0; j < 5; j++) {
    double f = j / 4.0;
    for (int c = 0; c < 6; c++)
      CMP (out[c * 5 + j], in[c] + (in[6 + c] - in[c]) * f);
  }
  CMP (out[0 * 5 + 1], 1.0);      /* ax: 0 -> 4, a quarter of the way */
  CMP (out[3 * 5 + 2], 0.0);      /* gx: -2 -> 2, halfway */
  CMP (out[5 * 5 + 3], 25.0);     /* gz: 100 -> 0, three quarters */
}

/* Same count: the identity. 3 -> 2: the first and last samples. 4 -> 3: positions 0, 1.5, 3. */
static void
test_imu_resample (void)
{
  float in[4 * 6], out[6 * 4];
  GError *error = NULL;
  for (int i = 0; i < 4 * 6; i++)
    in[i] = (float) (i * i) * 0.25f - 3.0f;

  g_assert_true (imagebind_imu_to_tensor (4, in, 4, out, &error));
  g_assert_no_error (error);
  for (int j = 0; j < 4; j++)
    for (int c = 0; c < 6; c++)
      g_assert_cmpfloat (out[c * 4 + j], ==, in[j * 6 + c]);

  g_assert_true (imagebind_imu_to_tensor (2, in, 3, out, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 6; c++) {
    g_assert_cmpfloat (out[c * 2], ==, in[c]);
    g_assert_cmpfloat (out[c * 2 + 1], ==, in[2 * 6 + c]);
  }

  g_assert_true (imagebind_imu_to_tensor (3, in, 4, out, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 6; c++) {
    g_assert_cmpfloat (out[c * 3], ==, in[c]);
    CMP (out[c * 3 + 1], 0.5 * in[1 * 6 + c] + 0.5 * in[2 * 6 + c]);
    g_assert_cmpfloat (out[c * 3 + 2], ==, in[3 * 6 + c]);
  }
}

/* The model's window: 2000 samples from e.g. 5 s at 200 Hz (1001 samples). */
static void
test_imu_model_window (void)
{
  gsize n = 1001;
  float *in = g_new (float, n * 6), *out = g_new (float, 6 * 2000);
  GError *error = NULL;
  for (gsize i = 0; i < n; i++)
    for (int c = 0; c < 6; c++)
      in[i * 6 + c] = (float) (c + 1) * (float) i;   /* linear ramps stay linear */
  g_assert_true (imagebind_imu_to_tensor (2000, in, n, out, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 6; c++)
    for (int j = 0; j < 2000; j++)
      CMP (out[c * 2000 + j], (c + 1) * (j * 1000.0 / 1999.0));
  g_free (in);
  g_free (out);
}

static void
test_imu_refused (void)
{
  float in[3 * 6] = { 0 }, out[6 * 4];
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, in, 1, out, &error));
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, in, 0, out, &error));
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (1, in, 3, out, &error));
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, NULL, 3, out, &error));
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, in, 3, NULL, &error));
  in[7] = NAN;
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, in, 3, out, &error));
  in[7] = INFINITY;
  EXPECT_INPUT_ERROR (imagebind_imu_to_tensor (4, in, 3, out, &error));
}

/* ---- video (official clip path) ---- */

static float
clip_norm (float v, int c)
{
  ImageBindImageParams p = imagebind_image_default_params ();
  return (v - p.mean[c]) / p.std[c];
}

/* A 4 x 2 frame at size 2: short side 2 (h), long floor(4 / 2 * 2) = 4, nothing to resize;
 * crops at x = 0, ceil((4 - 2) / 2) = 1, 4 - 2 = 2. Output (3, 2 frames, 2, 2). */
static void
test_video_crops (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  guint8 f0[2][12], f1[2][12];
  const guint8 *frames[2] = { &f0[0][0], &f1[0][0] };
  float out[3 * 2 * 2 * 2];
  GError *error = NULL;

  params.size = 2;
  for (int y = 0; y < 2; y++)
    for (int i = 0; i < 12; i++) {
      f0[y][i] = (guint8) (i * 20 + y * 7);
      f1[y][i] = (guint8) (255 - i * 20 - y * 7);
    }
  for (guint crop = 0; crop < 3; crop++) {
    g_assert_true (imagebind_video_clip_to_tensor (&params, frames, 2, 4, 2, 12, crop, out,
            &error));
    g_assert_no_error (error);
    for (int c = 0; c < 3; c++)
      for (int t = 0; t < 2; t++)
        for (int y = 0; y < 2; y++)
          for (int x = 0; x < 2; x++) {
            const guint8 *f = t == 0 ? &f0[y][0] : &f1[y][0];
            float v = (float) f[(x + crop) * 3 + c] / 255.0f;
            g_assert_cmpfloat (out[((c * 2 + t) * 2 + y) * 2 + x], ==, clip_norm (v, c));
          }
  }
}

/* Portrait 2 x 4 at size 2: crops move down the height, y = 0, 1, 2. */
static void
test_video_portrait (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  guint8 f[4][6];
  const guint8 *frames[1] = { &f[0][0] };
  float out[3 * 2 * 2];
  GError *error = NULL;

  params.size = 2;
  for (int y = 0; y < 4; y++)
    for (int i = 0; i < 6; i++)
      f[y][i] = (guint8) (y * 60 + i * 3);
  for (guint crop = 0; crop < 3; crop++) {
    g_assert_true (imagebind_video_clip_to_tensor (&params, frames, 1, 2, 4, 6, crop, out,
            &error));
    g_assert_no_error (error);
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
          g_assert_cmpfloat (out[(c * 2 + y) * 2 + x], ==,
              clip_norm ((float) f[y + crop][x * 3 + c] / 255.0f, c));
  }
}

/* Bilinear, align_corners False: 2 -> 4 samples read source positions
 * 0.5 * (i + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (index 1, its own neighbour),
 * so a (0, 255) edge becomes 0, 0.25, 0.75, 1 in both directions. */
static void
test_video_bilinear (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  /* R varies along x, G along y, B constant 255 */
  const guint8 f[2][6] = { { 0, 0, 255, 255, 0, 255 }, { 0, 255, 255, 255, 255, 255 } };
  const guint8 *frames[1] = { &f[0][0] };
  const float ramp[4] = { 0.0f, 0.25f, 0.75f, 1.0f };
  float out[3 * 16];
  GError *error = NULL;

  params.size = 4;
  g_assert_true (imagebind_video_clip_to_tensor (&params, frames, 1, 2, 2, 6, 1, out, &error));
  g_assert_no_error (error);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) {
      g_assert_cmpfloat (out[0 * 16 + y * 4 + x], ==, clip_norm (ramp[x], 0));
      g_assert_cmpfloat (out[1 * 16 + y * 4 + x], ==, clip_norm (ramp[y], 1));
      g_assert_cmpfloat (out[2 * 16 + y * 4 + x], ==, clip_norm (1.0f, 2));
    }
}

static void
test_video_refused (void)
{
  ImageBindImageParams params = imagebind_image_default_params ();
  guint8 px[12] = { 0 };
  const guint8 *frames[2] = { px, NULL };
  float *out = g_new (float, 3 * 2 * 224 * 224);
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 1, 2, 2, 6, 3, out,
          &error));
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 0, 2, 2, 6, 0, out,
          &error));
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 2, 2, 2, 6, 0, out,
          &error));   /* second frame NULL */
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 1, 2, 2, 5, 0, out,
          &error));   /* stride */
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 1, 0, 2, 6, 0, out,
          &error));
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (NULL, frames, 1, 2, 2, 6, 0, out,
          &error));
  EXPECT_INPUT_ERROR (imagebind_video_clip_to_tensor (&params, frames, 1, 100000, 100000,
          300000, 0, out, &error));
  g_free (out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/preprocess/depth/millimetres", test_depth_millimetres);
  g_test_add_func ("/preprocess/depth/disparity", test_depth_disparity);
  g_test_add_func ("/preprocess/depth/crop", test_depth_crop);
  g_test_add_func ("/preprocess/depth/resample", test_depth_resample);
  g_test_add_func ("/preprocess/depth/refused", test_depth_refused);
  g_test_add_func ("/preprocess/thermal/8bit", test_thermal_8bit);
  g_test_add_func ("/preprocess/thermal/16bit", test_thermal_16bit);
  g_test_add_func ("/preprocess/thermal/resample", test_thermal_resample);
  g_test_add_func ("/preprocess/thermal/refused", test_thermal_refused);
  g_test_add_func ("/preprocess/imu/linear", test_imu_linear);
  g_test_add_func ("/preprocess/imu/resample", test_imu_resample);
  g_test_add_func ("/preprocess/imu/model-window", test_imu_model_window);
  g_test_add_func ("/preprocess/imu/refused", test_imu_refused);
  g_test_add_func ("/preprocess/video/crops", test_video_crops);
  g_test_add_func ("/preprocess/video/portrait", test_video_portrait);
  g_test_add_func ("/preprocess/video/bilinear", test_video_bilinear);
  g_test_add_func ("/preprocess/video/refused", test_video_refused);
  return g_test_run ();
}
