/* imagebind-bench: how fast the runtime is, and how close it gets to the matrix products it is
 * made of.
 *
 *   imagebind-bench --sgemm [--threads N] [--runs N] [--q8]
 *       GFLOP/s of ib_sgemm() for the shapes of imagebind_huge's encoders, and 2048^3;
 *       --q8: the int8 linear layers of q8 files on the same shapes (GOP/s).
 *   imagebind-bench --preset huge [--modality M] [--runs N] [--threads N] [--f16 | --q8]
 *       imagebind_huge-sized encoders with random weights (no file), one modality at a time.
 *       --q8: each encoder twice in the same run, with the random F32 weights and with the
 *       same weights quantised as a q8 file stores them; prints the speed-up and the cosine
 *       between the two embeddings of the same input.
 *   imagebind-bench --preset openclip-vit-b-32 (-b-16, -l-14, -h-14) [...]
 *       the image and text towers of OpenCLIP's published configs, likewise (2D patch stem).
 *   imagebind-bench --model FILE.gguf [--modality M] [--runs N] [--threads N]
 *       the encoders of a model file.
 *   --profile (with --preset or --model): where each encoder's forward spends its time, stage
 *       by stage, next to what the same-shape products take alone (models/PERFORMANCE.md).
 *   --digest: a checksum of each output embedding's bytes, to show that a change leaves
 *       results bit-identical (for one thread count: products split differently per count).
 *
 * For each encoder: the median time of a batch-1 forward (audio: the official loader's 3 clips),
 * its GFLOP, the achieved GFLOP/s, and the GFLOP/s that ib_sgemm() reaches, in the same run, on
 * the products one transformer block is made of (the encoder's ceiling if everything else were
 * free); the ratio of the two says how much the rest (LayerNorm, GELU, softmax, copies, thread
 * hand-overs) costs. The products are timed right after each forward, and the ratio shown is
 * the median of the per-forward ratios (Reference). Timings leave out the time the calling
 * thread was kept off its core (stopwatch_read()).
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "imagebind.h"
#include "imagebind-tokenizer.h"
#include "model-private.h"
#include "parallel.h"
#include "q8.h"

/* The tokenizer's <|endoftext|>, the largest id: where the text head pools. */
#define IB_BENCH_EOT_ID 49407

static int opt_threads = 0;
static gboolean opt_q8 = FALSE;
static int opt_runs = 5;
static gboolean opt_no_reference = FALSE;
static gboolean opt_profile = FALSE;
static gboolean opt_digest = FALSE;

