/* The BLAS backend: OpenBLAS, opened at run time.
 *
 * Why at run time: a DYNAMIC_ARCH OpenBLAS picks its kernels in its library constructor, from
 * $OPENBLAS_CORETYPE or else from its own CPU table. Debian's 0.3.21 does not know recent
 * AVX-512 CPUs (Ice Lake and later servers) and falls back to its generic Prescott kernels,
 * about 5x slower than its SkylakeX ones on the same CPU. Linking OpenBLAS would run that
 * constructor before any code of ours; opening it ourselves lets us set the variable first, so
 * the right kernels are used even inside a GStreamer plugin loaded by a process that set
 * nothing.
 *
 * Threads, by default: ib_sgemm() cuts C into one slab of columns (or rows) per thread and runs
 * a single-threaded OpenBLAS product on each slab in imagebind's own worker pool (parallel.h),
 * whose idle threads sleep. With OpenBLAS's own pthreads next to another pool (OpenMP), each
 * pool's idle threads busy-wait (OpenBLAS calls sched_yield for ~0.1 s, GOMP spins ~15 ms) on
 * the cores the other needs. Measured with tools/imagebind-bench on 2 cores (imagebind_huge
 * vision, GFLOP/s, run at SCHED_FIFO to keep other load out): OpenBLAS threads + OpenMP ops
 * 108; this pool + OpenMP ops 119; this pool + OpenMP ops with OMP_WAIT_POLICY=passive 153
 * (86% of plain sgemm on the same shapes), which is what the encoders get once their ops run
 * in this pool too. OpenBLAS's global thread count is then kept at 1 (also for anyone else
 * using the same OpenBLAS in this process, e.g. numpy).
 *
 * IMAGEBIND_BLAS_THREADS=openblas uses OpenBLAS's own threads instead. Their count is global
 * to the process: ib_sgemm() sets it only when it differs from what the call asks for; two
 * threads asking for different counts at the same time race for it, and a call may run with
 * the other caller's count (a matter of speed only). In the pool, concurrent callers do not
 * wait for each other: while one caller's product uses the pool, another's runs on its own
 * thread.
 *
 * Correctness never depends on the thread counts: slabs are disjoint, OpenBLAS serialises its
 * own multi-threaded level-3 driver, and its single-threaded calls from several threads at once
 * are independent (tests/runtime/test-blas.c checks concurrent callers in both modes). */

#include "blas.h"
#include "imagebind.h"
#include "log.h"
#include "parallel.h"

#include <dlfcn.h>
#include <gmodule.h>
#include <limits.h>
#include <string.h>

/* The CBLAS enum values, fixed by the CBLAS standard (we have no cblas.h at build time). */
enum { IB_CBLAS_ROW_MAJOR = 101, IB_CBLAS_NO_TRANS = 111, IB_CBLAS_TRANS = 112 };

/* Products smaller than this many multiply-adds run on the caller's thread alone (OpenBLAS
 * uses the same threshold, 4 x 65536, for its own threading). */
#define IB_SPLIT_MIN_MACS (4.0 * 65536)
/* Slabs of a split product are multiples of this many columns (rows). */
#define IB_SPLIT_ALIGN 16

typedef void (*CblasSgemmFunc) (int order, int trans_a, int trans_b, int m, int n, int k,
    float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*SetNumThreadsFunc) (int n);
typedef int (*GetNumThreadsFunc) (void);
typedef char *(*GetStringFunc) (void);

typedef struct {
  gboolean ok;
  GError *error;               /* when !ok */
  char *info;                  /* imagebind_blas_info() */
  GModule *module;             /* never closed: the kernels stay in use until exit */
  CblasSgemmFunc sgemm;
  SetNumThreadsFunc set_num_threads;   /* NULL when the library is not OpenBLAS */
  GetNumThreadsFunc get_num_threads;
  int n_cores;
  gboolean split_in_pool;      /* threads are ours (parallel.h), OpenBLAS runs single-threaded */
} IbBlas;

static IbBlas blas;
static GMutex thread_count_lock;

/* Library names tried in order. Debian installs libopenblas.so.0 with the runtime package and
 * libopenblas.so with -dev; the alternatives path is the last resort. */
static const char *const default_candidates[] = {
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
};

/* The OPENBLAS_CORETYPE worth forcing on this CPU, or NULL to let OpenBLAS decide.
 * __builtin_cpu_supports() also checks that the OS saves the AVX/AVX-512 register state. */
