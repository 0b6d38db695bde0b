/* The element-wise operations of the encoders (models/ops.c) against double-precision
 * references: GELU, softmax (plain and causal, the scalar rows of the generic attention path),
 * LayerNorm, a whole attention head, and the linear layers. Whichever path the CPU takes (AVX-512 kernels or
 * scalar loops and OpenBLAS; the meson test ops-scalar forces the latter), the results must be
 * within a few float ulps of the exact values. */

#include <math.h>

#include "ops.h"

static void
test_gelu (void)
{
  GRand *rand = g_rand_new_with_seed (10);
  gsize n = 100003;    /* not a multiple of 16: a masked tail */
  float *x = g_new (float, n);
  double worst = 0;

  for (gsize i = 0; i < n; i++)
    x[i] = i < 8 ? (float) (i * 3.0 - 12.0) : (float) g_rand_double_range (rand, -9.0, 9.0);
  x[8] = 0.0f;
  x[9] = -0.0f;
  x[10] = 1e-30f;
  x[11] = 40.0f;
  x[12] = -40.0f;
  float *y = g_memdup2 (x, n * sizeof (float));
  ib_gelu (y, n, 0);
  for (gsize i = 0; i < n; i++) {
    double v = x[i], want = 0.5 * v * (1.0 + erf (v / sqrt (2.0)));
    /* erf's ulp error, plus the float rounding of x / sqrt 2 (times the slope of GELU) */
    double tol = 4 * FLT_EPSILON * MAX (fabs (want), 1e-30) + 2e-7 * fabs (v) * 1.2;
    double err = fabs (y[i] - want);
    if (!(err <= tol))
      g_error ("gelu(%.9g) = %.9g, want %.9g", x[i], y[i], want);
    worst = MAX (worst, err / tol);
  }
  g_test_message ("gelu: worst error %.2f of the tolerance", worst);
  g_free (x);
  g_free (y);
  g_rand_free (rand);
}

static void
check_softmax (GRand *rand, gsize rows, gsize cols, gsize ld, gboolean causal)
{
  float *s = g_new (float, rows * ld), *orig;

  for (gsize i = 0; i < rows * ld; i++)
    s[i] = (float) g_rand_double_range (rand, -30.0, 30.0);
  orig = g_memdup2 (s, rows * ld * sizeof (float));
  ib_softmax_rows (s, rows, cols, ld, causal);
  for (gsize r = 0; r < rows; r++) {
    gsize n = causal ? MIN (r + 1, cols) : cols;
    const float *in = orig + r * ld;
    float max = in[0];
    double sum = 0;
    for (gsize j = 1; j < n; j++)
      max = MAX (max, in[j]);
    /* exp of the float difference, as both paths compute it: its rounding is the input's */
    for (gsize j = 0; j < n; j++)
      sum += exp ((float) (in[j] - max));
    for (gsize j = 0; j < cols; j++) {
      double want = j < n ? exp ((float) (in[j] - max)) / sum : 0.0;
      if (!(fabs (s[r * ld + j] - want) <= 4 * FLT_EPSILON * want + 1e-44))
        g_error ("softmax %zux%zu%s row %zu col %zu: %.9g, want %.9g", rows, cols,
            causal ? " causal" : "", r, j, s[r * ld + j], want);
    }
    for (gsize j = cols; j < ld; j++)
      g_assert_true (s[r * ld + j] == orig[r * ld + j]);     /* past the row: untouched */
  }
  g_free (s);
  g_free (orig);
}

static void
test_softmax (void)
{
  GRand *rand = g_rand_new_with_seed (11);

  for (gsize cols = 1; cols <= 40; cols++)
    check_softmax (rand, 3, cols, cols + 3, FALSE);
  check_softmax (rand, 77, 77, 77, TRUE);
  check_softmax (rand, 257, 257, 257, FALSE);
  check_softmax (rand, 229, 230, 230, FALSE);
  g_rand_free (rand);
}