/* ---- timing ---- */

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *values, int n)
{
  qsort (values, n, sizeof (double), compare_doubles);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* Seconds the calling thread has spent runnable but not running (the kernel's per-thread
 * schedstat; 0 where it is unavailable). Under `chrt -f 1`, as every measurement runs, that is
 * the kernel's realtime throttling: realtime threads may run 0.95 s of each second
 * (/proc/sys/kernel/sched_rt_runtime_us), so any continuous run longer than that stops for
 * ~50 ms on every core. A huge vision forward (1.1 s) always contains such a stop, while the
 * reference's short products take their median around it: 4-5 points of the ratio on the
 * 2-core VM (models/PERFORMANCE.md). Every timing below excludes it, the reference's too. */
static double
run_delay_seconds (void)
{
  FILE *f = fopen ("/proc/thread-self/schedstat", "r");
  unsigned long long on_cpu = 0, waiting = 0;

  if (!f)
    return 0.0;
  if (fscanf (f, "%llu %llu", &on_cpu, &waiting) != 2)
    waiting = 0;
  fclose (f);
  return waiting / 1e9;
}

/* A stopwatch that leaves out the time the calling thread was kept off its core. */
typedef struct {
  double wall, delay;
} Stopwatch;

static Stopwatch
stopwatch_start (void)
{
  Stopwatch w = { ib_profile_now (), run_delay_seconds () };
  return w;
}

/* Seconds since @w started, less the run delay; the run delay alone goes to @delay if not NULL. */
static double
stopwatch_read (const Stopwatch *w, double *delay)
{
  double wall = ib_profile_now () - w->wall, waited = run_delay_seconds () - w->delay;

  /* The kernel adds a wait to the counter when the thread gets its core back, on its own
   * clock: should that ever not fit inside the wall time, the wall time stands alone. */
  if (waited < 0 || waited >= wall)
    waited = 0;
  if (delay)
    *delay = waited;
  return wall - waited;
}

/* ---- matrix products ---- */

/* One product of a transformer block: C (m x n) = A (m x k) B^T, as a linear layer with a
 * PyTorch (out, in) weight computes it, @count times side by side, one per thread (attention:
 * once per head), or @serial times one after the other, each split over the threads (the q/k/v
 * product: once per sample; 0 counts as 1). */
typedef struct {
  const char *what;
  gsize m, n, k;
  gboolean trans_b;
  guint count;
  guint serial;
} GemmShape;

typedef struct {
  float *a, *b, *c;
  gsize a_len, b_len, c_len;
} GemmBuffers;

static void
buffers_ensure (GemmBuffers *buf, const GemmShape *s)
{
  /* One C per thread: independent products (attention heads) run side by side. */
  gsize a_len = s->m * s->k, b_len = s->k * s->n, i;
  gsize c_len = s->m * s->n * ib_parallel_max_threads (opt_threads);

  if (a_len > buf->a_len) {
    g_free (buf->a);
    buf->a = g_new (float, a_len);
    for (i = 0; i < a_len; i++)
      buf->a[i] = (float) ((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    buf->a_len = a_len;
  }
  if (b_len > buf->b_len) {
    g_free (buf->b);
    buf->b = g_new (float, b_len);
    for (i = 0; i < b_len; i++)
      buf->b[i] = (float) ((i * 40503u) % 997) / 997.0f - 0.5f;
    buf->b_len = b_len;
  }
  if (c_len > buf->c_len) {
    g_free (buf->c);
    buf->c = g_new0 (float, c_len);
    buf->c_len = c_len;
  }
}

static void
buffers_clear (GemmBuffers *buf)
{
  g_free (buf->a);
  g_free (buf->b);
  g_free (buf->c);
  memset (buf, 0, sizeof (*buf));
}

static double
shape_gflop (const GemmShape *s)
{
  return 2.0 * s->m * s->n * s->k * s->count * MAX (s->serial, 1) / 1e9;
}

typedef struct {
  const GemmShape *shape;
  GemmBuffers *buf;
} ShapeJob;

/* One of @count independent products, single-threaded, into this thread's C. */
static void
one_product (guint task, guint thread, gpointer user_data)
{
  const ShapeJob *job = user_data;
  const GemmShape *s = job->shape;

  ib_sgemm (FALSE, s->trans_b, s->m, s->n, s->k, 1.0f, job->buf->a, s->k, job->buf->b,
      s->trans_b ? s->k : s->n, 0.0f, job->buf->c + thread * s->m * s->n, s->n, 1);
}

/* Median seconds of @count products of shape @s, after one warm-up: one product threaded, or
 * several side by side, one per thread (as an encoder runs its attention heads). */
static double
time_shape (GemmBuffers *buf, const GemmShape *s, int runs)
{
  double *times = g_new (double, runs), t;
  ShapeJob job = { s, buf };
  int r;

  buffers_ensure (buf, s);
  for (r = -1; r < runs; r++) {
    Stopwatch start = stopwatch_start ();
    if (s->count == 1)
      for (guint i = 0; i < MAX (s->serial, 1); i++)
        ib_sgemm (FALSE, s->trans_b, s->m, s->n, s->k, 1.0f, buf->a, s->k, buf->b,
            s->trans_b ? s->k : s->n, 0.0f, buf->c, s->n, opt_threads);
    else
      ib_parallel_for (s->count, opt_threads, one_product, &job);
    if (r >= 0)
      times[r] = stopwatch_read (&start, NULL);
  }
  t = median (times, runs);
  g_free (times);
  return t;
}

/* Median seconds of the int8 linear layer (q8.h) of shape @s: the activations quantised per
 * row, then the VNNI product and the F32 output, as a q8 file's layer runs. */
static double
time_q8_shape (GemmBuffers *buf, const GemmShape *s, int runs)
{
  IbWeight w = { IB_GGUF_TENSOR_I8, NULL, s->n, s->k };
  gint8 *q = g_new (gint8, s->n * s->k);
  float *scale = g_new (float, s->n);
  double *times = g_new (double, runs), t;

  buffers_ensure (buf, s);
  ib_q8_quantize_weight (buf->b, s->n, s->k, q, scale);
  w.data = q;
  w.scale = scale;
  w.q8 = g_malloc0 (sizeof (IbQ8Sums) + s->n * sizeof (gint32));
  w.q8->sums = (gint32 *) (w.q8 + 1);
  for (int r = -1; r < runs; r++) {
    Stopwatch start = stopwatch_start ();
    for (guint i = 0; i < MAX (s->serial, 1); i++)
      ib_q8_linear (buf->a, s->k, s->m, &w, NULL, buf->c, s->n, FALSE, opt_threads, FALSE);
    if (r >= 0)
      times[r] = stopwatch_read (&start, NULL);
  }
  t = median (times, runs);
  g_free (times);
  g_free (q);
  g_free (scale);
  g_free (w.q8);
  return t;
}

/* The products of one transformer block of width @d over @samples sequences of @l tokens with
 * @heads heads, as the runtime's forward (models/encoder.c) runs them: out_proj, fc1 and fc2
 * see all samples' tokens as rows (as the official batched forward does, clips included); the
 * q/k/v product runs once per sample (each sample's rows are followed by its bias_k/bias_v
 * row when the modality has them: @extra_kv = 1); attention runs per sample and head. */
static guint
block_shapes (GemmShape *shapes, guint d, guint l, guint samples, guint heads, guint extra_kv)
{
  guint hd = d / heads, n = 0, rows = samples * l;

  shapes[n++] = (GemmShape) { "qkv", l, 3 * d, d, TRUE, 1, samples };
  shapes[n++] = (GemmShape) { "q k^T (per head)", l, l + extra_kv, hd, TRUE, samples * heads };
  shapes[n++] = (GemmShape) { "p v (per head)", l, hd, l + extra_kv, FALSE, samples * heads };
  shapes[n++] = (GemmShape) { "out_proj", rows, d, d, TRUE, 1 };
  shapes[n++] = (GemmShape) { "fc1", rows, 4 * d, d, TRUE, 1 };
  shapes[n++] = (GemmShape) { "fc2", rows, d, 4 * d, TRUE, 1 };
  return n;
}

/* Times every product of a block (median of @runs) and returns GFLOP/s over the whole block:
 * total GFLOP over total time, as the encoder would see them. Prints one line per product when
 * @verbose; puts each product's seconds into @seconds (indexed as block_shapes() orders them)
 * if not NULL. */
static double
bench_block (GemmBuffers *buf, guint d, guint l, guint samples, guint heads, guint extra_kv,
    gboolean verbose, double *seconds, int runs)
{
  GemmShape shapes[8];
  guint n = block_shapes (shapes, d, l, samples, heads, extra_kv), i;
  double total_gflop = 0.0, total_seconds = 0.0;

  for (i = 0; i < n; i++) {
    double t = time_shape (buf, &shapes[i], runs), gflop = shape_gflop (&shapes[i]);
    total_gflop += gflop;
    total_seconds += t;
    if (seconds)
      seconds[i] = t;
    if (verbose)
      g_print ("    %-18s M=%-5zu N=%-5zu K=%-5zu x%-3u %8.2f ms %7.1f GFLOP/s\n", shapes[i].what,
          shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].count * MAX (shapes[i].serial, 1), t * 1e3, gflop / t);
    if (verbose && opt_q8 && shapes[i].count == 1 && ib_q8_have_vnni ()) {
      double tq = time_q8_shape (buf, &shapes[i], opt_runs);
      g_print ("    %-18s %29s %8.2f ms %7.1f GOP/s  %.2fx\n", "  int8 (q8)", "", tq * 1e3,
          gflop / tq, t / tq);
    }
  }
  return total_gflop / total_seconds;
}

/* imagebind_huge's trunks (spec section 6): width, heads, tokens, bias_k/v, and the samples a
 * batch-1 forward runs (audio: the official loader's 3 clips). */
static const struct {
  ImageBindModality modality;
  guint d, heads, tokens, extra_kv, samples;
} huge_trunks[] = {
  { IMAGEBIND_MODALITY_VISION, 1280, 16, 257, 0, 1 },
  { IMAGEBIND_MODALITY_TEXT, 1024, 16, 77, 0, 1 },
  { IMAGEBIND_MODALITY_AUDIO, 768, 12, 229, 1, 3 },
  { IMAGEBIND_MODALITY_DEPTH, 384, 8, 197, 1, 1 },
  { IMAGEBIND_MODALITY_THERMAL, 768, 12, 197, 1, 1 },
  { IMAGEBIND_MODALITY_IMU, 512, 8, 251, 1, 1 },
};

static int
run_sgemm (gboolean have_modality, ImageBindModality only)
{
  GemmBuffers buf = { 0 };
  GemmShape square = { "square", 2048, 2048, 2048, FALSE, 1 };
  double t;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (huge_trunks); i++) {
    double rate;
    if (have_modality && huge_trunks[i].modality != only)
      continue;
    g_print ("  %s block (D=%u, L=%u, %u heads, %u sample%s):\n",
        imagebind_modality_name (huge_trunks[i].modality), huge_trunks[i].d, huge_trunks[i].tokens,
        huge_trunks[i].heads, huge_trunks[i].samples, huge_trunks[i].samples == 1 ? "" : "s");
    rate = bench_block (&buf, huge_trunks[i].d, huge_trunks[i].tokens, huge_trunks[i].samples,
        huge_trunks[i].heads, huge_trunks[i].extra_kv, TRUE, NULL, opt_runs);
    g_print ("    %-18s %48.1f GFLOP/s\n", "whole block", rate);
  }
  t = time_shape (&buf, &square, opt_runs);
  g_print ("  square 2048^3: %.2f ms, %.1f GFLOP/s\n", t * 1e3, shape_gflop (&square) / t);
  buffers_clear (&buf);
  return 0;
}

/* ---- encoders ---- */

/* The official loader's input for one batch-1 forward, filled with plausible values. */
static float *
make_input (const ImageBindModel *model, ImageBindModality modality, gint64 *shape,
    guint *n_dims, guint *clips)
{
  ImageBindInputGeometry g;
  gsize n = 1, i;
  float *data;
  guint d;

  imagebind_model_input_geometry (model, &g);
  *clips = 1;
  switch (modality) {
    case IMAGEBIND_MODALITY_VISION:
      *n_dims = 4;
      memcpy (shape, (gint64[]) { 1, 3, g.image_size, g.image_size }, 4 * sizeof (gint64));
      break;
    case IMAGEBIND_MODALITY_AUDIO:
      *n_dims = 5;
      *clips = g.audio_clips;
      memcpy (shape, (gint64[]) { 1, g.audio_clips, 1, g.audio_num_mel_bins, g.audio_target_len },
          5 * sizeof (gint64));
      break;
    case IMAGEBIND_MODALITY_DEPTH:
    case IMAGEBIND_MODALITY_THERMAL:
      *n_dims = 4;
      memcpy (shape, (gint64[]) { 1, 1, g.image_size, g.image_size }, 4 * sizeof (gint64));
      break;
    case IMAGEBIND_MODALITY_IMU:
      *n_dims = 3;
      memcpy (shape, (gint64[]) { 1, 6, g.imu_num_samples }, 3 * sizeof (gint64));
      break;
    default:
      g_assert_not_reached ();
  }
  for (d = 0; d < *n_dims; d++)
    n *= shape[d];
  data = g_new (float, n);
  for (i = 0; i < n; i++)
    data[i] = sinf (0.001f * i) * 0.8f;
  return data;
}

/* The bench prompt through @model's tokenizer; FALSE when the model has none. */
static gboolean
tokenize_prompt (const ImageBindModel *model, gint32 *ids, guint context_length)
{
  const ImageBindTokenizer *tok = imagebind_model_get_tokenizer (model, NULL);

  return tok && imagebind_tokenize (tok, "a photo of a dog playing with a red ball outside", -1,
      ids, context_length, NULL);
}

/* The encoder's ceiling: the same-shape products of one of its blocks (bench_block()),
 * measured once right after each timed forward rather than all after the forwards. This VM's
 * speed changes by up to 2x from one minute to the next (models/PERFORMANCE.md), so a forward
 * is compared with products measured within a second of it: the ratio shown is the median of
 * the rounds' ratios. */
typedef struct {
  GemmBuffers buf;
  guint d, l, samples, heads, extra_kv;
  double *rate;         /* per round: GFLOP/s of the block's products */
  double *seconds;      /* per round: each product's seconds (8 per round) */
  double *forward;      /* per round: the forward's seconds */
} Reference;

/* Median seconds of one forward, run delay excluded (stopwatch_read()); FALSE and @error if
 * the runtime refuses it. After each timed forward, @ref's products are timed (unless NULL). @delay_seconds gets the mean run delay left out per forward. The
 * embedding goes to @embedding (out_dim floats) when not NULL. The timed runs are profiled
 * into @profile when not NULL; @digest gets the output's checksum. */
static gboolean
time_encoder (ImageBindModel *model, ImageBindModality modality, double *seconds,
    double *delay_seconds, guint *clips, float *embedding, IbProfile *profile, char **digest,
    Reference *ref, GError **error)
{
  ImageBindContextParams params = imagebind_context_default_params ();
  ImageBindContext *ctx;
  float *out = g_new (float, imagebind_model_out_dim (model)), *input = NULL;
  gint32 *ids = NULL;
  gint64 shape[8];
  guint n_dims = 0;
  double *times = g_new (double, opt_runs);
  gboolean ok = TRUE;
  int r;

  params.n_threads = opt_threads;
  *delay_seconds = 0;
  ctx = imagebind_context_new (model, &params);
  if (modality == IMAGEBIND_MODALITY_TEXT) {
    ImageBindInputGeometry g;
    guint i;
    imagebind_model_input_geometry (model, &g);
    ids = g_new0 (gint32, g.context_length);
    /* A 12-token prompt (start, ten words, end; padding after) through the model's own
     * tokenizer, whatever its vocabulary (the shipped model's has 834 ids); made-up ids of
     * CLIP's 49408-id vocabulary only for a model without one (the random-weight presets). */
    if (!tokenize_prompt (model, ids, g.context_length)) {
      ids[0] = IB_BENCH_EOT_ID - 1;
      for (i = 1; i < 11 && i < g.context_length; i++)
        ids[i] = 320 + 17 * i;
      ids[MIN (11, g.context_length - 1)] = IB_BENCH_EOT_ID;
    }
    *clips = 1;
  } else {
    input = make_input (model, modality, shape, &n_dims, clips);
  }

  for (r = -1; r < opt_runs && ok; r++) {
    Stopwatch start = stopwatch_start ();
    double delay = 0;
    if (ids)
      ok = imagebind_embed_text (ctx, ids, 1, out, error);
    else
      ok = imagebind_embed (ctx, modality, input, shape, n_dims, out, error);
    if (r >= 0) {
      times[r] = stopwatch_read (&start, &delay);
      *delay_seconds += delay / opt_runs;
    }
    if (r >= 0 && ok && ref) {
      ref->forward[r] = times[r];
      /* one warm-up and one timed run of each product */
      ref->rate[r] = bench_block (&ref->buf, ref->d, ref->l, *clips, ref->heads, ref->extra_kv,
          FALSE, ref->seconds + 8 * r, 1);
    }
    if (r == -1 && profile)
      ib_context_set_profile (ctx, profile);
  }
  if (ok)
    *seconds = median (times, opt_runs);
  if (ok && embedding)
    memcpy (embedding, out, imagebind_model_out_dim (model) * sizeof (float));
  if (ok && digest)
    *digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) out,
        imagebind_model_out_dim (model) * sizeof (float));
  imagebind_context_free (ctx);
  g_free (times);
  g_free (input);
  g_free (ids);
  g_free (out);
  return ok;
}

