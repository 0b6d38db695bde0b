/* Depth, thermal and IMU front ends: the project's mappings from raw sensor data to the tensors
 * the encoders take. The official repository defines none (spec §7, last paragraph); the
 * choices and the evidence for them are in SENSORS.md, which this file implements exactly:
 *
 *   depth    (1, size, size): Omnivore's disparity in DepthNorm units, n = clamp(d, 0.01, 75) / 75
 *   thermal  (1, size, size): the 8-bit grey frame as x / 255, no mean/std
 *   imu      (6, num_samples): SI units, linearly resampled over the window
 *
 * Depth and thermal take the image path's geometry: short side to size (the truncating rule),
 * centre crop with half-to-even offsets, Pillow's bicubic (float for depth, 8-bit for thermal).
 */
#include "imagebind-frontend.h"

#include <math.h>
#include <string.h>

#include "resample.h"

/* ---- depth ---- */

/* Omnivore's SUN RGB-D conversion (facebookresearch/omnivore#12, the authors' code):
 * disparity = baseline * focal / depth with depth clipped to [0.01, 50], Kinect v1 baseline
 * 0.075 m and focal length 518.857901 px (NYU-v2 / SUN RGB-D kv1). That code divided the
 * SUN RGB-D PNG values by 1000, but those PNGs store millimetres rotated left by 3 bits (x8
 * below 8.192 m), so the depths it saw were 8 times the true ones; the published depth
 * statistics (mean 0.0418 in DepthNorm units) are only reachable with that factor. A true
 * depth z is therefore mapped as the training data saw it: 8 z. See SENSORS.md. */
#define DEPTH_BASELINE_FOCAL (0.075 * 518.857901)   /* m * px */
#define DEPTH_TRAINING_SCALE 8.0                    /* SUN RGB-D PNG read as millimetres */
#define DEPTH_CLIP_MIN 0.01                         /* "metres", before the disparity */
#define DEPTH_CLIP_MAX 50.0
/* Omnivore's DepthNorm(max_depth=75, clamp_max_before_scale=True): clamp to [0.01, 75], / 75 */
#define DISPARITY_MIN 0.01
#define DISPARITY_MAX 75.0
/* After DepthNorm no mean/std is applied (mean 0, std 1), as in omnivision's SUN RGB-D
 * configs, the training code base ImageBind came from; SENSORS.md discusses the alternative. */

static float
depthnorm (double disparity)
{
  return (float) (CLAMP (disparity, DISPARITY_MIN, DISPARITY_MAX) / DISPARITY_MAX);
}

static float
millimetres_to_depthnorm (guint16 mm)
{
  double z;
  if (mm == 0)                       /* invalid: no return, as far as it gets */
    return depthnorm (0.0);
  z = DEPTH_TRAINING_SCALE * (mm / 1000.0);
  z = CLAMP (z, DEPTH_CLIP_MIN, DEPTH_CLIP_MAX);
  return depthnorm (DEPTH_BASELINE_FOCAL / z);
}

/* Common checks of a grey plane: sizes, bits, stride, alignment. */
static gboolean
check_plane (const char *what, guint size, const void *pixels, guint bits, guint width,
    guint height, gsize stride, const float *out, GError **error)
{
  gsize bpp = bits / 8;
  if (!pixels || !out) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "%s: no pixels or no output",
        what);
    return FALSE;
  }
  if (bits != 8 && bits != 16) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: %u bits per pixel; 8 or 16 are supported", what, bits);
    return FALSE;
  }
  if (size == 0 || size > IMAGEBIND_IMAGE_MAX_SIDE || width == 0 || height == 0
      || width > IMAGEBIND_IMAGE_MAX_SIDE || height > IMAGEBIND_IMAGE_MAX_SIDE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: frame %ux%u or tensor size %u outside 1..%u", what, width, height, size,
        IMAGEBIND_IMAGE_MAX_SIDE);
    return FALSE;
  }
  if (stride < (gsize) width * bpp || stride > G_MAXSIZE / height) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: stride %" G_GSIZE_FORMAT " does not hold %u pixels of %u bits", what, stride,
        width, bits);
    return FALSE;
  }
  if (bits == 16 && (stride % 2 != 0 || ((guintptr) pixels) % 2 != 0)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: 16-bit pixels need an even stride and address", what);
    return FALSE;
  }
  return TRUE;
}

static const guint16 *
row16 (const void *pixels, gsize stride, guint y)
{
  return (const guint16 *) ((const guint8 *) pixels + (gsize) y * stride);
}

