/* q8-dnnl-compare: oneDNN's int8 matmul against imagebind's own int8 kernels (models/q8.c)
 * and OpenBLAS sgemm, on the linear layers of imagebind_huge's vision encoder; the
 * measurement behind the choice of kernels in models/PERFORMANCE.md. Built only when
 * Debian's libdnnl-dev is installed (the runtime never uses oneDNN).
 *
 *   OMP_NUM_THREADS=2 chrt -f 1 build/tools/q8-dnnl-compare [--runs N]
 *
 * Per shape (M tokens x K in -> N out): oneDNN u8 x s8 -> s32 with the weights in the layout
 * it chooses (reordered once, outside the timing) and in the file's row-major layout; ours as
 * the int32 product alone and as the whole layer (activation quantisation, product, F32
 * output with scales and bias); sgemm for scale. */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "model-private.h"
#include "q8.h"

#define CHECK(call) do { dnnl_status_t st_ = (call); if (st_ != dnnl_success) { \
    g_printerr ("%s failed: %d\n", #call, (int) st_); exit (1); } } while (0)

static int runs = 20;

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

typedef void (*RunFunc) (gpointer data);

static double
median_seconds (RunFunc run, gpointer data)
{
  double *t = g_new (double, runs), m;
  run (data);
  for (int r = 0; r < runs; r++) {
    double s = now ();
    run (data);
    t[r] = now () - s;
  }
  qsort (t, runs, sizeof (double), cmp_double);
  m = t[runs / 2];
  g_free (t);
  return m;
}

typedef struct {
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_exec_arg_t args[3];
} DnnlRun;

static void
run_dnnl (gpointer data)
{
  DnnlRun *d = data;
  CHECK (dnnl_primitive_execute (d->prim, d->stream, 3, d->args));
  CHECK (dnnl_stream_wait (d->stream));
}

/* Seconds of oneDNN's u8 x s8 -> s32 product; @any_layout: weights in oneDNN's layout. */
static double
time_dnnl (dnnl_engine_t eng, dnnl_stream_t stream, gsize M, gsize N, gsize K, guint8 *u,
    gint8 *q, gint32 *acc, gboolean any_layout)
{
  dnnl_memory_desc_t a_md, b_md, b_user_md, c_md;
  dnnl_dims_t a_dims = { M, K }, b_dims = { K, N }, c_dims = { M, N };
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  const dnnl_memory_desc_t *b_opt;
  dnnl_memory_t a_mem, b_user, b_mem, c_mem;
  DnnlRun r = { stream };
  double t;

  CHECK (dnnl_memory_desc_init_by_tag (&a_md, 2, a_dims, dnnl_u8, dnnl_ab));
  /* The file's weight is (N, K) row-major: K x N in "ba" order. */
  CHECK (dnnl_memory_desc_init_by_tag (&b_user_md, 2, b_dims, dnnl_s8, dnnl_ba));
  CHECK (dnnl_memory_desc_init_by_tag (&b_md, 2, b_dims, dnnl_s8,
      any_layout ? dnnl_format_tag_any : dnnl_ba));
  CHECK (dnnl_memory_desc_init_by_tag (&c_md, 2, c_dims, dnnl_s32, dnnl_ab));
  CHECK (dnnl_matmul_desc_init (&desc, &a_md, &b_md, NULL, &c_md));
  CHECK (dnnl_primitive_desc_create (&pd, &desc, NULL, eng, NULL));
  b_opt = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  CHECK (dnnl_memory_create (&a_mem, &a_md, eng, u));
  CHECK (dnnl_memory_create (&b_user, &b_user_md, eng, q));
  CHECK (dnnl_memory_create (&c_mem, &c_md, eng, acc));
  if (any_layout) {
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    dnnl_exec_arg_t rargs[2];
    CHECK (dnnl_memory_create (&b_mem, b_opt, eng, DNNL_MEMORY_ALLOCATE));
    CHECK (dnnl_reorder_primitive_desc_create (&rpd, &b_user_md, eng, b_opt, eng, NULL));
    CHECK (dnnl_primitive_create (&reorder, rpd));
    rargs[0] = (dnnl_exec_arg_t) { DNNL_ARG_FROM, b_user };
    rargs[1] = (dnnl_exec_arg_t) { DNNL_ARG_TO, b_mem };
    CHECK (dnnl_primitive_execute (reorder, stream, 2, rargs));
    CHECK (dnnl_stream_wait (stream));
    dnnl_primitive_destroy (reorder);
    dnnl_primitive_desc_destroy (rpd);
  } else {
    b_mem = b_user;
  }
  CHECK (dnnl_primitive_create (&r.prim, pd));
  r.args[0] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, a_mem };
  r.args[1] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, b_mem };
  r.args[2] = (dnnl_exec_arg_t) { DNNL_ARG_DST, c_mem };
  t = median_seconds (run_dnnl, &r);
  dnnl_primitive_destroy (r.prim);
  dnnl_primitive_desc_destroy (pd);
  if (b_mem != b_user)
    dnnl_memory_destroy (b_mem);
  dnnl_memory_destroy (b_user);
  dnnl_memory_destroy (a_mem);
  dnnl_memory_destroy (c_mem);
  return t;
}