/* The profile of @runs forwards as a table: each stage's wall time per forward, and for the
 * stages that are products, what the same products take alone (@product_seconds: one block's,
 * as bench_block() measures them; NULL if not measured). */
static void
print_profile (const IbProfile *p, const ImageBindEncoderInfo *info, double forward_seconds,
    const double *product_seconds)
{
  static const char *const names[IB_N_STAGES] = {
    "stem", "layer norms", "q/k/v product", "attention", "out_proj", "fc1 + GELU", "fc2", "head",
  };
  static const char *const part_names[IB_N_ATTN_PARTS] = {
    "q k^T", "softmax", "p v", "fused heads",
  };
  /* block_shapes() order: qkv, q k^T, p v, out_proj, fc1, fc2 */
  double ref[IB_N_STAGES] = { 0 };
  double runs = MAX (p->forwards, 1), timed = 0, part_total = 0;
  guint s;

  if (product_seconds) {
    ref[IB_STAGE_QKV] = product_seconds[0] * info->num_blocks;
    ref[IB_STAGE_ATTENTION] = (product_seconds[1] + product_seconds[2]) * info->num_blocks;
    ref[IB_STAGE_OUT_PROJ] = product_seconds[3] * info->num_blocks;
    ref[IB_STAGE_FC1] = product_seconds[4] * info->num_blocks;
    ref[IB_STAGE_FC2] = product_seconds[5] * info->num_blocks;
  }
  g_print ("    %-16s %9s %7s %9s %12s %10s\n", "stage", "ms", "share", "GFLOP/s", "sgemm alone",
      "excess");
  for (s = 0; s < IB_N_STAGES; s++) {
    double ms = p->seconds[s] / runs * 1e3;
    timed += p->seconds[s] / runs;
    g_print ("    %-16s %9.1f %6.1f%%", names[s], ms, 100.0 * p->seconds[s] / runs / forward_seconds);
    if (p->flop[s] > 0)
      g_print (" %9.1f", p->flop[s] / p->seconds[s] / 1e9);
    else
      g_print (" %9s", "");
    if (ref[s] > 0)
      g_print (" %9.1f ms %7.1f ms", ref[s] * 1e3, ms - ref[s] * 1e3);
    g_print ("\n");
    if (s == IB_STAGE_ATTENTION) {
      for (guint a = 0; a < IB_N_ATTN_PARTS; a++)
        part_total += p->attn_thread_seconds[a];
      for (guint a = 0; a < IB_N_ATTN_PARTS; a++)
        if (p->attn_thread_seconds[a] > 0)
          g_print ("      %-14s %9.1f %6.1f%% of the threads' attention time\n", part_names[a],
              p->attn_thread_seconds[a] / runs * 1e3,
              100.0 * p->attn_thread_seconds[a] / part_total);
    }
  }
  g_print ("    %-16s %9.1f %6.1f%%\n", "untimed", (forward_seconds - timed) * 1e3,
      100.0 * (forward_seconds - timed) / forward_seconds);
}

