/* The BLAS backend: ib_sgemm() against a double-precision reference for every transpose
 * combination and awkward shapes, concurrent callers, and the kernel choice reported by
 * imagebind_blas_info() (including the cases where OpenBLAS was already loaded, the user chose
 * the kernels, or no usable library exists). */

#include <dlfcn.h>
#include <math.h>
#include <string.h>

#include "blas.h"
#include "imagebind.h"

/* Random matrices with values in [-1, 1). */
static float *
random_matrix (GRand *rand, gsize n)
{
  float *m = g_new (float, n);
  gsize i;

  for (i = 0; i < n; i++)
    m[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  return m;
}

typedef struct {
  gboolean trans_a, trans_b;
  gsize m, n, k, lda, ldb, ldc;
  float alpha, beta;
} GemmCase;

/* Stored rows x cols of op(A) and op(B) in row-major order. */
static gsize a_rows (const GemmCase *g) { return g->trans_a ? g->k : g->m; }
static gsize b_rows (const GemmCase *g) { return g->trans_b ? g->n : g->k; }

/* Checks ib_sgemm(g) against the reference computed in double. The bound is the classic one for
 * a float dot product, (k + 2) u (|alpha| sum |a b| + |beta c|) with u = 2^-24, so it holds for
 * any order of summation, while a wrong or missing term (about sum |a b| / k) still exceeds it.
 * Returns the largest error as a fraction of that bound (> 1 is a failure). */
static double
check_case (const GemmCase *g, GRand *rand, int n_threads)
{
  float *a = random_matrix (rand, MAX (1, a_rows (g) * g->lda));
  float *b = random_matrix (rand, MAX (1, b_rows (g) * g->ldb));
  float *c = random_matrix (rand, g->m * g->ldc);
  float *c0 = g_memdup2 (c, g->m * g->ldc * sizeof (float));
  double worst = 0.0;
  gsize i, j, p;

  ib_sgemm (g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb,
      g->beta, c, g->ldc, n_threads);

  for (i = 0; i < g->m; i++) {
    for (j = 0; j < g->ldc; j++) {
      double sum = 0.0, magnitude = 0.0, ref, bound;
      if (j >= g->n) {
        /* Padding between rows of C must not be touched. */
        g_assert_cmpfloat (c[i * g->ldc + j], ==, c0[i * g->ldc + j]);
        continue;
      }
      for (p = 0; p < g->k; p++) {
        double x = g->trans_a ? a[p * g->lda + i] : a[i * g->lda + p];
        double y = g->trans_b ? b[j * g->ldb + p] : b[p * g->ldb + j];
        sum += x * y;
        magnitude += fabs (x * y);
      }
      ref = g->alpha * sum + (g->beta == 0.0f ? 0.0 : g->beta * (double) c0[i * g->ldc + j]);
      bound = (g->k + 2) * 0x1p-24 * (fabs (g->alpha) * magnitude
          + fabs (g->beta * c0[i * g->ldc + j])) + 1e-30;
      g_assert_true (isfinite (c[i * g->ldc + j]));
      worst = MAX (worst, fabs (c[i * g->ldc + j] - ref) / bound);
    }
  }
  g_free (a);
  g_free (b);
  g_free (c);
  g_free (c0);
  return worst;
}

static void
assert_case_ok (const GemmCase *g, GRand *rand, int n_threads)
{
  double worst = check_case (g, rand, n_threads);

  if (worst > 1.0)
    g_error ("sgemm ta=%d tb=%d m=%zu n=%zu k=%zu lda=%zu ldb=%zu ldc=%zu: error %.3g x bound",
        g->trans_a, g->trans_b, g->m, g->n, g->k, g->lda, g->ldb, g->ldc, worst);
}

static void
test_transposes_and_shapes (void)
{
  /* m, n, k; includes the degenerate 1s, odd sizes and sizes past the kernels' block edges. */
  static const gsize shapes[][3] = {
    { 1, 1, 1 }, { 1, 7, 5 }, { 7, 1, 5 }, { 5, 7, 1 }, { 3, 5, 7 }, { 17, 33, 65 },
    { 1, 129, 257 }, { 129, 1, 257 }, { 31, 37, 300 }, { 77, 50, 64 },
    /* Big enough to be split among threads: by columns, by rows, with ragged last slabs. */
    { 45, 300, 33 }, { 300, 45, 33 }, { 40, 33, 250 }, { 33, 47, 251 },
  };
  GRand *rand = g_rand_new_with_seed (42);
  guint s, t;

  g_assert_true (ib_blas_init (NULL));
  for (s = 0; s < G_N_ELEMENTS (shapes); s++) {
    for (t = 0; t < 4; t++) {
      GemmCase g = { .trans_a = t & 1, .trans_b = (t >> 1) & 1,
        .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2], .alpha = 1.0f, .beta = 0.0f };
      /* Tight leading dimensions, then padded ones (lda > k etc.) with alpha and beta. */
      g.lda = g.trans_a ? g.m : g.k;
      g.ldb = g.trans_b ? g.k : g.n;
      g.ldc = g.n;
      assert_case_ok (&g, rand, 0);
      g.lda += 3;
      g.ldb += 5;
      g.ldc += 2;
      g.alpha = -0.75f;
      g.beta = 0.5f;
      assert_case_ok (&g, rand, 1);
    }
  }
  g_rand_free (rand);
}

