/* One attention head on AVX-512 (internal; ops-avx512.h): softmax (alpha q k^T) v, fused.
 *
 * The generic path (ib_attention_head() in ops.c) runs two OpenBLAS products per head and a
 * softmax pass between them over the whole (L, Lk) score matrix. For the small heads of the
 * depth and IMU encoders (48-64 values, ~200 tokens) that matrix leaves L1 between the passes
 * and OpenBLAS packs both operands of every product; here a block of ROWS query rows goes
 * through all three steps while its scores stay in L1:
 *
 *   1. scores of the block against every key, from a transposed copy of K made once per head;
 *   2. their softmax, left unnormalised (the exponentials and each row's 1 / sum);
 *   3. the exponentials times V, each output row scaled by its 1 / sum at the end.
 *
 * The sums run in a different order than OpenBLAS's, and the normalisation comes after the
 * product instead of before: results differ from the generic path in their last bits
 * (tests/runtime/test-ops.c checks both against a double-precision reference). */
#include "ops-avx512.h"

#ifdef IB_HAVE_AVX512_OPS

#include <math.h>

#include "avx512-math.h"

#define IB_INLINE inline __attribute__ ((always_inline))

/* Query rows per block: 8 rows times 3 vectors of V are 24 accumulators of step 3, leaving
 * registers for the loaded V row. */
#define ROWS 8

gsize
ib_attention_head_scratch (gsize Lk, gsize hd)
{
  gsize lk16 = (Lk + 15) / 16 * 16;
  return hd * lk16 + ROWS * lk16;
}

/* K (Lk rows of hd, row stride @ld) into kt (hd rows of lk16: key j of component c at
 * kt[c * lk16 + j]), keys past Lk zero; 16 x 16 blocks transposed in registers. */
static IB_AVX512 void
transpose_keys (const float *k, gsize ld, gsize Lk, gsize hd, gsize lk16, float *kt)
{
  for (gsize j = 0; j < lk16; j += 16)
    for (gsize c = 0; c < hd; c += 16) {
      __mmask16 mc = tail_mask (hd - c);
      __m512 blk[16];
      for (gsize r = 0; r < 16; r++)
        blk[r] = j + r < Lk ? _mm512_maskz_loadu_ps (mc, k + (j + r) * ld + c)
            : _mm512_setzero_ps ();
      transpose_16x16 (blk);
      for (gsize r = 0; r < 16 && c + r < hd; r++)
        _mm512_storeu_ps (kt + (c + r) * lk16 + j, blk[r]);
    }
}

