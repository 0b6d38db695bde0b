/* The one interface through which every matrix product of the runtime goes (internal).
 * Today's backend is OpenBLAS, loaded at run time so that its kernels can be chosen for this
 * CPU before the library initialises (Debian's OpenBLAS 0.3.21 does not recognise recent
 * AVX-512 CPUs and would fall back to its generic Prescott kernels). Another backend (oneDNN)
 * can be added here without touching the encoders. */
#ifndef IB_BLAS_H
#define IB_BLAS_H

#include <glib.h>

G_BEGIN_DECLS

/* Loads and initialises the backend once per process (thread-safe); FALSE and @error when no
 * usable BLAS library is found. Called by imagebind_model_load(); idempotent. */
gboolean ib_blas_init (GError **error);

/* Row-major single-precision GEMM: C = alpha * op(A) op(B) + beta * C, where op(X) = X or X^T.
 * A is M x K (or K x M when trans_a), B is K x N (or N x K when trans_b), C is M x N.
 * @n_threads: threads this call may use (0 = all cores). */
void ib_sgemm (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    int n_threads);

/* Work on C done by the thread that computes a block of it, right before and after that
 * block's product, instead of in passes of their own over all of C (which would cost a
 * thread hand-over each and a trip through memory). The results are exactly those of the
 * separate passes: the same operations on the same values. */
typedef struct {
  /* Before: each row of the block starts as these n values (column j: init_rows[j]) and the
   * product is added to it, C = alpha op(A) op(B) + init_rows, as with beta = 1 on C filled
   * with the row (the call's beta must be 0). NULL: nothing. */
  const float *init_rows;
  /* After: on each finished block of @rows x @cols at @c (row stride @ldc), whose first column
   * is column @col0 of C. NULL: nothing. */
  void (*after) (float *c, gsize ldc, gsize rows, gsize cols, gsize col0, gpointer data);
  gpointer after_data;
} IbGemmEpilogue;

/* ib_sgemm() with @ep (NULL: none). */
void ib_sgemm_ex (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    int n_threads, const IbGemmEpilogue *ep);

G_END_DECLS

#endif