static const char *
choose_coretype (const char **why)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init ();
  if (__builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
      && __builtin_cpu_supports ("avx512dq") && __builtin_cpu_supports ("avx512vl")) {
    *why = "chosen for this AVX-512 CPU";
    return "SKYLAKEX";
  }
  if (__builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")) {
    *why = "chosen for this AVX2 CPU";
    return "HASWELL";
  }
#endif
  *why = "CPU has neither AVX-512 nor AVX2: OpenBLAS's own choice";
  return NULL;
}

/* An OpenBLAS already in the process (linked by the program, or opened by numpy) must be used
 * as it is: its constructor has run, and a second copy would start a second thread pool. */
static GModule *
open_already_loaded (const char *const *candidates, guint n_candidates, const char **name)
{
  guint i;

  /* In the global scope (the program or one of its DT_NEEDED libraries). */
  if (dlsym (RTLD_DEFAULT, "openblas_get_corename") && dlsym (RTLD_DEFAULT, "cblas_sgemm")) {
    *name = "the process's global scope";
    return g_module_open (NULL, 0);
  }
#ifdef RTLD_NOLOAD
  /* Opened privately (RTLD_LOCAL) by someone else: NOLOAD finds it without loading it. */
  for (i = 0; i < n_candidates; i++) {
    void *handle = dlopen (candidates[i], RTLD_LAZY | RTLD_NOLOAD);
    if (handle) {
      GModule *module = g_module_open (candidates[i], G_MODULE_BIND_LOCAL);
      dlclose (handle);
      if (module) {
        *name = candidates[i];
        return module;
      }
    }
  }
#endif
  return NULL;
}

static gpointer
resolve (GModule *module, const char *symbol)
{
  gpointer address = NULL;

  return g_module_symbol (module, symbol, &address) ? address : NULL;
}