gboolean
imagebind_depth_to_tensor (guint size, ImageBindDepthFormat format, const void *pixels,
    guint bits, guint width, guint height, gsize stride, float *out, GError **error)
{
  guint rw, rh;
  float *plane;
  gboolean ok;

  if (!check_plane ("depth", size, pixels, bits, width, height, stride, out, error))
    return FALSE;
  if (format == IMAGEBIND_DEPTH_MILLIMETRES && bits != 16) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "depth: millimetre depth must be 16-bit, got %u bits", bits);
    return FALSE;
  }
  if (format != IMAGEBIND_DEPTH_MILLIMETRES && format != IMAGEBIND_DEPTH_DISPARITY) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "depth: unknown format %d",
        (int) format);
    return FALSE;
  }
  plane = g_try_new (float, (gsize) width * height);
  if (!plane) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "depth: out of memory for a %ux%u frame", width, height);
    return FALSE;
  }

  /* DepthNorm per pixel at the source resolution, before the resize (Omnivore's order) */
  for (guint y = 0; y < height; y++) {
    float *o = plane + (gsize) y * width;
    if (format == IMAGEBIND_DEPTH_MILLIMETRES) {
      const guint16 *r = row16 (pixels, stride, y);
      for (guint x = 0; x < width; x++)
        o[x] = millimetres_to_depthnorm (r[x]);
    } else if (bits == 16) {
      /* full scale is DepthNorm's ceiling: 65535 = disparity 75 */
      const guint16 *r = row16 (pixels, stride, y);
      for (guint x = 0; x < width; x++)
        o[x] = depthnorm (r[x] * (DISPARITY_MAX / 65535.0));
    } else {
      const guint8 *r = (const guint8 *) pixels + (gsize) y * stride;
      for (guint x = 0; x < width; x++)
        o[x] = depthnorm (r[x] * (DISPARITY_MAX / 255.0));
    }
  }

  ib_resize_short_side (width, height, size, &rw, &rh);
  ok = ib_resample_f32 (plane, width, height, width, rw, rh, ib_center_crop_offset (rw, size),
      ib_center_crop_offset (rh, size), size, size, out, size, error);
  g_free (plane);
  return ok;
}

/* ---- thermal ---- */

/* 16-bit (radiometric) frames are stretched linearly from the frame's minimum and maximum to
 * 0..255, rounding half up, as a camera's automatic gain control makes the 8-bit frames LLVIP
 * (the training data) consists of. A constant frame maps to 0. */
static void
stretch16 (const void *pixels, guint width, guint height, gsize stride, guint8 *dst)
{
  guint16 lo = G_MAXUINT16, hi = 0;
  guint64 range;
  for (guint y = 0; y < height; y++) {
    const guint16 *r = row16 (pixels, stride, y);
    for (guint x = 0; x < width; x++) {
      lo = MIN (lo, r[x]);
      hi = MAX (hi, r[x]);
    }
  }
  range = (guint64) hi - lo;
  for (guint y = 0; y < height; y++) {
    const guint16 *r = row16 (pixels, stride, y);
    guint8 *d = dst + (gsize) y * width;
    for (guint x = 0; x < width; x++)
      d[x] = range ? (guint8) (((guint64) (r[x] - lo) * 510 + range) / (2 * range)) : 0;
  }
}

gboolean
imagebind_thermal_to_tensor (guint size, const void *pixels, guint bits, guint width,
    guint height, gsize stride, float *out, GError **error)
{
  const guint8 *grey = pixels;
  gsize grey_stride = stride;
  guint8 *stretched = NULL, *crop;
  guint rw, rh;
  gboolean ok;

  if (!check_plane ("thermal", size, pixels, bits, width, height, stride, out, error))
    return FALSE;
  crop = g_try_malloc ((gsize) size * size);
  if (bits == 16) {
    stretched = g_try_malloc ((gsize) width * height);
    if (stretched)
      stretch16 (pixels, width, height, stride, stretched);
    grey = stretched;
    grey_stride = width;
  }
  if (!crop || !grey) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "thermal: out of memory for a %ux%u frame", width, height);
    g_free (crop);
    g_free (stretched);
    return FALSE;
  }

  /* Pillow's "L" mode resize: the 8-bit path with one channel */
  ib_resize_short_side (width, height, size, &rw, &rh);
  ok = ib_resample_u8 (grey, width, height, grey_stride, 1, rw, rh,
      ib_center_crop_offset (rw, size), ib_center_crop_offset (rh, size), size, size, crop,
      size, error);
  if (ok)
    for (gsize i = 0; i < (gsize) size * size; i++)
      out[i] = (float) crop[i] / 255.0f;     /* ToTensor, no Normalize */
  g_free (crop);
  g_free (stretched);
  return ok;
}

/* ---- IMU ---- */

gboolean
imagebind_imu_to_tensor (guint num_samples, const float *interleaved, gsize n_frames,
    float *out, GError **error)
{
  if (!interleaved || !out) {
    g_set_error_literal (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "imu: no samples or no output");
    return FALSE;
  }
  if (n_frames < 2 || num_samples < 2 || n_frames > G_MAXSIZE / (6 * sizeof (float))) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "imu: need at least 2 input samples and 2 output samples, got %" G_GSIZE_FORMAT
        " and %u", n_frames, num_samples);
    return FALSE;
  }
  /* one NaN or infinity would spread through the LayerNorms into the whole embedding */
  for (gsize i = 0; i < n_frames * 6; i++) {
    if (!isfinite (interleaved[i])) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "imu: sample %" G_GSIZE_FORMAT " channel %" G_GSIZE_FORMAT " is not finite", i / 6,
          i % 6);
      return FALSE;
    }
  }

  /* The window's first and last samples map to the first and last outputs; output j reads
   * position j * (n - 1) / (num_samples - 1), linearly between its two neighbours. */
  for (guint j = 0; j < num_samples; j++) {
    double pos = (double) j * (double) (n_frames - 1) / (double) (num_samples - 1);
    gsize i0 = (gsize) pos;
    double f;
    if (i0 >= n_frames - 1)
      i0 = n_frames - 2;
    f = pos - (double) i0;
    for (guint c = 0; c < 6; c++) {
      double a = interleaved[i0 * 6 + c], b = interleaved[(i0 + 1) * 6 + c];
      out[(gsize) c * num_samples + j] = (float) (a + (b - a) * f);
    }
  }
  return TRUE;
}
