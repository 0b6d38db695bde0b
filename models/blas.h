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

G_END_DECLS

#endif
