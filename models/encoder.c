/* The forward pass of the six encoders (../shared/spec/ARCHITECTURE.md §1-4) and the
 * per-caller context that holds its scratch memory.
 *
 * The N samples of a call (N = batch x clips) go through every layer together, so that each
 * linear layer is one matrix product over N x L rows and an F16 weight is widened once per
 * layer and pass (large batches are split into passes under a scratch budget). Attention runs
 * per sample and head on strided views of the packed q/k/v buffer. Every product goes through
 * ib_sgemm().
 *
 * Scratch per context, for n samples in a pass: 3 n L D floats (residual, LayerNorm output,
 * attention output) + max(n (L+1) 3D, n L 4D, n P patch_dim) (q/k/v, MLP hidden, patches) +
 * threads x ib_attention_scratch() (a head's scores) + for F16 models the largest widened
 * matrix, 4 D^2 floats (26 MB for the imagebind_huge vision encoder). */
#include "model-private.h"
#include "blas.h"
#include "ops.h"
#include "parallel.h"
#include "q8.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define STEM_LN_EPS 1e-5f     /* the four stem LayerNorms; ln_pre, blocks, heads: enc->ln_eps */
#define MAX_SAMPLES 65536

typedef enum {
  BUF_X,        /* (n, L, D) the residual stream (n: samples of the pass) */
  BUF_H,        /* (N, L, D) LayerNorm output; stem output */
  BUF_ATTN,     /* (N, L, D) attention output before out_proj */
  BUF_BIG,      /* (N, Lk, 3D) packed q/k/v, or (N, L, 4D) MLP hidden; im2col patches */
  BUF_SCORES,   /* per thread, ib_attention_scratch(): one head's attention matrix or blocks */
  BUF_WEIGHT,   /* an F16 weight widened to F32 */
  BUF_HEAD,     /* (N, out) head output and post-processed embeddings */
  N_BUFS
} BufferId;

struct _ImageBindContext {
  ImageBindModel *model;
  int n_threads;
  ImageBindTraceFunc trace;
  gpointer trace_data;
  float *buf[N_BUFS];
  gsize cap[N_BUFS];
  gsize max_chunk;      /* samples per pass; 0 = by the memory budget */
  IbProfile *profile;   /* NULL unless profiling */
};

ImageBindContextParams
imagebind_context_default_params (void)
{
  ImageBindContextParams p = { .n_threads = 0 };
  return p;
}

ImageBindContext *
imagebind_context_new (ImageBindModel *model, const ImageBindContextParams *params)
{
  ImageBindContext *ctx;
  ImageBindContextParams p = params ? *params : imagebind_context_default_params ();

  g_return_val_if_fail (model != NULL, NULL);
  ctx = g_new0 (ImageBindContext, 1);
  ctx->model = imagebind_model_ref (model);
  ctx->n_threads = p.n_threads > 0 ? p.n_threads : (int) g_get_num_processors ();
  return ctx;
}

void
imagebind_context_free (ImageBindContext *ctx)
{
  if (!ctx)
    return;
  for (int i = 0; i < N_BUFS; i++)
    g_free (ctx->buf[i]);
  imagebind_model_unref (ctx->model);
  g_free (ctx);
}

void
imagebind_context_set_trace (ImageBindContext *ctx, ImageBindTraceFunc func, gpointer user_data)
{
  g_return_if_fail (ctx != NULL);
  ctx->trace = func;
  ctx->trace_data = user_data;
}

/* Scratch buffer @id with room for @n floats; grows, never shrinks. */
static float *
scratch (ImageBindContext *ctx, BufferId id, gsize n)
{
  if (ctx->cap[id] < n) {
    g_free (ctx->buf[id]);
    ctx->buf[id] = g_new (float, n);
    ctx->cap[id] = n;
  }
  return ctx->buf[id];
}

static void
trace (ImageBindContext *ctx, const char *stage, const float *data, gsize n, gsize rows, gsize cols)
{
  if (ctx->trace)
    ctx->trace (stage, data, n, rows, cols, ctx->trace_data);
}

/* ---- profiling ---- */

