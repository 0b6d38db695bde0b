/* AVX-512 kernels of the element-wise operations (internal; ops-avx512.c), used by ops.c when
 * the CPU has AVX-512F and DQ (ib_cpu_has_avx512()). IB_HAVE_AVX512_OPS is defined by the build
 * on x86-64 when the compiler has AVX-512 intrinsics; without it ops.c keeps its scalar loops. */
#ifndef IB_OPS_AVX512_H
#define IB_OPS_AVX512_H

#include <glib.h>

G_BEGIN_DECLS

#ifdef IB_HAVE_AVX512_OPS
/* TRUE when the CPU and OS support AVX-512F and DQ, and IMAGEBIND_NO_AVX512 is not set (the
 * variable exists to compare the two paths on one machine). */
gboolean ib_cpu_has_avx512 (void);

/* ib_layer_norm() of @rows rows on the calling thread: the scalar code's double sums in
 * another order (the same bits but within ~1e-16 of a rounding boundary). */
void ib_layer_norm_avx512 (const float *x, float *y, gsize rows, gsize cols, const float *w,
    const float *b, float eps);

/* c[r][j] += b[j] for @rows rows of @cols (row stride @ldc). */
void ib_add_row_avx512 (float *c, gsize ldc, gsize rows, gsize cols, const float *b);

/* The linear layers' product on AVX-512 (gemm-avx512.c): y (rows x n, row stride @ldy) =
 * x (rows x K, row stride @ldx) W^T, W F32 (n x K, rows of K); with @accumulate y + that; then
 * + @bias (NULL: none); then GELU when @gelu. Threads as ib_sgemm(). Used when
 * ib_linear_avx512_suits() (enough rows to fill its tiles). @packed: W as
 * ib_linear_avx512_pack() wrote it (ib_linear_avx512_packed_floats() floats, 64-byte
 * aligned), or NULL to pack W on the fly. */
gboolean ib_linear_avx512_suits (gsize rows, gsize n, gsize K);
/* The weight's part of ib_linear_avx512_suits(): whether packing it at load is of use. */
gboolean ib_linear_avx512_weight_suits (gsize n, gsize K);
gsize ib_linear_avx512_packed_floats (gsize n, gsize K);
void ib_linear_avx512_pack (const float *w, gsize n, gsize K, float *packed);
void ib_linear_avx512 (const float *x, gsize ldx, gsize rows, const float *w, const float *packed,
    gsize n, gsize K, const float *bias, float *y, gsize ldy, gboolean accumulate, gboolean gelu,
    int n_threads);

/* ib_gelu() on @n floats in place. */
void ib_gelu_avx512 (float *x, gsize n);

/* One attention head, fused (attention-avx512.c): out = softmax (alpha q k^T) v for @L query
 * rows of @hd values (q, row stride @ld), @Lk keys and values (k, v: stride @ld), output rows
 * of stride @ldo; with @causal, row i sees keys 0..i. @scratch: ib_attention_head_scratch()
 * floats, this thread's own. @next_q: as for ib_attention_head() (ops.h). */
gsize ib_attention_head_scratch (gsize Lk, gsize hd);
void ib_attention_head_avx512 (const float *q, const float *k, const float *v, gsize ld, gsize L,
    gsize Lk, gsize hd, float alpha, gboolean causal, float *out, gsize ldo, float *scratch,
    const float *next_q);
#endif

G_END_DECLS

#endif