typedef struct {
  gsize M, N, K;
  guint8 *u; gint8 *q; gint32 *acc;
  float *x, *w, *y, *bias;
  IbWeight weight;
} OurRun;

static void
run_ours_s32 (gpointer data)
{
  OurRun *o = data;
  ib_q8_gemm_s32 (o->u, o->K, o->M, o->q, o->N, o->K, o->acc, o->N, 0);
}

static void
run_ours_layer (gpointer data)
{
  OurRun *o = data;
  ib_q8_linear (o->x, o->K, o->M, &o->weight, o->bias, o->y, o->N, FALSE, 0, FALSE);
}

static void
run_sgemm (gpointer data)
{
  OurRun *o = data;
  ib_sgemm (FALSE, TRUE, o->M, o->N, o->K, 1.0f, o->x, o->K, o->w, o->K, 0.0f, o->y, o->N, 0);
}

int
main (int argc, char **argv)
{
  static const struct { const char *what; gsize M, N, K; } shapes[] = {
    { "qkv", 257, 3840, 1280 }, { "out_proj", 257, 1280, 1280 },
    { "fc1", 257, 5120, 1280 }, { "fc2", 257, 1280, 5120 },
  };
  dnnl_engine_t eng;
  dnnl_stream_t stream;
  GError *error = NULL;

  if (argc == 3 && strcmp (argv[1], "--runs") == 0)
    runs = MAX (1, atoi (argv[2]));
  if (!ib_blas_init (&error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  if (!ib_q8_have_vnni ()) {
    g_printerr ("this CPU has no AVX-512 VNNI: nothing to compare\n");
    return 0;
  }
  CHECK (dnnl_engine_create (&eng, dnnl_cpu, 0));
  CHECK (dnnl_stream_create (&stream, eng, dnnl_stream_default_flags));
  {
    const dnnl_version_t *v = dnnl_version ();
    g_print ("oneDNN %d.%d.%d (%s), %s; OMP_NUM_THREADS=%s; runs %d (median)\n", v->major,
        v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other runtime",
        imagebind_blas_info (), g_getenv ("OMP_NUM_THREADS") ? g_getenv ("OMP_NUM_THREADS") : "unset",
        runs);
  }
  g_print ("%-9s %-16s %10s %10s %10s %10s %10s   (GOP/s)\n", "layer", "M x N x K", "dnnl-any",
      "dnnl-rows", "ours-s32", "ours-layer", "sgemm");
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    OurRun o = { shapes[i].M, shapes[i].N, shapes[i].K };
    gsize M = o.M, N = o.N, K = o.K;
    double gop = 2.0 * M * N * K / 1e9, t_any, t_rows, t_s32, t_layer, t_sgemm;
    float *scale = g_new (float, N);

    o.u = g_malloc (M * K);
    o.q = g_malloc (N * K);
    o.acc = g_new (gint32, M * N);
    o.x = g_new (float, M * K);
    o.w = g_new (float, N * K);
    o.y = g_new (float, M * N);
    o.bias = g_new0 (float, N);
    for (gsize j = 0; j < M * K; j++) {
      o.x[j] = (float) ((j * 2654435761u) % 1000) / 500.0f - 1.0f;
      o.u[j] = (guint8) (j * 40503u >> 7);
    }
    for (gsize j = 0; j < N * K; j++)
      o.w[j] = (float) ((j * 40503u) % 997) / 997.0f - 0.5f;
    ib_q8_quantize_weight (o.w, N, K, o.q, scale);
    o.weight = (IbWeight) { IB_GGUF_TENSOR_I8, o.q, N, K, scale, NULL };
    o.weight.q8 = g_malloc0 (sizeof (IbQ8Sums) + N * sizeof (gint32));
    o.weight.q8->sums = (gint32 *) (o.weight.q8 + 1);

    t_any = time_dnnl (eng, stream, M, N, K, o.u, o.q, o.acc, TRUE);
    t_rows = time_dnnl (eng, stream, M, N, K, o.u, o.q, o.acc, FALSE);
    t_s32 = median_seconds (run_ours_s32, &o);
    t_layer = median_seconds (run_ours_layer, &o);
    t_sgemm = median_seconds (run_sgemm, &o);
    g_print ("%-9s %4zux%-5zux%-5zu %10.0f %10.0f %10.0f %10.0f %10.0f\n", shapes[i].what, M, N,
        K, gop / t_any, gop / t_rows, gop / t_s32, gop / t_layer, gop / t_sgemm);
    g_free (o.u); g_free (o.q); g_free (o.acc); g_free (o.x); g_free (o.w); g_free (o.y);
    g_free (o.bias); g_free (scale); g_free (o.weight.q8);
  }
  dnnl_stream_destroy (stream);
  dnnl_engine_destroy (eng);
  return 0;
}
