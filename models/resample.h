/* Pillow's separable bicubic resampling (internal to the preprocessing front ends).
 *
 * ../shared/spec/ARCHITECTURE.md §7.3: Pillow 9.4 resizes in two passes, horizontal first
 * (only when the width changes), then vertical (only when the height changes). Each output
 * position i of a pass from `in` to `out` samples has the taps xmin .. xmin+count-1 with
 * weights K((j - centre + 0.5) / fscale) normalised to sum 1 (double precision); the 8-bit
 * path turns them into 22-bit fixed point and rounds and clamps to 8 bits after each pass.
 *
 * Both entry points compute only a window (x0, y0, crop_w, crop_h) of the resized image:
 * every output pixel depends only on its own position, so the window is bit-identical to the
 * same crop of a full resize, and an extreme aspect ratio (1 x 2000 resized to
 * 224 x 448000) never allocates the full resized image.
 */
#ifndef IB_RESAMPLE_H
#define IB_RESAMPLE_H

#include <glib.h>

G_BEGIN_DECLS

/* 8 bits per sample, @channels interleaved samples per pixel (1..4), strides in bytes.
 * Writes crop_w x crop_h pixels of the (out_w x out_h) resize of @in to @out. The window
 * must lie inside the resized image; sizes must be >= 1 (the caller validates). FALSE with
 * @error only when memory for the intermediate rows cannot be allocated. */
gboolean ib_resample_u8 (const guint8 *in, guint in_w, guint in_h, gsize in_stride,
    guint channels, guint out_w, guint out_h, guint x0, guint y0, guint crop_w, guint crop_h,
    guint8 *out, gsize out_stride, GError **error);

/* One float plane, strides in floats: Pillow's "F" mode resize (double accumulation, the same
 * normalised double weights, no intermediate rounding). Same window rules as above. */
gboolean ib_resample_f32 (const float *in, guint in_w, guint in_h, gsize in_stride,
    guint out_w, guint out_h, guint x0, guint y0, guint crop_w, guint crop_h,
    float *out, gsize out_stride, GError **error);

/* The official short-side rule (torchvision 0.14 Resize(int) on a PIL image):
 * W <= H gives (size, trunc(size * H / W)), else (trunc(size * W / H), size), the division in
 * double. Never 0, since the long side scales to at least @size. */
void ib_resize_short_side (guint width, guint height, guint size, guint *out_w, guint *out_h);

/* torchvision CenterCrop's offset: round((resized - crop) / 2) with Python's round (half to
 * even): 73 -> 36, 75 -> 38. */
guint ib_center_crop_offset (guint resized, guint crop);

G_END_DECLS

#endif
