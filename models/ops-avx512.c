/* AVX-512 versions of the element-wise work of ops.c (internal; ops-avx512.h), chosen at run
 * time by ops.c on CPUs that have AVX-512F and DQ. Built with -ffp-contract=off
 * (models/meson.build): outside the two polynomials below, every multiply and add rounds where
 * the scalar code in ops.c rounds, so that the arithmetic around erf and exp matches it operation
 * for operation, and LayerNorm and the bias additions give its bits.
 *
 * GELU's erf is a polynomial of our own (erf-table.h), within 2.2 ulps of the exact value and
 * about twice as fast as glibc's vector erff (libmvec), in which the small encoders' forwards
 * spent a tenth of their time (models/PERFORMANCE.md, "Third round"). It is this file's only
 * difference from the scalar path (IMAGEBIND_NO_AVX512=1); tests/runtime/test-ops.c checks both
 * paths against double precision and the conformance tests bound the result. Softmax runs
 * inside the fused attention heads (attention-avx512.c). */
#include "ops-avx512.h"

#ifdef IB_HAVE_AVX512_OPS

#include <immintrin.h>
#include <math.h>

#include "avx512-math.h"
#include "erf-table.h"

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

/* Plain loads and stores wherever all 16 lanes are in the array, masked ones only at a row's
 * tail: on the AMD EPYC this was measured on, a GELU pass in L1 took 0.31 ns per value with
 * masked ones everywhere and 0.21 with plain ones. */
static inline IB_AVX512 __m512
load16 (const float *p, __mmask16 m)
{
  return m == 0xffff ? _mm512_loadu_ps (p) : _mm512_maskz_loadu_ps (m, p);
}

static inline IB_AVX512 void
store16 (float *p, __mmask16 m, __m512 v)
{
  if (m == 0xffff)
    _mm512_storeu_ps (p, v);
  else
    _mm512_mask_storeu_ps (p, m, v);
}

/* erf of 16 lanes: the piecewise polynomial of erf-table.h (@c: its coefficient rows, one
 * register per power of t), with the interval of each lane picked by a permute. NaN stays NaN
 * (it reaches t), +-inf and |z| >= 4 give +-1 as erff does. */
static inline IB_AVX512 __m512
erf16 (__m512 z, const __m512 c[IB_ERF_DEGREE + 1])
{
  const __m512 sign = _mm512_set1_ps (-0.0f);
  /* min (4, |z|): the second operand is kept when one is NaN */
  __m512 a = _mm512_min_ps (_mm512_set1_ps (4.0f), _mm512_andnot_ps (sign, z));
  __m512i i = _mm512_min_epi32 (_mm512_cvttps_epi32 (_mm512_mul_ps (a, _mm512_set1_ps (4.0f))),
      _mm512_set1_epi32 (IB_ERF_INTERVALS - 1));
  /* exact: a and the interval's start are within a factor of two (or the start is 0) */
  __m512 t = _mm512_sub_ps (a, _mm512_mul_ps (_mm512_cvtepi32_ps (i), _mm512_set1_ps (0.25f)));
  __m512 p = _mm512_permutexvar_ps (i, c[IB_ERF_DEGREE]);

#pragma GCC unroll 16
  for (int k = IB_ERF_DEGREE - 1; k >= 0; k--)
    p = _mm512_fmadd_ps (p, t, _mm512_permutexvar_ps (i, c[k]));
  return _mm512_or_ps (p, _mm512_and_ps (z, sign));
}

