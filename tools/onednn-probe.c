/* onednn-probe: oneDNN's f32 and bf16 matmul on the imagebind_huge vision encoder's product
 * shapes, for models/PERFORMANCE.md (is AVX512_BF16 worth it?). Not part of
 * the build: libimagebind does not use oneDNN. With Debian's libdnnl-dev:
 *
 *   gcc -O2 -o onednn-probe tools/onednn-probe.c -ldnnl
 *   OMP_NUM_THREADS=2 chrt -f 1 ./onednn-probe            # DNNL_VERBOSE=1: the kernels chosen
 *
 * C (M x N, f32) = A (M x K) W^T with W (N x K) row-major as the linear layers store it; A and W
 * in f32, then both in bf16 (f32 accumulation and output). The median of 9 timed runs after one
 * warm-up; the attention products run 16 times in a row (one per head). */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf (stderr, "%s: %d\n", #x, s_); exit (1); } } while (0)

static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp (const void *a, const void *b) { double x = *(double *) a, y = *(double *) b; return x < y ? -1 : x > y; }

static double
run (dnnl_engine_t eng, dnnl_stream_t st, int M, int N, int K, int count, dnnl_data_type_t dt, int runs)
{
  dnnl_memory_desc_t a_md, b_md, c_md;
  dnnl_dims_t ad = { M, K }, bd = { K, N }, cd = { M, N };
  dnnl_matmul_desc_t md;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  dnnl_memory_t am, bm, cm;
  size_t es = dt == dnnl_f32 ? 4 : 2;
  void *a = calloc ((size_t) M * K, es), *b = calloc ((size_t) K * N, es);
  float *c = calloc ((size_t) M * N, 4);
  double t[64];

  for (size_t i = 0; i < (size_t) M * K; i++) { if (es == 4) ((float *) a)[i] = (i % 7) * 0.1f; else ((unsigned short *) a)[i] = 0x3f80 + i % 7; }
  for (size_t i = 0; i < (size_t) K * N; i++) { if (es == 4) ((float *) b)[i] = (i % 5) * 0.1f; else ((unsigned short *) b)[i] = 0x3f80 + i % 5; }
  CHECK (dnnl_memory_desc_init_by_tag (&a_md, 2, ad, dt, dnnl_ab));
  CHECK (dnnl_memory_desc_init_by_tag (&b_md, 2, bd, dt, dnnl_ba));   /* W (N x K) row-major */
  CHECK (dnnl_memory_desc_init_by_tag (&c_md, 2, cd, dnnl_f32, dnnl_ab));
  CHECK (dnnl_matmul_desc_init (&md, &a_md, &b_md, NULL, &c_md));
  CHECK (dnnl_primitive_desc_create (&pd, &md, NULL, eng, NULL));
  CHECK (dnnl_primitive_create (&prim, pd));
  CHECK (dnnl_memory_create (&am, &a_md, eng, a));
  CHECK (dnnl_memory_create (&bm, &b_md, eng, b));
  CHECK (dnnl_memory_create (&cm, &c_md, eng, c));
  dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, am }, { DNNL_ARG_WEIGHTS, bm }, { DNNL_ARG_DST, cm } };
  for (int r = -1; r < runs; r++) {
    double s = now ();
    for (int i = 0; i < count; i++)
      CHECK (dnnl_primitive_execute (prim, st, 3, args));
    CHECK (dnnl_stream_wait (st));
    if (r >= 0) t[r] = now () - s;
  }
  qsort (t, runs, sizeof (double), cmp);
  dnnl_primitive_destroy (prim); dnnl_primitive_desc_destroy (pd);
  dnnl_memory_destroy (am); dnnl_memory_destroy (bm); dnnl_memory_destroy (cm);
  free (a); free (b); free (c);
  return 2.0 * M * N * K * count / t[runs / 2] / 1e9;
}

int
main (void)
{
  static const struct { const char *what; int m, n, k, count; } shapes[] = {
    { "qkv", 257, 3840, 1280, 1 }, { "out_proj", 257, 1280, 1280, 1 },
    { "fc1", 257, 5120, 1280, 1 }, { "fc2", 257, 1280, 5120, 1 },
    { "q k^T x16", 257, 257, 80, 16 }, { "p v x16", 257, 80, 257, 16 },
  };
  dnnl_engine_t eng;
  dnnl_stream_t st;
  CHECK (dnnl_engine_create (&eng, dnnl_cpu, 0));
  CHECK (dnnl_stream_create (&st, eng, dnnl_stream_default_flags));
  for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    double f = run (eng, st, shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].count, dnnl_f32, 9);
    double h = run (eng, st, shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].count, dnnl_bf16, 9);
    printf ("%-10s M=%-4d N=%-4d K=%-4d  f32 %6.1f GFLOP/s  bf16 %6.1f GFLOP/s  x%.2f\n", shapes[i].what,
        shapes[i].m, shapes[i].n, shapes[i].k, f, h, h / f);
  }
  return 0;
}