static void
test_layer_norm (void)
{
  GRand *rand = g_rand_new_with_seed (12);
  gsize rows = 37, cols = 1280;
  float *x = g_new (float, rows * cols), *y = g_new (float, rows * cols);
  float *w = g_new (float, cols), *b = g_new (float, cols);

  for (gsize i = 0; i < rows * cols; i++)
    x[i] = (float) g_rand_double_range (rand, -3.0, 5.0);
  for (gsize j = 0; j < cols; j++) {
    w[j] = (float) g_rand_double_range (rand, 0.5, 1.5);
    b[j] = (float) g_rand_double_range (rand, -1.0, 1.0);
  }
  ib_layer_norm (x, y, rows, cols, w, b, 1e-6f, 0);
  for (gsize r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mean = 0, var = 0;
    for (gsize j = 0; j < cols; j++)
      mean += xr[j];
    mean /= cols;
    for (gsize j = 0; j < cols; j++)
      var += (xr[j] - mean) * (xr[j] - mean);
    var /= cols;
    for (gsize j = 0; j < cols; j++) {
      double want = (xr[j] - mean) / sqrt (var + 1e-6) * w[j] + b[j];
      g_assert_cmpfloat_with_epsilon (y[r * cols + j], want, 1e-5);
    }
  }
  g_free (x);
  g_free (y);
  g_free (w);
  g_free (b);
  g_rand_free (rand);
}

/* The scalar LayerNorm of ops.c (layer_norm_row), which every path must match bit for bit on
 * these rows: the AVX-512 path adds the same values in double precision in another order, and
 * sums of a few thousand floats in double are exact far below a float's rounding, so a mean or
 * scale could only round differently within ~1e-16 of a rounding boundary. */
static void
layer_norm_reference (const float *x, float *y, gsize cols, const float *w, const float *b,
    float eps)
{
  double sum = 0, sq = 0, mean;
  float fmean, finv;

  for (gsize j = 0; j < cols; j++)
    sum += x[j];
  mean = sum / cols;
  for (gsize j = 0; j < cols; j++) {
    double d = x[j] - mean;
    sq += d * d;
  }
  fmean = (float) mean;
  finv = (float) (1.0 / sqrt (sq / cols + eps));
  for (gsize j = 0; j < cols; j++)
    y[j] = (x[j] - fmean) * finv * w[j] + b[j];
}

static void
test_layer_norm_bits (void)
{
  /* widths with and without a partial 16- and 32-column block; row counts that leave a
   * partial 32-row task */
  static const gsize shapes[][2] = {
    { 37, 1280 }, { 197, 384 }, { 5, 7 }, { 33, 1283 }, { 16, 16 }, { 50, 100 }, { 29, 77 },
  };
  GRand *rand = g_rand_new_with_seed (13);

  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gsize rows = shapes[s][0], cols = shapes[s][1];
    float *x = g_new (float, rows * cols), *y = g_new (float, rows * cols);
    float *want = g_new (float, cols), *w = g_new (float, cols), *b = g_new (float, cols);

    for (gsize i = 0; i < rows * cols; i++)
      x[i] = (float) g_rand_double_range (rand, -3.0, 5.0);
    for (gsize j = 0; j < cols; j++) {
      w[j] = (float) g_rand_double_range (rand, 0.5, 1.5);
      b[j] = (float) g_rand_double_range (rand, -1.0, 1.0);
    }
    ib_layer_norm (x, y, rows, cols, w, b, 1e-6f, 0);
    for (gsize r = 0; r < rows; r++) {
      layer_norm_reference (x + r * cols, want, cols, w, b, 1e-6f);
      g_assert_cmpmem (y + r * cols, cols * sizeof (float), want, cols * sizeof (float));
    }
    /* in place, as the encoders' ln_pre and head norms run */
    ib_layer_norm (x, x, rows, cols, w, b, 1e-6f, 0);
    g_assert_cmpmem (x, rows * cols * sizeof (float), y, rows * cols * sizeof (float));
    g_free (x);
    g_free (y);
    g_free (want);
    g_free (w);
    g_free (b);
  }
  g_rand_free (rand);
}

/* One attention head (ib_attention_head: the fused AVX-512 kernel or the two products and the
 * softmax) against double precision, for head sizes and token counts around the kernel's
 * blocks (8 query rows, 16 keys, 16 values per vector), with and without the causal mask and
 * the extra bias_k/v key; q, k, v are strided views of one packed buffer as in the encoders,
 * and the output's neighbours (the other heads' columns) must stay untouched. */
