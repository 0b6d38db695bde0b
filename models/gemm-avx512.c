/* The linear layers' products on AVX-512 (internal; ops-avx512.h): y = x W^T, with the
 * residual (y +=), the bias and GELU applied to each tile of y while it is in registers.
 *
 * Why not OpenBLAS here: its interface runs the bias, the residual and GELU as passes of their
 * own over y, after y's slab has left L2 (OpenBLAS's packed weights pass through L2 in the same
 * call), and it packs the weights again in every call, in a phase of its own; in perf samples
 * of depth's forward: the weights' packing 10 %, the bias rows copied into y 3.6 %, GELU 1.9 %,
 * the bias additions 1.5 % (models/PERFORMANCE.md, "Fourth round"). Here:
 *
 *   - the weights are packed once, when the model is loaded (ib_weight_pack() in ops.c):
 *     panels of 32 outputs, k-major (two vectors per k), read as one sequential stream;
 *   - each thread takes a run of panels, and copies x into row tiles of at most 14 rows,
 *     k-major (the values a kernel step broadcasts side by side), asking for x's rows ahead;
 *   - each tile goes through the kernel: 14 rows x 32 outputs of accumulators, FMA chains of
 *     at most CHAIN_MAX steps added up in L1, then the epilogue, and y is written once.
 *
 * Rounding: each output is the sum of its chains (each sequential, in k order), then y's old
 * value, then the bias; the order depends on K alone, not on the thread count. Against double
 * precision it is as accurate as OpenBLAS's blocked sums; tests/runtime/test-ops.c checks it
 * (/ops/linear). */
#include "ops-avx512.h"

#ifdef IB_HAVE_AVX512_OPS

#include <math.h>

#include "avx512-gelu.h"
#include "avx512-math.h"
#include "parallel.h"

#define IB_INLINE inline __attribute__ ((always_inline))

/* Rows per register tile: 14 rows x 2 vectors are 28 accumulators, which leaves the two
 * weight vectors and a broadcast register. */
#define TILE_ROWS 14
/* Outputs per panel: two vectors. */
#define PANEL 32
/* Largest copy of x a thread keeps for all its panels (L2: 1 MB on the EPYC measured). */
#define XP_BLOCK_BYTES (576 * 1024)
/* Longest FMA chain of the kernel (see tile()). */
#define CHAIN_MAX 384
/* Longest K block. Blocks of 384 (a tile's 21 KB in L1, the panel's 48 KB in L2, as OpenBLAS
 * blocks) measured slower than none on the encoders' shapes (IMU's fc1, 251 x 1024 x 512 on
 * one thread: 175 -> 186 GFLOP/s; huge vision's fc1, 257 x 2560 x 1280: 159 -> 209): a block
 * boundary costs a pass over y's slab, which then no longer fits in L2, while both operand
 * streams of a whole K come from L2 fast enough. So K is cut only past 8192, longer than
 * any K of the presets (huge vision's fc2: 5120), where a tile of x would outgrow L2. */
#define KB_MAX 8192
/* pack_x asks for each row's values this far ahead: x was just written, half of it by the
 * other core, and 14 rows read 64 bytes at a time are more streams than the hardware
 * prefetcher follows (depth's forward: 60 -> 30 us per 197 x 384 block; 32 and 128 no
 * better). */
#define PREFETCH_AHEAD 64

/* What the epilogue does with a finished tile. */
typedef struct {
  gboolean add_y;           /* y = y + sum (else y = sum) */
  const float *bias;        /* then + bias[j] (NULL: no) */
  gboolean gelu;            /* then GELU */
  __mmask16 m0, m1;         /* the panel's valid outputs, per vector */
} Epilogue;

/* Per thread: the copy of x and the weight panel packed on the way. */
static GPrivate scratch_key = G_PRIVATE_INIT (ib_thread_buffer_free);

/* Row tile @i of @rows rows cut into @n_tiles tiles as even as possible: its first row. */
static inline gsize
tile_start (gsize i, gsize rows, gsize n_tiles)
{
  return i * (rows / n_tiles) + MIN (i, rows % n_tiles);
}

/* Columns [k0, k0 + kb) of the rows of tiles [t0, t1) into @xp: tile after tile, each (kb,
 * its rows) k-major; a tile starting at row r0 is at xp + (r0 - the first tile's row) kb. */