static gpointer
blas_init_once (gpointer unused)
{
  const char *candidates[G_N_ELEMENTS (default_candidates) + 1];
  guint n_candidates = 0, i;
  const char *override = g_getenv ("IMAGEBIND_BLAS_LIBRARY");
  const char *user_coretype = g_getenv ("OPENBLAS_CORETYPE");
  const char *name = NULL, *why = NULL, *forced = NULL;
  gboolean already_loaded = FALSE;
  GString *tried = g_string_new (NULL);
  GetStringFunc get_config, get_corename;
  char *reason = NULL, *config = NULL;

  blas.n_cores = MAX (1, (int) g_get_num_processors ());

  /* IMAGEBIND_BLAS_LIBRARY names another library to use instead (a path or a soname). */
  if (override && *override)
    candidates[n_candidates++] = override;
  else
    for (i = 0; i < G_N_ELEMENTS (default_candidates); i++)
      candidates[n_candidates++] = default_candidates[i];

  blas.module = open_already_loaded (candidates, n_candidates, &name);
  already_loaded = blas.module != NULL;

  if (!blas.module) {
    /* The constructor reads the variable while the library is opened; it is removed again
     * right after, so that child processes (and the user's view of the environment) are as
     * before. The window is short but setenv() is not thread-safe against a concurrent
     * getenv() elsewhere in the process: glibc keeps old environment arrays alive, so the
     * worst case is that other thread not seeing the variable. */
    if (!user_coretype)
      forced = choose_coretype (&why);
    if (forced)
      g_setenv ("OPENBLAS_CORETYPE", forced, TRUE);
    for (i = 0; i < n_candidates && !blas.module; i++) {
      blas.module = g_module_open (candidates[i], G_MODULE_BIND_LOCAL);
      if (blas.module)
        name = candidates[i];
      else
        g_string_append_printf (tried, "\n  %s: %s", candidates[i], g_module_error ());
    }
    if (forced)
      g_unsetenv ("OPENBLAS_CORETYPE");
  }

  if (!blas.module) {
    g_set_error (&blas.error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE,
        "No BLAS library could be opened (install OpenBLAS: Debian's libopenblas0); tried:%s",
        tried->str);
    goto done;
  }

  blas.sgemm = resolve (blas.module, "cblas_sgemm");
  if (!blas.sgemm) {
    g_set_error (&blas.error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_FILE,
        "The BLAS library %s has no cblas_sgemm: not a usable CBLAS", name);
    goto done;
  }
  blas.set_num_threads = resolve (blas.module, "openblas_set_num_threads");
  blas.get_num_threads = resolve (blas.module, "openblas_get_num_threads");
  if (!blas.set_num_threads || !blas.get_num_threads) {
    blas.set_num_threads = NULL;
    blas.get_num_threads = NULL;
  }
  get_config = resolve (blas.module, "openblas_get_config");
  get_corename = resolve (blas.module, "openblas_get_corename");

  if (!get_corename) {
    reason = g_strdup ("not OpenBLAS: kernels and threads as that library decides");
  } else if (already_loaded) {
    reason = g_strdup ("OpenBLAS was already initialised in this process: its own choice, "
        "OPENBLAS_CORETYPE not applied");
  } else if (user_coretype) {
    reason = g_strdup_printf ("OPENBLAS_CORETYPE=%s set by the user", user_coretype);
  } else if (forced && g_ascii_strcasecmp (get_corename (), forced) != 0) {
    reason = g_strdup_printf ("OPENBLAS_CORETYPE=%s %s, but this OpenBLAS has no such kernels",
        forced, why);
  } else if (forced) {
    reason = g_strdup_printf ("OPENBLAS_CORETYPE=%s %s", forced, why);
  } else {
    reason = g_strdup (why);
  }

  config = g_strstrip (g_strdup (get_config ? get_config () : "unknown BLAS"));
  blas.split_in_pool = blas.set_num_threads != NULL
      && g_strcmp0 (g_getenv ("IMAGEBIND_BLAS_THREADS"), "openblas") != 0;
  if (blas.split_in_pool)
    blas.set_num_threads (1);
  blas.info = g_strdup_printf ("%s, core %s (%s), from %s; threads: %s", config,
      get_corename ? get_corename () : "unknown", reason, name,
      blas.split_in_pool ? "imagebind's pool, slabs over single-threaded OpenBLAS"
      : blas.set_num_threads ? "OpenBLAS's own" : "the library's own");
  blas.ok = TRUE;
  /* Debug level through the library's log function (default: g_log, domain "imagebind"). */
  ib_log (G_LOG_LEVEL_DEBUG, "BLAS: %s", blas.info);

done:
  if (!blas.ok) {
    blas.info = g_strdup_printf ("no BLAS: %s", blas.error->message);
    ib_log (G_LOG_LEVEL_DEBUG, "%s", blas.info);
  }
  g_free (reason);
  g_free (config);
  g_string_free (tried, TRUE);
  return NULL;
}

static void
blas_ensure_init (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, blas_init_once, NULL);
}

gboolean
ib_blas_init (GError **error)
{
  blas_ensure_init ();
  if (!blas.ok) {
    if (error)
      *error = g_error_copy (blas.error);
    return FALSE;
  }
  return TRUE;
}

const char *
imagebind_blas_info (void)
{
  blas_ensure_init ();
  return blas.info;
}

/* Sets OpenBLAS's global thread count when it differs; the lock only keeps two setters from
 * interleaving (OpenBLAS may start new worker threads while setting). */
static void
use_threads (int n_threads)
{
  int want = n_threads;

  if (!blas.set_num_threads || blas.get_num_threads () == want)
    return;
  g_mutex_lock (&thread_count_lock);
  if (blas.get_num_threads () != want)
    blas.set_num_threads (want);
  g_mutex_unlock (&thread_count_lock);
}

/* Used only when ib_blas_init() failed and a caller went on anyway: slow but correct, so
 * that no caller ever computes with garbage. */
static void
sgemm_reference (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc)
{
  gsize i, j, p;

  for (i = 0; i < m; i++)
    for (j = 0; j < n; j++) {
      float sum = 0.0f;
      for (p = 0; p < k; p++)
        sum += (trans_a ? a[p * lda + i] : a[i * lda + p]) * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
    }
}

