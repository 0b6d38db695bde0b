/* ImageBindModel: loading a GGUF model file (models/GGUF.md), checking it against its
 * hyper-parameters, and the model's read-only accessors.
 *
 * Every size comes from the file: widths, depths and head counts from the keys, token counts
 * from the positional tables, the output width, context length and vocabulary from the keys and
 * the tensor shapes, cross-checked. Each tensor's shape is checked against what the
 * hyper-parameters imply before any computation can read it, so a forward pass never reads
 * outside a tensor.
 *
 * Memory: F32 matrices are used in place in the read-only mapping. F16 matrices stay F16 in the
 * mapping and are widened into a context's scratch right before each product; only the small
 * tensors (vectors, positional tables, class tokens) are widened once at load. */
#include "model-private.h"
#include "blas.h"
#include "log.h"
#include "ops.h"
#include "imagebind-frontend.h"
#include "q8.h"

#include <math.h>
#include <string.h>

/* LayerNorm eps of ln_pre, the blocks and the heads: ImageBind's partial(nn.LayerNorm,
 * eps=1e-6); OpenCLIP and Hugging Face CLIP use nn.LayerNorm's default 1e-5. */
#define IMAGEBIND_LN_EPS 1e-6f
#define CLIP_LN_EPS 1e-5f



static const char *const modality_names[IMAGEBIND_N_MODALITIES] = {
  "vision", "text", "audio", "depth", "thermal", "imu",
};

const char *
imagebind_modality_name (ImageBindModality modality)
{
  if ((guint) modality >= IMAGEBIND_N_MODALITIES)
    return "invalid";
  return modality_names[modality];
}

gboolean
imagebind_modality_from_name (const char *name, ImageBindModality *modality)
{
  for (guint m = 0; name && m < IMAGEBIND_N_MODALITIES; m++) {
    if (g_ascii_strcasecmp (name, modality_names[m]) == 0) {
      if (modality)
        *modality = m;
      return TRUE;
    }
  }
  return FALSE;
}

/* ---- loading ---- */

typedef struct {
  ImageBindModel *model;
  IbGguf *gguf;
  GError **error;
} Loader;

/* Formats a PyTorch-order shape "(a, b, c)". */
static char *
shape_string (const guint64 *dims, guint n)
{
  GString *s = g_string_new ("(");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%" G_GUINT64_FORMAT, i ? ", " : "", dims[i]);
  g_string_append (s, n == 1 ? ",)" : ")");
  return g_string_free (s, FALSE);
}

/* Whether the file's shape holds the expected one in the same memory order: equal after
 * dropping size-1 dimensions, or obtained from it by merging adjacent dimensions (GGUF has at
 * most 4 dimensions; the vision stem weight has 5). */
static gboolean
shape_compatible (const guint64 *file, guint n_file, const guint64 *expected, guint n_expected)
{
  guint64 f[IB_GGUF_MAX_DIMS], e[8];
  guint nf = 0, ne = 0, k = 0;

  for (guint i = 0; i < n_file; i++)
    if (file[i] != 1)
      f[nf++] = file[i];
  for (guint i = 0; i < n_expected; i++)
    if (expected[i] != 1)
      e[ne++] = expected[i];
  for (guint j = 0; j < nf; j++) {
    guint64 acc;
    if (k >= ne)
      return FALSE;
    acc = e[k++];
    while (acc < f[j] && k < ne)
      acc *= e[k++];
    if (acc != f[j])
      return FALSE;
  }
  return k == ne;
}

/* Finds @name and checks its shape (PyTorch order) and type (F32 or F16; I8 too when
 * @allow_i8: matrix weights); sets the error naming the tensor. */
static const IbGgufTensor *
find_tensor_typed (Loader *ld, const char *name, const guint64 *shape, guint n_dims,
    gboolean allow_i8)
{
  const IbGgufTensor *t = ib_gguf_find_tensor (ld->gguf, name);
  guint64 file_shape[IB_GGUF_MAX_DIMS];

  if (!t) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s is missing from the model file", name);
    return NULL;
  }
  for (guint i = 0; i < t->n_dims; i++)
    file_shape[i] = t->ne[t->n_dims - 1 - i];
  if (!shape_compatible (file_shape, t->n_dims, shape, n_dims)) {
    g_autofree char *got = shape_string (file_shape, t->n_dims);
    g_autofree char *want = shape_string (shape, n_dims);
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s has shape %s but the model's hyper-parameters give %s", name, got, want);
    return NULL;
  }
  if (t->type != IB_GGUF_TENSOR_F32 && t->type != IB_GGUF_TENSOR_F16 &&
      !(allow_i8 && t->type == IB_GGUF_TENSOR_I8)) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s has an unsupported type %d%s", name, t->type,
        t->type == IB_GGUF_TENSOR_I8 ? " (I8 is for weight matrices only)" : "");
    return NULL;
  }
  return t;
}

static const IbGgufTensor *
find_tensor (Loader *ld, const char *name, const guint64 *shape, guint n_dims)
{
  return find_tensor_typed (ld, name, shape, n_dims, FALSE);
}

/* The scales of an I8 weight of @rows rows: the F32 tensor "<name>.q8_scale" of @rows finite,
 * non-negative values (models/GGUF.md); and the per-row sums' storage. */
static gboolean
get_q8_scale (Loader *ld, const char *name, gsize rows, IbWeight *w)
{
  g_autofree char *scale_name = g_strconcat (name, ".q8_scale", NULL);
  const IbGgufTensor *t = ib_gguf_find_tensor (ld->gguf, scale_name);
  const float *scale;

  if (!t || t->type != IB_GGUF_TENSOR_F32 || t->n_elements != rows) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s is I8 but %s is %s (expected %" G_GSIZE_FORMAT " F32 scales, one per row)",
        name, scale_name, !t ? "missing" : t->type != IB_GGUF_TENSOR_F32 ? "not F32" :
        "of another length", rows);
    return FALSE;
  }
  scale = t->data;
  for (gsize r = 0; r < rows; r++) {
    if (!(scale[r] >= 0.0f) || !isfinite (scale[r])) {
      g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
          "tensor %s: scale %g of row %" G_GSIZE_FORMAT " is not a finite value >= 0",
          scale_name, scale[r], r);
      return FALSE;
    }
  }
  if (w->cols > IB_Q8_MAX_COLS) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s: I8 rows of %" G_GSIZE_FORMAT " values are longer than the int8 kernels'"
        " exact limit (%d)", name, w->cols, IB_Q8_MAX_COLS);
    return FALSE;
  }
  w->scale = scale;
  w->q8 = g_malloc0 (sizeof (IbQ8Sums) + rows * sizeof (gint32));
  w->q8->sums = (gint32 *) (w->q8 + 1);
  g_ptr_array_add (ld->model->owned, w->q8);
  ld->model->any_q8 = TRUE;
  return TRUE;
}