static IB_AVX512 void
pack_x (const float *x, gsize ldx, gsize rows, gsize n_tiles, gsize t0, gsize t1, gsize k0,
    gsize kb, float *xp)
{
  gsize base = tile_start (t0, rows, n_tiles);

  for (gsize t = t0; t < t1; t++) {
    gsize r0 = tile_start (t, rows, n_tiles), nr = tile_start (t + 1, rows, n_tiles) - r0;
    float *dst = xp + (r0 - base) * kb;
    __mmask16 keep = (__mmask16) ((1u << nr) - 1);

    for (gsize k = 0; k < kb; k += 16) {
      __mmask16 mk = tail_mask (kb - k);
      __m512 blk[16];
      for (gsize r = 0; r < 16; r++) {
        if (r < nr && k + PREFETCH_AHEAD < kb)
          _mm_prefetch ((const char *) (x + (r0 + r) * ldx + k0 + k + PREFETCH_AHEAD),
              _MM_HINT_T0);
        blk[r] = r < nr ? _mm512_maskz_loadu_ps (mk, x + (r0 + r) * ldx + k0 + k)
            : _mm512_setzero_ps ();
      }
      transpose_16x16 (blk);
      for (gsize j = 0; j < 16 && k + j < kb; j++)
        _mm512_mask_storeu_ps (dst + (k + j) * nr, keep, blk[j]);
    }
  }
}

/* Columns [k0, k0 + kb) of W's rows o0 .. o0 + 31 (rows past @n: zero) into @wt, k-major:
 * wt[k * 32 + j] = W[o0 + j][k0 + k]. */
static IB_AVX512 void
pack_w (const float *w, gsize K, gsize n, gsize o0, gsize k0, gsize kb, float *wt)
{
  for (gsize half = 0; half < 2; half++) {
    gsize row0 = o0 + 16 * half;
    for (gsize k = 0; k < kb; k += 16) {
      __mmask16 mk = tail_mask (kb - k);
      __m512 blk[16];
      for (gsize r = 0; r < 16; r++)
        blk[r] = row0 + r < n ? _mm512_maskz_loadu_ps (mk, w + (row0 + r) * K + k0 + k)
            : _mm512_setzero_ps ();
      transpose_16x16 (blk);
      for (gsize j = 0; j < 16 && k + j < kb; j++)
        _mm512_store_ps (wt + (k + j) * PANEL + 16 * half, blk[j]);
    }
  }
}

/* One tile: @R rows (xp: (kb, R) k-major) times the panel (wt), then the epilogue into y.
 * The sum runs in chains of at most CHAIN_MAX steps, added up in @part (L1): one chain over a
 * long K rounds like a long sequential sum, the chains like OpenBLAS's blocks (the error of a
 * 5120-term product against double precision, RMS: 2.4e-8 of the terms' scale in one chain,
 * 0.7e-8 in 384-step ones, as OpenBLAS). */