/* Step 1 for the block's rows and @NV (1 or 2) vectors of keys from key @j0: s = alpha q k^T. */
static IB_INLINE IB_AVX512 void
scores_tile (const float *const qr[ROWS], const float *kt, gsize lk16, gsize hd, gsize j0,
    float alpha, float *s, const int NV)
{
  __m512 acc[ROWS][2];

#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++)
    acc[r][0] = acc[r][1] = _mm512_setzero_ps ();
  for (gsize c = 0; c < hd; c++) {
    const float *kc = kt + c * lk16 + j0;
    __m512 b0 = _mm512_loadu_ps (kc);
    __m512 b1 = NV > 1 ? _mm512_loadu_ps (kc + 16) : b0;
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++) {
      __m512 a = _mm512_set1_ps (qr[r][c]);
      acc[r][0] = _mm512_fmadd_ps (a, b0, acc[r][0]);
      if (NV > 1)
        acc[r][1] = _mm512_fmadd_ps (a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++) {
    float *sr = s + r * lk16 + j0;
    _mm512_storeu_ps (sr, _mm512_mul_ps (acc[r][0], _mm512_set1_ps (alpha)));
    if (NV > 1)
      _mm512_storeu_ps (sr + 16, _mm512_mul_ps (acc[r][1], _mm512_set1_ps (alpha)));
  }
}

/* Step 3 for output components [c0, c0 + 16 NV) (the last vector masked by @last): the rows'
 * exponentials (row stride lk16) times V's rows 0..@n_keys-1, scaled by @inv. */
static IB_INLINE IB_AVX512 void
values_tile (const float *s, gsize lk16, const float *v, gsize ld, gsize n_keys, gsize c0,
    __mmask16 last, const float inv[ROWS], float *const out[ROWS], const int NV)
{
  __m512 acc[ROWS][3];

#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 8
    for (int t = 0; t < NV; t++)
      acc[r][t] = _mm512_setzero_ps ();
  for (gsize j = 0; j < n_keys; j++) {
    const float *vj = v + j * ld + c0;
    __m512 b[3];
#pragma GCC unroll 8
    for (int t = 0; t < NV; t++)
      b[t] = t == NV - 1 ? _mm512_maskz_loadu_ps (last, vj + 16 * t)
          : _mm512_loadu_ps (vj + 16 * t);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++) {
      __m512 p = _mm512_set1_ps (s[r * lk16 + j]);
#pragma GCC unroll 8
      for (int t = 0; t < NV; t++)
        acc[r][t] = _mm512_fmadd_ps (p, b[t], acc[r][t]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++) {
    if (!out[r])
      continue;
#pragma GCC unroll 8
    for (int t = 0; t < NV; t++) {
      __m512 o = _mm512_mul_ps (acc[r][t], _mm512_set1_ps (inv[r]));
      if (t == NV - 1)
        _mm512_mask_storeu_ps (out[r] + c0 + 16 * t, last, o);
      else
        _mm512_storeu_ps (out[r] + c0 + 16 * t, o);
    }
  }
}

/* exp of 16 lanes: e^x = 2^n e^r with n = round (x / ln 2) and r = x - n ln 2 in [-ln 2 / 2,
 * ln 2 / 2] (ln 2 in two parts, each product exact enough in one FMA), e^r by its Taylor
 * polynomial of degree 7 (truncation below 6e-9 relative, a tenth of an ulp), 2^n applied
 * exactly by vscalefps, which also gives 0 and inf past float's range. x is first clamped to
 * [-104, 89], beyond which the result is 0 or inf anyway, so that n stays finite; NaN stays
 * NaN. */
static inline IB_AVX512 __m512
exp16 (__m512 x)
{
  const __m512 ln2_hi = _mm512_set1_ps (0x1.62e43p-1f), ln2_lo = _mm512_set1_ps (-0x1.05c61p-29f);
  __m512 n, r, p;

  x = _mm512_min_ps (_mm512_set1_ps (89.0f), _mm512_max_ps (_mm512_set1_ps (-104.0f), x));
  n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (0x1.715476p+0f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm512_fnmadd_ps (n, ln2_hi, x);
  r = _mm512_fnmadd_ps (n, ln2_lo, r);
  p = _mm512_set1_ps (1.0f / 5040);
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 720));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 120));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 24));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 6));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (0.5f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f));
  return _mm512_scalef_ps (p, n);
}

/* Step 2 on the block's rows (row r: s + r lk16, its first n[r] keys valid): s becomes
 * exp (s - max) on the valid keys and zero past them (the keys a causal row does not see, the
 * padding); inv[r] = 1 / sum. Only the first n[r] keys rounded up to 16 are read (the scores
 * past them were not computed). The rows go side by side, so that one row's reductions overlap
 * another's work. */
static IB_AVX512 void
softmax_unnormalised (float *s, gsize lk16, const gsize n[ROWS], float inv[ROWS])
{
  __m512 vmax[ROWS], vsum[ROWS];
  gsize n_max = 0;

#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++) {
    vmax[r] = _mm512_set1_ps (-INFINITY);
    vsum[r] = _mm512_setzero_ps ();
    n_max = MAX (n_max, n[r]);
  }
  for (gsize j = 0; j < n_max; j += 16)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++) {
      __mmask16 m = j < n[r] ? tail_mask (n[r] - j) : 0;
      vmax[r] = _mm512_mask_max_ps (vmax[r], m, vmax[r],
          _mm512_maskz_loadu_ps (m, s + r * lk16 + j));
    }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++)
    vmax[r] = _mm512_set1_ps (_mm512_reduce_max_ps (vmax[r]));
  for (gsize j = 0; j < lk16; j += 16)
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++) {
      float *sj = s + r * lk16 + j;
      __mmask16 m = j < n[r] ? tail_mask (n[r] - j) : 0;
      __m512 e = _mm512_maskz_mov_ps (m,
          exp16 (_mm512_sub_ps (_mm512_maskz_loadu_ps (m, sj), vmax[r])));
      _mm512_storeu_ps (sj, e);
      vsum[r] = _mm512_add_ps (vsum[r], e);
    }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++)
    inv[r] = 1.0f / _mm512_reduce_add_ps (vsum[r]);
}