IB_AVX512 void
ib_gelu_avx512 (float *x, gsize n)
{
  const __m512 half = _mm512_set1_ps (0.5f), one = _mm512_set1_ps (1.0f);
  const __m512 rsqrt2 = _mm512_set1_ps ((float) M_SQRT1_2);
  __m512 c[IB_ERF_DEGREE + 1];

  for (int k = 0; k <= IB_ERF_DEGREE; k++)
    c[k] = _mm512_loadu_ps (ib_erf_table[k]);
  /* ops.c: 0.5f * p * (1.0f + erff (p * (float) M_SQRT1_2)), evaluated left to right */
  for (gsize i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask (n - i);
    __m512 v = load16 (x + i, m);
    __m512 e = erf16 (_mm512_mul_ps (v, rsqrt2), c);
    store16 (x + i, m, _mm512_mul_ps (_mm512_mul_ps (half, v), _mm512_add_ps (one, e)));
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

/* Rows 0..@rows-1 (at most 16) of @x, 16 columns at a time, into @cols_t: vector j holds
 * column j of the 16 rows (0 in the lanes of missing rows); @cols rounded up to 16 vectors. */
static IB_AVX512 void
transpose_rows (const float *x, gsize rows, gsize cols, __m512 *cols_t)
{
  for (gsize j = 0; j < cols; j += 16) {
    __mmask16 mj = tail_mask (cols - j);
    __m512 blk[16];
    for (gsize r = 0; r < 16; r++) {
      if (r < rows && j + 32 < cols)
        _mm_prefetch ((const char *) (x + r * cols + j + 32), _MM_HINT_T0);
      blk[r] = r < rows ? load16 (x + r * cols + j, mj) : _mm512_setzero_ps ();
    }
    transpose_16x16 (blk);
    for (gsize c = 0; c < 16; c++)
      _mm512_store_ps ((float *) (cols_t + j + c), blk[c]);
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

/* LayerNorm of up to 32 rows, one row per lane of two 16-row groups: every lane runs the
 * scalar code's sequential double sums (ops.c, layer_norm_row) over its row, so the results
 * are bit-identical to it. The scalar loop was bound by the latency of its dependent double
 * additions (two per value); here four chains (two groups, 8 rows per double vector) run side
 * by side. The rows are first transposed 16 columns at a time into @cols_t (one vector per
 * column and group), which both sums then read in order: a register transpose costs a fraction
 * of the 16-lane gather per column it replaces. */
static IB_AVX512 void
layer_norm_32 (const float *x, float *y, gsize rows, gsize cols, const float *w, const float *b,
    float eps, __m512 *cols_t)
{
  const __m512d n = _mm512_set1_pd ((double) cols), veps = _mm512_set1_pd ((double) eps);
  const __m512d one = _mm512_set1_pd (1.0);
  const gboolean two = rows > 16;
  __m512 *t0 = cols_t, *t1 = cols_t + (cols + 15) / 16 * 16;
  __m512d sum[4], sq[4], mean[4];
  float fmean[32], finv[32];
  gsize j;
  int g;

  for (g = 0; g < 4; g++)
    sum[g] = sq[g] = _mm512_setzero_pd ();
  transpose_rows (x, MIN (rows, 16), cols, t0);
  if (two)
    transpose_rows (x + 16 * cols, rows - 16, cols, t1);

  if (two) {
    for (j = 0; j < cols; j++) {
      __m512 v0 = _mm512_load_ps ((const float *) (t0 + j));
      __m512 v1 = _mm512_load_ps ((const float *) (t1 + j));
      sum[0] = _mm512_add_pd (sum[0], lo_pd (v0));
      sum[1] = _mm512_add_pd (sum[1], hi_pd (v0));
      sum[2] = _mm512_add_pd (sum[2], lo_pd (v1));
      sum[3] = _mm512_add_pd (sum[3], hi_pd (v1));
    }
  } else {
    for (j = 0; j < cols; j++) {
      __m512 v0 = _mm512_load_ps ((const float *) (t0 + j));
      sum[0] = _mm512_add_pd (sum[0], lo_pd (v0));
      sum[1] = _mm512_add_pd (sum[1], hi_pd (v0));
    }
  }
  for (g = 0; g < 4; g++)
    mean[g] = _mm512_div_pd (sum[g], n);
  if (two) {
    for (j = 0; j < cols; j++) {
      __m512 v0 = _mm512_load_ps ((const float *) (t0 + j));
      __m512 v1 = _mm512_load_ps ((const float *) (t1 + j));
      __m512d d0 = _mm512_sub_pd (lo_pd (v0), mean[0]), d1 = _mm512_sub_pd (hi_pd (v0), mean[1]);
      __m512d d2 = _mm512_sub_pd (lo_pd (v1), mean[2]), d3 = _mm512_sub_pd (hi_pd (v1), mean[3]);
      sq[0] = _mm512_add_pd (sq[0], _mm512_mul_pd (d0, d0));
      sq[1] = _mm512_add_pd (sq[1], _mm512_mul_pd (d1, d1));
      sq[2] = _mm512_add_pd (sq[2], _mm512_mul_pd (d2, d2));
      sq[3] = _mm512_add_pd (sq[3], _mm512_mul_pd (d3, d3));
    }
  } else {
    for (j = 0; j < cols; j++) {
      __m512 v0 = _mm512_load_ps ((const float *) (t0 + j));
      __m512d d0 = _mm512_sub_pd (lo_pd (v0), mean[0]), d1 = _mm512_sub_pd (hi_pd (v0), mean[1]);
      sq[0] = _mm512_add_pd (sq[0], _mm512_mul_pd (d0, d0));
      sq[1] = _mm512_add_pd (sq[1], _mm512_mul_pd (d1, d1));
    }
  }
  /* fmean = (float) mean; finv = (float) (1.0 / sqrt (sq / cols + eps)) */
  for (g = 0; g < (two ? 4 : 2); g++) {
    _mm256_storeu_ps (fmean + 8 * g, _mm512_cvtpd_ps (mean[g]));
    _mm256_storeu_ps (finv + 8 * g, _mm512_cvtpd_ps (_mm512_div_pd (one,
                _mm512_sqrt_pd (_mm512_add_pd (_mm512_div_pd (sq[g], n), veps)))));
  }

  /* y = (x - fmean) * finv * w + b, left to right */
  for (gsize r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    __m512 vmean = _mm512_set1_ps (fmean[r]), vinv = _mm512_set1_ps (finv[r]);
    for (j = 0; j < cols; j += 16) {
      __mmask16 mj = tail_mask (cols - j);
      __m512 t = _mm512_mul_ps (_mm512_sub_ps (load16 (xr + j, mj), vmean), vinv);
      t = _mm512_mul_ps (t, load16 (w + j, mj));
      store16 (yr + j, mj, _mm512_add_ps (t, load16 (b + j, mj)));
    }
  }
}

IB_AVX512 void
ib_layer_norm_avx512 (const float *x, float *y, gsize rows, gsize cols, const float *w,
    const float *b, float eps)
{
  __m512 *cols_t = g_aligned_alloc (2 * ((cols + 15) / 16 * 16), sizeof (__m512), 64);

  for (gsize r = 0; r < rows; r += 32)
    layer_norm_32 (x + r * cols, y + r * cols, MIN (32, rows - r), cols, w, b, eps, cols_t);
  g_aligned_free (cols_t);
}

#endif
