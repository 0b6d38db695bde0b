/* The official video loader's spatial path (load_and_transform_video_data, spec §7), for the
 * frames of one clip: x / 255 in float32, short side to params->size with PyTorch's bilinear
 * interpolation (align_corners False, no antialias), CLIP normalisation, one of three spatial
 * crops. Clip timing (which frames) is the caller's: the official sampler takes the first and
 * last decoded frame of each 2 s clip, 5 clips per video, and the model averages the
 * 5 x 3 = 15 embeddings.
 *
 * The plugin's live path does not come here: it embeds single frames through
 * imagebind_image_to_tensor (Pillow bicubic, centre crop), which is what the official code
 * does for images; the model repeats an image to two identical frames. */
#include "imagebind-frontend.h"

#include <math.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

/* One axis of torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on CPU
 * (float32 inputs: the scale and the source index are float, as ATen's opmath for float). */
typedef struct {
  guint i0, i1;
  float l0, l1;
} BilinearTap;

static void
bilinear_taps (guint in_size, guint out_size, guint first, guint n, BilinearTap *taps)
{
  float scale = (float) in_size / (float) out_size;
  for (guint k = 0; k < n; k++) {
    guint i = first + k, i0;
    float real, l1;
    if (in_size == out_size) {
      taps[k] = (BilinearTap) { i, i, 1.0f, 0.0f };
      continue;
    }
    /* ATen: scale * (dst + 0.5) - 0.5 evaluated in double (the 0.5 literals), stored as float,
     * negative values clamped to 0 */
    real = (float) ((double) scale * ((double) i + 0.5) - 0.5);
    if (real < 0.0f)
      real = 0.0f;
    i0 = MIN ((guint) floorf (real), in_size - 1);
    l1 = CLAMP (real - (float) i0, 0.0f, 1.0f);
    taps[k].i0 = i0;
    taps[k].i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
    taps[k].l1 = l1;
    taps[k].l0 = 1.0f - l1;
  }
}

/* uniform_crop of the official data.py: centre offset ceil((long - size) / 2); crop 0 and 2
 * move to the start and end of the long side (height when height > width, else width). */
static void
crop_offsets (guint rw, guint rh, guint size, guint crop_index, guint *left, guint *top)
{
  *left = (rw - size + 1) / 2;
  *top = (rh - size + 1) / 2;
  if (rh > rw) {
    if (crop_index == 0)
      *top = 0;
    else if (crop_index == 2)
      *top = rh - size;
  } else {
    if (crop_index == 0)
      *left = 0;
    else if (crop_index == 2)
      *left = rw - size;
  }
}

gboolean
imagebind_video_clip_to_tensor (const ImageBindImageParams *params, const guint8 *const *frames,
    guint n_frames, guint width, guint height, gsize stride, guint crop_index, float *out,
    GError **error)
{
  guint size, rw, rh, left, top;
  gsize plane;
  BilinearTap *tx, *ty;
  float unit[256];

  if (!params || !frames || !out || n_frames == 0) {
    g_set_error_literal (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "video: no parameters, frames or output buffer");
    return FALSE;
  }
  size = params->size;
  if (size == 0 || size > IMAGEBIND_IMAGE_MAX_SIDE || crop_index > 2) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "video: tensor size %u (1..%u) or crop index %u (0..2) out of range", size,
        IMAGEBIND_IMAGE_MAX_SIDE, crop_index);
    return FALSE;
  }
  if (width == 0 || height == 0 || width > IMAGEBIND_IMAGE_MAX_SIDE
      || height > IMAGEBIND_IMAGE_MAX_SIDE || stride < (gsize) width * 3
      || stride > G_MAXSIZE / height) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "video: frame %ux%u with stride %" G_GSIZE_FORMAT " is not a usable RGB frame "
        "(1..%u per side)", width, height, stride, IMAGEBIND_IMAGE_MAX_SIDE);
    return FALSE;
  }
  for (guint t = 0; t < n_frames; t++) {
    if (!frames[t]) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "video: frame %u is NULL", t);
      return FALSE;
    }
  }
  for (int c = 0; c < 3; c++) {
    if (!(params->std[c] != 0.0f)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "video: std[%d] is zero or NaN", c);
      return FALSE;
    }
  }

  /* pytorchvideo ShortSideScale: strict w < h; long = floor(long / short * size) in double */
  if (width < height) {
    rw = size;
    rh = (guint) floor ((double) height / width * size);
  } else {
    rh = size;
    rw = (guint) floor ((double) width / height * size);
  }
  crop_offsets (rw, rh, size, crop_index, &left, &top);

  /* x / 255 in float32 has only 256 values */
  for (int v = 0; v < 256; v++)
    unit[v] = (float) v / 255.0f;

  tx = g_new (BilinearTap, size);
  ty = g_new (BilinearTap, size);
  bilinear_taps (width, rw, left, size, tx);
  bilinear_taps (height, rh, top, size, ty);

  plane = (gsize) size * size;
  for (guint t = 0; t < n_frames; t++) {
    const guint8 *frame = frames[t];
    for (int c = 0; c < 3; c++) {
      float *o = out + ((gsize) c * n_frames + t) * plane;
      for (guint y = 0; y < size; y++) {
        const guint8 *r0 = frame + (gsize) ty[y].i0 * stride + c;
        const guint8 *r1 = frame + (gsize) ty[y].i1 * stride + c;
        for (guint x = 0; x < size; x++) {
          gsize a = (gsize) tx[x].i0 * 3, b = (gsize) tx[x].i1 * 3;
          /* ATen's order: rows first combine along the width, then the two rows */
          float t0 = unit[r0[a]] * tx[x].l0 + unit[r0[b]] * tx[x].l1;
          float t1 = unit[r1[a]] * tx[x].l0 + unit[r1[b]] * tx[x].l1;
          float v = t0 * ty[y].l0 + t1 * ty[y].l1;
          o[(gsize) y * size + x] = (v - params->mean[c]) / params->std[c];
        }
      }
    }
  }
  g_free (tx);
  g_free (ty);
  return TRUE;
}