/* beta = 0 must overwrite C, even when it holds NaN (callers hand over uninitialised scratch). */
static void
test_beta_zero_ignores_c (void)
{
  float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6] = { 1, 0, 0, 1, 1, 1 };
  float c[4] = { NAN, NAN, INFINITY, NAN };
  /* (2x3) x (3x2) */
  ib_sgemm (FALSE, FALSE, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, 0);
  g_assert_cmpfloat (c[0], ==, 4.0f);
  g_assert_cmpfloat (c[1], ==, 5.0f);
  g_assert_cmpfloat (c[2], ==, 10.0f);
  g_assert_cmpfloat (c[3], ==, 11.0f);
}

typedef struct {
  int n_threads;
  guint seed;
  guint failures;
} ConcurrentJob;

static gpointer
concurrent_worker (gpointer data)
{
  ConcurrentJob *job = data;
  GRand *rand = g_rand_new_with_seed (job->seed);
  /* Big enough (m n k > 2^18) that OpenBLAS uses its threaded driver. */
  GemmCase g = { .trans_a = FALSE, .trans_b = TRUE, .m = 97, .n = 160, .k = 130,
    .lda = 130, .ldb = 130, .ldc = 160, .alpha = 1.0f, .beta = 0.0f };
  int i;

  for (i = 0; i < 12; i++) {
    g.trans_a = i & 1;
    g.lda = g.trans_a ? g.m : g.k;
    if (check_case (&g, rand, job->n_threads) > 1.0)
      job->failures++;
  }
  g_rand_free (rand);
  return NULL;
}

/* Two threads at once, one asking for all cores and one for a single thread, so that the
 * global thread count changes under the other's feet: every result must still be right. */
static void
test_concurrent_callers (void)
{
  ConcurrentJob jobs[2] = { { .n_threads = 0, .seed = 1 }, { .n_threads = 1, .seed = 2 } };
  GThread *threads[2];
  int round, i;

  g_assert_true (ib_blas_init (NULL));
  for (round = 0; round < 3; round++) {
    for (i = 0; i < 2; i++)
      threads[i] = g_thread_new ("sgemm", concurrent_worker, &jobs[i]);
    for (i = 0; i < 2; i++)
      g_thread_join (threads[i]);
  }
  g_assert_cmpuint (jobs[0].failures, ==, 0);
  g_assert_cmpuint (jobs[1].failures, ==, 0);
}

/* The same products with OpenBLAS's own threads instead of OpenMP slabs. */
static void
test_openblas_threads (void)
{
  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_setenv ("IMAGEBIND_BLAS_THREADS", "openblas", TRUE);
  g_assert_nonnull (strstr (imagebind_blas_info (), "threads: OpenBLAS's own"));
  test_transposes_and_shapes ();
  test_concurrent_callers ();
}

static gboolean
cpu_has_avx512 (void)
{
#if defined(__x86_64__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
      && __builtin_cpu_supports ("avx512dq") && __builtin_cpu_supports ("avx512vl");
#else
  return FALSE;
#endif
}

static gboolean
cpu_has_avx2 (void)
{
#if defined(__x86_64__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
#else
  return FALSE;
#endif
}

/* In a fresh process with nothing set: the kernels fit the CPU and the environment is left as
 * it was. */
static void
test_info_default (void)
{
  const char *info;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_unsetenv ("OPENBLAS_CORETYPE");
  g_unsetenv ("IMAGEBIND_BLAS_LIBRARY");
  info = imagebind_blas_info ();
  g_test_message ("%s", info);
  g_assert_nonnull (info);
  g_assert_nonnull (strstr (info, "OpenBLAS"));
  g_assert_nonnull (strstr (info, ", core "));
  g_assert_null (strstr (info, "core unknown"));
  g_assert_nonnull (strstr (info, "; threads: "));
  g_assert_null (g_getenv ("OPENBLAS_CORETYPE"));
  if (cpu_has_avx512 ()) {
    g_assert_nonnull (strstr (info, "core SkylakeX (OPENBLAS_CORETYPE=SKYLAKEX chosen"));
  } else if (cpu_has_avx2 ()) {
    g_assert_nonnull (strstr (info, "core Haswell (OPENBLAS_CORETYPE=HASWELL chosen"));
  }
  g_assert_true (ib_blas_init (NULL));
  g_assert_true (imagebind_blas_info () == info);
}

