/* AVX-512 versions of the element-wise work of ops.c (internal; ops-avx512.h), chosen at run
 * time by ops.c on CPUs that have AVX-512F and DQ. Built with -ffp-contract=off
 * (models/meson.build): outside the erf polynomial, every multiply and add rounds where the
 * scalar code in ops.c rounds, so that the arithmetic around erf matches it operation for
 * operation, and the bias additions give its bits.
 *
 * GELU's erf is a polynomial of our own (erf-table.h, avx512-gelu.h), within 2.2 ulps of the exact value and
 * about twice as fast as glibc's vector erff (libmvec), in which the small encoders' forwards
 * spent a tenth of their time (models/PERFORMANCE.md, "Third round"). It is this file's only
 * difference from the scalar path (IMAGEBIND_NO_AVX512=1); tests/runtime/test-ops.c checks both
 * paths against double precision and the conformance tests bound the result. Softmax runs
 * inside the fused attention heads (attention-avx512.c). */
#include "ops-avx512.h"

#ifdef IB_HAVE_AVX512_OPS

#include <immintrin.h>
#include <math.h>

#include "avx512-gelu.h"
#include "avx512-math.h"

gboolean
ib_cpu_has_avx512 (void)
{
  static gsize cached = 0;

  if (g_once_init_enter (&cached)) {
    gsize have;
    __builtin_cpu_init ();
    /* __builtin_cpu_supports() also checks that the OS saves the AVX-512 state. */
    have = __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512dq") ? 2 : 1;
    if (g_getenv ("IMAGEBIND_NO_AVX512"))
      have = 1;
    g_once_init_leave (&cached, have);
  }
  return cached == 2;
}

IB_AVX512 void
ib_gelu_avx512 (float *x, gsize n)
{
  __m512 c[IB_ERF_DEGREE + 1];

  ib_erf_coefficients (c);
  for (gsize i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask (n - i);
    store16 (x + i, m, ib_gelu16 (load16 (x + i, m), c));
  }
}

IB_AVX512 void
ib_add_row_avx512 (float *c, gsize ldc, gsize rows, gsize cols, const float *b)
{
  for (gsize r = 0; r < rows; r++) {
    float *cr = c + r * ldc;
    for (gsize j = 0; j < cols; j += 16) {
      __mmask16 m = tail_mask (cols - j);
      store16 (cr + j, m, _mm512_add_ps (load16 (cr + j, m), load16 (b + j, m)));
    }
  }
}

static inline IB_AVX512 __m512d
lo_pd (__m512 v)
{
  return _mm512_cvtps_pd (_mm512_castps512_ps256 (v));
}

static inline IB_AVX512 __m512d
hi_pd (__m512 v)
{
  return _mm512_cvtps_pd (_mm512_extractf32x8_ps (v, 1));
}

/* LayerNorm of one row: the scalar code's double sums (ops.c, layer_norm_row), but along the
 * row, eight lanes and four chains at a time, added pairwise at the end. The scalar loop is
 * bound by the latency of its dependent additions; here the only cost is the conversions. The
 * sums of a few thousand floats in double are exact to far below a float's rounding, so the
 * order changes the result only when a mean or a scale lands within ~1e-16 of a rounding
 * boundary (tests/runtime/test-ops.c, /ops/layer-norm-bits, counts how often). */
static IB_AVX512 void
layer_norm_row (const float *x, float *y, gsize cols, const float *w, const float *b, float eps)
{
  __m512d s[4], q[4], vmean;
  double mean, sq;
  float fmean, finv;
  __m512 vfmean, vinv;
  gsize j;

  for (int g = 0; g < 4; g++)
    s[g] = q[g] = _mm512_setzero_pd ();
  for (j = 0; j < cols; j += 32) {
    __m512 v0 = load16 (x + j, tail_mask (cols - j));
    __m512 v1 = j + 16 < cols ? load16 (x + j + 16, tail_mask (cols - j - 16)) : _mm512_setzero_ps ();
    s[0] = _mm512_add_pd (s[0], lo_pd (v0));
    s[1] = _mm512_add_pd (s[1], hi_pd (v0));
    s[2] = _mm512_add_pd (s[2], lo_pd (v1));
    s[3] = _mm512_add_pd (s[3], hi_pd (v1));
  }
  mean = _mm512_reduce_add_pd (_mm512_add_pd (_mm512_add_pd (s[0], s[1]),
          _mm512_add_pd (s[2], s[3]))) / (double) cols;
  vmean = _mm512_set1_pd (mean);
  for (j = 0; j < cols; j += 16) {
    __mmask16 m = tail_mask (cols - j);
    __m512 v = load16 (x + j, m);
    /* lanes past the row's end stay 0 */
    __m512d d0 = _mm512_maskz_sub_pd ((__mmask8) m, lo_pd (v), vmean);
    __m512d d1 = _mm512_maskz_sub_pd ((__mmask8) (m >> 8), hi_pd (v), vmean);
    int g = (j / 16) % 2 * 2;
    q[g] = _mm512_fmadd_pd (d0, d0, q[g]);
    q[g + 1] = _mm512_fmadd_pd (d1, d1, q[g + 1]);
  }
  sq = _mm512_reduce_add_pd (_mm512_add_pd (_mm512_add_pd (q[0], q[1]),
          _mm512_add_pd (q[2], q[3])));
  fmean = (float) mean;
  finv = (float) (1.0 / sqrt (sq / cols + eps));

  /* y = (x - fmean) * finv * w + b, left to right */
  vfmean = _mm512_set1_ps (fmean);
  vinv = _mm512_set1_ps (finv);
  for (j = 0; j < cols; j += 16) {
    __mmask16 m = tail_mask (cols - j);
    __m512 t = _mm512_mul_ps (_mm512_sub_ps (load16 (x + j, m), vfmean), vinv);
    t = _mm512_mul_ps (t, load16 (w + j, m));
    store16 (y + j, m, _mm512_add_ps (t, load16 (b + j, m)));
  }
}

IB_AVX512 void
ib_layer_norm_avx512 (const float *x, float *y, gsize rows, gsize cols, const float *w,
    const float *b, float eps)
{
  for (gsize r = 0; r < rows; r++)
    layer_norm_row (x + r * cols, y + r * cols, cols, w, b, eps);
}

#endif