static IB_INLINE IB_AVX512 void
tile (const float *xp, const float *wt, gsize kb, float *y, gsize ldy, const Epilogue *e,
    const int R)
{
  __m512 acc[TILE_ROWS][2], c[IB_ERF_DEGREE + 1];
  float part[TILE_ROWS][PANEL] __attribute__ ((aligned (64)));
  gsize n_chains = (kb + CHAIN_MAX - 1) / CHAIN_MAX, chain = (kb + n_chains - 1) / n_chains;

  for (gsize k0 = 0;; k0 += chain) {
    gsize k1 = MIN (kb, k0 + chain);
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
      acc[r][0] = acc[r][1] = _mm512_setzero_ps ();
    for (gsize k = k0; k < k1; k++) {
      __m512 b0 = _mm512_load_ps (wt + k * PANEL), b1 = _mm512_load_ps (wt + k * PANEL + 16);
      const float *a = xp + k * R;
#pragma GCC unroll 14
      for (int r = 0; r < R; r++) {
        __m512 av = _mm512_set1_ps (a[r]);
        acc[r][0] = _mm512_fmadd_ps (av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps (av, b1, acc[r][1]);
      }
    }
    if (k0 > 0)
#pragma GCC unroll 14
      for (int r = 0; r < R; r++) {
        acc[r][0] = _mm512_add_ps (_mm512_load_ps (part[r]), acc[r][0]);
        acc[r][1] = _mm512_add_ps (_mm512_load_ps (part[r] + 16), acc[r][1]);
      }
    if (k1 == kb)
      break;
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) {
      _mm512_store_ps (part[r], acc[r][0]);
      _mm512_store_ps (part[r] + 16, acc[r][1]);
    }
  }
  if (e->gelu)
    ib_erf_coefficients (c);
#pragma GCC unroll 14
  for (int r = 0; r < R; r++) {
    float *yr = y + r * ldy;
    __m512 v0 = acc[r][0], v1 = acc[r][1];
    if (e->add_y) {
      v0 = _mm512_add_ps (load16 (yr, e->m0), v0);
      v1 = _mm512_add_ps (load16 (yr + 16, e->m1), v1);
    }
    if (e->bias) {
      v0 = _mm512_add_ps (v0, load16 (e->bias, e->m0));
      v1 = _mm512_add_ps (v1, load16 (e->bias + 16, e->m1));
    }
    if (e->gelu) {
      v0 = ib_gelu16 (v0, c);
      v1 = ib_gelu16 (v1, c);
    }
    store16 (yr, e->m0, v0);
    store16 (yr + 16, e->m1, v1);
  }
}

#define TILE_OF(R) \
  static IB_AVX512 void \
  tile_##R (const float *xp, const float *wt, gsize kb, float *y, gsize ldy, const Epilogue *e) \
  { \
    tile (xp, wt, kb, y, ldy, e, R); \
  }
TILE_OF (1) TILE_OF (2) TILE_OF (3) TILE_OF (4) TILE_OF (5) TILE_OF (6) TILE_OF (7)
TILE_OF (8) TILE_OF (9) TILE_OF (10) TILE_OF (11) TILE_OF (12) TILE_OF (13) TILE_OF (14)

typedef void (*TileFunc) (const float *xp, const float *wt, gsize kb, float *y, gsize ldy,
    const Epilogue *e);

static const TileFunc tiles[TILE_ROWS + 1] = {
  NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6, tile_7, tile_8, tile_9, tile_10,
  tile_11, tile_12, tile_13, tile_14,
};

typedef struct {
  const float *x; gsize ldx, rows;
  const float *w, *packed; gsize n, K;
  const float *bias; float *y; gsize ldy;
  gboolean accumulate, gelu;
  gsize panels, panels_per_task, n_tiles, kb, tiles_per_block;
} LinearJob;

/* Rows [from, to) of the weight rows o0 .. o0 + 31, columns [k0, k0 + kb), towards L2. */
static IB_AVX512 void
prefetch_panel (const LinearJob *j, gsize o0, gsize k0, gsize kb, gsize from, gsize to)
{
  for (gsize r = from; r < to && o0 + r < j->n; r++)
    for (gsize k = 0; k < kb + 16; k += 16)
      _mm_prefetch ((const char *) (j->w + (o0 + r) * j->K + k0 + MIN (k, kb - 1)), _MM_HINT_T1);
}

/* One thread's run of panels, over all K blocks. */
static IB_AVX512 void
linear_task (guint task, guint thread, gpointer data)
{
  const LinearJob *j = data;
  gsize p0 = task * j->panels_per_task, p1 = MIN (j->panels, p0 + j->panels_per_task);
  float *xp = ib_thread_buffer (&scratch_key, (j->rows + PANEL) * j->kb * sizeof (float));
  float *wt_own = xp + j->rows * j->kb;

  for (gsize k0 = 0; k0 < j->K; k0 += j->kb)
  for (gsize t0 = 0; t0 < j->n_tiles; t0 += j->tiles_per_block) {
    gsize kb = MIN (j->kb, j->K - k0), t1 = MIN (j->n_tiles, t0 + j->tiles_per_block);
    gsize base = tile_start (t0, j->rows, j->n_tiles);
    gboolean last = k0 + kb == j->K;

    pack_x (j->x, j->ldx, j->rows, j->n_tiles, t0, t1, k0, kb, xp);
    for (gsize p = p0; p < p1; p++) {
      gsize o0 = p * PANEL;
      Epilogue e = { j->accumulate || k0 > 0, last && j->bias ? j->bias + o0 : NULL,
        last && j->gelu, tail_mask (j->n - o0), j->n - o0 > 16 ? tail_mask (j->n - o0 - 16) : 0 };
      const float *wt = j->packed ? j->packed + (p * j->K + k0) * PANEL : wt_own;
      if (!j->packed)
        pack_w (j->w, j->K, j->n, o0, k0, kb, wt_own);
      for (gsize t = t0; t < t1; t++) {
        gsize r0 = tile_start (t, j->rows, j->n_tiles);
        gsize nr = tile_start (t + 1, j->rows, j->n_tiles) - r0;
        /* the next panel's weights, spread over this panel's tiles (packed ones are one
         * sequential stream, which the hardware prefetches by itself) */
        if (!j->packed && p + 1 < p1)
          prefetch_panel (j, o0 + PANEL, k0, kb, (t - t0) * PANEL / (t1 - t0),
              (t - t0 + 1) * PANEL / (t1 - t0));
        tiles[nr] (xp + (r0 - base) * kb, wt, kb, j->y + r0 * j->ldy + o0, j->ldy, &e);
      }
    }
  }
}