/* One product on one thread, with the epilogue's work on its block (C's columns from @col0). */
static void
sgemm_one (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    gsize col0, const IbGemmEpilogue *ep)
{
  if (ep && ep->init_rows) {
    for (gsize r = 0; r < m; r++)
      memcpy (c + r * ldc, ep->init_rows + col0, n * sizeof (float));
    beta = 1.0f;
  }
  if (blas.ok)
    blas.sgemm (IB_CBLAS_ROW_MAJOR, trans_a ? IB_CBLAS_TRANS : IB_CBLAS_NO_TRANS,
        trans_b ? IB_CBLAS_TRANS : IB_CBLAS_NO_TRANS, (int) m, (int) n, (int) k, alpha,
        a, (int) lda, b, (int) ldb, beta, c, (int) ldc);
  else
    sgemm_reference (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (ep && ep->after)
    ep->after (c, ldc, m, n, col0, ep->after_data);
}

/* One product cut into slabs of whole columns (or rows, when C is taller than wide), each
 * computed by a single-threaded OpenBLAS call. The slabs are disjoint, so the result is exactly
 * what each slab's product gives alone, whichever thread computes it. */
typedef struct {
  gboolean trans_a, trans_b, by_columns;
  gsize m, n, k, lda, ldb, ldc, chunk, extent;
  float alpha, beta;
  const float *a, *b;
  float *c;
  const IbGemmEpilogue *ep;
} Slabs;

static void
sgemm_slab (guint task, guint thread, gpointer user_data)
{
  const Slabs *p = user_data;
  gsize start = task * p->chunk, len = MIN (p->chunk, p->extent - start);

  if (p->by_columns)
    sgemm_one (p->trans_a, p->trans_b, p->m, len, p->k, p->alpha, p->a, p->lda,
        p->trans_b ? p->b + start * p->ldb : p->b + start, p->ldb, p->beta, p->c + start, p->ldc,
        start, p->ep);
  else
    sgemm_one (p->trans_a, p->trans_b, len, p->n, p->k, p->alpha,
        p->trans_a ? p->a + start : p->a + start * p->lda, p->lda, p->b, p->ldb, p->beta,
        p->c + start * p->ldc, p->ldc, 0, p->ep);
}

static void
sgemm_split (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    int n_threads, const IbGemmEpilogue *ep)
{
  Slabs p = { trans_a, trans_b, n >= m, m, n, k, lda, ldb, ldc, 0, 0, alpha, beta, a, b, c, ep };
  gsize chunk;

  /* One slab per thread, of whole register tiles, so that no thread gets a ragged edge in the
   * middle of C. */
  p.extent = p.by_columns ? n : m;
  chunk = (p.extent + n_threads - 1) / n_threads;
  p.chunk = MIN (p.extent, (chunk + IB_SPLIT_ALIGN - 1) / IB_SPLIT_ALIGN * IB_SPLIT_ALIGN);
  ib_parallel_for ((guint) ((p.extent + p.chunk - 1) / p.chunk), n_threads, sgemm_slab, &p);
}

void
ib_sgemm (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    int n_threads)
{
  ib_sgemm_ex (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, n_threads, NULL);
}

void
ib_sgemm_ex (gboolean trans_a, gboolean trans_b, gsize m, gsize n, gsize k, float alpha,
    const float *a, gsize lda, const float *b, gsize ldb, float beta, float *c, gsize ldc,
    int n_threads, const IbGemmEpilogue *ep)
{
  static gsize warned = 0;
  int want;

  /* CBLAS takes int sizes; leading dimensions must cover a row of the stored matrix. */
  g_return_if_fail (m <= INT_MAX && n <= INT_MAX && k <= INT_MAX);
  g_return_if_fail (lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
  g_return_if_fail (lda >= MAX (1, trans_a ? m : k));
  g_return_if_fail (ldb >= MAX (1, trans_b ? k : n));
  g_return_if_fail (ldc >= MAX (1, n));
  g_return_if_fail (!ep || !ep->init_rows || beta == 0.0f);
  if (m == 0 || n == 0)
    return;

  blas_ensure_init ();
  if (!blas.ok) {
    if (g_once_init_enter (&warned)) {
      g_warning ("ib_sgemm without BLAS (%s): using the slow reference loop", blas.error->message);
      g_once_init_leave (&warned, 1);
    }
    sgemm_one (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, ep);
    return;
  }

  want = n_threads <= 0 ? blas.n_cores : MIN (n_threads, blas.n_cores);
  if (blas.split_in_pool) {
    use_threads (1);
    if (want > 1 && (double) m * n * k >= IB_SPLIT_MIN_MACS && MAX (m, n) >= 2 * IB_SPLIT_ALIGN)
      sgemm_split (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, want, ep);
    else
      sgemm_one (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, ep);
    return;
  }
  use_threads (want);
  sgemm_one (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, ep);
}
