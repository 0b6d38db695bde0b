/* GELU of 16 lanes on AVX-512, with the erf polynomial of erf-table.h; shared by the
 * element-wise GELU (ops-avx512.c) and the linear layers' epilogue (gemm-avx512.c), so that
 * both give the same bits. Internal; for files built with IB_HAVE_AVX512_OPS and
 * -ffp-contract=off (models/meson.build). */
#ifndef IB_AVX512_GELU_H
#define IB_AVX512_GELU_H

#include <math.h>

#include "avx512-math.h"
#include "erf-table.h"

/* The coefficient rows of erf-table.h, one register per power of t. */
static inline IB_AVX512 void
ib_erf_coefficients (__m512 c[IB_ERF_DEGREE + 1])
{
  for (int k = 0; k <= IB_ERF_DEGREE; k++)
    c[k] = _mm512_loadu_ps (ib_erf_table[k]);
}

/* erf of 16 lanes: the piecewise polynomial of erf-table.h (@c: ib_erf_coefficients()), with
 * the interval of each lane picked by a permute. NaN stays NaN (it reaches t), +-inf and
 * |z| >= 4 give +-1 as erff does. */
static inline IB_AVX512 __m512
ib_erf16 (__m512 z, const __m512 c[IB_ERF_DEGREE + 1])
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

/* GELU as ops.c computes it, 0.5f * v * (1.0f + erff (v * (float) M_SQRT1_2)), left to right. */
static inline IB_AVX512 __m512
ib_gelu16 (__m512 v, const __m512 c[IB_ERF_DEGREE + 1])
{
  __m512 e = ib_erf16 (_mm512_mul_ps (v, _mm512_set1_ps ((float) M_SQRT1_2)), c);
  return _mm512_mul_ps (_mm512_mul_ps (_mm512_set1_ps (0.5f), v),
      _mm512_add_ps (_mm512_set1_ps (1.0f), e));
}

#endif