double
ib_profile_now (void)
{
  struct timespec ts;

  /* ns, not g_get_monotonic_time()'s us: imagebind-bench times products of a few us with it */
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void
ib_context_set_profile (ImageBindContext *ctx, IbProfile *profile)
{
  ctx->profile = profile;
}

static double
stage_start (ImageBindContext *ctx)
{
  return ctx->profile ? ib_profile_now () : 0.0;
}

static void
stage_end (ImageBindContext *ctx, IbStage stage, double start, double flop)
{
  if (ctx->profile) {
    ctx->profile->seconds[stage] += ib_profile_now () - start;
    ctx->profile->flop[stage] += flop;
  }
}

/* The weight as F32, widened into the context's weight scratch if stored as F16 (or as I8 on
 * a CPU without the int8 kernels: ib_linear() takes I8 weights as they are otherwise). */
static IbWeight
wide_weight (ImageBindContext *ctx, const IbWeight *w)
{
  IbWeight f = *w;

  if (w->type == IB_GGUF_TENSOR_F32 || (w->type == IB_GGUF_TENSOR_I8 && ib_q8_have_vnni ()))
    return f;
  f.type = IB_GGUF_TENSOR_F32;
  f.data = ib_weight_f32 (w, scratch (ctx, BUF_WEIGHT, w->rows * w->cols), ctx->n_threads);
  f.packed = NULL;      /* an I8 weight's packed copy is the int8 kernels' layout */
  return f;
}

static void
linear (ImageBindContext *ctx, const float *x, gsize rows, const IbWeight *w, const float *b,
    float *y, gboolean accumulate)
{
  IbWeight f = wide_weight (ctx, w);
  ib_linear (x, f.cols, rows, &f, b, y, f.rows, accumulate, NULL, ctx->n_threads);
}

/* ---- transformer ---- */

typedef struct {
  const IbEncoder *enc; const float *qkv; float *scores, *attn;
  gsize D, L, Lk, H, hd, ld, scores_per_thread, heads, heads_per_task; float alpha;
  double *part_seconds;   /* (threads, IB_N_ATTN_PARTS) when profiling, else NULL */
} HeadJob;

/* The q of head @i of all samples' heads (sample i / H, head i % H). */
static const float *
head_q (const HeadJob *j, gsize i)
{
  return j->qkv + i / j->H * j->Lk * j->ld + i % j->H * j->hd;
}

/* A run of consecutive heads, so that each head knows the next one its thread computes. */
static void
head_task (guint task, guint thread, gpointer data)
{
  const HeadJob *j = data;
  gsize first = task * j->heads_per_task, end = MIN (j->heads, first + j->heads_per_task);

  for (gsize i = first; i < end; i++) {
    const float *q = head_q (j, i);
    float *out = j->attn + i / j->H * j->L * j->D + i % j->H * j->hd;
    ib_attention_head (q, q + j->D, q + 2 * j->D, j->ld, j->L, j->Lk, j->hd, j->alpha,
        j->enc->causal, out, j->D, j->scores + (gsize) thread * j->scores_per_thread,
        i + 1 < end ? head_q (j, i + 1) : NULL,
        j->part_seconds ? j->part_seconds + thread * IB_N_ATTN_PARTS : NULL);
  }
}

static void
attention (ImageBindContext *ctx, const IbEncoder *enc, const IbBlock *blk, gsize N)
{
  gsize D = enc->embed_dim, L = enc->num_tokens, H = enc->num_heads, hd = D / H;
  gboolean bias_kv = blk->bias_k != NULL;
  gsize Lk = L + (bias_kv ? 1 : 0);
  gsize ld = 3 * D;
  int team = (int) ib_parallel_max_threads (ctx->n_threads);
  float *h = ctx->buf[BUF_H];
  float *attn = ctx->buf[BUF_ATTN];
  float *qkv = scratch (ctx, BUF_BIG, N * Lk * ld);
  gsize per_thread = ib_attention_scratch (L, Lk, hd);
  float *scores = scratch (ctx, BUF_SCORES, (gsize) team * per_thread);
  double t = stage_start (ctx);
  IbWeight in_w = wide_weight (ctx, &blk->in_proj_w);
  float alpha = 1.0f / sqrtf ((float) hd);

  /* q, k, v of each sample as (Lk, 3D) rows; the extra key/value row holds bias_k / bias_v as
   * they are (not projected). */
  for (gsize s = 0; s < N; s++) {
    float *q = qkv + s * Lk * ld;
    ib_linear (h + s * L * D, D, L, &in_w, blk->in_proj_b, q, ld, FALSE, NULL, ctx->n_threads);
    if (bias_kv) {
      float *extra = q + L * ld;
      memset (extra, 0, D * sizeof (float));
      memcpy (extra + D, blk->bias_k, D * sizeof (float));
      memcpy (extra + 2 * D, blk->bias_v, D * sizeof (float));
    }
  }

  stage_end (ctx, IB_STAGE_QKV, t, 2.0 * N * L * 3 * D * D);

  t = stage_start (ctx);
  {
    /* one run of heads per thread: heads all cost the same */
    gsize heads = N * H, per_task = (heads + team - 1) / team;
    HeadJob job = { enc, qkv, scores, attn, D, L, Lk, H, hd, ld, per_thread, heads, per_task,
      alpha, NULL };
    if (ctx->profile)
      job.part_seconds = g_new0 (double, (gsize) team * IB_N_ATTN_PARTS);
    ib_parallel_for ((heads + per_task - 1) / per_task, ctx->n_threads, head_task, &job);
    if (ctx->profile) {
      for (int i = 0; i < team; i++)
        for (int p = 0; p < IB_N_ATTN_PARTS; p++)
          ctx->profile->attn_thread_seconds[p] += job.part_seconds[i * IB_N_ATTN_PARTS + p];
      g_free (job.part_seconds);
    }
  }
  stage_end (ctx, IB_STAGE_ATTENTION, t, 4.0 * N * H * L * Lk * hd);
}

static void
block_forward (ImageBindContext *ctx, const IbEncoder *enc, const IbBlock *blk, gsize N)
{
  gsize D = enc->embed_dim, rows = N * enc->num_tokens;
  float *x = ctx->buf[BUF_X], *h = ctx->buf[BUF_H], *mid;
  double mm = 2.0 * rows * D * D;    /* FLOP of a D x D product over all rows */
  double t = stage_start (ctx);

  ib_layer_norm (x, h, rows, D, blk->norm1_w, blk->norm1_b, enc->ln_eps, ctx->n_threads);
  stage_end (ctx, IB_STAGE_LAYER_NORM, t, 0);
  attention (ctx, enc, blk, N);
  t = stage_start (ctx);
  linear (ctx, ctx->buf[BUF_ATTN], rows, &blk->out_proj_w, blk->out_proj_b, x, TRUE);
  stage_end (ctx, IB_STAGE_OUT_PROJ, t, mm);

  t = stage_start (ctx);
  ib_layer_norm (x, h, rows, D, blk->norm2_w, blk->norm2_b, enc->ln_eps, ctx->n_threads);
  stage_end (ctx, IB_STAGE_LAYER_NORM, t, 0);
  t = stage_start (ctx);
  mid = scratch (ctx, BUF_BIG, rows * 4 * D);
  {
    IbWeight f = wide_weight (ctx, &blk->fc1_w);
    ib_linear_gelu (h, D, rows, &f, blk->fc1_b, mid, 4 * D,
        enc->activation == IB_ACTIVATION_QUICK_GELU, NULL, ctx->n_threads);
  }
  stage_end (ctx, IB_STAGE_FC1, t, 4 * mm);
  t = stage_start (ctx);
  linear (ctx, mid, rows, &blk->fc2_w, blk->fc2_b, x, TRUE);
  stage_end (ctx, IB_STAGE_FC2, t, 4 * mm);
}

/* Trunk, head and post-processing of @N samples whose trunk input is in BUF_X; the
 * normalised, scaled embeddings go to @emb (N x out_dim).
 * @pool: token index each sample's head reads (NULL: 0, the class token). */
static void
trunk_and_head (ImageBindContext *ctx, const IbEncoder *enc, gsize N, const gsize *pool, float *emb)
{
  gsize D = enc->embed_dim, L = enc->num_tokens, O = ctx->model->out_dim;
  float *x = ctx->buf[BUF_X];
  float *pooled = ctx->buf[BUF_H];
  double t;

  if (enc->ln_pre_w) {
    t = stage_start (ctx);
    ib_layer_norm (x, x, N * L, D, enc->ln_pre_w, enc->ln_pre_b, enc->ln_eps, ctx->n_threads);
    stage_end (ctx, IB_STAGE_LAYER_NORM, t, 0);
    trace (ctx, "after_ln_pre", x, N, L, D);
  }
  for (guint i = 0; i < enc->num_blocks; i++) {
    block_forward (ctx, enc, &enc->blocks[i], N);
    if (i == 0)
      trace (ctx, "after_block0", x, N, L, D);
  }
  trace (ctx, "after_trunk", x, N, L, D);

  t = stage_start (ctx);
  for (gsize s = 0; s < N; s++)
    memcpy (pooled + s * D, x + (s * L + (pool ? pool[s] : 0)) * D, D * sizeof (float));
  ib_layer_norm (pooled, pooled, N, D, enc->head_ln_w, enc->head_ln_b, enc->ln_eps, ctx->n_threads);
  trace (ctx, "after_pool", pooled, 1, N, D);
  linear (ctx, pooled, N, &enc->head_w, NULL, emb, FALSE);
  trace (ctx, "after_head", emb, 1, N, O);

  for (gsize s = 0; s < N; s++) {
    float *e = emb + s * O;
    double sq = 0;
    float norm;
    for (gsize j = 0; j < O; j++)
      sq += (double) e[j] * e[j];
    norm = MAX ((float) sqrt (sq), 1e-12f);
    for (gsize j = 0; j < O; j++)
      e[j] = e[j] / norm * enc->logit_scale;
  }
  stage_end (ctx, IB_STAGE_HEAD, t, 2.0 * N * D * O);
  trace (ctx, "after_postprocessor", emb, 1, N, O);
}

/* The official clip mean: out[b] = mean over s of emb[b * S + s]. */
static void
clip_mean (const float *emb, gsize B, gsize S, gsize O, float *out)
{
  for (gsize b = 0; b < B; b++) {
    for (gsize j = 0; j < O; j++) {
      double sum = 0;
      for (gsize s = 0; s < S; s++)
        sum += emb[(b * S + s) * O + j];
      out[b * O + j] = (float) (sum / S);
    }
  }
}

/* Samples per pass: all of them up to a scratch budget, so that memory stays bounded for any
 * batch (the MLP hidden layer, N x L x 4D floats, is the largest buffer). */
static gsize
chunk_samples (ImageBindContext *ctx, const IbEncoder *enc, gsize N)
{
  gsize per_sample = (gsize) (enc->num_tokens + 1) * 4 * enc->embed_dim * sizeof (float);
  gsize budget = (gsize) 256 << 20;
  gsize chunk = MAX (budget / per_sample, 1);
  if (ctx->max_chunk)
    chunk = MIN (chunk, ctx->max_chunk);
  return MIN (chunk, N);
}

void
ib_context_set_max_chunk (ImageBindContext *ctx, gsize max_samples)
{
  ctx->max_chunk = max_samples;
}

/* ---- stems ---- */

/* im2col of one (C, T, H, W) sample into (P, patch_dim) rows; @frame_stride 0 repeats a
 * single frame over the kernel's time extent. */
static void
extract_patches (const IbEncoder *enc, const float *sample, gsize T_in, gsize frame_stride,
    float *cols, int n_threads)
{
  gsize H = enc->in_height, W = enc->in_width;
  gsize chan_stride = T_in * H * W;
  gsize gt = enc->grid[0], gh = enc->grid[1], gw = enc->grid[2];
  gsize kt = enc->kernel[0], kh = enc->kernel[1], kw = enc->kernel[2];
  gsize st = enc->stride[0], sh = enc->stride[1], sw = enc->stride[2];
  gsize K = enc->patch_dim, P = gt * gh * gw;

  for (gsize p = 0; p < P; p++) {
    gsize t = p / (gh * gw), i = (p / gw) % gh, j = p % gw;
    float *row = cols + p * K;
    for (gsize c = 0; c < enc->in_channels; c++)
      for (gsize dt = 0; dt < kt; dt++)
        for (gsize dh = 0; dh < kh; dh++) {
          const float *src = sample + c * chan_stride + (t * st + dt) * frame_stride +
              (i * sh + dh) * W + j * sw;
          memcpy (row, src, kw * sizeof (float));
          row += kw;
        }
  }
}

/* [cls, tokens] + positions into BUF_X from the stem output (N, P, D) in BUF_H. */
static void
add_positions (ImageBindContext *ctx, const IbEncoder *enc, gsize N)
{
  gsize D = enc->embed_dim, L = enc->num_tokens, P = enc->num_patches;
  gsize first = enc->cls ? 1 : 0;
  float *x = scratch (ctx, BUF_X, N * L * D);
  const float *h = ctx->buf[BUF_H];

  for (gsize s = 0; s < N; s++) {
    float *xs = x + s * L * D;
    if (enc->cls)
      for (gsize j = 0; j < D; j++)
        xs[j] = enc->cls[j] + enc->pos[j];
    for (gsize t = 0; t < P; t++) {
      const float *src = h + (s * P + t) * D;
      const float *pos = enc->pos + (t + first) * D;
      float *dst = xs + (t + first) * D;
      for (gsize j = 0; j < D; j++)
        dst[j] = src[j] + pos[j];
    }
  }
}

static void
reserve (ImageBindContext *ctx, const IbEncoder *enc, gsize N)
{
  gsize D = enc->embed_dim, L = enc->num_tokens;
  scratch (ctx, BUF_X, N * L * D);
  scratch (ctx, BUF_H, N * L * D);
  scratch (ctx, BUF_ATTN, N * L * D);
}

/* ---- input checks ---- */

static char *
shape_to_string (const gint64 *shape, guint n_dims)
{
  GString *s = g_string_new ("(");
  for (guint i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append (s, ")");
  return g_string_free (s, FALSE);
}

static gboolean
check_modality (ImageBindContext *ctx, ImageBindModality modality, GError **error)
{
  if ((guint) modality >= IMAGEBIND_N_MODALITIES) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "invalid modality %d", modality);
    return FALSE;
  }
  if (!ctx->model->enc[modality].present) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY,
        "the model \"%s\" has no %s encoder", ctx->model->name, imagebind_modality_name (modality));
    return FALSE;
  }
  return TRUE;
}