/* A small tensor as float32 (widened once into model-owned memory when stored as F16). */
static const float *
get_vector (Loader *ld, const char *name, const guint64 *shape, guint n_dims)
{
  const IbGgufTensor *t = find_tensor (ld, name, shape, n_dims);
  float *wide;

  if (!t)
    return NULL;
  if (t->type == IB_GGUF_TENSOR_F32)
    return t->data;
  wide = g_new (float, t->n_elements);
  ib_f16_to_f32 (t->data, wide, t->n_elements);
  g_ptr_array_add (ld->model->owned, wide);
  return wide;
}

static const float *
get_vec1 (Loader *ld, const char *name, guint64 n)
{
  return get_vector (ld, name, &n, 1);
}

/* A matrix weight: rows = shape[0], cols = product of the rest; kept as stored. */
static gboolean
get_weight (Loader *ld, const char *name, const guint64 *shape, guint n_dims, IbWeight *w)
{
  const IbGgufTensor *t = find_tensor_typed (ld, name, shape, n_dims, TRUE);
  if (!t)
    return FALSE;
  memset (w, 0, sizeof *w);
  w->type = t->type;
  w->data = t->data;
  w->rows = shape[0];
  w->cols = t->n_elements / shape[0];
  if (t->type == IB_GGUF_TENSOR_I8 && !get_q8_scale (ld, name, w->rows, w))
    return FALSE;
  ld->model->max_weight_elems = MAX (ld->model->max_weight_elems, t->n_elements);
  if (t->type == IB_GGUF_TENSOR_F16)
    ld->model->any_f16 = TRUE;
  return TRUE;
}

static gboolean
get_weight2 (Loader *ld, const char *name, guint64 rows, guint64 cols, IbWeight *w)
{
  guint64 shape[2] = { rows, cols };
  return get_weight (ld, name, shape, 2, w);
}

static gboolean
get_key_u32 (Loader *ld, const char *key, guint32 *value)
{
  if (ib_gguf_get_u32 (ld->gguf, key, value) && *value > 0)
    return TRUE;
  g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
      "key %s is missing or not a positive integer", key);
  return FALSE;
}

/* Optional key with a default; present but zero is an error. */
static gboolean
opt_key_u32 (Loader *ld, const char *key, guint32 *value, guint32 fallback)
{
  if (!ib_gguf_get_u32 (ld->gguf, key, value)) {
    *value = fallback;
    return TRUE;
  }
  if (*value == 0) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL, "key %s is 0", key);
    return FALSE;
  }
  return TRUE;
}

gboolean
ib_encoder_stem_geometry (IbEncoder *enc, guint C, guint T, guint H, guint W, const guint k[3], const guint s[3])
{
  guint in[3] = { T, H, W };
  enc->in_channels = C;
  enc->in_frames = T;
  enc->in_height = H;
  enc->in_width = W;
  enc->num_patches = 1;
  for (int i = 0; i < 3; i++) {
    if (k[i] == 0 || s[i] == 0 || in[i] < k[i])
      return FALSE;
    enc->kernel[i] = k[i];
    enc->stride[i] = s[i];
    enc->grid[i] = (in[i] - k[i]) / s[i] + 1;
    enc->num_patches *= enc->grid[i];
  }
  enc->patch_dim = C * k[0] * k[1] * k[2];
  return TRUE;
}

void
ib_encoder_set_logit_scale (IbEncoder *enc, float log_scale)
{
  enc->has_logit_scale = TRUE;
  enc->logit_scale = MIN (expf (log_scale), 100.0f);
}

static gboolean
load_blocks (Loader *ld, IbEncoder *enc, gboolean bias_kv)
{
  const char *m = modality_names[enc->modality];
  guint64 D = enc->embed_dim;
  guint64 bkv_shape[3] = { 1, 1, D };

  enc->blocks = g_new0 (IbBlock, enc->num_blocks);
  g_ptr_array_add (ld->model->owned, enc->blocks);
  for (guint i = 0; i < enc->num_blocks; i++) {
    IbBlock *b = &enc->blocks[i];
    g_autofree char *p = g_strdup_printf ("modality_trunks.%s.blocks.%u.", m, i);
    char *name_buf = NULL;
#define N(suffix) (g_free (name_buf), name_buf = g_strconcat (p, suffix, NULL))
    gboolean ok =
        (b->norm1_w = get_vec1 (ld, N ("norm_1.weight"), D)) &&
        (b->norm1_b = get_vec1 (ld, N ("norm_1.bias"), D)) &&
        get_weight2 (ld, N ("attn.in_proj_weight"), 3 * D, D, &b->in_proj_w) &&
        (b->in_proj_b = get_vec1 (ld, N ("attn.in_proj_bias"), 3 * D)) &&
        get_weight2 (ld, N ("attn.out_proj.weight"), D, D, &b->out_proj_w) &&
        (b->out_proj_b = get_vec1 (ld, N ("attn.out_proj.bias"), D)) &&
        (b->norm2_w = get_vec1 (ld, N ("norm_2.weight"), D)) &&
        (b->norm2_b = get_vec1 (ld, N ("norm_2.bias"), D)) &&
        get_weight2 (ld, N ("mlp.fc1.weight"), 4 * D, D, &b->fc1_w) &&
        (b->fc1_b = get_vec1 (ld, N ("mlp.fc1.bias"), 4 * D)) &&
        get_weight2 (ld, N ("mlp.fc2.weight"), D, 4 * D, &b->fc2_w) &&
        (b->fc2_b = get_vec1 (ld, N ("mlp.fc2.bias"), D));
    if (ok && bias_kv)
      ok = (b->bias_k = get_vector (ld, N ("attn.bias_k"), bkv_shape, 3)) &&
          (b->bias_v = get_vector (ld, N ("attn.bias_v"), bkv_shape, 3));
    else if (ok && (ib_gguf_find_tensor (ld->gguf, N ("attn.bias_k")) ||
            ib_gguf_find_tensor (ld->gguf, N ("attn.bias_v")))) {
      g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
          "tensor %s is present, but the %s encoder has no bias_k/bias_v", name_buf, m);
      ok = FALSE;
    }
#undef N
    g_free (name_buf);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* The positional table's row count L, from its shape (1, L, D). */
static gboolean
pos_table_rows (Loader *ld, const char *name, guint D, guint *L)
{
  const IbGgufTensor *t = ib_gguf_find_tensor (ld->gguf, name);
  if (!t) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s is missing from the model file", name);
    return FALSE;
  }
  if (t->ne[0] != D || t->n_elements % D != 0 || t->n_elements / D < 2 ||
      t->n_elements / D > G_MAXUINT16) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s: expected (1, L, %u) positions, got %" G_GUINT64_FORMAT " elements with"
        " last dimension %" G_GUINT64_FORMAT, name, D, t->n_elements, t->ne[0]);
    return FALSE;
  }
  *L = t->n_elements / D;
  return TRUE;
}

