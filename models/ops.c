/* Numeric building blocks of the encoders. Loops are kept plain so that the compiler vectorises
 * them; rows are spread over threads with OpenMP where a call has enough of them. */
#include "ops.h"
#include "ops-avx512.h"
#include "blas.h"
#include "parallel.h"
#include "q8.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

/* OpenMP is optional: without it the pragmas are ignored and everything runs on one thread. */
#define IB_OMP_MIN_ROWS 16

typedef struct { const IbWeight *w; float *dst; gsize n, chunk; } WidenJob;

static void
widen_chunk (guint c, guint thread, gpointer data)
{
  const WidenJob *j = data;
  gsize start = c * j->chunk;
  ib_f16_to_f32 ((const guint16 *) j->w->data + start, j->dst + start, MIN (j->chunk, j->n - start));
}

/* I8: whole rows, for their scale. */
static void
widen_rows_q8 (guint c, guint thread, gpointer data)
{
  const WidenJob *j = data;
  gsize row0 = c * j->chunk;
  ib_q8_widen_rows (j->w, row0, MIN (j->chunk, j->w->rows - row0), j->dst + row0 * j->w->cols);
}

const float *
ib_weight_f32 (const IbWeight *w, float *scratch, int n_threads)
{
  gsize n = w->rows * w->cols;
  gsize chunk = 1 << 16;
  gsize n_chunks = (n + chunk - 1) / chunk;

  if (w->type == IB_GGUF_TENSOR_F32)
    return w->data;
  if (w->type == IB_GGUF_TENSOR_I8) {
    gsize rows_per = MAX (chunk / MAX (w->cols, 1), 1);
    WidenJob job = { w, scratch, n, rows_per };
    n_chunks = (w->rows + rows_per - 1) / rows_per;
    ib_parallel_for (n_chunks, n_chunks > 4 ? n_threads : 1, widen_rows_q8, &job);
    return scratch;
  }
  {
    WidenJob job = { w, scratch, n, chunk };
    ib_parallel_for (n_chunks, n_chunks > 4 ? n_threads : 1, widen_chunk, &job);
  }
  return scratch;
}

static void
layer_norm_row (const float *x, float *y, gsize cols, const float *w, const float *b, float eps)
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

typedef struct { const float *x; float *y; gsize rows, cols, per; const float *w, *b; float eps; } LnJob;

static void
ln_task (guint t, guint thread, gpointer data)
{
  const LnJob *j = data;
  gsize r0 = t * j->per, r1 = MIN (j->rows, r0 + j->per);
#ifdef IB_HAVE_AVX512_OPS
  if (ib_cpu_has_avx512 ()) {
    ib_layer_norm_avx512 (j->x + r0 * j->cols, j->y + r0 * j->cols, r1 - r0, j->cols, j->w,
        j->b, j->eps);
    return;
  }
#endif
  for (gsize r = r0; r < r1; r++)
    layer_norm_row (j->x + r * j->cols, j->y + r * j->cols, j->cols, j->w, j->b, j->eps);
}

void
ib_layer_norm (const float *x, float *y, gsize rows, gsize cols, const float *w, const float *b,
    float eps, int n_threads)
{
  /* 32 rows per task: 7 tasks for a 197-token encoder (finer ones measured no faster) */
  LnJob job = { x, y, rows, cols, 32, w, b, eps };
  ib_parallel_for ((rows + 31) / 32, rows >= IB_OMP_MIN_ROWS ? n_threads : 1, ln_task, &job);
}

typedef struct { float *x; gsize n, chunk; gboolean quick; } GeluJob;

/* GELU (or QuickGELU when @quick) of @len floats in place. */
static void
gelu_span (float *p, gsize len, gboolean quick)
{
  if (quick) {
    /* x * sigmoid(1.702 x) as OpenCLIP's QuickGELU; for very negative x expf overflows to
     * inf and the quotient is -0, the limit. */
    for (gsize i = 0; i < len; i++)
      p[i] = p[i] / (1.0f + expf (-1.702f * p[i]));
    return;
  }
#ifdef IB_HAVE_AVX512_OPS
  if (ib_cpu_has_avx512 ()) {
    ib_gelu_avx512 (p, len);
    return;
  }
#endif
  for (gsize i = 0; i < len; i++)
    p[i] = 0.5f * p[i] * (1.0f + erff (p[i] * (float) M_SQRT1_2));
}

static void
gelu_task (guint c, guint thread, gpointer data)
{
  const GeluJob *j = data;
  gsize len = MIN (j->chunk, j->n - c * j->chunk);
  gelu_span (j->x + c * j->chunk, len, j->quick);
}