/* Rows [@from, @to) of the next head's q, k and v (q: only its first L rows) towards L2. */
static IB_AVX512 void
prefetch_rows (const float *q, gsize k_off, gsize v_off, gsize ld, gsize L, gsize hd, gsize from,
    gsize to)
{
  for (gsize r = from; r < to; r++)
    /* hd floats from any alignment: up to one line more than hd / 16 */
    for (gsize c = 0; c < hd + 16; c += 16) {
      const float *p = q + r * ld + c;
      if (r < L)
        _mm_prefetch ((const char *) p, _MM_HINT_T1);
      _mm_prefetch ((const char *) (p + k_off), _MM_HINT_T1);
      _mm_prefetch ((const char *) (p + v_off), _MM_HINT_T1);
    }
}

IB_AVX512 void
ib_attention_head_avx512 (const float *q, const float *k, const float *v, gsize ld, gsize L,
    gsize Lk, gsize hd, float alpha, gboolean causal, float *out, gsize ldo, float *scratch,
    const float *next_q)
{
  gsize lk16 = (Lk + 15) / 16 * 16;
  float *kt = scratch, *s = scratch + hd * lk16;
  /* the next head's rows, spread evenly over this head's blocks: its q, k and v come from the
   * q/k/v product, half of them written by the other core, and each block's compute hides the
   * loads of a few rows (depth's attention, one binary with and without: 3.8 -> 3.6 ms per
   * forward on a busy host, 3.2 -> 3.1 ms on a quiet one) */
  gsize n_blocks = (L + ROWS - 1) / ROWS, pf_per_block = (Lk + n_blocks - 1) / n_blocks;

  transpose_keys (k, ld, Lk, hd, lk16, kt);
  for (gsize r0 = 0, b = 0; r0 < L; r0 += ROWS, b++) {
    const float *qr[ROWS];
    float *outr[ROWS], inv[ROWS];
    gsize n[ROWS];
    /* causal: row r sees keys 0..r, so the block needs no key past its last row */
    gsize n_keys = causal ? MIN (Lk, r0 + ROWS) : Lk;
    gsize j;

    if (next_q)
      prefetch_rows (next_q, k - q, v - q, ld, L, hd, MIN (Lk, b * pf_per_block),
          MIN (Lk, (b + 1) * pf_per_block));
    /* rows past L repeat the last row (valid memory) and are not stored */
    for (int r = 0; r < ROWS; r++) {
      gsize row = MIN (r0 + r, L - 1);
      qr[r] = q + row * ld;
      outr[r] = r0 + r < L ? out + row * ldo : NULL;
    }
    for (j = 0; j + 32 <= n_keys; j += 32)
      scores_tile (qr, kt, lk16, hd, j, alpha, s, 2);
    for (; j < n_keys; j += 16)
      scores_tile (qr, kt, lk16, hd, j, alpha, s, 1);
    for (int r = 0; r < ROWS; r++)
      n[r] = causal ? MIN (MIN (r0 + r, L - 1) + 1, Lk) : Lk;
    softmax_unnormalised (s, lk16, n, inv);
    for (gsize c0 = 0; c0 < hd; c0 += 48) {
      gsize left = hd - c0, nv = MIN ((left + 15) / 16, 3);
      __mmask16 last = tail_mask (left - 16 * (nv - 1));
      if (nv == 3)
        values_tile (s, lk16, v, ld, n_keys, c0, last, inv, outr, 3);
      else if (nv == 2)
        values_tile (s, lk16, v, ld, n_keys, c0, last, inv, outr, 2);
      else
        values_tile (s, lk16, v, ld, n_keys, c0, last, inv, outr, 1);
    }
  }
}

#endif