/* The user's OPENBLAS_CORETYPE wins and stays set. */
static void
test_info_user_choice (void)
{
  if (!g_test_subprocess ()) {
    if (!cpu_has_avx2 ()) {
      g_test_skip ("CPU without AVX2: cannot ask for Haswell kernels");
      return;
    }
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_setenv ("OPENBLAS_CORETYPE", "Haswell", TRUE);
  g_test_message ("%s", imagebind_blas_info ());
  g_assert_nonnull (strstr (imagebind_blas_info (), "core Haswell (OPENBLAS_CORETYPE=Haswell set by the user)"));
  g_assert_cmpstr (g_getenv ("OPENBLAS_CORETYPE"), ==, "Haswell");
}

/* OpenBLAS opened earlier by someone else (as numpy does): used as it is, and said so. */
static void
test_info_already_loaded (void)
{
  void *handle;
  GRand *rand;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_unsetenv ("OPENBLAS_CORETYPE");
  handle = dlopen ("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    g_test_skip ("libopenblas.so.0 not installed");
    return;
  }
  g_test_message ("%s", imagebind_blas_info ());
  g_assert_nonnull (strstr (imagebind_blas_info (), "already initialised"));
  g_assert_nonnull (strstr (imagebind_blas_info (), "from libopenblas.so.0"));
  g_assert_true (ib_blas_init (NULL));
  rand = g_rand_new_with_seed (3);
  assert_case_ok (&(GemmCase) { FALSE, TRUE, 9, 11, 13, 13, 13, 11, 1.0f, 0.0f }, rand, 0);
  g_rand_free (rand);
}

/* libimagebind must not pull OpenBLAS in when it loads (no DT_NEEDED): its constructor would
 * choose the kernels before ib_blas_init() could set OPENBLAS_CORETYPE. */
static void
test_not_linked (void)
{
  void *handle;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_unsetenv ("IMAGEBIND_BLAS_LIBRARY");
  g_assert_null (dlopen ("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD));
  g_assert_true (ib_blas_init (NULL));
  if (!strstr (imagebind_blas_info (), "from libopenblas.so.0")) {
    g_test_skip ("OpenBLAS came from another file");
    return;
  }
  handle = dlopen ("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  g_assert_nonnull (handle);
  dlclose (handle);
}

/* A library without cblas_sgemm: a clear error, and ib_sgemm still computes right (slowly). */
static void
test_missing_sgemm (void)
{
  GError *error = NULL;
  float a[2] = { 1, 2 }, b[2] = { 3, 4 }, c[1] = { NAN };

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_setenv ("IMAGEBIND_BLAS_LIBRARY", "libm.so.6", TRUE);
  g_assert_false (ib_blas_init (&error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_assert_nonnull (strstr (error->message, "cblas_sgemm"));
  g_clear_error (&error);
  g_assert_true (g_str_has_prefix (imagebind_blas_info (), "no BLAS: "));

  g_test_expect_message ("imagebind", G_LOG_LEVEL_WARNING, "*reference loop*");
  ib_sgemm (FALSE, FALSE, 1, 1, 2, 1.0f, a, 2, b, 1, 0.0f, c, 1, 0);
  g_test_assert_expected_messages ();
  g_assert_cmpfloat (c[0], ==, 11.0f);
}

static void
test_no_library (void)
{
  GError *error = NULL;

  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  g_setenv ("IMAGEBIND_BLAS_LIBRARY", "/nonexistent/libopenblas.so.0", TRUE);
  g_assert_false (ib_blas_init (&error));
  g_assert_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE);
  g_assert_nonnull (strstr (error->message, "No BLAS library could be opened"));
  g_assert_nonnull (strstr (error->message, "/nonexistent/libopenblas.so.0"));
  g_error_free (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/blas/sgemm/transposes-and-shapes", test_transposes_and_shapes);
  g_test_add_func ("/blas/sgemm/beta-zero-ignores-c", test_beta_zero_ignores_c);
  g_test_add_func ("/blas/sgemm/concurrent-callers", test_concurrent_callers);
  g_test_add_func ("/blas/sgemm/openblas-threads", test_openblas_threads);
  g_test_add_func ("/blas/info/default", test_info_default);
  g_test_add_func ("/blas/info/user-choice", test_info_user_choice);
  g_test_add_func ("/blas/info/already-loaded", test_info_already_loaded);
  g_test_add_func ("/blas/init/not-linked", test_not_linked);
  g_test_add_func ("/blas/init/missing-sgemm", test_missing_sgemm);
  g_test_add_func ("/blas/init/no-library", test_no_library);
  return g_test_run ();
}