static gboolean
bench_encoder (ImageBindModel *model, ImageBindModality modality, double *seconds_out,
    float *embedding, GError **error)
{
  ImageBindEncoderInfo info;
  IbProfile profile = { 0 };
  Reference ref = { { 0 } };
  double seconds, delay, gflop, achieved, ceiling = 0, ratio = 0, product_seconds[8] = { 0 };
  guint clips;
  g_autofree char *digest = NULL;
  gboolean ok;

  if (!imagebind_model_encoder_info (model, modality, &info)) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY, "no %s encoder in the model",
        imagebind_modality_name (modality));
    return FALSE;
  }
  ref.d = info.embed_dim;
  ref.l = info.num_tokens;
  ref.heads = info.num_heads;
  ref.extra_kv = model->enc[modality].blocks && model->enc[modality].blocks[0].bias_k ? 1 : 0;
  ref.rate = g_new0 (double, opt_runs);
  ref.seconds = g_new0 (double, 8 * opt_runs);
  ref.forward = g_new0 (double, opt_runs);
  ok = time_encoder (model, modality, &seconds, &delay, &clips, embedding,
      opt_profile ? &profile : NULL, opt_digest ? &digest : NULL, opt_no_reference ? NULL : &ref,
      error);
  gflop = info.gflops * clips;
  if (ok && !opt_no_reference) {
    double *column = g_new (double, opt_runs);
    for (int r = 0; r < opt_runs; r++)
      ref.forward[r] = gflop / ref.forward[r] / ref.rate[r];     /* the round's ratio */
    ratio = median (ref.forward, opt_runs);
    for (guint i = 0; i < 8; i++) {
      for (int r = 0; r < opt_runs; r++)
        column[r] = ref.seconds[8 * r + i];
      product_seconds[i] = median (column, opt_runs);
    }
    ceiling = median (ref.rate, opt_runs);
    g_free (column);
  }
  buffers_clear (&ref.buf);
  g_free (ref.rate);
  g_free (ref.seconds);
  g_free (ref.forward);
  if (!ok)
    return FALSE;
  if (seconds_out)
    *seconds_out = seconds;
  achieved = gflop / seconds;
  g_print ("%-8s D=%-4u L=%-3u x%u blocks, %u clip%s: %9.1f ms  %7.2f GFLOP  %6.1f GFLOP/s",
      imagebind_modality_name (modality), info.embed_dim, info.num_tokens, info.num_blocks, clips,
      clips == 1 ? "" : "s", seconds * 1e3, gflop, achieved);
  /* --no-reference measures no ceiling: print no ratio rather than "nan" */
  if (opt_no_reference)
    g_print ("\n");
  else
    g_print ("   sgemm same shapes %6.1f GFLOP/s   ratio %3.0f%%\n", ceiling, 100.0 * ratio);
  if (delay >= 0.5e-3)
    g_print ("    kept off the cores %.1f ms per forward (realtime throttling under chrt?): "
        "not counted\n", delay * 1e3);
  if (digest)
    g_print ("    output sha256 %s\n", digest);
  if (opt_profile) {
    /* The median forward against the profile's mean: close enough on a quiet machine. The
     * stages' clocks include the run delay: add it back, so that "untimed" stays what it is. */
    print_profile (&profile, &info, seconds + delay, opt_no_reference ? NULL : product_seconds);
  }
  return TRUE;
}