static void
check_attention (GRand *rand, gsize L, gsize Lk, gsize hd, gboolean causal, double scale,
    double *worst)
{
  gsize ld = 3 * hd + 5, ldo = hd + 7;
  float *qkv = g_new (float, Lk * ld), *out = g_new (float, L * ldo);
  float *scratch = g_new (float, ib_attention_scratch (L, Lk, hd));
  float alpha = 1.0f / sqrtf ((float) hd);
  double *p = g_new (double, Lk);

  for (gsize i = 0; i < Lk * ld; i++)
    qkv[i] = (float) (scale * g_rand_double_range (rand, -1.0, 1.0));
  for (gsize i = 0; i < L * ldo; i++)
    out[i] = 12345.0f;
  /* the head itself as the "next" one: its rows are loaded early, which must change nothing */
  ib_attention_head (qkv, qkv + hd, qkv + 2 * hd, ld, L, Lk, hd, alpha, causal, out, ldo,
      scratch, qkv, NULL);
  for (gsize r = 0; r < L; r++) {
    gsize n = causal ? MIN (r + 1, Lk) : Lk;
    double max = -INFINITY, sum = 0;
    for (gsize j = 0; j < n; j++) {
      double d = 0;
      for (gsize c = 0; c < hd; c++)
        d += (double) qkv[r * ld + c] * qkv[j * ld + hd + c];
      p[j] = d * alpha;
      max = MAX (max, p[j]);
    }
    for (gsize j = 0; j < n; j++)
      sum += (p[j] = exp (p[j] - max));
    for (gsize c = 0; c < hd; c++) {
      double want = 0, err;
      for (gsize j = 0; j < n; j++)
        want += p[j] / sum * qkv[j * ld + 2 * hd + c];
      /* relative to the values' scale: float scores of |alpha q k| up to ~scale^2 sqrt(hd) */
      err = fabs (out[r * ldo + c] - want) / (scale * (1.0 + scale * scale));
      if (!(err <= 5e-7))
        g_error ("attention L %zu Lk %zu hd %zu%s x%g: row %zu col %zu: %.9g, want %.9g", L, Lk,
            hd, causal ? " causal" : "", scale, r, c, out[r * ldo + c], want);
      *worst = MAX (*worst, err);
    }
    for (gsize c = hd; c < ldo; c++)
      g_assert_cmpfloat (out[r * ldo + c], ==, 12345.0f);
  }
  g_free (qkv);
  g_free (out);
  g_free (scratch);
  g_free (p);
}

static void
test_attention (void)
{
  GRand *rand = g_rand_new_with_seed (13);
  static const gsize hds[] = { 1, 16, 20, 48, 64, 80 };
  static const gsize Ls[] = { 1, 7, 8, 9, 17, 77 };
  double worst = 0;

  for (guint h = 0; h < G_N_ELEMENTS (hds); h++)
    for (guint l = 0; l < G_N_ELEMENTS (Ls); l++)
      for (int variant = 0; variant < 3; variant++) {
        gboolean causal = variant == 2;
        check_attention (rand, Ls[l], Ls[l] + (variant == 1), hds[h], causal, 1.0, &worst);
      }
  /* the encoders' sizes, and scores large enough that exp needs the row maximum */
  check_attention (rand, 197, 198, 48, FALSE, 1.0, &worst);
  check_attention (rand, 257, 257, 80, FALSE, 1.0, &worst);
  check_attention (rand, 77, 77, 64, TRUE, 1.0, &worst);
  check_attention (rand, 65, 66, 32, FALSE, 4.0, &worst);
  g_test_message ("attention: worst error %.3g of the values' scale", worst);
  g_rand_free (rand);
}

/* A linear layer (ib_linear, ib_linear_gelu: the AVX-512 product of gemm-avx512.c, from
 * weights packed once or on the fly, or OpenBLAS with the epilogues) against double
 * precision: y = [y +] x W^T [+ b], then GELU, for row counts around the 14-row tiles, outputs
 * around the 32-wide panels, K around the 384-long blocks, strided x and y; y's neighbouring
 * columns must stay untouched. The bound is the worst case of sequential float sums, (K + 3)
 * half-ulps of the sum of the terms' magnitudes. */
