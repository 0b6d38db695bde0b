/* int8 linear layers for q8 model files (see q8.h for the arithmetic).
 *
 * Why our own kernels rather than oneDNN's: models/PERFORMANCE.md has both measured on the
 * imagebind_huge shapes. In short: a product over a weight used in place, row-major as the
 * file stores it, with a per-token activation scale and zero point, is what the encoders
 * need; oneDNN 2.6 (Debian 12) takes one source zero point and scale per tensor and wants its
 * own blocked weight layout (a second copy of every matrix, or a re-layout per call).
 *
 * The kernel: a tile of 4 activation rows x 4 weight rows, each a dot product along K (both
 * operands are K-contiguous: activations row-major, the weight (out, in) as PyTorch stores it),
 * 64 bytes of K per vpdpbusd, 16 accumulators, reduced to 16 sums at the end of the tile.
 * The tile's weight rows (4 x K bytes) stay in L1 while it walks down a block of 64 activation
 * rows (64 x K bytes, L2); blocks of 64 rows x 64 outputs are the tasks of the thread pool.
 *
 * The kernels are compiled for AVX-512 VNNI with target attributes and chosen at run time,
 * so the library still runs (through the F32 widening path) on CPUs without it. */
#include "q8.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define IB_Q8_X86 1
#include <immintrin.h>
#define VNNI_TARGET __attribute__ ((target ("avx512f,avx512dq,avx512bw,avx512vl,avx512vnni")))
#include "avx512-gelu.h"
#endif

#define TILE_R 4                 /* activation rows per tile */
#define TILE_C 4                 /* weight rows (outputs) per tile */
#define BLOCK_R 64               /* activation rows per task */
#define BLOCK_C 64               /* outputs per task */

/* ---- CPU choice ---- */

static gint vnni_state = -1;     /* -1 unknown, 0 no, 1 yes */
static gint vnni_forced_off = 0; /* tests */

static gboolean
detect_vnni (void)
{
#ifdef IB_Q8_X86
  const char *env = g_getenv ("IMAGEBIND_Q8");
  if (env && g_ascii_strcasecmp (env, "f32") == 0)
    return FALSE;
  /* __builtin_cpu_supports also checks that the OS saves the AVX-512 state. */
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512dq") &&
      __builtin_cpu_supports ("avx512bw") && __builtin_cpu_supports ("avx512vl") &&
      __builtin_cpu_supports ("avx512vnni");
#else
  return FALSE;
#endif
}

gboolean
ib_q8_have_vnni (void)
{
  gint state = g_atomic_int_get (&vnni_state);
  if (state < 0) {
    state = detect_vnni () ? 1 : 0;
    g_atomic_int_set (&vnni_state, state);
  }
  return state == 1 && !g_atomic_int_get (&vnni_forced_off);
}

void
ib_q8_set_vnni_enabled (gboolean enabled)
{
  g_atomic_int_set (&vnni_forced_off, enabled ? 0 : 1);
}

/* ---- weights ---- */

void
ib_q8_quantize_weight (const float *w, gsize rows, gsize cols, gint8 *q, float *scale)
{
  for (gsize r = 0; r < rows; r++) {
    const float *wr = w + r * cols;
    gint8 *qr = q + r * cols;
    float maxabs = 0.0f, s;
    for (gsize k = 0; k < cols; k++)
      maxabs = MAX (maxabs, fabsf (wr[k]));
    s = (float) ((double) maxabs / 127.0);
    scale[r] = s;
    for (gsize k = 0; k < cols; k++) {
      double v = s > 0.0f ? nearbyint ((double) wr[k] / (double) s) : 0.0;
      qr[k] = (gint8) CLAMP (v, -127.0, 127.0);
    }
  }
}

void
ib_q8_widen_rows (const IbWeight *w, gsize row0, gsize n_rows, float *dst)
{
  const gint8 *q = (const gint8 *) w->data + row0 * w->cols;
  for (gsize r = 0; r < n_rows; r++) {
    float s = w->scale[row0 + r];
    for (gsize k = 0; k < w->cols; k++)
      dst[r * w->cols + k] = (float) q[r * w->cols + k] * s;
  }
}