/* Splits @shape into batch, clips and the per-sample shape, which must be what the encoder
 * takes. Vision samples may have a time axis of 1 (repeated) or the model's frame count. */
static gboolean
parse_shape (const IbEncoder *enc, const gint64 *shape, guint n_dims, gsize *B, gsize *S,
    gsize *T_in, GError **error)
{
  gboolean clips = n_dims >= 5;
  guint lead = clips ? 2 : 1;
  const gint64 *sample = shape + lead;
  guint ns = n_dims >= lead ? n_dims - lead : 0;
  gboolean ok = n_dims >= 3;
  g_autofree char *want = NULL;

  *T_in = 1;
  switch (enc->modality) {
    case IMAGEBIND_MODALITY_VISION:
      {
        /* a 2D patch stem (CLIP) takes single frames only */
        g_autofree char *frames = enc->in_frames > 1 ? g_strdup_printf ("1 or %u", enc->in_frames) :
            g_strdup ("1");
        want = g_strdup_printf ("(B, 3, %u, %u) images or (B, S, 3, T, %u, %u) clips with T = %s",
            enc->in_height, enc->in_width, enc->in_height, enc->in_width, frames);
      }
      if (ok && ns == 3)
        ok = sample[0] == 3 && sample[1] == enc->in_height && sample[2] == enc->in_width;
      else if (ok && ns == 4) {
        ok = sample[0] == 3 && (sample[1] == 1 || sample[1] == enc->in_frames) &&
            sample[2] == enc->in_height && sample[3] == enc->in_width;
        *T_in = ok ? sample[1] : 1;
      } else
        ok = FALSE;
      break;
    case IMAGEBIND_MODALITY_AUDIO:
    case IMAGEBIND_MODALITY_DEPTH:
    case IMAGEBIND_MODALITY_THERMAL:
      want = g_strdup_printf ("(B, 1, %u, %u) or (B, S, 1, %u, %u)", enc->in_height,
          enc->in_width, enc->in_height, enc->in_width);
      ok = ok && ns == 3 && sample[0] == 1 && sample[1] == enc->in_height && sample[2] == enc->in_width;
      break;
    case IMAGEBIND_MODALITY_IMU:
      want = g_strdup_printf ("(B, %u, %u)", enc->in_channels, enc->in_width);
      ok = ok && !clips && ns == 2 && sample[0] == enc->in_channels && sample[1] == enc->in_width;
      break;
    default:
      ok = FALSE;
  }
  if (ok) {
    for (guint i = 0; i < lead; i++)
      ok = ok && shape[i] >= 1 && shape[i] <= MAX_SAMPLES;
    ok = ok && (clips ? shape[0] * shape[1] : shape[0]) <= MAX_SAMPLES;
  }
  if (!ok) {
    g_autofree char *got = shape ? shape_to_string (shape, n_dims) : g_strdup ("none");
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "%s input: expected %s, got %s", imagebind_modality_name (enc->modality), want, got);
    return FALSE;
  }
  *B = shape[0];
  *S = clips ? shape[1] : 1;
  return TRUE;
}