static void
check_linear (GRand *rand, gsize rows, gsize n, gsize K, gboolean accumulate, gboolean bias,
    gboolean gelu, gboolean packed, double *worst)
{
  gsize ldx = K + 3, ldy = n + 5;
  float *x = g_new (float, rows * ldx), *wd = g_new (float, n * K), *b = g_new (float, n);
  float *y = g_new (float, rows * ldy), *y0;
  IbWeight w = { IB_GGUF_TENSOR_F32, wd, n, K, NULL, NULL };

  for (gsize i = 0; i < rows * ldx; i++)
    x[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  for (gsize i = 0; i < n * K; i++)
    wd[i] = (float) g_rand_double_range (rand, -0.2, 0.2);
  for (gsize i = 0; i < n; i++)
    b[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  for (gsize i = 0; i < rows * ldy; i++)
    y[i] = (float) g_rand_double_range (rand, -3.0, 3.0);
  y0 = g_memdup2 (y, rows * ldy * sizeof (float));
  /* as a loaded model's weights are on AVX-512 CPUs (no copy elsewhere) */
  gpointer copy = packed ? ib_weight_pack (&w) : NULL;
  if (gelu)
    ib_linear_gelu (x, ldx, rows, &w, bias ? b : NULL, y, ldy, FALSE, NULL, 0);
  else
    ib_linear (x, ldx, rows, &w, bias ? b : NULL, y, ldy, accumulate, NULL, 0);
  for (gsize r = 0; r < rows; r++) {
    for (gsize j = 0; j < n; j++) {
      double sum = 0, mag = 0, want, tol, err;
      for (gsize k = 0; k < K; k++) {
        double t = (double) x[r * ldx + k] * wd[j * K + k];
        sum += t;
        mag += fabs (t);
      }
      if (accumulate && !gelu) {
        sum += y0[r * ldy + j];
        mag += fabs (y0[r * ldy + j]);
      }
      if (bias) {
        sum += b[j];
        mag += fabs (b[j]);
      }
      want = sum;
      tol = (K + 3) * FLT_EPSILON / 2 * mag;
      if (gelu) {
        /* GELU's slope is at most 1.13, then its own error as in test_gelu */
        want = 0.5 * sum * (1.0 + erf (sum / sqrt (2.0)));
        tol = 1.13 * tol + 4 * FLT_EPSILON * fabs (want) + 2e-7 * fabs (sum) * 1.2 + 1e-30;
      }
      err = fabs (y[r * ldy + j] - want);
      if (!(err <= tol))
        g_error ("linear %zux%zux%zu%s%s%s%s: row %zu col %zu: %.9g, want %.9g (tolerance %.3g)",
            rows, n, K, accumulate ? " accumulate" : "", bias ? " bias" : "", gelu ? " gelu" : "",
            copy ? " packed" : "", r, j, y[r * ldy + j], want, tol);
      *worst = MAX (*worst, err / tol);
    }
    for (gsize j = n; j < ldy; j++)
      g_assert_cmpfloat (y[r * ldy + j], ==, y0[r * ldy + j]);
  }
  g_aligned_free (copy);
  g_free (x);
  g_free (wd);
  g_free (b);
  g_free (y);
  g_free (y0);
}

static void
test_linear (void)
{
  GRand *rand = g_rand_new_with_seed (14);
  static const gsize row_counts[] = { 1, 8, 13, 14, 15, 29, 77 };
  static const gsize outs[] = { 16, 32, 33, 48, 100 };
  static const gsize ks[] = { 16, 17, 48, 383, 385, 800 };
  double worst = 0;

  for (guint r = 0; r < G_N_ELEMENTS (row_counts); r++)
    for (guint o = 0; o < G_N_ELEMENTS (outs); o++)
      for (guint k = 0; k < G_N_ELEMENTS (ks); k++) {
        int variant = (r + o + k) % 4;
        check_linear (rand, row_counts[r], outs[o], ks[k], variant == 1, variant != 2,
            variant == 3, k % 2 == 0, &worst);
      }
  /* depth's layers: q/k/v, fc1 with GELU, fc2 accumulating over four K blocks */
  check_linear (rand, 197, 1152, 384, FALSE, TRUE, FALSE, TRUE, &worst);
  check_linear (rand, 197, 1536, 384, FALSE, TRUE, TRUE, TRUE, &worst);
  check_linear (rand, 197, 384, 1536, TRUE, TRUE, FALSE, FALSE, &worst);
  check_linear (rand, 197, 384, 1536, TRUE, TRUE, FALSE, TRUE, &worst);
  g_test_message ("linear: worst error %.3f of the tolerance", worst);
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ops/gelu", test_gelu);
  g_test_add_func ("/ops/softmax", test_softmax);
  g_test_add_func ("/ops/layer-norm", test_layer_norm);
  g_test_add_func ("/ops/layer-norm-bits", test_layer_norm_bits);
  g_test_add_func ("/ops/attention", test_attention);
  g_test_add_func ("/ops/linear", test_linear);
  return g_test_run ();
}