static void
activation (float *x, gsize n, gboolean quick, int n_threads)
{
  GeluJob job = { x, n, 16384, quick };
  gsize n_chunks = (n + job.chunk - 1) / job.chunk;
  ib_parallel_for (n_chunks, n_chunks > 4 ? n_threads : 1, gelu_task, &job);
}

void
ib_gelu (float *x, gsize n, int n_threads)
{
  activation (x, n, FALSE, n_threads);
}

void
ib_quick_gelu (float *x, gsize n, int n_threads)
{
  activation (x, n, TRUE, n_threads);
}

void
ib_softmax_rows (float *s, gsize rows, gsize cols, gsize ld, gboolean causal)
{
  for (gsize r = 0; r < rows; r++) {
    float *row = s + r * ld;
    gsize n = causal ? MIN (r + 1, cols) : cols;
    float max = row[0], inv;
    double sum = 0;

    for (gsize j = 1; j < n; j++)
      max = row[j] > max ? row[j] : max;
    for (gsize j = 0; j < n; j++) {
      row[j] = expf (row[j] - max);
      sum += row[j];
    }
    inv = (float) (1.0 / sum);
    for (gsize j = 0; j < n; j++)
      row[j] *= inv;
    for (gsize j = n; j < cols; j++)
      row[j] = 0.0f;
  }
}

gsize
ib_attention_scratch (gsize L, gsize Lk, gsize hd)
{
#ifdef IB_HAVE_AVX512_OPS
  if (ib_cpu_has_avx512 ())
    return ib_attention_head_scratch (Lk, hd);
#endif
  return L * Lk;
}

void
ib_attention_head (const float *q, const float *k, const float *v, gsize ld, gsize L, gsize Lk,
    gsize hd, float alpha, gboolean causal, float *out, gsize ldo, float *scratch,
    const float *next_q, double *part_seconds)
{
  double t0 = part_seconds ? ib_profile_now () : 0, t1 = 0, t2 = 0;

#ifdef IB_HAVE_AVX512_OPS
  if (ib_cpu_has_avx512 ()) {
    ib_attention_head_avx512 (q, k, v, ld, L, Lk, hd, alpha, causal, out, ldo, scratch, next_q);
    if (part_seconds)
      part_seconds[IB_ATTN_FUSED] += ib_profile_now () - t0;
    return;
  }
#endif
  ib_sgemm (FALSE, TRUE, L, Lk, hd, alpha, q, ld, k, ld, 0.0f, scratch, Lk, 1);
  if (part_seconds)
    t1 = ib_profile_now ();
  ib_softmax_rows (scratch, L, Lk, Lk, causal);
  if (part_seconds)
    t2 = ib_profile_now ();
  ib_sgemm (FALSE, FALSE, L, hd, Lk, 1.0f, scratch, Lk, v, ld, 0.0f, out, ldo, 1);
  if (part_seconds) {
    part_seconds[IB_ATTN_QK] += t1 - t0;
    part_seconds[IB_ATTN_SOFTMAX] += t2 - t1;
    part_seconds[IB_ATTN_PV] += ib_profile_now () - t2;
  }
}

#ifdef IB_HAVE_AVX512_OPS
/* Whether F32 linear layers use the product of gemm-avx512.c: on AVX-512 CPUs, unless
 * IMAGEBIND_GEMM=openblas (kept for comparing the two on one machine; weights are then not
 * packed at load). */
static gboolean
own_product (void)
{
  static gsize cached = 0;

  if (g_once_init_enter (&cached)) {
    const char *v = g_getenv ("IMAGEBIND_GEMM");
    g_once_init_leave (&cached, ib_cpu_has_avx512 () && g_strcmp0 (v, "openblas") != 0 ? 2 : 1);
  }
  return cached == 2;
}
#endif

/* The epilogues of the linear layers (IbGemmEpilogue.after), on one thread's block of y. */
static void
add_bias_block (float *c, gsize ldc, gsize rows, gsize cols, gsize col0, gpointer bias)
{
  const float *b = (const float *) bias + col0;
#ifdef IB_HAVE_AVX512_OPS
  if (ib_cpu_has_avx512 ()) {
    ib_add_row_avx512 (c, ldc, rows, cols, b);
    return;
  }
#endif
  for (gsize r = 0; r < rows; r++) {
    float *yr = c + r * ldc;
    for (gsize j = 0; j < cols; j++)
      yr[j] += b[j];
  }
}

static void
gelu_block (float *c, gsize ldc, gsize rows, gsize cols, gsize col0, gpointer quick)
{
  for (gsize r = 0; r < rows; r++)
    gelu_span (c + r * ldc, cols, GPOINTER_TO_INT (quick));
}