/* The per-row sums of the int8 values, on first use (thread-safe). */
static const gint32 *
weight_sums (const IbWeight *w)
{
  IbQ8Sums *s = w->q8;
  if (g_once_init_enter (&s->once)) {
    const gint8 *q = w->data;
    for (gsize r = 0; r < w->rows; r++) {
      gint32 sum = 0;
      for (gsize k = 0; k < w->cols; k++)
        sum += q[r * w->cols + k];
      s->sums[r] = sum;
    }
    g_once_init_leave (&s->once, 1);
  }
  return s->sums;
}

/* ---- activations ---- */

/* Scale, its inverse and the zero point of a row whose range (0 included) is [mn, mx]. */
static void
row_params (float mn, float mx, float *scale, float *inv, gint32 *zero)
{
  float s = (mx - mn) / 255.0f;
  long z;
  if (!(s > 0.0f) || !isfinite (s))
    s = 1.0f;                    /* all zeros (or a non-finite row: garbage out, no crash) */
  *inv = 1.0f / s;
  z = lrintf (-mn * *inv);
  *zero = (gint32) CLAMP (z, 0, 255);
  *scale = s;
}

static void
quantize_row_c (const float *x, gsize cols, guint8 *u, float *scale, gint32 *zero)
{
  float mn = 0.0f, mx = 0.0f, inv;
  for (gsize k = 0; k < cols; k++) {
    mn = x[k] < mn ? x[k] : mn;
    mx = x[k] > mx ? x[k] : mx;
  }
  row_params (mn, mx, scale, &inv, zero);
  for (gsize k = 0; k < cols; k++) {
    long v = lrintf (x[k] * inv) + *zero;
    u[k] = (guint8) CLAMP (v, 0, 255);
  }
}

#ifdef IB_Q8_X86
/* The same values as quantize_row_c (vcvtps2dq rounds as lrintf does, to nearest even under
 * the default MXCSR), 16 at a time. */