static gboolean
check_tokens (Loader *ld, IbEncoder *enc, const char *pos_name, const char *why)
{
  if (enc->num_patches + 1 != enc->num_tokens) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s has %u positions, but %s gives %u patches + 1 class token",
        pos_name, enc->num_tokens, why, enc->num_patches);
    return FALSE;
  }
  return TRUE;
}

/* Stems: each sets the encoder's geometry, checks it against the positional table's L, and
 * loads the stem weight (and the names of its LayerNorm, for load_encoder). */

static gboolean
load_vision_stem (Loader *ld, IbEncoder *enc, const char *pre, const char *pos_name)
{
  const ImageBindInputGeometry *g = &ld->model->geometry;
  const guint32 *kv = NULL;
  gsize n_kv = 0;
  guint k[3] = { 2, 14, 14 };
  guint64 shape[5];
  g_autofree char *stem_name = g_strconcat (pre, "rgbt_stem.proj.1.weight", NULL);
  const char *ln_w = "modality_trunks.vision.pre_transformer_layer.0.weight";
  const char *ln_b = "modality_trunks.vision.pre_transformer_layer.0.bias";

  if (ib_gguf_get_u32_array (ld->gguf, "imagebind.vision.kernel_size", &kv, &n_kv)) {
    if (n_kv != 3) {
      g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
          "key imagebind.vision.kernel_size must have 3 entries (time, height, width)");
      return FALSE;
    }
    memcpy (k, kv, sizeof k);
  }
  if (!ib_encoder_stem_geometry (enc, 3, g->video_frames, g->image_size, g->image_size, k, k)) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "vision: kernel (%u, %u, %u) does not fit %u frames of %ux%u", k[0], k[1], k[2],
        g->video_frames, g->image_size, g->image_size);
    return FALSE;
  }
  if (!check_tokens (ld, enc, pos_name, "the vision geometry (image_size, video_frames, kernel_size)"))
    return FALSE;
  shape[0] = enc->embed_dim;
  shape[1] = 3;
  shape[2] = k[0];
  shape[3] = k[1];
  shape[4] = k[2];
  return get_weight (ld, stem_name, shape, 5, &enc->stem_w) &&
      (enc->ln_pre_w = get_vec1 (ld, ln_w, enc->embed_dim)) &&
      (enc->ln_pre_b = get_vec1 (ld, ln_b, enc->embed_dim));
}

static gboolean
load_text_stem (Loader *ld, IbEncoder *enc, const char *pre, const char *pos_name)
{
  guint D = enc->embed_dim, L = enc->num_tokens;
  guint32 ctx_len, vocab;
  g_autofree char *stem_name = g_strconcat (pre, "token_embedding.weight", NULL);
  const IbGgufTensor *emb = ib_gguf_find_tensor (ld->gguf, stem_name);

  if (!emb || emb->ne[0] != D || emb->n_elements / D == 0 || emb->n_elements / D > G_MAXINT32) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s is missing or not of shape (vocab, %u)", stem_name, D);
    return FALSE;
  }
  vocab = emb->n_elements / D;
  if (!opt_key_u32 (ld, "imagebind.text.context_length", &ctx_len, L) ||
      !opt_key_u32 (ld, "imagebind.text.vocab_size", &vocab, vocab))
    return FALSE;
  if (ctx_len != L) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "tensor %s has %u positions but imagebind.text.context_length is %u", pos_name, L, ctx_len);
    return FALSE;
  }
  if (!get_weight2 (ld, stem_name, vocab, D, &enc->stem_w))
    return FALSE;
  enc->vocab_size = vocab;
  enc->context_length = L;
  enc->num_patches = L;
  enc->causal = TRUE;
  ld->model->geometry.context_length = L;
  return TRUE;
}

/* Audio (kernel 16, stride 10 over mel x frames), depth and thermal (kernel = stride 16 over a
 * square image), IMU (windows over 6 x samples): all a 1-channel-or-more 2-D patching. */
