/* Numeric building blocks of the encoders (internal): LayerNorm, exact GELU, softmax, linear
 * layers through ib_sgemm(), F16 widening. All float32 storage; reductions in double where the
 * conformance tolerance (1e-5 of the largest value) needs it. */
#ifndef IB_OPS_H
#define IB_OPS_H

#include <glib.h>
#include "model-private.h"

G_BEGIN_DECLS

/* IEEE half to float, exact (subnormals, inf, NaN included). */
void ib_f16_to_f32 (const guint16 *src, float *dst, gsize n);
guint16 ib_f32_to_f16 (float f);

/* The weight as float32: its data when F32, else widened into @scratch (>= rows*cols floats);
 * I8 as its int8 values times their row's scale. */
const float *ib_weight_f32 (const IbWeight *w, float *scratch, int n_threads);
/* Row @row of the weight (w->cols values) as float32 into @dst: the text token embedding. */
void ib_weight_row_f32 (const IbWeight *w, gsize row, float *dst);

/* A weight of a linear layer gets the packed copy its product reads, made once here instead
 * of in every product: F32 on CPUs with AVX-512 (gemm-avx512.c), I8 with AVX-512 VNNI (q8.c).
 * Sets w->packed and returns the copy (free it with g_aligned_free() after the last
 * product); NULL, and nothing changed, for other weights and CPUs. */
gpointer ib_weight_pack (IbWeight *w);

/* y[r] = LN(x[r]) over @cols, for @rows rows; x == y allowed. Biased variance, @eps inside sqrt. */
void ib_layer_norm (const float *x, float *y, gsize rows, gsize cols, const float *w,
    const float *b, float eps, int n_threads);

/* In place: 0.5 x (1 + erf(x / sqrt 2)). */
void ib_gelu (float *x, gsize n, int n_threads);
/* In place: x sigmoid(1.702 x) (QuickGELU of OpenAI-trained CLIP models). */
void ib_quick_gelu (float *x, gsize n, int n_threads);

/* In place softmax of each row (@rows x @cols, row stride @ld). @causal: row i only attends to
 * columns 0..i (the others become 0), the text encoder's mask. */
void ib_softmax_rows (float *s, gsize rows, gsize cols, gsize ld, gboolean causal);

/* One attention head: out = softmax (alpha q k^T) v, for @L query rows of @hd values (q, row
 * stride @ld), @Lk keys and values (k, v: the same stride), output rows of stride @ldo; with
 * @causal, row i sees keys 0..i. On CPUs with AVX-512 one fused pass over blocks of query rows
 * (attention-avx512.c), else two ib_sgemm() products and ib_softmax_rows() between them. One
 * thread; @scratch: ib_attention_scratch() floats of its own. @next_q: the q of the head this
 * thread computes next (its k and v at the same offsets from it as @k and @v from @q), which
 * the fused pass loads towards the core's L2 while it runs; NULL: none. @part_seconds (NULL, or
 * indexed by IbAttnPart): where the time went, added to. */
gsize ib_attention_scratch (gsize L, gsize Lk, gsize hd);
void ib_attention_head (const float *q, const float *k, const float *v, gsize ld, gsize L,
    gsize Lk, gsize hd, float alpha, gboolean causal, float *out, gsize ldo, float *scratch,
    const float *next_q, double *part_seconds);

/* y (rows x out, row stride ldy) = x (rows x in, row stride ldx) W^T (+ b) (+ y when
 * @accumulate). W is (out, in). F16 weights are widened into @scratch; I8 weights go to the
 * int8 kernels of q8.c on CPUs with AVX-512 VNNI, else are widened like F16. */
void ib_linear (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean accumulate, float *scratch, int n_threads);

/* y = GELU (x W^T + b) (QuickGELU when @quick), without accumulation; the same values as
 * ib_linear() then ib_gelu() / ib_quick_gelu(), each thread applying the activation to the
 * part of y it has just computed. */
void ib_linear_gelu (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean quick, float *scratch, int n_threads);

G_END_DECLS

#endif