/* The random-weight model sizes of --preset: "huge" or "openclip-<OpenCLIP name>". */
static gboolean
preset_config (const char *name, IbModelConfig *config)
{
  if (g_strcmp0 (name, "huge") == 0) {
    *config = ib_model_config_huge ();
    return TRUE;
  }
  return g_str_has_prefix (name, "openclip-") &&
      ib_model_config_openclip (name + strlen ("openclip-"), config);
}

/* Builds and times one random encoder of @type weights; FALSE on failure (reported). */
static gboolean
bench_random (const IbModelConfig *all, ImageBindModality modality, IbGgufTensorType type,
    double *seconds, float *embedding)
{
  IbModelConfig one = *all;
  ImageBindModel *model;
  GError *error = NULL;
  double start = ib_profile_now ();
  gboolean ok;

  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    one.modality[m].present = (m == modality);
  one.weight_type = type;
  model = ib_model_new_random (&one, 1234 + modality);
  if (!model) {
    g_printerr ("cannot build a random %s encoder\n", imagebind_modality_name (modality));
    return FALSE;
  }
  g_debug ("built the random %s encoder in %.1f s", imagebind_modality_name (modality),
      ib_profile_now () - start);
  ok = bench_encoder (model, modality, seconds, embedding, &error);
  if (!ok) {
    g_printerr ("%s: %s\n", imagebind_modality_name (modality), error->message);
    g_clear_error (&error);
  }
  imagebind_model_unref (model);
  return ok;
}