VNNI_TARGET static void
quantize_row_avx512 (const float *x, gsize cols, guint8 *u, float *scale, gint32 *zero)
{
  __m512 vmin = _mm512_setzero_ps (), vmax = _mm512_setzero_ps ();
  __m512 vinv;
  __m512i vzero, lo = _mm512_setzero_si512 (), hi = _mm512_set1_epi32 (255);
  float inv;
  gsize k;

  for (k = 0; k + 16 <= cols; k += 16) {
    __m512 v = _mm512_loadu_ps (x + k);
    vmin = _mm512_min_ps (vmin, v);
    vmax = _mm512_max_ps (vmax, v);
  }
  if (k < cols) {
    __mmask16 m = (__mmask16) ((1u << (cols - k)) - 1);
    __m512 v = _mm512_maskz_loadu_ps (m, x + k);      /* masked lanes are 0: in range anyway */
    vmin = _mm512_min_ps (vmin, v);
    vmax = _mm512_max_ps (vmax, v);
  }
  row_params (_mm512_reduce_min_ps (vmin), _mm512_reduce_max_ps (vmax), scale, &inv, zero);
  vinv = _mm512_set1_ps (inv);
  vzero = _mm512_set1_epi32 (*zero);
  for (k = 0; k + 16 <= cols; k += 16) {
    __m512i i = _mm512_cvtps_epi32 (_mm512_mul_ps (_mm512_loadu_ps (x + k), vinv));
    i = _mm512_min_epi32 (_mm512_max_epi32 (_mm512_add_epi32 (i, vzero), lo), hi);
    _mm_storeu_si128 ((__m128i *) (u + k), _mm512_cvtepi32_epi8 (i));
  }
  if (k < cols) {
    __mmask16 m = (__mmask16) ((1u << (cols - k)) - 1);
    __m512i i = _mm512_cvtps_epi32 (_mm512_mul_ps (_mm512_maskz_loadu_ps (m, x + k), vinv));
    i = _mm512_min_epi32 (_mm512_max_epi32 (_mm512_add_epi32 (i, vzero), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8 (u + k, m, i);
  }
}
#endif

void
ib_q8_quantize_row (const float *x, gsize cols, guint8 *u, float *scale, gint32 *zero)
{
#ifdef IB_Q8_X86
  if (ib_q8_have_vnni ()) {
    quantize_row_avx512 (x, cols, u, scale, zero);
    return;
  }
#endif
  quantize_row_c (x, cols, u, scale, zero);
}

/* ---- integer products ---- */

void
ib_q8_gemm_s32_ref (const guint8 *u, gsize ldu, gsize rows, const gint8 *q, gsize out,
    gsize K, gint32 *acc, gsize ldacc)
{
  for (gsize r = 0; r < rows; r++)
    for (gsize o = 0; o < out; o++) {
      gint32 sum = 0;
      for (gsize k = 0; k < K; k++)
        sum += (gint32) u[r * ldu + k] * (gint32) q[o * K + k];
      acc[r * ldacc + o] = sum;
    }
}

#ifdef IB_Q8_X86
/* 16 vectors of 16 partial sums -> one vector whose lane i is the total of vector i. */
VNNI_TARGET static inline __m512i
sum_pairs_32 (__m512i a, __m512i b)
{
  /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
  return _mm512_add_epi32 (_mm512_unpacklo_epi32 (a, b), _mm512_unpackhi_epi32 (a, b));
}

VNNI_TARGET static inline __m512i
sum_pairs_64 (__m512i a, __m512i b)
{
  return _mm512_add_epi32 (_mm512_unpacklo_epi64 (a, b), _mm512_unpackhi_epi64 (a, b));
}

VNNI_TARGET static inline __m512i
sum_pairs_128 (__m512i a, __m512i b)
{
  return _mm512_add_epi32 (_mm512_shuffle_i32x4 (a, b, _MM_SHUFFLE (2, 0, 2, 0)),
      _mm512_shuffle_i32x4 (a, b, _MM_SHUFFLE (3, 1, 3, 1)));
}

/* Lane r * TILE_C + c of the result = sum_k x[r][k] * w[c][k], for a 4 x 4 tile. */
VNNI_TARGET static inline __m512i
tile_vnni (const guint8 *const x[TILE_R], const gint8 *const w[TILE_C], gsize K)
{
  __m512i a00 = _mm512_setzero_si512 (), a01 = a00, a02 = a00, a03 = a00;
  __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  const guint8 *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
  const gint8 *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  gsize k = 0;

#define IB_Q8_STEP(LOAD_X, LOAD_W) do { \
    __m512i v0 = LOAD_X (x0), v1 = LOAD_X (x1), v2 = LOAD_X (x2), v3 = LOAD_X (x3), m; \
    m = LOAD_W (w0); \
    a00 = _mm512_dpbusd_epi32 (a00, v0, m); a10 = _mm512_dpbusd_epi32 (a10, v1, m); \
    a20 = _mm512_dpbusd_epi32 (a20, v2, m); a30 = _mm512_dpbusd_epi32 (a30, v3, m); \
    m = LOAD_W (w1); \
    a01 = _mm512_dpbusd_epi32 (a01, v0, m); a11 = _mm512_dpbusd_epi32 (a11, v1, m); \
    a21 = _mm512_dpbusd_epi32 (a21, v2, m); a31 = _mm512_dpbusd_epi32 (a31, v3, m); \
    m = LOAD_W (w2); \
    a02 = _mm512_dpbusd_epi32 (a02, v0, m); a12 = _mm512_dpbusd_epi32 (a12, v1, m); \
    a22 = _mm512_dpbusd_epi32 (a22, v2, m); a32 = _mm512_dpbusd_epi32 (a32, v3, m); \
    m = LOAD_W (w3); \
    a03 = _mm512_dpbusd_epi32 (a03, v0, m); a13 = _mm512_dpbusd_epi32 (a13, v1, m); \
    a23 = _mm512_dpbusd_epi32 (a23, v2, m); a33 = _mm512_dpbusd_epi32 (a33, v3, m); \
  } while (0)
#define IB_Q8_LOAD(p) _mm512_loadu_si512 ((const void *) ((p) + k))
#define IB_Q8_LOAD_TAIL(p) _mm512_maskz_loadu_epi8 (tail, (const void *) ((p) + k))

  for (; k + 64 <= K; k += 64)
    IB_Q8_STEP (IB_Q8_LOAD, IB_Q8_LOAD);
  if (k < K) {
    /* Masked-off bytes load as 0 on both sides: they add nothing. */
    __mmask64 tail = _cvtu64_mask64 ((~0ull) >> (64 - (K - k)));
    IB_Q8_STEP (IB_Q8_LOAD_TAIL, IB_Q8_LOAD_TAIL);
  }
#undef IB_Q8_STEP
#undef IB_Q8_LOAD
#undef IB_Q8_LOAD_TAIL

  {
    __m512i r0 = sum_pairs_128 (
        sum_pairs_64 (sum_pairs_32 (a00, a01), sum_pairs_32 (a02, a03)),
        sum_pairs_64 (sum_pairs_32 (a10, a11), sum_pairs_32 (a12, a13)));
    __m512i r1 = sum_pairs_128 (
        sum_pairs_64 (sum_pairs_32 (a20, a21), sum_pairs_32 (a22, a23)),
        sum_pairs_64 (sum_pairs_32 (a30, a31), sum_pairs_32 (a32, a33)));
    return sum_pairs_128 (r0, r1);
  }
}
#endif

/* What a block of tiles produces: int32 sums (tests) or the layer's F32 output. */
typedef struct {
  const guint8 *u; gsize ldu, rows;
  const gint8 *q; gsize out, K;
  gint32 *acc; gsize ldacc;                   /* int32 mode when non-NULL */
  const float *sx; const gint32 *zx;          /* F32 mode: per activation row */
  const float *sw; const gint32 *wsum;        /* per output */
  const float *bias; float *y; gsize ldy; gboolean accumulate;
  gboolean gelu;                              /* packed kernel: GELU in its epilogue */
  const gint8 *packed;                        /* packed kernel: the weight packed at load */
  gsize n_rblocks;
} Q8Job;

/* Activation rows are stored with this stride multiple, zero-padded: the packed kernel reads
 * K rounded up to 4 bytes (the padding meets zero weights). */
#define ROW_ALIGN 64
#define ROUND_UP(n, m) (((n) + (m) - 1) / (m) * (m))

/* The F32 output of a (n_r x n_c) piece at (r0, c0) from its int32 sums (stride @lds). The
 * vector version (finish_tile_avx512) runs the very same IEEE operations in the same order,
 * and q8.c is compiled with -ffp-contract=off (no FMA fusing in one and not the other), so
 * the VNNI and reference paths agree to the bit. */
static void
finish (const Q8Job *j, gsize r0, gsize n_r, gsize c0, gsize n_c, const gint32 *s, gsize lds)
{
  for (gsize r = 0; r < n_r; r++) {
    gsize row = r0 + r;
    float *yr = j->y + row * j->ldy;
    for (gsize c = 0; c < n_c; c++) {
      gsize o = c0 + c;
      float v = (float) (s[r * lds + c] - j->zx[row] * j->wsum[o]) * (j->sx[row] * j->sw[o]);
      v = v + (j->bias ? j->bias[o] : 0.0f);
      yr[o] = j->accumulate ? yr[o] + v : v;
    }
  }
}

static void
store_tile (const Q8Job *j, gsize r0, gsize n_r, gsize c0, gsize n_c, const gint32 *s, gsize lds)
{
  if (j->acc) {
    for (gsize r = 0; r < n_r; r++)
      for (gsize c = 0; c < n_c; c++)
        j->acc[(r0 + r) * j->ldacc + c0 + c] = s[r * lds + c];
  } else {
    finish (j, r0, n_r, c0, n_c, s, lds);
  }
}

#ifdef IB_Q8_X86
/* finish() of a full 4 x 4 tile whose sums are @acc (lane r * 4 + c), 16 outputs at once. */
VNNI_TARGET static inline void
finish_tile_avx512 (const Q8Job *j, gsize r0, gsize c0, __m512i acc)
{
  const __m512i row_of_lane = _mm512_set_epi32 (3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  __m512i zx = _mm512_permutexvar_epi32 (row_of_lane,
      _mm512_castsi128_si512 (_mm_loadu_si128 ((const __m128i *) (j->zx + r0))));
  __m512 sx = _mm512_permutexvar_ps (row_of_lane, _mm512_castps128_ps512 (_mm_loadu_ps (j->sx + r0)));
  __m512i ws = _mm512_broadcast_i32x4 (_mm_loadu_si128 ((const __m128i *) (j->wsum + c0)));
  __m512 sw = _mm512_broadcast_f32x4 (_mm_loadu_ps (j->sw + c0));
  __m512 b = j->bias ? _mm512_broadcast_f32x4 (_mm_loadu_ps (j->bias + c0)) : _mm512_setzero_ps ();
  __m512 v = _mm512_mul_ps (_mm512_cvtepi32_ps (_mm512_sub_epi32 (acc, _mm512_mullo_epi32 (zx, ws))),
      _mm512_mul_ps (sx, sw));
  __m128 part[TILE_R];
  v = _mm512_add_ps (v, b);
  part[0] = _mm512_extractf32x4_ps (v, 0);
  part[1] = _mm512_extractf32x4_ps (v, 1);
  part[2] = _mm512_extractf32x4_ps (v, 2);
  part[3] = _mm512_extractf32x4_ps (v, 3);
  for (gsize r = 0; r < TILE_R; r++) {
    float *yr = j->y + (r0 + r) * j->ldy + c0;
    _mm_storeu_ps (yr, j->accumulate ? _mm_add_ps (_mm_loadu_ps (yr), part[r]) : part[r]);
  }
}

VNNI_TARGET static void
block_vnni (guint task, guint thread, gpointer data)
{
  const Q8Job *j = data;
  gsize rb = task % j->n_rblocks, cb = task / j->n_rblocks;
  gsize r_begin = rb * BLOCK_R, r_end = MIN (j->rows, r_begin + BLOCK_R);
  gsize c_begin = cb * BLOCK_C, c_end = MIN (j->out, c_begin + BLOCK_C);
  gint32 s[TILE_R * TILE_C];

  for (gsize c0 = c_begin; c0 < c_end; c0 += TILE_C) {
    gsize n_c = MIN (TILE_C, c_end - c0);
    const gint8 *w[TILE_C];
    /* A partial tile repeats its last row/output; the extra sums are dropped. */
    for (gsize c = 0; c < TILE_C; c++)
      w[c] = j->q + (c0 + MIN (c, n_c - 1)) * j->K;
    for (gsize r0 = r_begin; r0 < r_end; r0 += TILE_R) {
      gsize n_r = MIN (TILE_R, r_end - r0);
      const guint8 *x[TILE_R];
      for (gsize r = 0; r < TILE_R; r++)
        x[r] = j->u + (r0 + MIN (r, n_r - 1)) * j->ldu;
      __m512i sums = tile_vnni (x, w, j->K);
      if (!j->acc && n_r == TILE_R && n_c == TILE_C) {
        finish_tile_avx512 (j, r0, c0, sums);
        continue;
      }
      _mm512_storeu_si512 ((void *) s, sums);
      store_tile (j, r0, n_r, c0, n_c, s, TILE_C);
    }
  }
}
#endif


#ifdef IB_Q8_X86
/* ---- the packed kernel (products of 16 rows or more) ----
 *
 * Per task, a block of 64 weight rows (outputs) is re-laid into the layout vpdpbusd wants:
 * for each group of 4 K values, 64 outputs x 4 bytes (4 vectors of 16 outputs). Each step of
 * the 6 x 64 tile then broadcasts 4 bytes of an activation row and multiplies them with the
 * 4 vectors: 24 accumulators, 4 vector loads and 6 broadcasts per 24 vpdpbusd, no horizontal
 * sums, and 16 consecutive outputs per accumulator for the F32 output. The re-layout (a 16 x 16
 * transpose of 4-byte groups) costs a few per cent of the product when it is amortised over
 * the block's rows, which is why small products use the dot-product kernel instead. */

#define PACK_C 64                /* outputs per block */
#define PACK_R 6                 /* activation rows per tile */
#define PACKED_MIN_ROWS 16

/* permutex2var indices of the 4 levels of a 16 x 16 transpose of 32-bit elements. */
static __m512i transpose_idx[4][2];
static gsize transpose_once;

VNNI_TARGET static void
init_transpose (void)
{
  if (g_once_init_enter (&transpose_once)) {
    for (int level = 0; level < 4; level++) {
      int st = 8 >> level;
      gint32 lo[16], hi[16];
      for (int l = 0; l < 16; l++) {
        lo[l] = (l & st) ? 16 + l - st : l;
        hi[l] = (l & st) ? 16 + l : l + st;
      }
      transpose_idx[level][0] = _mm512_loadu_si512 ((const void *) lo);
      transpose_idx[level][1] = _mm512_loadu_si512 ((const void *) hi);
    }
    g_once_init_leave (&transpose_once, 1);
  }
}

/* Weight rows o0 .. o0 + n_o (n_o <= 64) of @q (K bytes each) into @dst: for each group g of 4
 * K values, 64 x 4 bytes, output o's 4 bytes at dst + g * 256 + o * 4; zeros past K and n_o. */
VNNI_TARGET static void
pack_block (const gint8 *q, gsize K, gsize o0, gsize n_o, gint8 *dst)
{
  gsize K4 = (K + 3) / 4;
  for (gsize og = 0; og < PACK_C; og += 16) {
    for (gsize k = 0; k < K; k += 64) {
      __mmask64 m = K - k >= 64 ? ~(__mmask64) 0 : _cvtu64_mask64 ((~0ull) >> (64 - (K - k)));
      __m512i r[16];
      gsize n_g = MIN (16, K4 - k / 4);
      /* 16 outputs x 64 K bytes = a 16 x 16 matrix of 4-byte groups; transposed, row i holds
       * group i of the 16 outputs. */
      for (int i = 0; i < 16; i++)
        r[i] = og + i < n_o ? _mm512_maskz_loadu_epi8 (m, q + (o0 + og + i) * K + k)
            : _mm512_setzero_si512 ();
      for (int level = 0; level < 4; level++) {
        int st = 8 >> level;
        for (int i = 0; i < 16; i++) {
          if (i & st)
            continue;
          __m512i a = r[i], b = r[i + st];
          r[i] = _mm512_permutex2var_epi32 (a, transpose_idx[level][0], b);
          r[i + st] = _mm512_permutex2var_epi32 (a, transpose_idx[level][1], b);
        }
      }
      for (gsize g = 0; g < n_g; g++)
        _mm512_storeu_si512 ((void *) (dst + (k / 4 + g) * 256 + og * 4), r[g]);
    }
  }
}

/* F32 output (or int32 sums) of 16 outputs from o of row @row: the same operations as
 * finish(), in the same order. @m: the valid outputs. */
VNNI_TARGET static inline void
finish_vec (const Q8Job *j, gsize row, gsize o, __mmask16 m, __m512i acc)
{
  if (j->acc) {
    _mm512_mask_storeu_epi32 (j->acc + row * j->ldacc + o, m, acc);
    return;
  }
  {
    __m512i ws = _mm512_maskz_loadu_epi32 (m, j->wsum + o);
    __m512 sw = _mm512_maskz_loadu_ps (m, j->sw + o);
    __m512 b = j->bias ? _mm512_maskz_loadu_ps (m, j->bias + o) : _mm512_setzero_ps ();
    __m512 v = _mm512_mul_ps (
        _mm512_cvtepi32_ps (_mm512_sub_epi32 (acc, _mm512_mullo_epi32 (_mm512_set1_epi32 (j->zx[row]), ws))),
        _mm512_mul_ps (_mm512_set1_ps (j->sx[row]), sw));
    float *y = j->y + row * j->ldy + o;
    v = _mm512_add_ps (v, b);
    if (j->accumulate)
      v = _mm512_add_ps (_mm512_maskz_loadu_ps (m, y), v);
    if (j->gelu) {
      /* ib_gelu()'s arithmetic on AVX-512 (ops-avx512.c), here while v is in a register */
      __m512 c[IB_ERF_DEGREE + 1];
      ib_erf_coefficients (c);
      v = ib_gelu16 (v, c);
    }
    _mm512_mask_storeu_ps (y, m, v);
  }
}

/* Rows r0 .. r0 + R of the block at o0 (R <= 6, a constant after inlining: the accumulators
 * stay in registers). */
VNNI_TARGET static inline __attribute__ ((always_inline)) void
tile_packed (const Q8Job *j, const int R, gsize r0, gsize o0, const gint8 *wp, gsize K4)
{
  __m512i acc[PACK_R][4];
  const guint8 *x = j->u + r0 * j->ldu;
  gsize n_o = MIN (PACK_C, j->out - o0);

#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
      acc[r][c] = _mm512_setzero_si512 ();
  for (gsize g = 0; g < K4; g++) {
    const gint8 *wg = wp + g * 256;
    __m512i w0 = _mm512_loadu_si512 ((const void *) wg);
    __m512i w1 = _mm512_loadu_si512 ((const void *) (wg + 64));
    __m512i w2 = _mm512_loadu_si512 ((const void *) (wg + 128));
    __m512i w3 = _mm512_loadu_si512 ((const void *) (wg + 192));
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      gint32 four;
      __m512i xb;
      memcpy (&four, x + r * j->ldu + g * 4, 4);
      xb = _mm512_set1_epi32 (four);
      acc[r][0] = _mm512_dpbusd_epi32 (acc[r][0], xb, w0);
      acc[r][1] = _mm512_dpbusd_epi32 (acc[r][1], xb, w1);
      acc[r][2] = _mm512_dpbusd_epi32 (acc[r][2], xb, w2);
      acc[r][3] = _mm512_dpbusd_epi32 (acc[r][3], xb, w3);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      gsize o = (gsize) c * 16;
      __mmask16 m = o >= n_o ? 0 : n_o - o >= 16 ? 0xffff : (__mmask16) ((1u << (n_o - o)) - 1);
      if (m)
        finish_vec (j, r0 + r, o0 + o, m, acc[r][c]);
    }
}

/* Weight blocks packed on the way (weights not packed at load): one buffer per thread. */
static GPrivate pack_key = G_PRIVATE_INIT (ib_thread_buffer_free);

VNNI_TARGET static void
block_packed (guint task, guint thread, gpointer data)
{
  const Q8Job *j = data;
  gsize o0 = (gsize) task * PACK_C, K4 = (j->K + 3) / 4;
  const gint8 *wp = j->packed ? j->packed + task * K4 * 4 * PACK_C : NULL;
  gsize r0 = 0;

  if (!wp) {
    gint8 *buf = ib_thread_buffer (&pack_key, K4 * 4 * PACK_C);
    pack_block (j->q, j->K, o0, MIN (PACK_C, j->out - o0), buf);
    wp = buf;
  }
  for (; r0 + PACK_R <= j->rows; r0 += PACK_R)
    tile_packed (j, PACK_R, r0, o0, wp, K4);
  switch (j->rows - r0) {
    case 5: tile_packed (j, 5, r0, o0, wp, K4); break;
    case 4: tile_packed (j, 4, r0, o0, wp, K4); break;
    case 3: tile_packed (j, 3, r0, o0, wp, K4); break;
    case 2: tile_packed (j, 2, r0, o0, wp, K4); break;
    case 1: tile_packed (j, 1, r0, o0, wp, K4); break;
    default: break;
  }
}
#endif

gsize
ib_q8_packed_size (gsize rows, gsize cols)
{
#ifdef IB_Q8_X86
  return (rows + PACK_C - 1) / PACK_C * ((cols + 3) / 4) * 4 * PACK_C;
#else
  return 0;
#endif
}

#ifdef IB_Q8_X86
typedef struct { const IbWeight *w; gint8 *dst; } PackJob;

VNNI_TARGET static void
pack_task (guint task, guint thread, gpointer data)
{
  const PackJob *p = data;
  gsize o0 = (gsize) task * PACK_C, K = p->w->cols;
  pack_block (p->w->data, K, o0, MIN (PACK_C, p->w->rows - o0),
      p->dst + task * ((K + 3) / 4) * 4 * PACK_C);
}
#endif

void
ib_q8_pack_weight (const IbWeight *w, gint8 *dst)
{
  weight_sums (w);
#ifdef IB_Q8_X86
  {
    PackJob p = { w, dst };
    init_transpose ();
    ib_parallel_for ((guint) ((w->rows + PACK_C - 1) / PACK_C), 0, pack_task, &p);
  }
#endif
}

/* Runs the product of @j with a VNNI kernel, or the reference when @ref (or no VNNI). The
 * activation rows must be padded (ROW_ALIGN, zeros). Clears j->gelu when it did not apply it. */
static void
run_job (Q8Job *j, int n_threads, gboolean ref)
{
#ifdef IB_Q8_X86
  if (!ref && ib_q8_have_vnni () && j->rows >= PACKED_MIN_ROWS) {
    init_transpose ();
    ib_parallel_for ((j->out + PACK_C - 1) / PACK_C, n_threads, block_packed, j);
    return;
  }
  j->gelu = FALSE;
  if (!ref && ib_q8_have_vnni ()) {
    gsize n_cblocks = (j->out + BLOCK_C - 1) / BLOCK_C;
    j->n_rblocks = (j->rows + BLOCK_R - 1) / BLOCK_R;
    /* Small products (the heads: one row) are not worth a hand-over to the pool. */
    ib_parallel_for (j->n_rblocks * n_cblocks,
        (double) j->rows * j->out * j->K < 4.0 * 65536 ? 1 : n_threads, block_vnni, j);
    return;
  }
#endif
  {
    gint32 *s = g_new (gint32, j->rows * j->out);
    ib_q8_gemm_s32_ref (j->u, j->ldu, j->rows, j->q, j->out, j->K, s, j->out);
    store_tile (j, 0, j->rows, 0, j->out, s, j->out);
    g_free (s);
  }
}

void
ib_q8_gemm_s32 (const guint8 *u, gsize ldu, gsize rows, const gint8 *q, gsize out, gsize K,
    gint32 *acc, gsize ldacc, int n_threads)
{
  gsize ldp = ROUND_UP (K, ROW_ALIGN);
  guint8 *padded;
  Q8Job j = { .rows = rows, .q = q, .out = out, .K = K, .acc = acc, .ldacc = ldacc };

  g_return_if_fail (K <= IB_Q8_MAX_COLS);
  if (rows == 0 || out == 0)
    return;
  /* The kernels' row layout: a stride multiple of ROW_ALIGN, zero padding. */
  padded = g_malloc0 (rows * ldp);
  for (gsize r = 0; r < rows; r++)
    memcpy (padded + r * ldp, u + r * ldu, K);
  j.u = padded;
  j.ldu = ldp;
  run_job (&j, n_threads, FALSE);
  g_free (padded);
}

/* ---- the linear layer ---- */

/* Quantised activations: one buffer per calling thread, grown as needed, kept for the next
 * call (a context calls from one thread at a time; the pool's workers only read it). */
typedef struct {
  guint8 *u;
  gsize u_cap;
  float *sx;
  gint32 *zx;
  gsize rows_cap;
} Q8Scratch;

static void
scratch_free (gpointer data)
{
  Q8Scratch *s = data;
  g_free (s->u);
  g_free (s->sx);
  g_free (s->zx);
  g_free (s);
}

static GPrivate scratch_key = G_PRIVATE_INIT (scratch_free);

static Q8Scratch *
get_scratch (gsize rows, gsize cols)
{
  Q8Scratch *s = g_private_get (&scratch_key);
  if (!s) {
    s = g_new0 (Q8Scratch, 1);
    g_private_set (&scratch_key, s);
  }
  if (s->u_cap < rows * cols) {
    g_free (s->u);
    s->u = g_malloc (rows * cols);
    s->u_cap = rows * cols;
  }
  if (s->rows_cap < rows) {
    g_free (s->sx);
    g_free (s->zx);
    s->sx = g_new (float, rows);
    s->zx = g_new (gint32, rows);
    s->rows_cap = rows;
  }
  return s;
}

typedef struct {
  const float *x; gsize ldx, rows, cols, ldu;
  Q8Scratch *s;
} QuantJob;

#define QUANT_ROWS 16

static void
quantize_task (guint task, guint thread, gpointer data)
{
  const QuantJob *j = data;
  gsize r1 = MIN (j->rows, (task + 1) * QUANT_ROWS);
  for (gsize r = task * QUANT_ROWS; r < r1; r++) {
    guint8 *u = j->s->u + r * j->ldu;
    ib_q8_quantize_row (j->x + r * j->ldx, j->cols, u, &j->s->sx[r], &j->s->zx[r]);
    memset (u + j->cols, 0, j->ldu - j->cols);
  }
}

void
ib_q8_linear (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean accumulate, int n_threads, gboolean ref)
{
  ib_q8_linear_ex (x, ldx, rows, w, b, y, ldy, accumulate, FALSE, n_threads, ref);
}

gboolean
ib_q8_linear_ex (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean accumulate, gboolean gelu, int n_threads, gboolean ref)
{
  gsize K = w->cols, ldu = ROUND_UP (K, ROW_ALIGN);
  Q8Scratch *s;
  QuantJob qj;
  Q8Job j;
  guint n_quant;

  g_return_val_if_fail (w->type == IB_GGUF_TENSOR_I8 && w->q8 && K <= IB_Q8_MAX_COLS, FALSE);
  if (rows == 0)
    return gelu;
  s = get_scratch (rows, ldu);
  qj = (QuantJob) { x, ldx, rows, K, ldu, s };
  n_quant = (guint) ((rows + QUANT_ROWS - 1) / QUANT_ROWS);
  ib_parallel_for (n_quant, n_quant > 1 ? n_threads : 1, quantize_task, &qj);

  j = (Q8Job) { .u = s->u, .ldu = ldu, .rows = rows, .q = w->data, .out = w->rows, .K = K,
    .sx = s->sx, .zx = s->zx, .sw = w->scale, .wsum = weight_sums (w), .bias = b, .y = y,
    .ldy = ldy, .accumulate = accumulate, .gelu = gelu, .packed = w->packed };
  run_job (&j, n_threads, ref);
  return j.gelu;
}
