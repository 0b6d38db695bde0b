/* Pillow 9.4's bicubic resampling (libImaging/Resample.c), rewritten from its definition in
 * ../shared/spec/ARCHITECTURE.md §7.3 so that the vision tensors equal the official ones bit
 * for bit. Coefficient tables are computed once per call and axis; the inner loops are integer
 * (8-bit path) and run only over the requested output window. */
#include "resample.h"

#include <math.h>
#include <string.h>

#include "imagebind.h"

/* The weights must be computed exactly as Pillow's C code does, in IEEE double: a fused
 * multiply-add (allowed by -ffp-contract=fast, GCC's default for GNU C, on targets with FMA)
 * would round differently and flip some of the 22-bit integer weights. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

#define IB_PRECISION_BITS 22   /* Pillow: 32 - 8 bits - 2 guard bits */

/* One axis of the resize, for output positions first_out .. first_out + n - 1. */
typedef struct {
  guint n;
  guint ksize;        /* row stride of w / iw: ceil(support) * 2 + 1, as Pillow */
  guint *first;       /* first input sample of each output position */
  guint *count;       /* number of taps */
  double *w;          /* normalised weights, n * ksize */
  gint32 *iw;         /* fixed-point weights (8-bit path only), n * ksize */
} IbAxis;

/* Keys' cubic with a = -0.5, Pillow's bicubic_filter. */
static double
bicubic (double x)
{
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static void
axis_clear (IbAxis *axis)
{
  g_free (axis->first);
  g_free (axis->count);
  g_free (axis->w);
  g_free (axis->iw);
  memset (axis, 0, sizeof *axis);
}

static gboolean
axis_init (IbAxis *axis, guint in_size, guint out_size, guint first_out, guint n,
    gboolean fixed_point, GError **error)
{
  double scale = (double) in_size / out_size;
  double fscale = MAX (scale, 1.0);
  double support = 2.0 * fscale;          /* bicubic support is 2 */
  double ss = 1.0 / fscale;               /* Pillow multiplies by the reciprocal */
  double ksize_d = ceil (support) * 2 + 1;

  memset (axis, 0, sizeof *axis);
  if (ksize_d > G_MAXUINT / 2 || (double) n * ksize_d > (double) (G_MAXSIZE / sizeof (double))) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "resize from %u to %u samples needs too large a coefficient table", in_size, out_size);
    return FALSE;
  }
  axis->n = n;
  axis->ksize = (guint) ksize_d;
  axis->first = g_try_new (guint, n);
  axis->count = g_try_new (guint, n);
  axis->w = g_try_new0 (double, (gsize) n * axis->ksize);
  axis->iw = fixed_point ? g_try_new0 (gint32, (gsize) n * axis->ksize) : NULL;
  if (!axis->first || !axis->count || !axis->w || (fixed_point && !axis->iw)) {
    axis_clear (axis);
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "out of memory for a %u -> %u resize", in_size, out_size);
    return FALSE;
  }

  for (guint i = 0; i < n; i++) {
    double center = ((double) (first_out + i) + 0.5) * scale;
    double sum = 0.0;
    /* C casts truncate toward zero, as Pillow's (int) does */
    int xmin = (int) (center - support + 0.5);
    int xmax = (int) (center + support + 0.5);
    double *k = axis->w + (gsize) i * axis->ksize;
    guint count;

    if (xmin < 0)
      xmin = 0;
    if (xmax > (int) in_size)
      xmax = (int) in_size;
    count = xmax > xmin ? (guint) (xmax - xmin) : 0;
    count = MIN (count, axis->ksize);

    for (guint x = 0; x < count; x++) {
      double w = bicubic (((double) (x + (guint) xmin) - center + 0.5) * ss);
      k[x] = w;
      sum += w;
    }
    if (sum != 0.0)
      for (guint x = 0; x < count; x++)
        k[x] /= sum;
    axis->first[i] = (guint) xmin;
    axis->count[i] = count;

    if (fixed_point) {
      gint32 *ik = axis->iw + (gsize) i * axis->ksize;
      for (guint x = 0; x < count; x++)
        ik[x] = k[x] < 0 ? (gint32) (-0.5 + k[x] * (1 << IB_PRECISION_BITS))
            : (gint32) (0.5 + k[x] * (1 << IB_PRECISION_BITS));
    }
  }
  return TRUE;
}

static inline guint8
clip8 (gint32 v)
{
  if (v >= (1 << IB_PRECISION_BITS << 8))
    return 255;
  if (v <= 0)
    return 0;
  return (guint8) (v >> IB_PRECISION_BITS);
}

/* Horizontal pass, 8 bits: rows [r0, r1) of @in to @dst. The sums fit gint32: at most
 * 255 * sum|w| * 2^22 + 2^21 with sum|w| < 1.3 for this kernel. */