static gboolean
load_conv_stem (Loader *ld, IbEncoder *enc, const char *pre, const char *pos_name,
    char **ln_w, char **ln_b)
{
  const ImageBindInputGeometry *g = &ld->model->geometry;
  const char *m = modality_names[enc->modality];
  const char *stem = "rgbt_stem";
  guint D = enc->embed_dim, L = enc->num_tokens;
  guint32 ks, st;
  guint k[3], s[3], side;
  guint64 shape[4];
  g_autofree char *key = g_strdup_printf ("imagebind.%s.kernel_size", m);
  g_autofree char *stem_name = NULL;

  switch (enc->modality) {
    case IMAGEBIND_MODALITY_AUDIO:
      if (!opt_key_u32 (ld, key, &ks, 16) || !opt_key_u32 (ld, "imagebind.audio.stride", &st, 10))
        return FALSE;
      k[0] = s[0] = 1;
      k[1] = k[2] = ks;
      s[1] = s[2] = st;
      if (!ib_encoder_stem_geometry (enc, 1, 1, g->audio_num_mel_bins, g->audio_target_len, k, s)) {
        g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
            "audio: kernel %u does not fit %u mel bins x %u frames", ks, g->audio_num_mel_bins,
            g->audio_target_len);
        return FALSE;
      }
      if (!check_tokens (ld, enc, pos_name, "the audio geometry (num_mel_bins, target_len, kernel_size, stride)"))
        return FALSE;
      break;
    case IMAGEBIND_MODALITY_DEPTH:
    case IMAGEBIND_MODALITY_THERMAL:
      /* No image-size key: the grid side is the square root of the patch count. */
      if (!opt_key_u32 (ld, key, &ks, 16))
        return FALSE;
      side = (guint) lround (sqrt ((double) (L - 1)));
      if (side * side != L - 1 || (guint64) side * ks > 65536) {
        g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
            "tensor %s has %u positions: not 1 + a square grid of patches", pos_name, L);
        return FALSE;
      }
      k[0] = 1;
      k[1] = k[2] = ks;
      ib_encoder_stem_geometry (enc, 1, 1, side * ks, side * ks, k, k);
      if (enc->modality == IMAGEBIND_MODALITY_DEPTH)
        stem = "depth_stem";
      break;
    case IMAGEBIND_MODALITY_IMU:
      if (!opt_key_u32 (ld, key, &ks, 8))
        return FALSE;
      /* 6 channels x 8 samples = 48: the official stem hard-codes both. */
      k[0] = k[1] = 1;
      k[2] = ks;
      if (!ib_encoder_stem_geometry (enc, 6, 1, 1, g->imu_num_samples, k, k)) {
        g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
            "imu: window %u does not fit %u samples", ks, g->imu_num_samples);
        return FALSE;
      }
      if (!check_tokens (ld, enc, pos_name, "the imu geometry (num_samples / kernel_size)"))
        return FALSE;
      stem = "imu_stem";
      break;
    default:
      g_assert_not_reached ();
  }

  stem_name = g_strdup_printf ("%s%s.proj.weight", pre, stem);
  *ln_w = g_strdup_printf ("%s%s.norm_layer.weight", pre, stem);
  *ln_b = g_strdup_printf ("%s%s.norm_layer.bias", pre, stem);
  shape[0] = D;
  if (enc->modality == IMAGEBIND_MODALITY_IMU)
    return get_weight2 (ld, stem_name, D, enc->patch_dim, &enc->stem_w);
  shape[1] = 1;
  shape[2] = shape[3] = ks;
  return get_weight (ld, stem_name, shape, 4, &enc->stem_w);
}

/* imagebind.<m>.activation: "gelu" (default) or "quick_gelu". */
static gboolean
read_activation (Loader *ld, IbEncoder *enc)
{
  g_autofree char *key = g_strdup_printf ("imagebind.%s.activation", modality_names[enc->modality]);
  const char *v = ib_gguf_get_string (ld->gguf, key);

  enc->activation = IB_ACTIVATION_GELU;
  if (!v && !ib_gguf_has_key (ld->gguf, key))
    return TRUE;
  if (v && strcmp (v, "gelu") == 0)
    return TRUE;
  if (v && strcmp (v, "quick_gelu") == 0) {
    enc->activation = IB_ACTIVATION_QUICK_GELU;
    return TRUE;
  }
  g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
      "key %s is %s%s%s: expected the string \"gelu\" (exact erf GELU) or \"quick_gelu\" "
      "(x sigmoid(1.702 x))", key, v ? "\"" : "", v ? v : "not a string", v ? "\"" : "");
  return FALSE;
}

/* imagebind.<m>.layer_norm_eps; absent: CLIP's 1e-5 for CLIP-family files, ImageBind's 1e-6
 * otherwise (files written before the key existed are ImageBind files). */
static gboolean
read_ln_eps (Loader *ld, IbEncoder *enc)
{
  g_autofree char *key = g_strdup_printf ("imagebind.%s.layer_norm_eps", modality_names[enc->modality]);
  float eps;

  if (!ib_gguf_has_key (ld->gguf, key)) {
    enc->ln_eps = strcmp (ld->model->family, "imagebind") == 0 ? IMAGEBIND_LN_EPS : CLIP_LN_EPS;
    return TRUE;
  }
  if (!ib_gguf_get_f32 (ld->gguf, key, &eps) || !(eps > 0.0f && eps < 1.0f)) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "key %s must be a float in (0, 1) (ImageBind 1e-6, CLIP 1e-5)", key);
    return FALSE;
  }
  enc->ln_eps = eps;
  return TRUE;
}

static gboolean
load_encoder (Loader *ld, ImageBindModality modality)
{
  ImageBindModel *model = ld->model;
  IbEncoder *enc = &model->enc[modality];
  const char *m = modality_names[modality];
  gboolean text = modality == IMAGEBIND_MODALITY_TEXT, vision = modality == IMAGEBIND_MODALITY_VISION;
  guint32 D, blocks, heads;
  guint64 pos_shape[3], cls_shape[3];
  const float *log_scale;
  g_autofree char *k_dim = g_strdup_printf ("imagebind.%s.embed_dim", m);
  g_autofree char *k_blocks = g_strdup_printf ("imagebind.%s.num_blocks", m);
  g_autofree char *k_heads = g_strdup_printf ("imagebind.%s.num_heads", m);
  g_autofree char *pre = g_strdup_printf ("modality_preprocessors.%s.", m);
  g_autofree char *pos_name = NULL, *ln_name_w = NULL, *ln_name_b = NULL, *cls_name = NULL;
  g_autofree char *head_ln_w = NULL, *head_ln_b = NULL, *head_w = NULL, *scale_name = NULL;

  if (!get_key_u32 (ld, k_dim, &D) || !get_key_u32 (ld, k_blocks, &blocks) ||
      !get_key_u32 (ld, k_heads, &heads))
    return FALSE;
  if (D % heads != 0 || D > 65536 || blocks > 4096) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "%s: embed_dim %u is not a multiple of num_heads %u (or is unreasonably large)", m, D, heads);
    return FALSE;
  }
  enc->present = TRUE;
  enc->modality = modality;
  enc->embed_dim = D;
  enc->num_blocks = blocks;
  enc->num_heads = heads;
  enc->logit_scale = 1.0f;
  if (!read_activation (ld, enc) || !read_ln_eps (ld, enc))
    return FALSE;

  /* The token count L comes from the positional table; the stems check it. */
  pos_name = text || modality == IMAGEBIND_MODALITY_IMU ? g_strconcat (pre, "pos_embed", NULL) :
      g_strconcat (pre, "pos_embedding_helper.pos_embed", NULL);
  if (!pos_table_rows (ld, pos_name, D, &enc->num_tokens))
    return FALSE;
  if (vision ? !load_vision_stem (ld, enc, pre, pos_name) :
      text ? !load_text_stem (ld, enc, pre, pos_name) :
      !load_conv_stem (ld, enc, pre, pos_name, &ln_name_w, &ln_name_b))
    return FALSE;

  if (ln_name_w && (!(enc->stem_ln_w = get_vec1 (ld, ln_name_w, D)) ||
          !(enc->stem_ln_b = get_vec1 (ld, ln_name_b, D))))
    return FALSE;
  if (!text) {
    cls_name = g_strconcat (pre, "cls_token", NULL);
    cls_shape[0] = cls_shape[1] = 1;
    cls_shape[2] = D;
    if (!(enc->cls = get_vector (ld, cls_name, cls_shape, 3)))
      return FALSE;
  }
  pos_shape[0] = 1;
  pos_shape[1] = enc->num_tokens;
  pos_shape[2] = D;
  if (!(enc->pos = get_vector (ld, pos_name, pos_shape, 3)))
    return FALSE;

  if (!load_blocks (ld, enc, !vision && !text))
    return FALSE;

  if (text) {
    head_ln_w = g_strdup ("modality_heads.text.proj.0.weight");
    head_ln_b = g_strdup ("modality_heads.text.proj.0.bias");
    head_w = g_strdup ("modality_heads.text.proj.1.weight");
  } else {
    head_ln_w = g_strdup_printf ("modality_heads.%s.0.weight", m);
    head_ln_b = g_strdup_printf ("modality_heads.%s.0.bias", m);
    head_w = g_strdup_printf ("modality_heads.%s.%d.weight", m, modality == IMAGEBIND_MODALITY_IMU ? 3 : 2);
  }
  if (!(enc->head_ln_w = get_vec1 (ld, head_ln_w, D)) || !(enc->head_ln_b = get_vec1 (ld, head_ln_b, D)) ||
      !get_weight2 (ld, head_w, model->out_dim, D, &enc->head_w))
    return FALSE;

  if (!vision) {
    scale_name = g_strdup_printf ("modality_postprocessors.%s.1.log_logit_scale", m);
    if (!(log_scale = get_vector (ld, scale_name, NULL, 0)))
      return FALSE;
    ib_encoder_set_logit_scale (enc, log_scale[0]);
  }
  ib_log (G_LOG_LEVEL_DEBUG, "%s: D %u, %u blocks, %u heads, %u tokens, %u patches of %u values",
      m, D, blocks, heads, enc->num_tokens, enc->num_patches, enc->patch_dim);
  return TRUE;
}