/* A NaN or infinity in an embedding (NaN/Inf weights in the file, or an overflow inside the
 * encoder) is an error, never an output: downstream it would silently match nothing, or be
 * written out as invalid JSON or as zeros. */
static gboolean
check_finite_output (ImageBindModality modality, const float *out, gsize batch, gsize dim,
    GError **error)
{
  for (gsize i = 0; i < batch * dim; i++) {
    if (!isfinite (out[i])) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NUMERIC,
          "%s: the model produced a non-finite embedding (%g in sample %" G_GSIZE_FORMAT
          "): its weights are probably corrupt (NaN or infinity), or a value overflowed",
          imagebind_modality_name (modality), out[i], i / dim);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
imagebind_embed (ImageBindContext *ctx, ImageBindModality modality, const float *data,
    const gint64 *shape, guint n_dims, float *out, GError **error)
{
  const IbEncoder *enc;
  gsize B, S, T_in, N, D, P, K, sample_size, frame_stride, chunk;
  float *cols, *h, *emb;

  g_return_val_if_fail (ctx != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (!check_modality (ctx, modality, error))
    return FALSE;
  if (modality == IMAGEBIND_MODALITY_TEXT) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "text takes token ids: use imagebind_embed_text()");
    return FALSE;
  }
  enc = &ctx->model->enc[modality];
  if (!data || !shape) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT, "no input data");
    return FALSE;
  }
  if (!parse_shape (enc, shape, n_dims, &B, &S, &T_in, error))
    return FALSE;

  N = B * S;
  sample_size = (gsize) enc->in_channels * T_in * enc->in_height * enc->in_width;
  for (gsize i = 0; i < N * sample_size; i++) {
    if (!isfinite (data[i])) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "%s input: value %g at flat index %" G_GSIZE_FORMAT " is not finite",
          imagebind_modality_name (modality), data[i], i);
      return FALSE;
    }
  }

  D = enc->embed_dim;
  P = enc->num_patches;
  K = enc->patch_dim;
  chunk = chunk_samples (ctx, enc, N);
  reserve (ctx, enc, chunk);
  emb = scratch (ctx, BUF_HEAD, N * ctx->model->out_dim);
  frame_stride = T_in == 1 ? 0 : (gsize) enc->in_height * enc->in_width;
  for (gsize c0 = 0; c0 < N; c0 += chunk) {
    gsize n = MIN (chunk, N - c0);
    double t = stage_start (ctx);
    /* Patches of every sample, then one product with the stem weight. A single frame is read
     * twice (frame stride 0): the official stem repeats T = 1 to the kernel's 2 frames. */
    cols = scratch (ctx, BUF_BIG, n * P * K);
    for (gsize s = 0; s < n; s++)
      extract_patches (enc, data + (c0 + s) * sample_size, T_in, frame_stride, cols + s * P * K,
          ctx->n_threads);
    h = ctx->buf[BUF_H];
    linear (ctx, cols, n * P, &enc->stem_w, NULL, h, FALSE);
    if (enc->stem_ln_w)
      ib_layer_norm (h, h, n * P, D, enc->stem_ln_w, enc->stem_ln_b, STEM_LN_EPS, ctx->n_threads);
    trace (ctx, "after_stem", h, n, P, D);

    add_positions (ctx, enc, n);
    stage_end (ctx, IB_STAGE_STEM, t, 2.0 * n * P * K * D);
    trace (ctx, "after_preprocessor", ctx->buf[BUF_X], n, enc->num_tokens, D);
    trunk_and_head (ctx, enc, n, NULL, emb + c0 * ctx->model->out_dim);
  }
  clip_mean (emb, B, S, ctx->model->out_dim, out);
  if (ctx->profile)
    ctx->profile->forwards++;
  return check_finite_output (modality, out, B, ctx->model->out_dim, error);
}

