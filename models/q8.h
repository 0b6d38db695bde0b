/* int8 linear layers for q8 model files (internal; models/GGUF.md, models/PERFORMANCE.md).
 *
 * A q8 weight W (out x in) is stored as int8 values q with one F32 scale s per output row:
 * W[o][k] = q[o][k] * s[o] (symmetric, per output channel). At run time each row (token) of
 * the activations x is quantised asymmetrically to uint8: x[k] ~ sx * (u[k] - zx), u in
 * 0..255, zx in 0..255 (the row's range always includes 0). Then
 *
 *   (x W^T)[o] ~ sx * s[o] * (sum_k u[k] q[o][k] - zx * sum_k q[o][k])
 *
 * where the integer sum is what AVX-512 VNNI's vpdpbusd computes (u8 x s8, 4 products per
 * 32-bit lane) and sum_k q[o][k] is computed once per weight. Every integer is exact: |sum| <=
 * 255 * 128 * in < 2^31 for in <= 65,536. The kernels need AVX-512 VNNI at run time; without it
 * a q8 weight is widened to F32 (q * s) and multiplied with ib_sgemm(), as F16 weights are. */
#ifndef IB_Q8_H
#define IB_Q8_H

#include <glib.h>
#include "model-private.h"

G_BEGIN_DECLS

/* Longest row (in features) the int32 sums are exact for, even with -128 in a (hostile) file:
 * 255 * 128 * 65536 < 2^31. */
#define IB_Q8_MAX_COLS 65536

/* Whether the int8 kernels are used: the CPU (and OS) support AVX-512 F/DQ/BW/VL/VNNI and
 * IMAGEBIND_Q8=f32 is not set in the environment; cached after the first call. */
gboolean ib_q8_have_vnni (void);
/* Tests: force the F32 widening path (FALSE) or restore the CPU's choice (TRUE). */
void ib_q8_set_vnni_enabled (gboolean enabled);

/* Symmetric per-row quantisation of a (rows x cols) F32 matrix, as convert.py --dtype q8 does:
 * s = fl(max|w| / 127) (in double, then rounded to float), q = round-half-even(w / s)
 * (in double), in -127..127; an all-zero row gets s = 0, q = 0. */
void ib_q8_quantize_weight (const float *w, gsize rows, gsize cols, gint8 *q, float *scale);

/* W[row0 .. row0 + n_rows) as F32 into @dst (n_rows x cols). */
void ib_q8_widen_rows (const IbWeight *w, gsize row0, gsize n_rows, float *dst);

/* Asymmetric uint8 quantisation of one activation row (see above); writes @cols values. */
void ib_q8_quantize_row (const float *x, gsize cols, guint8 *u, float *scale, gint32 *zero);

/* acc (rows x out, row stride @ldacc) = u (rows x K, stride @ldu) q^T, q (out x K, dense):
 * the plain C reference (any CPU), and the dispatching version (the VNNI kernel when
 * ib_q8_have_vnni(), else the reference). Both are exact, so they agree to the bit. */
void ib_q8_gemm_s32_ref (const guint8 *u, gsize ldu, gsize rows, const gint8 *q, gsize out,
    gsize K, gint32 *acc, gsize ldacc);
void ib_q8_gemm_s32 (const guint8 *u, gsize ldu, gsize rows, const gint8 *q, gsize out,
    gsize K, gint32 *acc, gsize ldacc, int n_threads);

/* y (rows x out, stride ldy) = x W^T (+ b) (+ y when @accumulate) for an I8 weight, with the
 * int8 kernels: requires ib_q8_have_vnni(). @ref: compute the integer product with the
 * reference instead (tests: the result must be bit-identical). */
void ib_q8_linear (const float *x, gsize ldx, gsize rows, const IbWeight *w, const float *b,
    float *y, gsize ldy, gboolean accumulate, int n_threads, gboolean ref);
/* The same, and with @gelu the kernel for 16 rows or more applies GELU (ib_gelu()'s bits) to
 * each output while it is in a register: TRUE when it did, and the caller applies it
 * otherwise. */
gboolean ib_q8_linear_ex (const float *x, gsize ldx, gsize rows, const IbWeight *w,
    const float *b, float *y, gsize ldy, gboolean accumulate, gboolean gelu, int n_threads,
    gboolean ref);

/* The packed kernel's layout of an I8 weight, made once at load instead of in every product
 * (ops.c, ib_weight_pack()): its size in bytes (0 where the kernel does not exist), and the
 * packing into @dst, which also computes the row sums, so that the int8 rows are not read
 * again by the kernels. */
gsize ib_q8_packed_size (gsize rows, gsize cols);
void ib_q8_pack_weight (const IbWeight *w, gint8 *dst);

G_END_DECLS

#endif