/* ---- input geometry: what the front ends accept ----
 *
 * Every pre-processing key is checked when the file is loaded, against the ranges of the front
 * ends (imagebind-frontend.h) and IMAGEBIND_MAX_INPUT_FLOATS per sample, before anything is
 * allocated from it: a hostile or corrupt file is refused with a message naming the key,
 * instead of making an element allocate gigabytes (or buffer audio forever) at its first
 * frame. Kept apart from the loading code: the limits are the front ends' business. */

typedef struct {
  const char *key;
  gsize offset;          /* of a guint in ImageBindInputGeometry */
  guint min, max;
} GeometryRange;

static const GeometryRange geometry_ranges[] = {
  { "imagebind.vision.image_size", G_STRUCT_OFFSET (ImageBindInputGeometry, image_size),
    1, IMAGEBIND_IMAGE_MAX_SIDE },
  { "imagebind.vision.video_frames", G_STRUCT_OFFSET (ImageBindInputGeometry, video_frames),
    1, IMAGEBIND_VIDEO_MAX_FRAMES },
  /* room for <|startoftext|> and <|endoftext|>; positions are at most G_MAXUINT16 */
  { "imagebind.text.context_length", G_STRUCT_OFFSET (ImageBindInputGeometry, context_length),
    2, G_MAXUINT16 },
  { "imagebind.audio.sample_rate", G_STRUCT_OFFSET (ImageBindInputGeometry, audio_sample_rate),
    IMAGEBIND_AUDIO_MIN_SAMPLE_RATE, IMAGEBIND_AUDIO_MAX_SAMPLE_RATE },
  { "imagebind.audio.clips_per_video", G_STRUCT_OFFSET (ImageBindInputGeometry, audio_clips),
    1, IMAGEBIND_AUDIO_MAX_CLIPS },
  { "imagebind.audio.num_mel_bins", G_STRUCT_OFFSET (ImageBindInputGeometry, audio_num_mel_bins),
    1, IMAGEBIND_AUDIO_MAX_MEL_BINS },
  { "imagebind.audio.target_len", G_STRUCT_OFFSET (ImageBindInputGeometry, audio_target_len),
    1, IMAGEBIND_AUDIO_MAX_TARGET_LEN },
  /* imagebind_imu_to_tensor interpolates between at least two samples */
  { "imagebind.imu.num_samples", G_STRUCT_OFFSET (ImageBindInputGeometry, imu_num_samples),
    2, IMAGEBIND_MAX_INPUT_FLOATS / 6 },
};

static gboolean
geometry_error (Loader *ld, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
geometry_error (Loader *ld, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL, message);
  return FALSE;
}

/* The keys one by one, then the products the tensors need. */
static gboolean
check_input_geometry (Loader *ld)
{
  const ImageBindInputGeometry *g = &ld->model->geometry;
  const guint32 *kernel = NULL;
  gsize n_kernel = 0;
  guint64 floats;
  GError *err = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (geometry_ranges); i++) {
    const GeometryRange *r = &geometry_ranges[i];
    guint v = G_STRUCT_MEMBER (guint, g, r->offset);
    if (v < r->min || v > r->max)
      return geometry_error (ld, "key %s is %u, outside %u..%u", r->key, v, r->min, r->max);
  }
  if (ib_gguf_get_u32_array (ld->gguf, "imagebind.vision.kernel_size", &kernel, &n_kernel)) {
    for (gsize i = 0; i < n_kernel; i++)
      if (kernel[i] < 1 || kernel[i] > IMAGEBIND_IMAGE_MAX_SIDE)
        return geometry_error (ld, "key imagebind.vision.kernel_size has an entry %u, outside "
            "1..%u", kernel[i], IMAGEBIND_IMAGE_MAX_SIDE);
  }
  floats = 3ull * g->video_frames * g->image_size * g->image_size;
  if (floats > IMAGEBIND_MAX_INPUT_FLOATS)
    return geometry_error (ld, "keys imagebind.vision.image_size %u and video_frames %u make "
        "clips of %" G_GUINT64_FORMAT " floats, more than 2^26", g->image_size, g->video_frames,
        floats);
  if (!isfinite (g->audio_clip_duration) || !(g->audio_clip_duration > 0.0f) ||
      g->audio_clip_duration > IMAGEBIND_AUDIO_MAX_CLIP_SECONDS)
    return geometry_error (ld, "key imagebind.audio.clip_duration is %g s, outside (0, %g]",
        g->audio_clip_duration, IMAGEBIND_AUDIO_MAX_CLIP_SECONDS);
  if (!isfinite (g->audio_fbank_mean))
    return geometry_error (ld, "key imagebind.audio.fbank_mean is %g, not a finite number",
        g->audio_fbank_mean);
  if (!isfinite (g->audio_fbank_std) || g->audio_fbank_std == 0.0f)
    return geometry_error (ld, "key imagebind.audio.fbank_std is %g: the spectrogram is "
        "divided by it", g->audio_fbank_std);

  /* What is left (samples per clip, tensor size): the audio front end's own check. */
  ImageBindAudioParams audio = {
    .sample_rate = g->audio_sample_rate, .clip_duration = g->audio_clip_duration,
    .clips = g->audio_clips, .num_mel_bins = g->audio_num_mel_bins,
    .target_len = g->audio_target_len, .mean = g->audio_fbank_mean, .std = g->audio_fbank_std,
  };
  if (!imagebind_audio_params_check (&audio, &err)) {
    geometry_error (ld, "keys imagebind.audio.*: %s", err->message);
    g_error_free (err);
    return FALSE;
  }
  return TRUE;
}

