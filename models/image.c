/* Image front end: packed 8-bit RGB to the (3, size, size) tensor of the official
 * load_and_transform_vision_data (../shared/spec/ARCHITECTURE.md §7): short side to @size with
 * Pillow's 8-bit bicubic, centre crop with half-to-even offsets, (x / 255 - mean) / std in
 * float32. Only the cropped window of the resize is computed (see resample.h). */
#include "imagebind-frontend.h"

#include "resample.h"

ImageBindImageParams
imagebind_image_default_params (void)
{
  ImageBindImageParams p = {
    .size = 224,
    .mean = { 0.48145466f, 0.4578275f, 0.40821073f },
    .std = { 0.26862954f, 0.26130258f, 0.27577711f },
  };
  return p;
}

ImageBindImageParams
imagebind_image_params_from_model (const ImageBindModel *model)
{
  ImageBindImageParams p = imagebind_image_default_params ();
  ImageBindInputGeometry g;

  g_return_val_if_fail (model != NULL, p);
  imagebind_model_input_geometry (model, &g);
  p.size = g.image_size;
  for (int c = 0; c < 3; c++) {
    p.mean[c] = g.image_mean[c];
    p.std[c] = g.image_std[c];
  }
  return p;
}

/* Width, height and stride of a packed RGB buffer: sizes >= 1, at most
 * IMAGEBIND_IMAGE_MAX_SIDE, a stride that holds a row, and a last byte that gsize can address. */
static gboolean
check_rgb (const guint8 *rgb, guint width, guint height, gsize stride, const char *what,
    GError **error)
{
  if (!rgb) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "%s: no pixels", what);
    return FALSE;
  }
  if (width == 0 || height == 0 || width > IMAGEBIND_IMAGE_MAX_SIDE
      || height > IMAGEBIND_IMAGE_MAX_SIDE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: size %ux%u is outside 1..%u per side", what, width, height,
        IMAGEBIND_IMAGE_MAX_SIDE);
    return FALSE;
  }
  if (stride < (gsize) width * 3 || stride > G_MAXSIZE / height) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s: stride %" G_GSIZE_FORMAT " does not fit %u RGB pixels per row", what, stride,
        width);
    return FALSE;
  }
  return TRUE;
}

gboolean
imagebind_image_resize_bicubic (const guint8 *rgb, guint width, guint height, gsize stride,
    guint8 *out, guint out_width, guint out_height, GError **error)
{
  if (!check_rgb (rgb, width, height, stride, "resize", error))
    return FALSE;
  if (!out || out_width == 0 || out_height == 0 || out_width > IMAGEBIND_IMAGE_MAX_SIDE
      || out_height > IMAGEBIND_IMAGE_MAX_SIDE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "resize: output size %ux%u is outside 1..%u per side", out_width, out_height,
        IMAGEBIND_IMAGE_MAX_SIDE);
    return FALSE;
  }
  return ib_resample_u8 (rgb, width, height, stride, 3, out_width, out_height, 0, 0, out_width,
      out_height, out, (gsize) out_width * 3, error);
}

gboolean
imagebind_image_to_tensor (const ImageBindImageParams *params, const guint8 *rgb, guint width,
    guint height, gsize stride, float *out, GError **error)
{
  guint size, rw, rh, left, top;
  gsize plane;
  float lut[3][256];
  guint8 *crop;

  if (!params || !out) {
    g_set_error_literal (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "image: no parameters or no output buffer");
    return FALSE;
  }
  size = params->size;
  if (size == 0 || size > IMAGEBIND_IMAGE_MAX_SIDE) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "image: tensor size %u is outside 1..%u", size, IMAGEBIND_IMAGE_MAX_SIDE);
    return FALSE;
  }
  for (int c = 0; c < 3; c++) {
    if (!(params->std[c] != 0.0f)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "image: std[%d] is zero or NaN", c);
      return FALSE;
    }
  }
  if (!check_rgb (rgb, width, height, stride, "image", error))
    return FALSE;

  ib_resize_short_side (width, height, size, &rw, &rh);
  left = ib_center_crop_offset (rw, size);
  top = ib_center_crop_offset (rh, size);

  plane = (gsize) size * size;
  crop = g_try_malloc_n (plane, 3);
  if (!crop) {
    g_set_error_literal (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "image: out of memory");
    return FALSE;
  }
  if (!ib_resample_u8 (rgb, width, height, stride, 3, rw, rh, left, top, size, size, crop,
          (gsize) size * 3, error)) {
    g_free (crop);
    return FALSE;
  }

  /* ToTensor then Normalize, both in float32 and in this order: a division by 255, a
   * subtraction, a division by std (not a multiplication by its reciprocal). Only 256 values
   * per channel exist, so they are computed once. */
  for (int c = 0; c < 3; c++) {
    for (int v = 0; v < 256; v++) {
      volatile float x = (float) v / 255.0f;   /* keep the float32 rounding of each step */
      volatile float centred = x - params->mean[c];
      lut[c][v] = centred / params->std[c];
    }
  }
  for (gsize i = 0; i < plane; i++) {
    out[i] = lut[0][crop[3 * i]];
    out[plane + i] = lut[1][crop[3 * i + 1]];
    out[2 * plane + i] = lut[2][crop[3 * i + 2]];
  }
  g_free (crop);
  return TRUE;
}