static void
linear (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b, float *y,
    gsize ldy, gboolean accumulate, gboolean gelu, gboolean quick, float *scratch, int n_threads)
{
  gsize out = w->rows, in = w->cols;
  const float *wf;
  IbGemmEpilogue ep = { NULL, NULL, NULL };

  if (w->type == IB_GGUF_TENSOR_I8 && ib_q8_have_vnni ()) {
    /* GELU in the kernel's epilogue where it can (not QuickGELU), else in a pass of its own */
    if (ib_q8_linear_ex (x, ldx, rows, w, b, y, ldy, accumulate, gelu && !quick, n_threads,
            FALSE))
      return;
    if (gelu && ldy == out)
      activation (y, rows * out, quick, n_threads);
    else if (gelu)
      for (gsize r = 0; r < rows; r++)
        activation (y + r * ldy, out, quick, n_threads);
    return;
  }
  wf = ib_weight_f32 (w, scratch, n_threads);
#ifdef IB_HAVE_AVX512_OPS
  /* the product with the bias, residual and GELU in its tiles, from the weights packed at
   * load (F16 and widened I8 weights: packed panel by panel on the way) */
  if (own_product () && !(gelu && quick) && ib_linear_avx512_suits (rows, out, in)) {
    ib_linear_avx512 (x, ldx, rows, wf,
        w->type == IB_GGUF_TENSOR_F32 ? (const float *) w->packed : NULL, out, in, b, y, ldy,
        accumulate, gelu, n_threads);
    return;
  }
#endif

  /* OpenBLAS: without accumulation y starts from the bias and the product adds to it; with
   * it, the bias is added after the product. Either way by the thread that computed that part
   * of y. */
  if (b && !accumulate)
    ep.init_rows = b;
  else if (b) {
    ep.after = add_bias_block;
    ep.after_data = (gpointer) b;
  }
  if (gelu) {
    g_return_if_fail (ep.after == NULL);
    ep.after = gelu_block;
    ep.after_data = GINT_TO_POINTER (quick);
  }
  ib_sgemm_ex (FALSE, TRUE, rows, out, in, 1.0f, x, ldx, wf, in, accumulate ? 1.0f : 0.0f, y,
      ldy, n_threads, &ep);
}

/* @bytes of 64-byte aligned memory, in 2 MB pages where the kernel offers them (transparent
 * huge pages on request): a huge model's packed copies are gigabytes, and faulting them in
 * 4 KB pages cost seconds of loading on the VM this was measured on. Not rounded up to whole
 * 2 MB pages: the partial one at the end stays in small pages (rounding up cost huge vision's
 * q8 file 155 MB of resident memory). */
static gpointer
alloc_packed (gsize bytes)
{
  gsize huge = (gsize) 2 << 20;
  gpointer p = g_aligned_alloc (1, bytes, bytes >= huge ? huge : 64);
#ifdef MADV_HUGEPAGE
  if (bytes >= huge)
    madvise (p, bytes / huge * huge, MADV_HUGEPAGE);
#endif
  return p;
}

gpointer
ib_weight_pack (IbWeight *w)
{
  gpointer p = NULL;

  if (!w->data)
    return NULL;
#ifdef IB_HAVE_AVX512_OPS
  if (w->type == IB_GGUF_TENSOR_F32 && own_product ()
      && ib_linear_avx512_weight_suits (w->rows, w->cols)) {
    p = alloc_packed (ib_linear_avx512_packed_floats (w->rows, w->cols) * sizeof (float));
    ib_linear_avx512_pack (w->data, w->rows, w->cols, p);
  }
#endif
  if (w->type == IB_GGUF_TENSOR_I8 && w->q8 && ib_q8_have_vnni ()
      && ib_q8_packed_size (w->rows, w->cols) > 0) {
    p = alloc_packed (ib_q8_packed_size (w->rows, w->cols));
    ib_q8_pack_weight (w, p);
  }
  if (p)
    w->packed = p;
  return p;
}

void
ib_weight_row_f32 (const IbWeight *w, gsize row, float *dst)
{
  if (w->type == IB_GGUF_TENSOR_F32)
    memcpy (dst, (const float *) w->data + row * w->cols, w->cols * sizeof (float));
  else if (w->type == IB_GGUF_TENSOR_F16)
    ib_f16_to_f32 ((const guint16 *) w->data + row * w->cols, dst, w->cols);
  else
    ib_q8_widen_rows (w, row, 1, dst);
}

void
ib_linear (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b, float *y,
    gsize ldy, gboolean accumulate, float *scratch, int n_threads)
{
  linear (x, ldx, rows, w, b, y, ldy, accumulate, FALSE, FALSE, scratch, n_threads);
}

void
ib_linear_gelu (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean quick, float *scratch, int n_threads)
{
  linear (x, ldx, rows, w, b, y, ldy, FALSE, TRUE, quick, scratch, n_threads);
}