/* imagebind.vision.image_mean / image_std: 3 finite floats (std > 0); absent: OpenAI CLIP's. */
static gboolean
read_image_stats (Loader *ld, const char *key, float out[3], gboolean is_std)
{
  /* OpenAI CLIP's image normalisation, ImageBind's too: the front ends' default */
  ImageBindImageParams clip = imagebind_image_default_params ();
  gsize n = 0;
  gboolean ok;

  memcpy (out, is_std ? clip.std : clip.mean, 3 * sizeof (float));
  if (!ib_gguf_has_key (ld->gguf, key))
    return TRUE;
  ok = ib_gguf_get_f32_array (ld->gguf, key, out, 3, &n) && n == 3;
  for (int c = 0; ok && c < 3; c++)
    ok = isfinite (out[c]) && (!is_std || out[c] > 0.0f);
  if (!ok) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "key %s must be an array of 3 finite floats (R, G, B)%s", key,
        is_std ? ", each > 0" : "");
    return FALSE;
  }
  return TRUE;
}

/* After the encoders are loaded: inputs the front ends make must be what the encoders take.
 * Depth and thermal images are resized to image_size (there is no key of their own), so their
 * encoders' input side (patch grid x kernel) must be image_size: a model without vision whose
 * image_size is 30000 would otherwise make a 30000^2 tensor for every frame, only for the
 * encoder to refuse it. */
static gboolean
check_encoder_inputs (Loader *ld)
{
  const ImageBindModel *model = ld->model;
  const ImageBindModality square[] = { IMAGEBIND_MODALITY_DEPTH, IMAGEBIND_MODALITY_THERMAL };

  for (guint i = 0; i < G_N_ELEMENTS (square); i++) {
    const IbEncoder *enc = &model->enc[square[i]];
    if (enc->present && (enc->in_height != model->geometry.image_size ||
            enc->in_width != model->geometry.image_size))
      return geometry_error (ld, "%s: the encoder takes %ux%u images (positions x kernel_size), "
          "but key imagebind.vision.image_size, the size the %s front end makes, is %u",
          modality_names[square[i]], enc->in_width, enc->in_height, modality_names[square[i]],
          model->geometry.image_size);
  }
  return TRUE;
}

static gboolean
read_geometry (Loader *ld)
{
  ImageBindInputGeometry *g = &ld->model->geometry;
  guint32 v;

  if (!opt_key_u32 (ld, "imagebind.vision.image_size", &v, 224))
    return FALSE;
  g->image_size = v;
  if (!opt_key_u32 (ld, "imagebind.vision.video_frames", &v, 2))
    return FALSE;
  g->video_frames = v;
  if (!opt_key_u32 (ld, "imagebind.text.context_length", &v, 77))
    return FALSE;
  g->context_length = v;
  if (!opt_key_u32 (ld, "imagebind.audio.num_mel_bins", &v, 128))
    return FALSE;
  g->audio_num_mel_bins = v;
  if (!opt_key_u32 (ld, "imagebind.audio.target_len", &v, 204))
    return FALSE;
  g->audio_target_len = v;
  if (!opt_key_u32 (ld, "imagebind.audio.sample_rate", &v, 16000))
    return FALSE;
  g->audio_sample_rate = v;
  if (!opt_key_u32 (ld, "imagebind.audio.clips_per_video", &v, 3))
    return FALSE;
  g->audio_clips = v;
  if (!opt_key_u32 (ld, "imagebind.imu.num_samples", &v, 2000))
    return FALSE;
  g->imu_num_samples = v;
  if (!ib_gguf_get_f32 (ld->gguf, "imagebind.audio.clip_duration", &g->audio_clip_duration))
    g->audio_clip_duration = 2.0f;
  if (!ib_gguf_get_f32 (ld->gguf, "imagebind.audio.fbank_mean", &g->audio_fbank_mean))
    g->audio_fbank_mean = -4.268f;
  if (!ib_gguf_get_f32 (ld->gguf, "imagebind.audio.fbank_std", &g->audio_fbank_std))
    g->audio_fbank_std = 9.138f;
  if (!read_image_stats (ld, "imagebind.vision.image_mean", g->image_mean, FALSE) ||
      !read_image_stats (ld, "imagebind.vision.image_std", g->image_std, TRUE))
    return FALSE;
  return check_input_geometry (ld);
}