gsize
ib_linear_avx512_packed_floats (gsize n, gsize K)
{
  return (n + PANEL - 1) / PANEL * PANEL * K;
}

typedef struct { const float *w; gsize n, K; float *packed; } PackJob;

static IB_AVX512 void
pack_task (guint panel, guint thread, gpointer data)
{
  const PackJob *j = data;
  gsize o0 = (gsize) panel * PANEL;
  /* panel p is (K, 32) k-major at packed + p K 32: each K block of it is what pack_w gives */
  pack_w (j->w, j->K, j->n, o0, 0, j->K, j->packed + o0 * j->K);
}

void
ib_linear_avx512_pack (const float *w, gsize n, gsize K, float *packed)
{
  PackJob job = { w, n, K, packed };
  ib_parallel_for ((guint) ((n + PANEL - 1) / PANEL), 0, pack_task, &job);
}

gboolean
ib_linear_avx512_weight_suits (gsize n, gsize K)
{
  return n >= PANEL && K >= 16;
}

gboolean
ib_linear_avx512_suits (gsize rows, gsize n, gsize K)
{
  /* below a tile's worth of rows the kernel's chains are too few to keep the FMA units busy */
  return rows >= 8 && ib_linear_avx512_weight_suits (n, K);
}

void
ib_linear_avx512 (const float *x, gsize ldx, gsize rows, const float *w, const float *packed,
    gsize n, gsize K, const float *bias, float *y, gsize ldy, gboolean accumulate, gboolean gelu,
    int n_threads)
{
  gsize n_kb = (K + KB_MAX - 1) / KB_MAX;
  guint threads = ib_parallel_max_threads (n_threads);
  LinearJob job = { x, ldx, rows, w, packed, n, K, bias, y, ldy, accumulate, gelu,
    (n + PANEL - 1) / PANEL, 0, (rows + TILE_ROWS - 1) / TILE_ROWS,
    /* K blocks as even as possible, of whole vectors */
    ((K + n_kb - 1) / n_kb + 15) / 16 * 16 };

  job.panels_per_task = (job.panels + threads - 1) / threads;
  /* Row blocks whose copy of x stays in L2 across the panels, when that costs less than
   * reading the whole copy from L3 for every panel: each block reads the thread's weights
   * once more (PANEL floats per k and panel, against a block's rows per k and panel). By this
   * rule: audio's three clips (687 rows, K 768) 4 blocks; depth's and IMU's fc2 (K 1536 and
   * 2048) 3 and 4; their other layers and huge vision's fc2 (K 5120) 1. */
  {
    gsize fit = MAX (XP_BLOCK_BYTES / (TILE_ROWS * job.kb * sizeof (float)), 1);
    gsize n_blocks = (job.n_tiles + fit - 1) / fit;
    job.tiles_per_block = n_blocks > 1 && n_blocks * PANEL < rows
        ? (job.n_tiles + n_blocks - 1) / n_blocks : job.n_tiles;
  }
  ib_parallel_for ((guint) ((job.panels + job.panels_per_task - 1) / job.panels_per_task),
      n_threads, linear_task, &job);
}

#endif