static double
cosine (const float *a, const float *b, gsize n)
{
  double ab = 0, aa = 0, bb = 0;
  for (gsize i = 0; i < n; i++) {
    ab += (double) a[i] * b[i];
    aa += (double) a[i] * a[i];
    bb += (double) b[i] * b[i];
  }
  return ab / sqrt (aa * bb);
}

/* Builds one modality at a time, so that only its weights are in memory. With @q8, each
 * encoder in F32 then in q8 (the same random weights, quantised), compared. */
static int
run_preset (const IbModelConfig *all, ImageBindModality *selected, guint n_selected,
    gboolean f16, gboolean q8)
{
  float *e32 = g_new (float, all->out_dim), *e8 = g_new (float, all->out_dim);
  guint i;
  int status = 0;

  for (i = 0; i < n_selected; i++) {
    double t32, t8;
    if (!all->modality[selected[i]].present)
      continue;
    if (!q8) {
      if (!bench_random (all, selected[i], f16 ? IB_GGUF_TENSOR_F16 : IB_GGUF_TENSOR_F32,
              NULL, NULL))
        status = 1;
      continue;
    }
    g_print ("  F32: ");
    if (!bench_random (all, selected[i], IB_GGUF_TENSOR_F32, &t32, e32)) {
      status = 1;
      continue;
    }
    g_print ("  q8:  ");
    if (!bench_random (all, selected[i], IB_GGUF_TENSOR_I8, &t8, e8)) {
      status = 1;
      continue;
    }
    g_print ("%-8s q8 vs F32: %.2fx faster, cosine %.6f\n", imagebind_modality_name (selected[i]),
        t32 / t8, cosine (e32, e8, all->out_dim));
  }
  g_free (e32);
  g_free (e8);
  return status;
}