/* imagebind.source_family and tokenizer.clip.special_tokens (both optional). */
static gboolean
read_family (Loader *ld)
{
  static const char *const families[] = { "imagebind", "openclip", "hf-clip" };
  const char *family = ib_gguf_get_string (ld->gguf, "imagebind.source_family");
  const char *special = ib_gguf_get_string (ld->gguf, "tokenizer.clip.special_tokens");
  gboolean known = FALSE;

  if (!family && !ib_gguf_has_key (ld->gguf, "imagebind.source_family"))
    family = "imagebind";
  for (guint i = 0; family && i < G_N_ELEMENTS (families); i++)
    known = known || strcmp (family, families[i]) == 0;
  if (!known) {
    g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "key imagebind.source_family is %s%s%s: expected \"imagebind\", \"openclip\" or "
        "\"hf-clip\"", family ? "\"" : "", family ? family : "not a string", family ? "\"" : "");
    return FALSE;
  }
  g_free (ld->model->family);
  ld->model->family = g_strdup (family);

  ld->model->special_tokens = IMAGEBIND_SPECIAL_TOKENS_OPENAI;
  if (!special && !ib_gguf_has_key (ld->gguf, "tokenizer.clip.special_tokens"))
    return TRUE;
  if (special && strcmp (special, "openai") == 0)
    return TRUE;
  if (special && strcmp (special, "openclip") == 0) {
    ld->model->special_tokens = IMAGEBIND_SPECIAL_TOKENS_OPENCLIP;
    return TRUE;
  }
  g_set_error (ld->error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
      "key tokenizer.clip.special_tokens is %s%s%s: expected \"openai\" (<|startoftext|>, "
      "<|endoftext|>) or \"openclip\" (<start_of_text>, <end_of_text>)", special ? "\"" : "",
      special ? special : "not a string", special ? "\"" : "");
  return FALSE;
}

ImageBindModel *
ib_model_alloc (void)
{
  ImageBindModel *model = g_new0 (ImageBindModel, 1);
  model->ref_count = 1;
  model->owned = g_ptr_array_new_with_free_func (g_free);
  model->owned_aligned = g_ptr_array_new_with_free_func (g_aligned_free);
  model->family = g_strdup ("imagebind");
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    model->enc[m].modality = m;
    model->enc[m].logit_scale = 1.0f;
    model->enc[m].ln_eps = IMAGEBIND_LN_EPS;
    model->enc[m].activation = IB_ACTIVATION_GELU;
  }
  return model;
}

static void
pack_weight (ImageBindModel *model, IbWeight *w)
{
  gpointer packed = ib_weight_pack (w);
  if (!packed)
    return;
  g_ptr_array_add (model->owned_aligned, packed);
  /* the products read only the packed copy from now on: the file's pages of the original go
   * back to the kernel, so that the process holds the weights once */
  ib_gguf_release_pages (model->gguf, w->data,
      w->rows * w->cols * (w->type == IB_GGUF_TENSOR_I8 ? 1 : sizeof (float)));
}

void
ib_model_pack_weights (ImageBindModel *model)
{
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    IbEncoder *enc = &model->enc[m];
    if (!enc->present)
      continue;
    /* the text stem is a table of token rows, not a product */
    if (m != IMAGEBIND_MODALITY_TEXT)
      pack_weight (model, &enc->stem_w);
    for (guint i = 0; i < enc->num_blocks; i++) {
      pack_weight (model, &enc->blocks[i].in_proj_w);
      pack_weight (model, &enc->blocks[i].out_proj_w);
      pack_weight (model, &enc->blocks[i].fc1_w);
      pack_weight (model, &enc->blocks[i].fc2_w);
    }
  }
}

ImageBindModel *
imagebind_model_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  if (!ib_blas_init (error))
    return NULL;
  IbGguf *gguf = ib_gguf_open (path, error);
  if (!gguf)
    return NULL;

  ImageBindModel *model = ib_model_alloc ();
  model->gguf = gguf;
  Loader ld = { model, gguf, error };

  const char *arch = ib_gguf_get_string (gguf, "general.architecture");
  if (!arch || strcmp (arch, "imagebind") != 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "%s: general.architecture is \"%s\", expected \"imagebind\"", path, arch ? arch : "(none)");
    goto fail;
  }
  model->name = g_strdup (ib_gguf_get_string (gguf, "general.name"));
  if (!model->name)
    model->name = g_strdup ("");
  guint32 out_dim;
  if (!get_key_u32 (&ld, "imagebind.out_embed_dim", &out_dim))
    goto fail;
  if (out_dim > 65536) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL, "imagebind.out_embed_dim %u is too large", out_dim);
    goto fail;
  }
  model->out_dim = out_dim;
  if (!read_family (&ld) || !read_geometry (&ld)) {
    g_prefix_error (error, "%s: ", path);
    goto fail;
  }

  gboolean want[IMAGEBIND_N_MODALITIES] = { FALSE };
  gsize n_names = 0;
  const char *const *names = ib_gguf_get_string_array (gguf, "imagebind.modalities", &n_names);
  if (!names) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
        "key imagebind.modalities (array of strings) is missing");
    goto fail;
  }
  for (gsize i = 0; i < n_names; i++) {
    ImageBindModality mod;
    if (!imagebind_modality_from_name (names[i], &mod)) {
      g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL,
          "imagebind.modalities lists an unknown modality \"%s\"", names[i]);
      goto fail;
    }
    want[mod] = TRUE;
  }
  guint n_present = 0;
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    if (!want[m])
      continue;
    if (!load_encoder (&ld, m)) {
      g_prefix_error (error, "%s: ", path);
      goto fail;
    }
    n_present++;
  }
  if (n_present == 0) {
    g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_MODEL, "%s: the model has no modality", path);
    goto fail;
  }
  if (!check_encoder_inputs (&ld)) {
    g_prefix_error (error, "%s: ", path);
    goto fail;
  }
  ib_model_pack_weights (model);
  ib_log (G_LOG_LEVEL_INFO, "loaded %s (\"%s\"): %u modalities, out_dim %u, %s weights", path,
      model->name, n_present, model->out_dim,
      model->any_q8 ? "q8 (int8)" : model->any_f16 ? "F16" : "F32");
  if (model->any_q8 && !ib_q8_have_vnni ())
    ib_log (G_LOG_LEVEL_DEBUG, "%s: q8 weights but no AVX-512 VNNI on this CPU (or "
        "IMAGEBIND_Q8=f32): each int8 matrix is widened to F32 right before its product, as "
        "F16 weights are (correct, but slower than the F32 file)", path);
  return model;

fail:
  imagebind_model_unref (model);
  return NULL;
}