gboolean
imagebind_embed_text (ImageBindContext *ctx, const gint32 *ids, guint batch, float *out,
    GError **error)
{
  const IbEncoder *enc;
  gsize L, D, chunk;
  float *h, *emb;
  g_autofree gsize *eos = NULL;

  g_return_val_if_fail (ctx != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (!check_modality (ctx, IMAGEBIND_MODALITY_TEXT, error))
    return FALSE;
  enc = &ctx->model->enc[IMAGEBIND_MODALITY_TEXT];
  L = enc->context_length;
  D = enc->embed_dim;
  if (!ids || batch == 0 || batch > MAX_SAMPLES) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
        "text input: expected 1 to %d sequences of %" G_GSIZE_FORMAT " ids, got %u", MAX_SAMPLES,
        L, ids ? batch : 0);
    return FALSE;
  }
  for (gsize i = 0; i < batch * L; i++) {
    if (ids[i] < 0 || (guint32) ids[i] >= enc->vocab_size) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_INPUT,
          "text input: id %d of sequence %" G_GSIZE_FORMAT " at position %" G_GSIZE_FORMAT
          " is outside the vocabulary [0, %u)", ids[i], i / L, i % L, enc->vocab_size);
      return FALSE;
    }
  }

  chunk = chunk_samples (ctx, enc, batch);
  reserve (ctx, enc, chunk);
  emb = scratch (ctx, BUF_HEAD, (gsize) batch * ctx->model->out_dim);
  eos = g_new (gsize, chunk);
  for (gsize c0 = 0; c0 < batch; c0 += chunk) {
    gsize n = MIN (chunk, batch - c0);
    double start = stage_start (ctx);
    h = ctx->buf[BUF_H];
    for (gsize s = 0; s < n; s++) {
      const gint32 *seq = ids + (c0 + s) * L;
      eos[s] = 0;
      for (gsize t = 0; t < L; t++) {
        float *dst = h + (s * L + t) * D;
        ib_weight_row_f32 (&enc->stem_w, (gsize) seq[t], dst);
        if (seq[t] > seq[eos[s]])
          eos[s] = t;     /* first occurrence of the largest id */
      }
    }
    trace (ctx, "after_stem", h, n, L, D);
    add_positions (ctx, enc, n);
    stage_end (ctx, IB_STAGE_STEM, start, 0);
    trace (ctx, "after_preprocessor", ctx->buf[BUF_X], n, L, D);
    trunk_and_head (ctx, enc, n, eos, emb + c0 * ctx->model->out_dim);
  }
  clip_mean (emb, batch, 1, ctx->model->out_dim, out);
  if (ctx->profile)
    ctx->profile->forwards++;
  return check_finite_output (IMAGEBIND_MODALITY_TEXT, out, batch, ctx->model->out_dim, error);
}