static int
run_model (const char *path, ImageBindModality *selected, guint n_selected)
{
  GError *error = NULL;
  ImageBindModel *model = imagebind_model_load (path, &error);
  guint i;
  int status = 0;

  if (!model) {
    g_printerr ("%s\n", error->message);
    g_error_free (error);
    return 1;
  }
  for (i = 0; i < n_selected; i++) {
    if (!imagebind_model_has_modality (model, selected[i]))
      continue;
    if (!bench_encoder (model, selected[i], NULL, NULL, &error)) {
      g_printerr ("%s: %s\n", imagebind_modality_name (selected[i]), error->message);
      g_clear_error (&error);
      status = 1;
    }
  }
  imagebind_model_unref (model);
  return status;
}

int
main (int argc, char **argv)
{
  gboolean opt_sgemm = FALSE, opt_f16 = FALSE;
  char *opt_preset = NULL, *opt_model = NULL, *opt_modality = NULL;
  GOptionEntry entries[] = {
    { "sgemm", 0, 0, G_OPTION_ARG_NONE, &opt_sgemm, "Matrix-product GFLOP/s for imagebind_huge's shapes", NULL },
    { "preset", 0, 0, G_OPTION_ARG_STRING, &opt_preset, "Random-weight model of this size (huge, openclip-vit-b-32, openclip-vit-b-16, openclip-vit-l-14, openclip-vit-h-14)", "NAME" },
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &opt_model, "Model file to benchmark", "FILE.gguf" },
    { "modality", 0, 0, G_OPTION_ARG_STRING, &opt_modality, "Only this encoder (vision, text, audio, depth, thermal, imu)", "M" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &opt_runs, "Timed runs per measurement; the median is shown (default 5)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &opt_threads, "Threads (default 0: all cores)", "N" },
    { "no-reference", 0, 0, G_OPTION_ARG_NONE, &opt_no_reference, "Skip the same-shape sgemm measurement (for profiling the encoders alone)", NULL },
    { "profile", 0, 0, G_OPTION_ARG_NONE, &opt_profile, "Time each stage of the forward (see models/PERFORMANCE.md)", NULL },
    { "digest", 0, 0, G_OPTION_ARG_NONE, &opt_digest, "Print a checksum of each output embedding", NULL },
    { "f16", 0, 0, G_OPTION_ARG_NONE, &opt_f16, "--preset: F16 matrix weights, as a converted F16 file", NULL },
    { "q8", 0, 0, G_OPTION_ARG_NONE, &opt_q8, "--preset: each encoder with F32 weights, then the same weights in q8 (int8, as convert.py --dtype q8 writes them): speed-up and cosine; --sgemm: the int8 linear layers too", NULL },
    { NULL }
  };
  GOptionContext *context = g_option_context_new ("- time the ImageBind runtime");
  GError *error = NULL;
  ImageBindModality selected[IMAGEBIND_N_MODALITIES], only = IMAGEBIND_MODALITY_VISION;
  IbModelConfig preset;
  guint n_selected = 0, m;
  double load[3] = { 0 };
  FILE *loadavg;
  int status = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  g_option_context_free (context);
  if (opt_f16 && opt_q8) {
    g_printerr ("--f16 and --q8 exclude each other\n");
    return 2;
  }
  if (opt_runs < 1 || opt_threads < 0) {
    g_printerr ("--runs must be >= 1 and --threads >= 0\n");
    return 2;
  }
  if (opt_modality && !imagebind_modality_from_name (opt_modality, &only)) {
    g_printerr ("unknown modality '%s'\n", opt_modality);
    return 2;
  }
  if (opt_preset && !preset_config (opt_preset, &preset)) {
    g_printerr ("unknown preset '%s' (known: huge, openclip-vit-b-32, openclip-vit-b-16, "
        "openclip-vit-l-14, openclip-vit-h-14)\n", opt_preset);
    return 2;
  }
  if (!opt_sgemm && !opt_preset && !opt_model) {
    g_printerr ("nothing to do: give --sgemm, --preset huge or --model FILE.gguf (see --help)\n");
    return 2;
  }
  for (m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    if (!opt_modality || m == only)
      selected[n_selected++] = m;

  if (!ib_blas_init (&error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  /* The machine's load says how far to trust the numbers. */
  loadavg = fopen ("/proc/loadavg", "r");
  if (loadavg) {
    if (fscanf (loadavg, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
      load[0] = -1;
    fclose (loadavg);
  }
  g_print ("BLAS: %s\n", imagebind_blas_info ());
  g_print ("threads: %d (of %u cores), runs: %d (median), load average: %.2f\n",
      opt_threads ? opt_threads : (int) g_get_num_processors (), g_get_num_processors (),
      opt_runs, load[0]);

  if (opt_sgemm) {
    g_print ("sgemm, C = A B^T as the linear layers (PyTorch weights) compute it; xN: N\n"
        "independent products side by side, one single-threaded product per thread:\n");
    status |= run_sgemm (opt_modality != NULL, only);
  }
  if (opt_preset)
    status |= run_preset (&preset, selected, n_selected, opt_f16, opt_q8);
  if (opt_model)
    status |= run_model (opt_model, selected, n_selected);
  g_free (opt_preset);
  g_free (opt_model);
  g_free (opt_modality);
  return status;
}