static void
horizontal_u8 (const IbAxis *ax, const guint8 *in, gsize in_stride, guint ch, guint r0, guint r1,
    guint8 *dst, gsize dst_stride)
{
  for (guint r = r0; r < r1; r++) {
    const guint8 *src = in + (gsize) r * in_stride;
    guint8 *d = dst + (gsize) (r - r0) * dst_stride;
    for (guint i = 0; i < ax->n; i++) {
      const gint32 *k = ax->iw + (gsize) i * ax->ksize;
      const guint8 *p = src + (gsize) ax->first[i] * ch;
      guint count = ax->count[i];
      if (ch == 3) {
        gint32 s0 = 1 << (IB_PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (guint t = 0; t < count; t++, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        d[3 * i] = clip8 (s0);
        d[3 * i + 1] = clip8 (s1);
        d[3 * i + 2] = clip8 (s2);
      } else {
        for (guint c = 0; c < ch; c++) {
          gint32 s = 1 << (IB_PRECISION_BITS - 1);
          for (guint t = 0; t < count; t++)
            s += p[(gsize) t * ch + c] * k[t];
          d[(gsize) i * ch + c] = clip8 (s);
        }
      }
    }
  }
}

/* Vertical pass, 8 bits: @src holds input rows starting at row @r0 (already cut to the window
 * columns, @width samples per row). Accumulates whole rows so the inner loop vectorises. */
static void
vertical_u8 (const IbAxis *ax, const guint8 *src, gsize src_stride, guint r0, guint width,
    gint32 *acc, guint8 *out, gsize out_stride)
{
  for (guint i = 0; i < ax->n; i++) {
    const gint32 *k = ax->iw + (gsize) i * ax->ksize;
    guint8 *o = out + (gsize) i * out_stride;
    for (guint c = 0; c < width; c++)
      acc[c] = 1 << (IB_PRECISION_BITS - 1);
    for (guint t = 0; t < ax->count[i]; t++) {
      const guint8 *row = src + (gsize) (ax->first[i] + t - r0) * src_stride;
      gint32 w = k[t];
      for (guint c = 0; c < width; c++)
        acc[c] += row[c] * w;
    }
    for (guint c = 0; c < width; c++)
      o[c] = clip8 (acc[c]);
  }
}

gboolean
ib_resample_u8 (const guint8 *in, guint in_w, guint in_h, gsize in_stride, guint channels,
    guint out_w, guint out_h, guint x0, guint y0, guint crop_w, guint crop_h,
    guint8 *out, gsize out_stride, GError **error)
{
  gboolean need_h = out_w != in_w, need_v = out_h != in_h;
  IbAxis ax_h = { 0 }, ax_v = { 0 };
  gsize row_bytes = (gsize) crop_w * channels;
  guint r0, r1;
  gboolean ok = FALSE;

  g_return_val_if_fail (channels >= 1 && channels <= 4 && crop_w >= 1 && crop_h >= 1, FALSE);
  g_return_val_if_fail (x0 + (guint64) crop_w <= out_w && y0 + (guint64) crop_h <= out_h, FALSE);

  if (need_v) {
    if (!axis_init (&ax_v, in_h, out_h, y0, crop_h, TRUE, error))
      return FALSE;
    /* only the input rows that some output row of the window reads */
    r0 = ax_v.first[0];
    r1 = ax_v.first[crop_h - 1] + ax_v.count[crop_h - 1];
  } else {
    r0 = y0;
    r1 = y0 + crop_h;
  }

  if (need_h && !axis_init (&ax_h, in_w, out_w, x0, crop_w, TRUE, error))
    goto done;

  if (!need_v) {
    if (need_h) {
      horizontal_u8 (&ax_h, in, in_stride, channels, r0, r1, out, out_stride);
    } else {
      for (guint r = 0; r < crop_h; r++)
        memcpy (out + (gsize) r * out_stride,
            in + (gsize) (r0 + r) * in_stride + (gsize) x0 * channels, row_bytes);
    }
    ok = TRUE;
  } else {
    const guint8 *src;
    gsize src_stride;
    guint8 *tmp = NULL;
    gint32 *acc = g_try_new (gint32, row_bytes);

    if (need_h) {
      tmp = g_try_malloc_n ((gsize) (r1 - r0), row_bytes);
      if (tmp)
        horizontal_u8 (&ax_h, in, in_stride, channels, r0, r1, tmp, row_bytes);
      src = tmp;
      src_stride = row_bytes;
    } else {
      src = in + (gsize) x0 * channels;   /* rows are addressed from row 0 below */
      src_stride = in_stride;
    }
    if (!acc || (need_h && !tmp)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "out of memory resizing %ux%u to %ux%u", in_w, in_h, out_w, out_h);
    } else {
      if (need_h)
        vertical_u8 (&ax_v, src, src_stride, r0, (guint) row_bytes, acc, out, out_stride);
      else
        vertical_u8 (&ax_v, src, src_stride, 0, (guint) row_bytes, acc, out, out_stride);
      ok = TRUE;
    }
    g_free (tmp);
    g_free (acc);
  }

done:
  axis_clear (&ax_h);
  axis_clear (&ax_v);
  return ok;
}

/* ---- float plane (Pillow "F" mode) ---- */

static void
horizontal_f32 (const IbAxis *ax, const float *in, gsize in_stride, guint r0, guint r1,
    float *dst, gsize dst_stride)
{
  for (guint r = r0; r < r1; r++) {
    const float *src = in + (gsize) r * in_stride;
    float *d = dst + (gsize) (r - r0) * dst_stride;
    for (guint i = 0; i < ax->n; i++) {
      const double *k = ax->w + (gsize) i * ax->ksize;
      const float *p = src + ax->first[i];
      double s = 0.0;
      for (guint t = 0; t < ax->count[i]; t++)
        s += p[t] * k[t];
      d[i] = (float) s;
    }
  }
}

static void
vertical_f32 (const IbAxis *ax, const float *src, gsize src_stride, guint r0, guint width,
    double *acc, float *out, gsize out_stride)
{
  for (guint i = 0; i < ax->n; i++) {
    const double *k = ax->w + (gsize) i * ax->ksize;
    float *o = out + (gsize) i * out_stride;
    for (guint c = 0; c < width; c++)
      acc[c] = 0.0;
    /* tap order per pixel is Pillow's, so the double sums round identically */
    for (guint t = 0; t < ax->count[i]; t++) {
      const float *row = src + (gsize) (ax->first[i] + t - r0) * src_stride;
      double w = k[t];
      for (guint c = 0; c < width; c++)
        acc[c] += row[c] * w;
    }
    for (guint c = 0; c < width; c++)
      o[c] = (float) acc[c];
  }
}

gboolean
ib_resample_f32 (const float *in, guint in_w, guint in_h, gsize in_stride,
    guint out_w, guint out_h, guint x0, guint y0, guint crop_w, guint crop_h,
    float *out, gsize out_stride, GError **error)
{
  gboolean need_h = out_w != in_w, need_v = out_h != in_h;
  IbAxis ax_h = { 0 }, ax_v = { 0 };
  guint r0, r1;
  gboolean ok = FALSE;

  g_return_val_if_fail (crop_w >= 1 && crop_h >= 1, FALSE);
  g_return_val_if_fail (x0 + (guint64) crop_w <= out_w && y0 + (guint64) crop_h <= out_h, FALSE);

  if (need_v) {
    if (!axis_init (&ax_v, in_h, out_h, y0, crop_h, FALSE, error))
      return FALSE;
    r0 = ax_v.first[0];
    r1 = ax_v.first[crop_h - 1] + ax_v.count[crop_h - 1];
  } else {
    r0 = y0;
    r1 = y0 + crop_h;
  }
  if (need_h && !axis_init (&ax_h, in_w, out_w, x0, crop_w, FALSE, error))
    goto done;

  if (!need_v) {
    if (need_h) {
      horizontal_f32 (&ax_h, in, in_stride, r0, r1, out, out_stride);
    } else {
      for (guint r = 0; r < crop_h; r++)
        memcpy (out + (gsize) r * out_stride, in + (gsize) (r0 + r) * in_stride + x0,
            (gsize) crop_w * sizeof (float));
    }
    ok = TRUE;
  } else {
    float *tmp = NULL;
    double *acc = g_try_new (double, crop_w);
    if (need_h) {
      tmp = g_try_malloc_n ((gsize) (r1 - r0) * crop_w, sizeof (float));
      if (tmp)
        horizontal_f32 (&ax_h, in, in_stride, r0, r1, tmp, crop_w);
    }
    if (!acc || (need_h && !tmp)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "out of memory resizing %ux%u to %ux%u", in_w, in_h, out_w, out_h);
    } else {
      if (need_h)
        vertical_f32 (&ax_v, tmp, crop_w, r0, crop_w, acc, out, out_stride);
      else
        vertical_f32 (&ax_v, in + x0, in_stride, 0, crop_w, acc, out, out_stride);
      ok = TRUE;
    }
    g_free (tmp);
    g_free (acc);
  }

done:
  axis_clear (&ax_h);
  axis_clear (&ax_v);
  return ok;
}

void
ib_resize_short_side (guint width, guint height, guint size, guint *out_w, guint *out_h)
{
  /* Python: int(size * long / short), the product exact, the quotient correctly rounded */
  if (width <= height) {
    *out_w = size;
    *out_h = (guint) ((double) ((guint64) size * height) / (double) width);
  } else {
    *out_w = (guint) ((double) ((guint64) size * width) / (double) height);
    *out_h = size;
  }
}

guint
ib_center_crop_offset (guint resized, guint crop)
{
  guint d = resized - crop, k = d / 2;
  if (d & 1)
    k += k & 1;          /* x.5 rounds to the even neighbour */
  return k;
}