ImageBindModel *
imagebind_model_ref (ImageBindModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
imagebind_model_unref (ImageBindModel *model)
{
  if (!model || !g_atomic_int_dec_and_test (&model->ref_count))
    return;
  if (model->tokenizer)
    imagebind_tokenizer_free (model->tokenizer);
  g_free (model->tokenizer_error);
  g_ptr_array_unref (model->owned);
  g_ptr_array_unref (model->owned_aligned);
  if (model->gguf)
    ib_gguf_free (model->gguf);
  g_free (model->name);
  g_free (model->family);
  g_free (model);
}

guint
imagebind_model_out_dim (const ImageBindModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->out_dim;
}

gboolean
imagebind_model_has_modality (const ImageBindModel *model, ImageBindModality modality)
{
  g_return_val_if_fail (model != NULL, FALSE);
  return (guint) modality < IMAGEBIND_N_MODALITIES && model->enc[modality].present;
}

float
imagebind_model_logit_scale (const ImageBindModel *model, ImageBindModality modality)
{
  g_return_val_if_fail (model != NULL, 1.0f);
  if (!imagebind_model_has_modality (model, modality))
    return 1.0f;
  return model->enc[modality].logit_scale;
}

const char *
imagebind_model_name (const ImageBindModel *model)
{
  g_return_val_if_fail (model != NULL, "");
  return model->name;
}

const char *
imagebind_model_family (const ImageBindModel *model)
{
  g_return_val_if_fail (model != NULL, "imagebind");
  return model->family;
}

gboolean
imagebind_model_require_modality (const ImageBindModel *model, ImageBindModality modality,
    const char *path, const char *user, GError **error)
{
  GString *have;
  guint n = 0, k = 0;

  g_return_val_if_fail (model != NULL, FALSE);
  if (imagebind_model_has_modality (model, modality))
    return TRUE;
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++)
    n += model->enc[m].present;
  have = g_string_new (NULL);
  for (guint m = 0; m < IMAGEBIND_N_MODALITIES; m++) {
    if (!model->enc[m].present)
      continue;
    k++;
    g_string_append_printf (have, "%s%s", k == 1 ? "" : k == n ? " and " : ", ", modality_names[m]);
  }
  /* "an audio tower", "an imu tower", "a depth tower" */
  const char *name = imagebind_modality_name (modality);
  gboolean vowel = strchr ("aeiou", name[0]) != NULL;
  g_set_error (error, IMAGEBIND_ERROR, IMAGEBIND_ERROR_NO_MODALITY,
      "model %s (%s) has only %s %s; %s needs a%s %s tower", path ? path : model->name,
      model->family, have->str, n == 1 ? "tower" : "towers", user ? user : "this",
      vowel ? "n" : "", name);
  g_string_free (have, TRUE);
  return FALSE;
}

void
ib_encoder_compute_info (const ImageBindModel *model, const IbEncoder *enc, ImageBindEncoderInfo *info)
{
  double D = enc->embed_dim, L = enc->num_tokens, P = enc->num_patches, out = model->out_dim;
  gboolean text = enc->modality == IMAGEBIND_MODALITY_TEXT;
  gboolean bias_kv = enc->modality != IMAGEBIND_MODALITY_VISION && !text;
  double Lk = L + (bias_kv ? 1 : 0);
  guint64 d = enc->embed_dim;

  memset (info, 0, sizeof *info);
  info->embed_dim = enc->embed_dim;
  info->num_blocks = enc->num_blocks;
  info->num_heads = enc->num_heads;
  info->num_tokens = enc->num_tokens;

  guint64 n = text ? (guint64) enc->vocab_size * d : (guint64) enc->patch_dim * d;
  if (enc->stem_ln_w)
    n += 2 * d;
  if (!text)
    n += d;                                   /* class token */
  n += (guint64) enc->num_tokens * d;         /* positions */
  if (enc->ln_pre_w)
    n += 2 * d;
  n += (guint64) enc->num_blocks * (12 * d * d + 13 * d + (bias_kv ? 2 * d : 0));
  n += 2 * d + d * model->out_dim;            /* head */
  if (text)
    n += 1;                                   /* the learned logit scale */
  info->n_params = n;

  /* 2 x multiply-adds of every product: stem, per block the q/k/v projection, scores,
   * attention x values, output projection and the MLP; the head projection. */
  double flops = text ? 0 : 2 * P * enc->patch_dim * D;
  double block = 2 * L * D * 3 * D + 2 * 2 * L * Lk * D + 2 * L * D * D + 2 * 2 * L * D * 4 * D;
  flops += enc->num_blocks * block + 2 * D * out;
  info->gflops = flops / 1e9;
}

gboolean
imagebind_model_encoder_info (const ImageBindModel *model, ImageBindModality modality,
    ImageBindEncoderInfo *info)
{
  g_return_val_if_fail (model != NULL && info != NULL, FALSE);
  if (!imagebind_model_has_modality (model, modality)) {
    memset (info, 0, sizeof *info);
    return FALSE;
  }
  ib_encoder_compute_info (model, &model->enc[modality], info);
  return TRUE;
}

void
imagebind_model_input_geometry (const ImageBindModel *model, ImageBindInputGeometry *geometry)
{
  g_return_if_fail (model != NULL && geometry != NULL);
  *geometry = model->geometry;
}

/* ---- tokenizer: built once, on first use, from the merges stored in the file ---- */

static gpointer
build_tokenizer (gpointer data)
{
  ImageBindModel *model = data;
  gsize n = 0;
  const char *const *merges = model->gguf ?
      ib_gguf_get_string_array (model->gguf, "tokenizer.ggml.merges", &n) : NULL;
  if (!merges) {
    model->tokenizer_error_code = IMAGEBIND_ERROR_NO_TOKENIZER;
    model->tokenizer_error = g_strdup ("the model file has no BPE vocabulary (tokenizer.ggml.merges)");
    return NULL;
  }
  GError *error = NULL;
  model->tokenizer = imagebind_tokenizer_new_full (merges, n, model->special_tokens, &error);
  if (!model->tokenizer) {
    model->tokenizer_error_code = IMAGEBIND_ERROR_NO_TOKENIZER;
    model->tokenizer_error = g_strdup_printf ("the model's BPE vocabulary is unusable: %s",
        error ? error->message : "unknown error");
    g_clear_error (&error);
  }
  return model->tokenizer;
}

const ImageBindTokenizer *
imagebind_model_get_tokenizer (const struct _ImageBindModel *model, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  /* The model is logically const: building its tokenizer once is invisible to callers. */
  ImageBindModel *m = (ImageBindModel *) model;
  const ImageBindTokenizer *tok = g_once (&m->tokenizer_once, build_tokenizer, m);
  if (!tok)
    g_set_error_literal (error, IMAGEBIND_ERROR, m->tokenizer_error_code, m->tokenizer_error);
  return tok;
}
